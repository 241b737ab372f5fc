"""Structure from a powder pattern: generate CSP candidates, relax, simulate, rank by similarity.

For a composition and a measured :class:`~xtalgen.diffraction.Pattern`:

1. **generate** ``n`` candidates with each chosen generator (:func:`generate_candidates`):
   ``"substitution"``, ``"random-search"``, ``"evolution"`` (unrelaxed here; see 2), a shipped
   checkpoint or checkpoint file (``"mp20-csp-flow"``, ``"mp20-csp-wyckoff"``, ...), or
   ``"templated"`` / ``"templated:CHECKPOINT"``: the templated flow
   (:class:`~xtalgen.pipelines.templated_csp.TemplatedCSP`, MP-20 templates refined by
   ``mp20-csp-flow`` unless another CSP checkpoint is named). A generator that fails is
   reported in one line and skipped; only when all fail is it an error. The composition is
   one cell for the learned models (``Na4Cl4`` asks for 8 sites); given as more than the
   reduced formula, it also tells the search methods the formula units per cell;
2. optionally **relax** them (CHGNet by default, at most ``relax_steps`` FIRE steps; a failed
   relaxation keeps the unrelaxed candidate);
3. **score** each against the pattern (:func:`xtalgen.diffraction.score_crystal`: pymatgen
   sticks, pseudo-Voigt broadening, weighted cross-correlation at the best isotropic cell
   scaling) and **rank**, best first; the top ``top`` are distinct structures (pymatgen
   ``StructureMatcher``, the ``ordered`` preset);
4. :func:`write_results`: the top candidates as CIFs, one PNG each (measured vs simulated),
   ``ranking.csv`` and ``ranking.json`` (every candidate with its score).
"""

from __future__ import annotations

import csv
import json
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xtalgen.crystal import Crystal
from xtalgen.diffraction import (
    MatchSettings,
    Pattern,
    Sticks,
    fitted_pattern,
    prepare_reference,
    score_crystal,
)
from xtalgen.errors import XtalgenError

__all__ = [
    "DEFAULT_GENERATORS",
    "RankedCandidate",
    "XRDMatchConfig",
    "XRDMatchResult",
    "build_generator",
    "distinct_top",
    "generate_candidates",
    "rank_candidates",
    "write_results",
    "xrd_match",
]

DEFAULT_GENERATORS: tuple[str, ...] = ("substitution", "templated")
"""Prototype substitution (fast, strong where a known prototype fits) and the templated flow
(the same templates refined by ``mp20-csp-flow``, template-free where none fits)."""

SEARCH_GENERATORS = ("substitution", "random-search", "evolution")
TEMPLATED = "templated"
TEMPLATED_CHECKPOINT = "mp20-csp-flow"


@dataclass
class XRDMatchConfig:
    """Settings of :func:`xrd_match`.

    Attributes:
        generators: generator names (see the module docstring).
        n: candidates asked of each generator.
        relax: relax the candidates before scoring.
        relax_steps: FIRE step cap of each relaxation.
        fmax: force criterion of the relaxation, eV/angstrom.
        potential: potential name (see :func:`xtalgen.relax.get_potential`).
        top: distinct candidates kept (written as CIFs and plots).
        seed: seed of every generator.
        flow_steps: integration steps of the iterative models (None: the checkpoint's).
        match: how candidates are scored (peak width, WCC width, ...).
        progress: show progress bars.
    """

    generators: Sequence[str] = DEFAULT_GENERATORS
    n: int = 20
    relax: bool = True
    relax_steps: int = 100
    fmax: float = 0.1
    potential: str = "chgnet"
    top: int = 5
    seed: int = 0
    flow_steps: int | None = None
    match: MatchSettings = field(default_factory=MatchSettings)
    progress: bool = True


