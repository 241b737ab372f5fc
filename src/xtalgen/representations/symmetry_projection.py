"""Hard space-group constraints: project a crystal onto a Wyckoff template's symmetric subspace.

A :class:`SymmetryTemplate` is a crystal's symmetry frozen in its own cell (the cell a model
samples in, e.g. a Niggli-reduced primitive cell): the space group's operations
``g = (W, w)`` in that cell's fractional basis (``x' = W x + w``, column vectors, so ``W`` is
an integer matrix), and for every atom ``k`` of every orbit (Wyckoff site) the operation
``g_k`` that carries the orbit's representative ``x_0`` to it (``x_k = g_k(x_0) mod 1``).
Projections (DiffCSP++-style sampling inside a template, see
:mod:`xtalgen.pipelines.symmetric_sampling`):

* coordinates (:meth:`SymmetryTemplate.project_frac`): per orbit, the mean of
  ``g_k^{-1}(x_k)`` over its atoms (minimum-image differences to the first one), moved to the
  nearest point of the representative's Wyckoff set ``x_0 + range(P) + Z^3`` (``P``: the mean
  rotation of the site-stabiliser, a projection onto the free directions; the nearest of the
  periodic images within two cells, in the template's metric), then re-expanded with the
  ``g_k``. Free parameters move; fixed ones snap; the orbit keeps its template multiplicity.
* lattice (:meth:`SymmetryTemplate.project_metric`): the metric ``G = L L^T`` (angstrom^2)
  averaged over the point group, ``G' = mean_k W_k^T G W_k``, which satisfies
  ``W^T G' W = G'`` exactly; :func:`lattice_with_metric` rebuilds the lattice nearest to ``L``
  with metric ``G'`` (``L' = G'^(1/2) G^(-1/2) L``; a symmetric ``L`` stays symmetric).

Both are idempotent and leave a symmetric crystal fixed. :class:`SymmetryProjector` applies them
to a batch of templates in a generative model's process space (torch, float64 inside), as the
``project`` callable of :meth:`xtalgen.models.iterative.process.Process.sample`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

import numpy as np
import torch

from xtalgen.crystal import Crystal, element_symbol
from xtalgen.errors import XtalgenError

__all__ = ["SymmetryProjector", "SymmetryTemplate", "lattice_with_metric"]

_IMAGES = torch.stack(torch.meshgrid(*[torch.arange(-2.0, 3.0, dtype=torch.float64)] * 3,
                                     indexing="ij"), -1).reshape(-1, 3)
"""(125, 3) integer shifts searched for the nearest periodic copy of a Wyckoff set."""


@dataclass(frozen=True, eq=False)
class SymmetryTemplate:
    """A space group's operations and Wyckoff orbits in one crystal's cell (see module doc)."""

    spacegroup: int
    crystal: Crystal
    """The idealised template: exactly symmetric, a fixed point of the projections."""
    rotations: np.ndarray
    """(n_ops, 3, 3) int, the operations' rotation parts in the cell's fractional basis."""
    translations: np.ndarray
    """(n_ops, 3) fractional translations in [0, 1)."""
    orbit: np.ndarray
    """(N,) orbit (Wyckoff site) index of each atom, 0..n_orbits-1."""
    atom_op: np.ndarray
    """(N,) index of the operation carrying the atom's orbit representative to it."""
    site_points: np.ndarray
    """(n_orbits, 3) representatives, each exactly on its Wyckoff set."""
    site_projectors: np.ndarray
    """(n_orbits, 3, 3) mean stabiliser rotation: projects onto the site's free directions."""
    wyckoff_letters: tuple[str, ...]
    """Wyckoff letter of each orbit (spglib, standard setting)."""

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_crystal(
        cls,
        crystal: Crystal,
        symprec: float = 0.1,
        angle_tolerance: float = 5.0,
        *,
        spacegroup: int | None = None,
        niggli: bool = True,
        primitive: bool = False,
    ) -> SymmetryTemplate:
        """The template of an ordered crystal, in its own cell (its primitive cell first when
        ``primitive``, then Niggli-reduced when ``niggli``), with the symmetry spglib finds at
        ``symprec`` (angstrom) and ``angle_tolerance`` (degrees); the stored crystal is
        idealised onto it.

        Raises:
            XtalgenError: disordered crystal, no symmetry found, a group other than
                ``spacegroup``, or a cell whose lattice the operations do not preserve
                (a supercell: pass ``primitive=True``).
        """
        import spglib

        if not isinstance(crystal, Crystal):
            raise XtalgenError(f"expected a Crystal, got {type(crystal).__name__}")
        if not crystal.is_ordered:
            raise XtalgenError("a symmetry template needs an ordered crystal (this one has partial sites)")
        if primitive:
            from xtalgen.representations.wyckoff import to_primitive

            crystal = to_primitive(crystal, symprec)
        if niggli:
            crystal = _niggli(crystal)
        lattice, frac = crystal.lattice, crystal.frac_coords
        try:
            ds = spglib.get_symmetry_dataset((lattice, frac, crystal.species), symprec=symprec,
                                             angle_tolerance=angle_tolerance)
        except Exception:
            ds = None
        if ds is None:
            raise XtalgenError(f"spglib finds no symmetry for {crystal.formula} at symprec={symprec:g}")
        if spacegroup is not None and int(ds.number) != int(spacegroup):
            raise XtalgenError(f"{crystal.formula} has space group {ds.number} at symprec={symprec:g}, "
                               f"not {spacegroup}")
        rotations, translations = _cell_operations(ds, crystal.formula)
        if len(rotations) != len(ds.rotations):
            raise XtalgenError(f"{crystal.formula}: {len(rotations)} operations from the "
                               f"space-group table, spglib found {len(ds.rotations)}")
        eq = np.asarray(ds.equivalent_atoms)
        reps = list(dict.fromkeys(int(r) for r in eq))  # representatives, in order of appearance
        orbit = np.array([reps.index(int(r)) for r in eq])
        atom_op = np.zeros(crystal.num_sites, dtype=np.int64)
        points, projectors = [], []
        tol = max(4.0 * symprec, 1e-3)
        for o, rep in enumerate(reps):
            members = np.flatnonzero(orbit == o)
            images = rotations @ frac[rep] + translations  # (n_ops, 3)
            diff = _min_image(images[:, None, :] - frac[members][None, :, :])
            dist = np.linalg.norm(diff @ lattice, axis=-1)  # (n_ops, n_members), angstrom
            hit = dist.argmin(1)
            if dist.min(1).max() > tol or np.bincount(hit, minlength=len(members)).min() \
                    != len(rotations) // len(members):
                raise XtalgenError(f"{crystal.formula}: the space-group operations do not map the "
                                   f"orbit of site {rep} onto itself at symprec={symprec:g}")
            for j, atom in enumerate(members):
                atom_op[atom] = int(np.flatnonzero(hit == j)[0])
            stab = np.flatnonzero(hit == list(members).index(rep))
            lifted = images[stab] - np.round(images[stab] - frac[rep])  # exact affine images of x_0
            points.append(lifted.mean(0) - np.floor(lifted.mean(0)))
            projectors.append(rotations[stab].mean(0))
        site_points, site_projectors = np.array(points), np.array(projectors)
        ideal = rotations[atom_op] @ site_points[orbit][..., None]
        ideal_frac = ideal[..., 0] + translations[atom_op]
        metric = _average_metric(rotations, lattice @ lattice.T)
        ideal_lattice = lattice_with_metric(lattice, metric)
        letters = tuple(str(ds.wyckoffs[r]) for r in reps)
        ideal_crystal = Crystal(ideal_lattice, ideal_frac - np.floor(ideal_frac), crystal.species,
                                properties=dict(crystal.properties))
        return cls(int(ds.number), ideal_crystal, rotations.astype(np.int64), translations, orbit,
                   atom_op, site_points, site_projectors, letters)

    # -- description --------------------------------------------------------------------------
    @property
    def num_sites(self) -> int:
        return self.crystal.num_sites

    @property
    def num_orbits(self) -> int:
        return len(self.site_points)

    @property
    def label(self) -> str:
        """Space group and sites, e.g. ``'225 | Na a | Cl b'`` (element, Wyckoff letter)."""
        species = self.crystal.species
        sites = [f"{element_symbol(int(species[np.flatnonzero(self.orbit == o)[0]]))} {letter}"
                 for o, letter in enumerate(self.wyckoff_letters)]
        return " | ".join([str(self.spacegroup), *sites])

    @property
    def num_free_coords(self) -> int:
        """Free fractional coordinates: the sum over orbits of the Wyckoff sets' dimensions."""
        return round(float(np.trace(self.site_projectors, axis1=1, axis2=2).sum()))

    # -- projections (numpy, one crystal) -----------------------------------------------------
    def project_frac(self, frac_coords: np.ndarray) -> np.ndarray:
        """(N, 3) fractional coordinates (atoms in the template's order) -> the nearest
        symmetric ones (see the module docstring), wrapped to [0, 1)."""
        frac = torch.tensor(np.asarray(frac_coords, dtype=np.float64))
        if frac.shape != (self.num_sites, 3):
            raise XtalgenError(f"expected ({self.num_sites}, 3) fractional coordinates, got {tuple(frac.shape)}")
        return SymmetryProjector([self]).project_frac(frac).numpy()

    def project_metric(self, metric: np.ndarray) -> np.ndarray:
        """(3, 3) metric tensor G = L L^T (angstrom^2) -> its point-group average."""
        metric = np.asarray(metric, dtype=np.float64)
        if metric.shape != (3, 3):
            raise XtalgenError(f"expected a (3, 3) metric tensor, got shape {metric.shape}")
        return _average_metric(self.rotations, metric)

    def project(self, crystal: Crystal) -> Crystal:
        """A crystal of the template's sites (same order) moved onto the template's symmetry:
        coordinates by :meth:`project_frac`, lattice by :meth:`project_metric`."""
        if crystal.num_sites != self.num_sites or not np.array_equal(crystal.species, self.crystal.species):
            raise XtalgenError(f"{crystal.formula} does not have the template's sites ({self.crystal.formula}, same order)")
        metric = self.project_metric(crystal.lattice @ crystal.lattice.T)
        return crystal.replace(lattice=lattice_with_metric(crystal.lattice, metric),
                               frac_coords=self.project_frac(crystal.frac_coords))


