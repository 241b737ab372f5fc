"""Does ranking CSP candidates by CHGNet energy pick better top-k? (a negative result so far)

    .venv/bin/python benchmarks/gpu/rank_energy.py runs/gpu2/samples_extra.npz mp20_tpl200_k100 \
        --targets mp20_tpl200 --cache runs/gpu2/energies_k100.npy

Takes the many candidates per target that ``lease.py extra`` drew (one per retrieved template,
refined by the flow), scores every candidate once against its target (``evaluate_csp`` with k =
all candidates: the oracle), computes CHGNet 0.3.0 single-point energies per atom (no
relaxation; cached), and reports match rate @1 / @20 for several ways of choosing the 20
predictions: retrieval order, lowest energy, the first retrieved template then lowest energy.
Invalid candidates rank last. Uses the same validity gates as ``evaluate_csp``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import warnings
from pathlib import Path

import numpy as np


def chgnet_energies(crystals, batch: int = 100) -> np.ndarray:
    """Energy per atom (eV/atom) of each crystal, NaN where CHGNet fails."""
    from chgnet.model import CHGNet

    model = CHGNet.load(model_name="0.3.0", verbose=False)
    out = np.full(len(crystals), np.nan)
    start = time.perf_counter()
    for i in range(0, len(crystals), batch):
        chunk = crystals[i : i + batch]
        try:
            preds = model.predict_structure([c.to_pymatgen() for c in chunk], task="e", batch_size=batch)
            out[i : i + batch] = [float(p["e"]) for p in preds]
        except Exception:  # one bad structure: fall back to one at a time
            for j, crystal in enumerate(chunk):
                with contextlib.suppress(Exception):
                    out[i + j] = float(model.predict_structure(crystal.to_pymatgen(), task="e")["e"])
        print(f"chgnet {i + len(chunk)} / {len(crystals)}: {time.perf_counter() - start:.0f} s", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("samples")
    parser.add_argument("key")
    parser.add_argument("--pack", default="runs/gpu_pack")
    parser.add_argument("--targets", default="mp20_tpl200")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--cache", default=None, help="energies (.npy): read if present, else written")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    sys.path.insert(0, str(Path(__file__).parent))
    from evaluate import load_samples, load_targets

    from xtalgen.metrics.csp import CSPConfig, evaluate_csp

    targets = load_targets(args.pack, args.targets)
    cands = load_samples(args.samples, args.key, targets)
    if args.cache and Path(args.cache).exists():
        energies = np.load(args.cache)
    else:
        energies = chgnet_energies(cands)
        if args.cache:
            np.save(args.cache, energies)
    n_max = max(c.properties["sample_index"] for c in cands) + 1
    evaluation = evaluate_csp(cands, targets, config=CSPConfig(k=n_max, n_jobs=2, progress=False))
    table = evaluation.table.copy()
    table["energy"] = np.where(table["valid"], np.nan_to_num(energies, nan=np.inf), np.inf)
    groups = dict(list(table.groupby("target_material_id")))

    def score(order_of) -> tuple[float, float]:
        m1 = mk = 0
        for group in groups.values():
            chosen = group.loc[order_of(group)[: args.k]]
            mk += bool(chosen["matched"].any())
            m1 += bool(chosen.iloc[0]["matched"] and chosen.iloc[0]["target_valid"])
        return m1 / len(targets), mk / len(targets)

    def retrieval(g):
        return list(g.sort_values("sample_rank").index)

    def energy(g):
        return list(g.sort_values(["energy", "sample_rank"]).index)

    def first_then_energy(g):
        first = retrieval(g)[0]
        return [first] + [i for i in energy(g) if i != first]

    print(f"oracle, best of all {n_max}: @1 {evaluation.metrics[0].value:.3f}, "
          f"@{n_max} {evaluation.metrics[2].value:.3f}")
    for name, rule in [("retrieval order", retrieval), ("lowest energy", energy),
                       ("first retrieved, then lowest energy", first_then_energy)]:
        at1, atk = score(rule)
        print(f"{name:38s} @1 {at1:.3f}  @{args.k} {atk:.3f}")


if __name__ == "__main__":
    main()