@dataclass
class RankedCandidate:
    """One scored candidate: ``score`` (WCC, 1 = identical), ``scale`` (factor on its
    d-spacings at the best fit), ``spacegroup`` (symbol, spglib symprec 0.1)."""

    rank: int
    crystal: Crystal
    score: float
    scale: float
    generator: str
    sticks: Sticks
    spacegroup: str = ""

    @property
    def formula(self) -> str:
        return self.crystal.formula


@dataclass
class XRDMatchResult:
    """``ranked``: every candidate, best first; ``top``: the distinct best; ``failures``: one
    line per generator that failed; ``n_generated`` per generator; ``timings`` in seconds."""

    ranked: list[RankedCandidate]
    top: list[RankedCandidate]
    failures: list[str]
    n_generated: dict[str, int]
    timings: dict[str, float]


def build_generator(name: str, *, composition_z: int | None = None,
                    flow_steps: int | None = None, potential: str = "chgnet") -> Any:
    """The generator called ``name`` (see the module docstring), set up for
    :func:`generate_candidates`: search methods unrelaxed, ``composition_z`` formula units."""
    from xtalgen.models.registry import load_generator

    if name in SEARCH_GENERATORS:
        options: dict[str, Any] = {"relax": False, "energies": name == "evolution",
                                   "potential": potential, "progress": False}
        if composition_z is not None:
            options["formula_units"] = (composition_z,)
        return load_generator(name, **options)
    if name == TEMPLATED or name.startswith(TEMPLATED + ":"):
        from xtalgen.checkpoints import shipped_checkpoints
        from xtalgen.models.learned import load_model
        from xtalgen.pipelines.templated_csp import TemplatedCSP

        checkpoint = name.partition(":")[2] or TEMPLATED_CHECKPOINT
        path = shipped_checkpoints().get(checkpoint, Path(checkpoint))
        if not Path(path).exists():
            raise XtalgenError(f"no checkpoint named {checkpoint!r} for {TEMPLATED}")
        return TemplatedCSP(load_model(path, n_steps=flow_steps), relax_steps=0)
    return load_generator(name, n_steps=flow_steps)


def _formula_units(composition: str) -> int | None:
    """Formula units per cell when ``composition`` is more than its reduced formula."""
    from pymatgen.core import Composition

    try:
        comp = Composition(composition)
        z = round(comp.num_atoms / comp.reduced_composition.num_atoms)
    except Exception:
        return None
    return z if z > 1 else None


def generate_candidates(composition: str, generators: Sequence[str], n: int, *, seed: int = 0,
                        flow_steps: int | None = None, potential: str = "chgnet",
                        progress: bool = True) -> tuple[list[Crystal], list[str]]:
    """``n`` candidates of ``composition`` from each generator, each tagged with
    ``properties["xrd_generator"]``, and one line per generator that failed."""
    from tqdm.auto import tqdm

    if n < 1:
        raise XtalgenError(f"n must be at least 1, got {n}")
    if not generators:
        raise XtalgenError("name at least one generator")
    z = _formula_units(composition)
    crystals: list[Crystal] = []
    failures: list[str] = []
    for name in tqdm(list(generators), desc="generate", unit="generator", disable=not progress):
        try:
            generator = build_generator(name, composition_z=z, flow_steps=flow_steps,
                                         potential=potential)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                made = generator.generate(n, composition=composition, seed=seed)
        except Exception as exc:
            message = " ".join(str(exc).split()) or type(exc).__name__
            failures.append(f"{name}: {message}")
            continue
        if not made:
            failures.append(f"{name}: returned no candidates")
        crystals += [c.with_properties(xrd_generator=name) for c in made]
    if not crystals:
        raise XtalgenError(f"no candidates for {composition}: " + "; ".join(failures))
    return crystals, failures


def _spacegroup(crystal: Crystal) -> str:
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        analyzer = SpacegroupAnalyzer(crystal.to_pymatgen(), symprec=0.1)
        return f"{analyzer.get_space_group_symbol()} ({analyzer.get_space_group_number()})"
    except Exception:
        return "?"