# -- batched projection in process space ----------------------------------------------------------
class SymmetryProjector:
    """``project(state) -> state`` for a batch of templates (crystal i of the batch is
    template i, atoms in the template's order), as ``Process.sample(..., project=...)`` takes.

    ``decode_lattices`` / ``encode_lattices`` map the process-space lattices to (B, 3, 3)
    angstrom matrices (rows = vectors) and back, e.g. a
    :class:`~xtalgen.models.iterative.generative.CrystalGenerativeModel`'s; without them the
    state's lattices are taken to be matrices already.
    """

    def __init__(
        self,
        templates: Sequence[SymmetryTemplate],
        decode_lattices: Callable[[torch.Tensor], torch.Tensor] | None = None,
        encode_lattices: Callable[[torch.Tensor], torch.Tensor] | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        if not templates:
            raise XtalgenError("a symmetry projector needs at least one template")
        self.templates = list(templates)
        self.decode_lattices = decode_lattices
        self.encode_lattices = encode_lattices

        def cat(arrays: list[np.ndarray]) -> torch.Tensor:
            return torch.as_tensor(np.concatenate(arrays), dtype=torch.float64, device=device)

        rot = [t.rotations[t.atom_op] for t in templates]
        self.atom_rot = cat(rot)  # (N, 3, 3)
        self.atom_rot_inv = torch.linalg.inv(self.atom_rot)
        self.atom_trans = cat([t.translations[t.atom_op] for t in templates])
        offsets = np.cumsum([0] + [t.num_orbits for t in templates])
        atom_offsets = np.cumsum([0] + [t.num_sites for t in templates])
        self.atom_orbit = torch.as_tensor(np.concatenate(
            [t.orbit + off for t, off in zip(templates, offsets)]), device=device)
        first = np.concatenate([[np.flatnonzero(t.orbit == o)[0] + a for o in range(t.num_orbits)]
                                for t, a in zip(templates, atom_offsets)])
        self.orbit_first = torch.as_tensor(first, device=device)
        self.orbit_size = torch.bincount(self.atom_orbit).to(torch.float64)
        self.site_points = cat([t.site_points for t in templates])
        self.site_projectors = cat([t.site_projectors for t in templates])
        self.site_metrics = cat([np.repeat((t.crystal.lattice @ t.crystal.lattice.T)[None],
                                           t.num_orbits, 0) for t in templates])
        n_max = max(len(t.rotations) for t in templates)
        point = np.zeros((len(templates), n_max, 3, 3))
        weight = np.zeros((len(templates), n_max))
        for i, t in enumerate(templates):
            point[i, : len(t.rotations)] = t.rotations
            weight[i, : len(t.rotations)] = 1.0 / len(t.rotations)
        self.point_rot = torch.as_tensor(point, device=device)
        self.point_weight = torch.as_tensor(weight, device=device)
        self.images = _IMAGES.to(device)

    def __call__(self, state: Any) -> Any:
        """A process :class:`~xtalgen.models.iterative.process.State` (any dataclass with
        ``lattices`` and ``frac_coords``) with both projected; the types are left alone."""
        lattices = state.lattices
        matrices = lattices if self.decode_lattices is None else self.decode_lattices(lattices)
        matrices = self.project_lattices(matrices.double())
        if self.encode_lattices is not None:
            matrices = self.encode_lattices(matrices)
        frac = self.project_frac(state.frac_coords.double())
        return replace(state, lattices=matrices.to(lattices.dtype),
                       frac_coords=frac.to(state.frac_coords.dtype))

    def project_frac(self, frac: torch.Tensor) -> torch.Tensor:
        """(N, 3) float64 fractional coordinates of the batch -> symmetric ones in [0, 1)."""
        # representative seen from every atom, g_k^{-1}(x_k), averaged over each orbit
        seen = torch.einsum("nij,nj->ni", self.atom_rot_inv, frac - self.atom_trans)
        ref = seen[self.orbit_first]
        delta = _min_image(seen - ref[self.atom_orbit])
        mean = ref + torch.zeros_like(ref).index_add_(0, self.atom_orbit, delta) / self.orbit_size[:, None]
        # nearest point of the Wyckoff set x_0 + range(P) + Z^3 (template metric)
        cand = _min_image(mean - self.site_points)[:, None, :] + self.images  # (O, 125, 3)
        along = torch.einsum("oij,okj->oki", self.site_projectors, cand)
        off = cand - along
        dist = torch.einsum("oki,oij,okj->ok", off, self.site_metrics, off)
        best = along[torch.arange(len(cand), device=frac.device), dist.argmin(1)]
        site = self.site_points + best
        out = torch.einsum("nij,nj->ni", self.atom_rot, site[self.atom_orbit]) + self.atom_trans
        return out - torch.floor(out)

    def project_lattices(self, lattices: torch.Tensor) -> torch.Tensor:
        """(B, 3, 3) float64 lattices (rows = vectors) -> the nearest ones with the templates'
        point-group metrics (``L' = G'^(1/2) G^(-1/2) L``)."""
        metric = lattices @ lattices.transpose(-1, -2)
        rot = self.point_rot
        averaged = torch.einsum("bk,bkji,bjl,bklm->bim", self.point_weight, rot, metric, rot)
        return _sqrtm(averaged) @ _sqrtm(metric, inverse=True) @ lattices


# -- helpers --------------------------------------------------------------------------------------
def _min_image(delta):  # numpy arrays and torch tensors alike
    """Shortest periodic representative of a fractional displacement, in [-0.5, 0.5)."""
    floor = torch.floor if isinstance(delta, torch.Tensor) else np.floor
    return delta - floor(delta + 0.5)


def lattice_with_metric(lattice: np.ndarray, metric: np.ndarray) -> np.ndarray:
    """The lattice (rows = vectors, angstrom) nearest to ``lattice`` whose metric ``L L^T`` is
    ``metric``: ``G'^(1/2) G^(-1/2) L`` (a symmetric ``L`` gives the symmetric root of G')."""
    lattice = torch.tensor(np.asarray(lattice, dtype=np.float64))
    metric = torch.tensor(np.asarray(metric, dtype=np.float64))
    own = lattice @ lattice.transpose(-1, -2)
    return (_sqrtm(metric) @ _sqrtm(own, inverse=True) @ lattice).numpy()


def _sqrtm(metric: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    """Square root (or its inverse) of symmetric positive-definite matrices (..., 3, 3)."""
    sym = (metric + metric.transpose(-1, -2)) / 2
    eigval, eigvec = torch.linalg.eigh(sym)
    root = eigval.clamp(min=1e-12).sqrt()
    if inverse:
        root = 1.0 / root
    return (eigvec * root.unsqueeze(-2)) @ eigvec.transpose(-1, -2)


def _average_metric(rotations: np.ndarray, metric: np.ndarray) -> np.ndarray:
    """``mean_k W_k^T G W_k`` over the operations' rotations."""
    rot = np.asarray(rotations, dtype=np.float64)
    return np.einsum("kji,jl,klm->im", rot, metric, rot) / len(rot)


def _rational(matrix: np.ndarray, max_denominator: int = 60) -> np.ndarray:
    """A float matrix with every entry snapped to the nearest fraction (cell transformations)."""
    return np.array([float(Fraction(float(v)).limit_denominator(max_denominator))
                     for v in matrix.ravel()]).reshape(matrix.shape)


def _cell_operations(ds, formula: str) -> tuple[np.ndarray, np.ndarray]:
    """The space group's exact operations (spglib's table for the dataset's Hall number) in the
    input cell's basis, one per coset of the cell's translations: with ``x_s = P x + p``,
    ``W = P^-1 W_s P`` and ``w = P^-1 (W_s p + w_s - p)``."""
    import spglib

    table = spglib.get_symmetry_from_database(int(ds.hall_number))
    p_inv = _rational(np.linalg.inv(np.asarray(ds.transformation_matrix, dtype=np.float64)))
    p_mat = np.linalg.inv(p_inv)
    shift = np.asarray(ds.origin_shift, dtype=np.float64)
    rotations, translations = [], []
    for w_s, t_s in zip(table["rotations"], table["translations"]):
        rot = p_inv @ w_s @ p_mat
        if np.abs(rot - np.round(rot)).max() > 1e-6:
            raise XtalgenError(f"{formula}: the symmetry operations do not preserve this cell "
                               "(a supercell?); use its primitive or conventional cell (primitive=True)")
        rot = np.round(rot)
        trans = p_inv @ (w_s @ shift + t_s - shift)
        trans = trans - np.floor(trans)
        if any(np.array_equal(rot, r) and np.abs(_min_image(trans - t)).max() < 1e-6
               for r, t in zip(rotations, translations)):
            continue  # the same operation up to a lattice translation of this cell
        rotations.append(rot)
        translations.append(trans)
    return np.array(rotations), np.array(translations)


def _niggli(crystal: Crystal) -> Crystal:
    """The crystal on its Niggli-reduced cell (spglib), atoms in the same order."""
    import spglib

    reduced = spglib.niggli_reduce(crystal.lattice)
    if reduced is None:
        return crystal
    reduced = np.asarray(reduced, dtype=np.float64)
    frac = crystal.cart_coords @ np.linalg.inv(reduced)
    return crystal.replace(lattice=reduced, frac_coords=frac - np.floor(frac))
