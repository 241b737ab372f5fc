"""The periodic, E(3)-invariant message-passing backbone shared by diffusion and flow matching.

A CSPNet-style network (DiffCSP, Jiao et al. 2023) over the fully connected in-cell graph:

* nodes: atom-type features (one-hot or noisy one-hot, ``n_types`` wide) plus a time embedding
  (and, for a conditional model, a per-crystal condition embedding added to the input states);
* edges ``i -> j``: Fourier features of ``f_j - f_i`` (periodic, so invariant to translations by
  lattice vectors and to wrapping) and the lattice inner-product matrix ``L L^T`` (invariant to
  rotations of the crystal: lattice rows are vectors, a rotation maps ``L -> L R^T``);
* outputs: a fractional-coordinate field (N, 3), invariant to rotations and translations; a
  lattice field ``M L`` (B, 3, 3) with ``M`` invariant, hence rotation-equivariant (or, with
  ``lattice_output="ks"``, six invariant numbers for a rotation-free lattice); and atom-type
  logits (N, n_types). All outputs are equivariant to permutations of the atoms of a crystal.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from xtalgen.crystal import MAX_Z
from xtalgen.nn.layers import MLP, SinusoidalTimeEmbedding, fourier_features, scatter_mean
from xtalgen.representations.graph import in_cell_pairs

__all__ = [
    "Backbone",
    "BackboneConfig",
    "BackboneOutput",
    "types_to_onehot",
]


@dataclass
class BackboneConfig:
    """Size of the backbone. The default has about 2 M parameters and trains on a CPU."""

    hidden_dim: int = 256
    num_layers: int = 4
    n_freqs: int = 16
    """Harmonics per fractional coordinate in the edge features."""
    time_dim: int = 64
    n_types: int = MAX_Z
    """Width of the atom-type features: column ``Z - 1`` is element ``Z``."""
    lattice_output: str = "matrix"
    """``"matrix"``: a (B, 3, 3) field ``M L`` (rotation-equivariant); ``"ks"``: a (B, 6)
    rotation-invariant field for the log-space k-vector of the symmetric lattice."""


@dataclass
class BackboneOutput:
    """Fields predicted by the backbone for one batch."""

    lattice: torch.Tensor
    """(B, 3, 3), transforms like the lattice (rows are vectors); or (B, 6), invariant."""
    frac: torch.Tensor
    """(N, 3), in fractional units; invariant to rotations and periodic translations."""
    types: torch.Tensor
    """(N, n_types) logits or type-space field."""


def types_to_onehot(atom_types: torch.Tensor, n_types: int = MAX_Z) -> torch.Tensor:
    """(N,) atomic numbers -> (N, n_types) float one-hot (column Z - 1)."""
    return nn.functional.one_hot(atom_types.long() - 1, n_types).float()


class InteractionLayer(nn.Module):
    """One round of messages over the in-cell graph with a residual node update."""

    def __init__(self, hidden_dim: int, n_freqs: int) -> None:
        super().__init__()
        self.n_freqs = n_freqs
        self.norm = nn.LayerNorm(hidden_dim)
        # The first edge layer acts on [h_i, h_j, L L^T, fourier(f_j - f_i)]; it is split into
        # per-node projections (computed once per atom, then gathered) and a per-edge one,
        # which is the same linear map at a fraction of the cost on dense in-cell graphs.
        self.src_proj = nn.Linear(hidden_dim, hidden_dim, bias=False)
        self.dst_proj = nn.Linear(hidden_dim, hidden_dim, bias=False)
        self.edge_proj = nn.Linear(9 + 6 * n_freqs, hidden_dim)
        self.edge_out = nn.Sequential(nn.SiLU(), nn.Linear(hidden_dim, hidden_dim), nn.SiLU())
        self.node_mlp = MLP(2 * hidden_dim, hidden_dim)

    def forward(
        self,
        h: torch.Tensor,
        edge_features: torch.Tensor,
        edges: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    ) -> torch.Tensor:
        """``edge_features``: (E, 9 + 6 n_freqs) = [L L^T of the crystal, fourier(f_j - f_i)]."""
        src, dst, _ = edges
        hn = self.norm(h)
        pre = self.src_proj(hn)[src] + self.dst_proj(hn)[dst] + self.edge_proj(edge_features)
        messages = self.edge_out(pre)
        agg = scatter_mean(messages, src, h.shape[0])
        return h + self.node_mlp(torch.cat([hn, agg], dim=-1))


class Backbone(nn.Module):
    """Periodic invariant network: ``(t, type features, frac_coords, lattices) -> fields``."""

    def __init__(self, config: BackboneConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or BackboneConfig()
        self.time_embedding = SinusoidalTimeEmbedding(config.time_dim)
        self.node_in = nn.Linear(config.n_types + config.time_dim, config.hidden_dim)
        self.layers = nn.ModuleList(
            InteractionLayer(config.hidden_dim, config.n_freqs) for _ in range(config.num_layers)
        )
        self.norm_out = nn.LayerNorm(config.hidden_dim)
        self.frac_head = nn.Linear(config.hidden_dim, 3, bias=False)
        if config.lattice_output not in ("matrix", "ks"):
            raise ValueError(f"lattice_output must be 'matrix' or 'ks', got {config.lattice_output!r}")
        self.lattice_head = nn.Linear(config.hidden_dim, 9 if config.lattice_output == "matrix" else 6,
                                      bias=config.lattice_output == "ks")
        self.type_head = nn.Linear(config.hidden_dim, config.n_types)

    def forward(
        self,
        t: torch.Tensor,
        type_features: torch.Tensor,
        frac_coords: torch.Tensor,
        lattices: torch.Tensor,
        num_atoms: torch.Tensor,
        batch: torch.Tensor,
        cond: torch.Tensor | None = None,
    ) -> BackboneOutput:
        """Predict the fields of a (noisy) batch.

        Args:
            t: (B,) time in [0, 1] per crystal.
            type_features: (N, n_types) one-hot (CSP) or noisy one-hot (DNG) atom types.
            frac_coords: (N, 3) fractional coordinates (wrapping does not change the output).
            lattices: (B, 3, 3) angstrom, rows are lattice vectors.
            num_atoms: (B,) atoms per crystal; ``batch``: (N,) crystal index per atom.
            cond: optional (B, hidden_dim) condition embedding, added to every atom's input
                state (:mod:`xtalgen.models.iterative.conditioning`).
        """
        h = self.node_states(t, type_features, frac_coords, lattices, num_atoms, batch, cond)
        pooled = scatter_mean(h, batch, lattices.shape[0])
        lattice_out = self.lattice_head(pooled)
        if self.config.lattice_output == "matrix":
            lattice_out = lattice_out.view(-1, 3, 3) @ lattices
        return BackboneOutput(
            lattice=lattice_out,
            frac=self.frac_head(h),
            types=self.type_head(h),
        )

    def node_states(
        self,
        t: torch.Tensor,
        type_features: torch.Tensor,
        frac_coords: torch.Tensor,
        lattices: torch.Tensor,
        num_atoms: torch.Tensor,
        batch: torch.Tensor,
        cond: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(N, hidden_dim) invariant atom states after the last layer (normalised): what the
        output heads read, and what a property head pools (arguments as in ``forward``)."""
        temb = self.time_embedding(t)[batch]
        h = self.node_in(torch.cat([type_features, temb], dim=-1))
        if cond is not None:
            h = h + cond[batch]
        lattice_ips = (lattices @ lattices.transpose(-1, -2)).flatten(1)  # (B, 9), invariant
        edges = in_cell_pairs(num_atoms, self_pairs=True)
        src, dst, graph = edges
        diff = frac_coords[dst] - frac_coords[src]  # computed once, shared by all layers
        edge_features = torch.cat(
            [lattice_ips[graph], fourier_features(diff, self.config.n_freqs)], dim=-1
        )
        for layer in self.layers:
            h = layer(h, edge_features, edges)
        return self.norm_out(h)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