def rank_candidates(pattern: Pattern, crystals: Sequence[Crystal],
                    settings: MatchSettings | None = None, *,
                    progress: bool = True) -> list[RankedCandidate]:
    """Every crystal scored against ``pattern``, best first (ties keep the input order)."""
    from tqdm.auto import tqdm

    reference = prepare_reference(pattern, settings)
    scored = []
    for i, crystal in enumerate(tqdm(crystals, desc="score", unit="candidate",
                                     disable=not progress)):
        try:
            fit, sticks = score_crystal(reference, crystal)
        except Exception:  # a degenerate candidate pymatgen cannot simulate scores 0
            fit, sticks = None, None
        scored.append((fit.score if fit else 0.0, i, fit, sticks))
    scored.sort(key=lambda item: (-item[0], item[1]))
    ranked = []
    for rank, (score, i, fit, sticks) in enumerate(scored, start=1):
        crystal = crystals[i]
        if sticks is None:
            sticks = Sticks(crystal.lattice[:0, 0], crystal.lattice[:0, 0], reference.wavelength)
        ranked.append(RankedCandidate(
            rank=rank, crystal=crystal, score=score, scale=fit.scale if fit else 1.0,
            generator=str(crystal.properties.get("xrd_generator",
                                                 crystal.properties.get("generator", ""))),
            sticks=sticks,
        ))
    return ranked


def distinct_top(ranked: Sequence[RankedCandidate], k: int) -> list[RankedCandidate]:
    """The first ``k`` candidates of ``ranked`` that match no better one (``ordered``
    StructureMatcher preset), with their space groups filled in."""
    from xtalgen.matching import get_matcher

    matcher = get_matcher("ordered")
    kept: list[RankedCandidate] = []
    structures: list[Any] = []
    for candidate in ranked:
        if len(kept) >= k:
            break
        structure = candidate.crystal.to_pymatgen()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if any(other.composition.reduced_formula == structure.composition.reduced_formula
                   and matcher.fit(other, structure) for other in structures):
                continue
        candidate.spacegroup = candidate.spacegroup or _spacegroup(candidate.crystal)
        kept.append(candidate)
        structures.append(structure)
    return kept


def xrd_match(pattern: Pattern, composition: str,
              config: XRDMatchConfig | None = None) -> XRDMatchResult:
    """Candidates of ``composition`` ranked by their similarity to ``pattern`` (see the module
    docstring)."""
    config = config or XRDMatchConfig()
    timings: dict[str, float] = {}
    start = time.perf_counter()
    crystals, failures = generate_candidates(
        composition, config.generators, config.n, seed=config.seed, flow_steps=config.flow_steps,
        potential=config.potential, progress=config.progress)
    timings["generate_s"] = time.perf_counter() - start
    n_generated: dict[str, int] = {}
    for crystal in crystals:
        name = str(crystal.properties["xrd_generator"])
        n_generated[name] = n_generated.get(name, 0) + 1
    if config.relax and config.relax_steps > 0:
        from xtalgen.pipelines.templated_csp import relax_samples

        start = time.perf_counter()
        crystals = relax_samples(crystals, max_steps=config.relax_steps, fmax=config.fmax,
                                 potential=config.potential, progress=config.progress)
        timings["relax_s"] = time.perf_counter() - start
    start = time.perf_counter()
    ranked = rank_candidates(pattern, crystals, config.match, progress=config.progress)
    timings["score_s"] = time.perf_counter() - start
    start = time.perf_counter()
    top = distinct_top(ranked, config.top)
    timings["dedupe_s"] = time.perf_counter() - start
    return XRDMatchResult(ranked, top, failures, n_generated, timings)


def _stem(candidate: RankedCandidate, position: int) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in candidate.generator)
    return f"rank{position:02d}_{candidate.formula}_{safe or 'candidate'}"


