"""A language model over symmetrised CIF text (CrystaLLM style) on the shared transformer core.

The model reads and writes the text of :mod:`xtalgen.representations.cif_text` (pymatgen's
symmetrised CIF at symprec 0.1, compacted as CrystaLLM does), one token at a time, with the
plain next-token loss. It knows nothing of crystallography: the space group, the multiplicities
and the coordinates are text it has learned to write.

Prompts (:func:`xtalgen.representations.cif_text.prompt`):

* DNG: ``data_``; the model writes the formula and everything after it;
* CSP: ``data_<cell formula>\\n``, the cell formula of the conventional cell. For a user
  composition (``LiMnO2``) the number of formula units Z is drawn per sample from the training
  set's Z distribution (given the space group, when one is asked for); for a benchmark target
  (:meth:`CifLMGenerator.sample_csp`) it is the target's own conventional cell, as CrystaLLM's
  benchmark prompts are;
* with a space group: the space-group line follows the formula.

Sampling is batched with a key/value cache (temperature, top-k), through the core's one
sampler; the prompt tokens are forced. A text that does not end within the context, or does not
parse, or names an unknown space group or element, or whose cell is not sensible, is counted by reason in
``CifLMGenerator.last_report`` (with the text) and drawn again up to ``max_rounds`` times; it is
never silently dropped. Every returned crystal carries its text in ``properties["cif_text"]``,
for the CrystaLLM validity checks of :mod:`xtalgen.metrics.cif_validity`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from xtalgen.crystal import Crystal, crystals_sha256
from xtalgen.errors import XtalgenError
from xtalgen.models.learned import LearnedGenerator, composition_species
from xtalgen.nn.transformer import TransformerConfig, TransformerCore, sample_sequences
from xtalgen.parallel import parallel_map
from xtalgen.representations import cif_text as T

__all__ = ["CifLMConfig", "CifLMGenerator", "CifLanguageModel"]

CHUNK = 16
"""Sequences per padded chunk of a training batch (sorted by length)."""
MAX_CONTEXT = 1024


@dataclass
class CifLMConfig:
    """Everything needed to rebuild a CIF language model; saved inside every checkpoint."""

    family: ClassVar[str] = "cif-lm"
    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    symprec: float = T.SYMPREC
    z_counts: list[list[int]] = field(default_factory=list)
    """Training ``[space group, Z, count]`` triples: the prior of the number of formula units
    in the conventional cell when a user composition leaves it open."""
    max_atoms: int = 0
    """Most atoms in a training cell (conventional)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CifLMConfig:
        data = dict(data)
        return cls(transformer=TransformerConfig(**data.pop("transformer", {})), **data)

    def fit_statistics(self, crystals: Sequence[Crystal]) -> CifLMConfig:
        """Vocabulary, context length, Z prior and atom limit from the training crystals."""
        texts = [t for t in _texts(crystals, self.symprec) if t is not None]
        if not texts:
            raise XtalgenError("no training crystal could be written as symmetrised CIF text")
        tokenizer = T.CifTokenizer()
        lengths = [len(tokenizer.encode(t)) for t in texts]
        self.transformer.vocab_size = tokenizer.vocab_size
        self.transformer.num_slots = 0
        self.transformer.max_len = int(min(MAX_CONTEXT, max(lengths) + 16))
        counts: Counter[tuple[int, int]] = Counter()
        atoms = 0
        for text in texts:
            record = T.parse_cif_text(text)
            counts[(record.spacegroup_number or 0, int(record.values["_cell_formula_units_Z"]))] += 1
            atoms = max(atoms, sum(s.multiplicity for s in record.sites))
        self.z_counts = [[g, z, c] for (g, z), c in sorted(counts.items())]
        self.max_atoms = atoms
        return self


def _text_or_none(task: tuple[Crystal, float]) -> str | None:
    crystal, symprec = task
    try:
        return T.crystal_to_cif_text(crystal, symprec)
    except Exception:  # pymatgen/spglib raise many kinds of errors on odd cells
        return None


