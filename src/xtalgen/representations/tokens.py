"""Crystal <-> token sequence: the Wyckoff representation over a fixed vocabulary.

A sequence reads (one token each)::

    <bos> SG225 LEN113 LEN113 LEN113 ANG180 ANG180 ANG180  Na WYK_a  Cl WYK_b  <eos>

space group, the six conventional lattice parameters (lengths on a ``length_step`` angstrom grid,
angles on an ``angle_step`` degree grid), then per Wyckoff site: element, Wyckoff letter and its
free coordinates on a ``coord_bins`` grid over [0, 1) (``X0`` .. ``X{coord_bins - 1}``). The
multiplicity and the number of free coordinates follow from space group and letter, so the
sequence parses without separators. Discretisation is the only loss: with the defaults a free
coordinate moves by at most 0.005 (fractional) and a length by 0.025 angstrom.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from xtalgen.crystal import MAX_Z, Crystal, element_symbol
from xtalgen.errors import XtalgenError
from xtalgen.representations import wyckoff as W

__all__ = ["SPECIAL_TOKENS", "TokenizerConfig", "WyckoffTokenizer", "decode", "encode"]

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
_LETTERS = "abcdefghijklmnopqrstuvwxyzA"  # every Wyckoff letter in use (group 47 goes up to 'A')


@dataclass(frozen=True)
class TokenizerConfig:
    """Grid of the discretised continuous values."""

    coord_bins: int = 100
    """Free fractional coordinates: bins over [0, 1), value k / coord_bins."""
    length_step: float = 0.05
    """Lattice lengths: angstrom per bin."""
    max_length: float = 200.0
    """Largest representable lattice length (angstrom); longer ones are an error."""
    angle_step: float = 0.5
    """Lattice angles: degrees per bin, over (0, 180)."""
    max_count: int = 64
    """Atom-count tokens ``N1`` .. ``N{max_count}`` (atoms of one element in a cell), used
    with ``<sep>`` and ``<stop>`` by generation orders that state the composition first
    (:mod:`xtalgen.representations.wyckoff_grammar`)."""


@dataclass
class WyckoffTokenizer:
    """Fixed vocabulary: special tokens, space groups, lattice bins, elements, letters, coords."""

    config: TokenizerConfig = field(default_factory=TokenizerConfig)

    def __post_init__(self) -> None:
        cfg = self.config
        self.num_length_bins = round(cfg.max_length / cfg.length_step) + 1
        self.num_angle_bins = round(180.0 / cfg.angle_step)
        self.vocab: list[str] = [
            *SPECIAL_TOKENS,
            *(f"SG{n}" for n in range(1, 231)),
            *(f"LEN{k}" for k in range(self.num_length_bins)),
            *(f"ANG{k}" for k in range(self.num_angle_bins)),
            *(element_symbol(z) for z in range(1, MAX_Z + 1)),
            *(f"WYK_{c}" for c in _LETTERS),
            *(f"X{k}" for k in range(cfg.coord_bins)),
            *(f"N{k}" for k in range(1, cfg.max_count + 1)),
            "<sep>",
            "<stop>",
        ]
        self.token_to_id = {tok: i for i, tok in enumerate(self.vocab)}
        self._elements = frozenset(element_symbol(z) for z in range(1, MAX_Z + 1))

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def pad_id(self) -> int:
        return self.token_to_id["<pad>"]

    @property
    def bos_id(self) -> int:
        return self.token_to_id["<bos>"]

    @property
    def eos_id(self) -> int:
        return self.token_to_id["<eos>"]

    # -- one value <-> one token ----------------------------------------------------------------
    def length_token(self, length: float) -> str:
        """Token of a lattice length (angstrom), on the ``length_step`` grid."""
        k = round(length / self.config.length_step)
        if not 0 < k < self.num_length_bins:
            raise XtalgenError(f"lattice length {length:.3f} A is outside (0, {self.config.max_length}] A")
        return f"LEN{k}"

    def angle_token(self, angle: float) -> str:
        """Token of a lattice angle (degrees), on the ``angle_step`` grid."""
        return f"ANG{round(angle / self.config.angle_step) % self.num_angle_bins}"

    def coord_token(self, x: float) -> str:
        """Token of a free fractional coordinate in [0, 1)."""
        return f"X{round(x * self.config.coord_bins) % self.config.coord_bins}"

    def token_value(self, token: str) -> float:
        """The value of a ``LEN``, ``ANG``, ``X`` or ``N`` token (angstrom, degrees, fraction,
        count)."""
        cfg = self.config
        for prefix, scale in (("LEN", cfg.length_step), ("ANG", cfg.angle_step),
                              ("X", 1.0 / cfg.coord_bins), ("N", 1.0)):
            if token.startswith(prefix) and token[len(prefix):].isdigit():
                return int(token[len(prefix):]) * scale
        raise XtalgenError(f"token {token!r} carries no value")

    # -- Wyckoff representation <-> tokens -----------------------------------------------------
    def tokenize(self, rep: W.WyckoffRepresentation) -> list[str]:
        """Token strings of a Wyckoff representation."""
        tokens = ["<bos>", f"SG{rep.spacegroup}"]
        tokens.extend(self.length_token(x) for x in rep.lattice_params[:3])
        tokens.extend(self.angle_token(x) for x in rep.lattice_params[3:])
        for site in rep.sites:
            tokens += [site.element, f"WYK_{site.letter}"]
            tokens.extend(self.coord_token(x) for x in site.free_params)
        tokens.append("<eos>")
        return tokens

    def detokenize(self, tokens: Sequence[str]) -> W.WyckoffRepresentation:
        """Wyckoff representation of a token-string sequence (leading <bos>, <eos>/<pad> end it)."""
        cfg = self.config
        toks = [t for t in tokens if t != "<bos>"]
        if "<eos>" in toks:
            toks = toks[: toks.index("<eos>")]
        toks = [t for t in toks if t != "<pad>"]

        def take(prefix: str) -> str:
            """Pop the next token, which must be ``prefix`` + suffix; return the suffix."""
            if not toks or not toks[0].startswith(prefix) or toks[0] in self._elements:
                found = toks[0] if toks else "end of sequence"
                raise XtalgenError(f"token sequence: expected a {prefix}... token, got {found!r}")
            return toks.pop(0)[len(prefix) :]

        spacegroup = int(take("SG"))
        lengths = [int(take("LEN")) * cfg.length_step for _ in range(3)]
        angles = [int(take("ANG")) * cfg.angle_step for _ in range(3)]
        sites = []
        while toks:
            element = toks.pop(0)
            if element not in self._elements:
                raise XtalgenError(f"token sequence: expected an element, got {element!r}")
            letter = take("WYK_")
            num_free = W.num_free_params(spacegroup, letter)
            free = tuple(int(take("X")) / cfg.coord_bins for _ in range(num_free))
            multiplicity = W.wyckoff_multiplicity(spacegroup, letter)
            sites.append(W.WyckoffSite(element, letter, multiplicity, free))
        return W.WyckoffRepresentation(spacegroup, (*lengths, *angles), tuple(sites))  # type: ignore[arg-type]

    # -- ids ------------------------------------------------------------------------------------
    def ids_from_tokens(self, tokens: Sequence[str]) -> list[int]:
        unknown = [t for t in tokens if t not in self.token_to_id]
        if unknown:
            raise XtalgenError(f"tokens not in the vocabulary: {unknown[:5]}")
        return [self.token_to_id[t] for t in tokens]

    def tokens_from_ids(self, ids: Sequence[int]) -> list[str]:
        if any(not 0 <= int(i) < self.vocab_size for i in ids):
            raise XtalgenError(f"token ids must be in 0-{self.vocab_size - 1}")
        return [self.vocab[int(i)] for i in ids]

    def pad(self, sequences: Sequence[Sequence[int]], max_len: int | None = None):
        """(B, L) long tensor of id sequences, right-padded with ``pad_id`` (or truncated)."""
        import torch

        length = max_len if max_len is not None else max(len(s) for s in sequences)
        out = torch.full((len(sequences), length), self.pad_id, dtype=torch.long)
        for row, seq in enumerate(sequences):
            seq = list(seq)[:length]
            out[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        return out

    def encode(self, crystal: Crystal | W.WyckoffRepresentation, symprec: float = 0.1) -> list[int]:
        """Token ids of a crystal (Wyckoff-encoded at ``symprec``) or of a representation."""
        rep = (
            crystal if isinstance(crystal, W.WyckoffRepresentation) else W.encode(crystal, symprec)
        )
        return self.ids_from_tokens(self.tokenize(rep))

    def decode(self, ids: Sequence[int]) -> Crystal:
        """Crystal (conventional cell) of a token-id sequence."""
        return W.decode(self.detokenize(self.tokens_from_ids(ids)))


_DEFAULT: WyckoffTokenizer | None = None


def _default() -> WyckoffTokenizer:
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = WyckoffTokenizer()
    return _DEFAULT


def encode(crystal: Crystal | W.WyckoffRepresentation, symprec: float = 0.1) -> list[int]:
    """Token ids with the default ``TokenizerConfig``."""
    return _default().encode(crystal, symprec)


def decode(ids: Sequence[int]) -> Crystal:
    """Crystal of token ids made with the default ``TokenizerConfig``."""
    return _default().decode(ids)