def plot_candidate(pattern: Pattern, candidate: RankedCandidate, path: str | Path,
                   settings: MatchSettings | None = None, *, title: str = "") -> Path:
    """PNG of the measured pattern (background removed, strongest 100) over the candidate's
    simulated one at its best cell scaling, with its reflections as ticks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from xtalgen.diffraction.simulate import scaled_two_theta

    reference = prepare_reference(pattern, settings)
    power = reference.settings.power
    measured = reference.profile ** (1.0 / power) * 100.0 if power > 0 else reference.profile
    simulated = fitted_pattern(reference, candidate.sticks, candidate.scale)
    positions = scaled_two_theta(candidate.sticks, candidate.scale)[0]
    lo, hi = reference.range
    inside = np.isfinite(positions) & (positions >= lo) & (positions <= hi)
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(reference.grid, measured, color="black", lw=0.9, label="measured")
    ax.plot(simulated.two_theta, simulated.intensity, color="tab:red", lw=0.9, alpha=0.8,
            label=f"simulated (cell x{candidate.scale:.3f})")
    ax.vlines(positions[inside], -12, -4, color="tab:red", lw=0.8)
    ax.set_xlim(lo, hi)
    ax.set_ylim(-15, 110)
    ax.set_xlabel("2θ (degrees)")
    ax.set_ylabel("intensity (strongest = 100)")
    ax.set_title(title or f"{candidate.formula} {candidate.spacegroup}: WCC {candidate.score:.3f}")
    ax.legend(loc="upper right", frameon=False)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_results(result: XRDMatchResult, pattern: Pattern, out: str | Path,
                  settings: MatchSettings | None = None) -> dict[str, list[Path]]:
    """The top candidates as ``rankNN_<formula>_<generator>.cif`` with a PNG each, and the
    whole ranking as ``ranking.csv`` / ``ranking.json``, in folder ``out``."""
    from xtalgen import io as xio

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[Path]] = {"cif": [], "png": [], "ranking": []}
    files: dict[int, str] = {}
    for position, candidate in enumerate(result.top, start=1):
        stem = _stem(candidate, position)
        crystal = candidate.crystal.with_properties(
            xrd_rank=position, xrd_score=round(candidate.score, 6),
            xrd_cell_scale=round(candidate.scale, 6))
        written["cif"] += xio.write(crystal, out / f"{stem}.cif")
        title = (f"#{position} {candidate.formula} {candidate.spacegroup} "
                 f"[{candidate.generator}]: WCC {candidate.score:.3f}")
        written["png"].append(plot_candidate(pattern, candidate, out / f"{stem}.png", settings,
                                             title=title))
        files[id(candidate)] = stem
    positions = {id(candidate): position for position, candidate in enumerate(result.top, 1)}
    rows = []
    for candidate in result.ranked:
        energy = candidate.crystal.properties.get("energy_per_atom")
        rows.append({
            "rank": candidate.rank,
            "top": positions.get(id(candidate), ""),
            "score": round(candidate.score, 6),
            "cell_scale": round(candidate.scale, 6),
            "formula": candidate.formula,
            "n_sites": candidate.crystal.num_sites,
            "spacegroup": candidate.spacegroup,
            "generator": candidate.generator,
            "energy_per_atom": energy if isinstance(energy, float) and math.isfinite(energy) else "",
            "file": f"{files[id(candidate)]}.cif" if id(candidate) in files else "",
        })
    csv_path = out / "ranking.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["rank"])
        writer.writeheader()
        writer.writerows(rows)
    json_path = out / "ranking.json"
    json_path.write_text(json.dumps({
        "pattern": pattern.source, "wavelength_angstrom": pattern.wavelength,
        "failures": result.failures, "n_generated": result.n_generated,
        "timings_s": {k: round(v, 3) for k, v in result.timings.items()},
        "candidates": rows,
    }, indent=1, default=str))
    written["ranking"] = [csv_path, json_path]
    return written