_TEXT_CACHE: dict[tuple[str, float], list[str | None]] = {}


def _texts(crystals: Sequence[Crystal], symprec: float) -> list[str | None]:
    """The CIF text of every crystal (None where it cannot be written); the last split's texts
    are kept, so ``fit_statistics`` and ``prepare`` write them once."""
    key = (crystals_sha256(list(crystals)), symprec)
    if key not in _TEXT_CACHE:
        _TEXT_CACHE.clear()
        _TEXT_CACHE[key] = parallel_map(_text_or_none, [(c, symprec) for c in crystals],
                                        desc="writing CIF text", chunksize=64, min_items=256)
    return _TEXT_CACHE[key]


class CifLanguageModel(nn.Module):
    """The transformer core over CIF-text tokens; ``loss(batch)`` for training."""

    def __init__(self, config: CifLMConfig) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = T.CifTokenizer()
        config.transformer.vocab_size = self.tokenizer.vocab_size
        config.transformer.num_slots = 0
        self.core = TransformerCore(config.transformer)

    # -- training -------------------------------------------------------------------------------
    def prepare(self, crystals: Sequence[Crystal]) -> list[list[int]]:
        """Token ids of every crystal that writes and fits the context (others are left out)."""
        out = []
        for text in _texts(crystals, self.config.symprec):
            if text is None:
                continue
            try:
                ids = self.tokenizer.encode(text)
            except T.CifTextError:
                continue
            if len(ids) <= self.config.transformer.max_len:
                out.append(ids)
        return out

    def collate(self, examples: Sequence[list[int]],
                device: torch.device | str = "cpu") -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Examples sorted by length and cut into padded chunks of ``CHUNK`` sequences: (inputs,
        next-token targets, pad where there is none)."""
        ordered = sorted(examples, key=len)
        chunks = []
        for i in range(0, len(ordered), CHUNK):
            part = ordered[i: i + CHUNK]
            length = max(len(ids) for ids in part) - 1
            tokens = torch.full((len(part), length), self.tokenizer.pad, dtype=torch.long)
            targets = torch.full_like(tokens, self.tokenizer.pad)
            for row, ids in enumerate(part):
                tokens[row, : len(ids) - 1] = torch.tensor(ids[:-1])
                targets[row, : len(ids) - 1] = torch.tensor(ids[1:])
            chunks.append((tokens.to(device), targets.to(device)))
        return chunks

    def loss(self, batch: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Mean next-token cross-entropy (nats per token) over the non-padding positions."""
        nll = []
        for tokens, targets in batch:
            valid = targets != self.tokenizer.pad
            logits = self.core.head(self.core.features(tokens)[valid])
            nll.append(F.cross_entropy(logits.float(), targets[valid], reduction="none"))
        return {"loss": torch.cat(nll).mean()}

    def forward(self, batch: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
        return self.loss(batch)


class _PromptGrammar:
    """The :class:`~xtalgen.nn.transformer.Grammar` of a batch of prompts: each row's prompt
    tokens are forced, then any token but ``<pad>`` may follow, until ``<eos>``."""

    def __init__(self, prompts: list[list[int]], tokenizer: T.CifTokenizer) -> None:
        self.prompts = prompts
        self.position = [1] * len(prompts)  # the first token is fed by the sampler
        self.finished = [False] * len(prompts)
        self.tokens: list[list[int]] = [list(p[:1]) for p in prompts]
        self.vocab_size = tokenizer.vocab_size
        self.pad, self.eos = tokenizer.pad, tokenizer.eos
        self.free = torch.ones(self.vocab_size, dtype=torch.bool)
        self.free[self.pad] = False

    @property
    def done(self) -> torch.Tensor:
        return torch.tensor(self.finished)

    def allowed(self) -> torch.Tensor:
        mask = self.free.repeat(len(self.prompts), 1)
        for row, prompt in enumerate(self.prompts):
            if self.position[row] < len(prompt):
                mask[row] = False
                mask[row, prompt[self.position[row]]] = True
        return mask

    def slots(self) -> torch.Tensor:
        return torch.zeros(len(self.prompts), dtype=torch.long)

    def advance(self, tokens: torch.Tensor) -> None:
        for row, token in enumerate(tokens.tolist()):
            if self.finished[row]:
                continue
            self.position[row] += 1
            if token < 0 or token == self.eos:
                self.finished[row] = True
                continue
            self.tokens[row].append(int(token))


class CifLMGenerator(LearnedGenerator):
    """Samples crystals from a :class:`CifLanguageModel` (DNG, CSP, space-group prompts)."""

    family = "cif-lm"
    native_conditions = frozenset({"spacegroup"})
    model_class = CifLanguageModel
    config_class = CifLMConfig
    half_precision_prefixes = ("core.",)

    def __init__(self, model: CifLanguageModel, *, temperature: float = 1.0,
                 top_k: int | None = 10, max_rounds: int = 3, **kwargs: Any) -> None:
        """``temperature`` and ``top_k`` as in CrystaLLM (its defaults: 1.0 and 10).
        ``max_rounds``: a text that does not parse is counted and drawn again, at most this
        many rounds in all."""
        kwargs.pop("n_steps", None)  # an iterative-model option; accepted and ignored here
        super().__init__(model, **kwargs)
        self.temperature = temperature
        self.top_k = top_k
        self.max_rounds = max_rounds
        self.name = "cif-lm"
        self.last_report: dict[str, Any] = {}

    # -- prompts --------------------------------------------------------------------------------
    def _z_prior(self, spacegroup: int | None, atoms_per_unit: int) -> tuple[np.ndarray, np.ndarray]:
        """(Z values, probabilities) for a formula unit of ``atoms_per_unit`` atoms."""
        config = self.model.config
        counts: Counter[int] = Counter()
        for g, z, c in config.z_counts:
            if spacegroup is None or g == spacegroup:
                counts[z] += c
        if not counts:  # a space group unseen in training: the overall prior
            for _, z, c in config.z_counts:
                counts[z] += c
        limit = max(config.max_atoms, atoms_per_unit)
        zs = np.array([z for z in sorted(counts) if z * atoms_per_unit <= limit] or [1])
        weights = np.array([counts.get(int(z), 1) for z in zs], dtype=float)
        return zs, weights / weights.sum()

    def _check_composition(self, composition: str | Mapping[str, float]) -> dict[str, int]:
        from xtalgen.crystal import element_symbol

        species = composition_species(composition)
        return dict(Counter(element_symbol(z) for z in species))

    def generate(
        self,
        n: int,
        *,
        composition: str | Mapping[str, float] | None = None,
        spacegroup: int | None = None,
        condition: Mapping[str, float] | None = None,
        seed: int | None = None,
    ) -> list[Crystal]:
        """``n`` crystals: de novo (``data_``), or of ``composition`` (a formula unit; Z drawn
        from the training prior), optionally with ``spacegroup`` in the prompt. Fewer when some
        texts fail every round (see ``last_report``)."""
        if condition:
            raise XtalgenError(f"{self.name} does not support property conditions")
        if n < 1:
            raise XtalgenError(f"n must be at least 1, got {n}")
        if spacegroup is not None and not 1 <= int(spacegroup) <= 230:
            raise XtalgenError(f"space group must be in 1-230, got {spacegroup}")
        seed = 0 if seed is None else int(seed)
        rng = np.random.default_rng(seed)
        if composition is None:
            if spacegroup is not None:
                raise XtalgenError(f"{self.name}: a space group is prompted after the formula; "
                                   "give --composition with --spacegroup")
            plans = [(T.prompt(), {}) for _ in range(n)]
        else:
            unit = self._check_composition(composition)
            zs, probs = self._z_prior(spacegroup, sum(unit.values()))
            extra: dict[str, Any] = {"composition": composition if isinstance(composition, str)
                                     else dict(composition)}
            if spacegroup is not None:
                extra["spacegroup_requested"] = int(spacegroup)
            plans = []
            for z in rng.choice(zs, size=n, p=probs):
                cell = {el: c * int(z) for el, c in unit.items()}
                plans.append((T.prompt(cell, spacegroup), {**extra, "z": int(z)}))
        return self._sample(plans, seed)

    def sample_csp(self, targets: Sequence[Crystal], k: int = 1, *, seed: int | None = None,
                   spacegroup: bool = False) -> list[Crystal]:
        """``k`` structures per target, prompted with the cell formula of the target's
        conventional cell at symprec 0.1 (CrystaLLM's benchmark prompt) and, with
        ``spacegroup=True``, its space group; tagged with the target's ``material_id`` and
        ``sample_index``."""
        seed = 0 if seed is None else int(seed)
        plans = []
        for i, target in enumerate(targets):
            mid = target.properties.get("material_id", str(i))
            record = T.parse_cif_text(T.crystal_to_cif_text(target, self.model.config.symprec))
            text = T.prompt(record.data_formula,
                            record.spacegroup_symbol if spacegroup else None)
            for j in range(k):
                plans.append((text, {"material_id": mid, "sample_index": j,
                                     "composition": target.formula}))
        return self._sample(plans, seed) if plans else []

    # -- sampling -------------------------------------------------------------------------------
    def _sample(self, plans: list[tuple[str, dict[str, Any]]], seed: int) -> list[Crystal]:
        tokenizer = self.model.tokenizer
        device = next(self.model.parameters()).device
        generator = torch.Generator(device=device).manual_seed(seed)
        prompt_ids = [tokenizer.encode(text, eos=False) for text, _ in plans]
        limit = self.model.config.transformer.max_len
        if max(len(p) for p in prompt_ids) >= limit:
            raise XtalgenError(f"{self.name}: a prompt is longer than the model's context")
        failed_texts: list[dict[str, Any]] = []

        def draw(chunk: list[int]) -> list[tuple[Crystal | None, str]]:
            grammar = _PromptGrammar([prompt_ids[i] for i in chunk], tokenizer)
            first = torch.full((len(chunk),), tokenizer.data, device=device)
            sample_sequences(self.model.core, grammar, first, temperature=self.temperature,
                             top_k=self.top_k, generator=generator, pad_id=tokenizer.pad)
            out: list[tuple[Crystal | None, str]] = []
            for row, i in enumerate(chunk):
                text = tokenizer.decode(grammar.tokens[row])
                crystal, reason = self._decode(text, grammar.finished[row])
                if crystal is None:
                    failed_texts.append({"reason": reason, "text": text, "prompt": plans[i][0],
                                         "index": i, **plans[i][1]})
                    out.append((None, reason))
                    continue
                props = {"generator": self.name, "checkpoint": self.checkpoint, "seed": seed,
                         "index": i, "prompt": plans[i][0], "cif_text": text, **plans[i][1]}
                out.append((crystal.with_properties(**{k: v for k, v in props.items()
                                                       if v is not None}), ""))
            return out

        crystals = self.sample_in_rounds(len(plans), draw)
        self.last_report["failed_texts"] = failed_texts
        return crystals

    @staticmethod
    def _decode(text: str, finished: bool) -> tuple[Crystal | None, str]:
        """The crystal of a generated text, or None and the reason it is not usable: it does not
        end, does not parse, its cell is not sensible (CrystaLLM's ``is_sensible``: lengths
        0.5-1000 angstrom, angles 10-170 degrees; its generation discards these as well) or
        is degenerate (under 1 cubic angstrom per atom, as the Wyckoff generator's rule)."""
        if not finished:
            return None, "no end within the context"
        try:
            record = T.parse_cif_text(text)
            if not T.is_sensible(record):  # CrystaLLM discards these texts too
                return None, "cell not sensible"
            crystal = T.record_to_crystal(record)
        except T.CifTextError as exc:
            return None, exc.reason
        if crystal.volume / crystal.num_sites < 1.0:
            return None, "degenerate cell"
        return crystal.with_properties(spacegroup_declared=record.spacegroup_number), ""
