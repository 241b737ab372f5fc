"""Property predictors (issue 17): ship a trained run and measure the shipped predictors.

Ship (after ``xtalgen train --model predictor ...``, commands in
:mod:`xtalgen.properties.predictor`): record the training elements in the config when the run
predates that field, keep the EMA weights in fp32 and copy to ``src/xtalgen/checkpoints/predictors``::

    .venv/bin/python benchmarks/bench_predictors.py --ship runs/pred-eform mp20-formation-energy

Measure (MAE in the property's units on MP-20 ``pilot_test``, the first 1,000 rows of the
standard test split; for the PU synthesisability model its ROC-AUC and recall on its held-out
part are those recorded at training)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_predictors.py \\
        --out benchmarks/results/predictors

Writes ``results.json`` and ``results.md`` (one row per shipped predictor). Published
predictors on their own MP splits (not the same test crystals): CGCNN about 0.039 eV/atom
(formation energy) and 0.39 eV (band gap); MEGNet about 0.028 eV/atom.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

PUBLISHED = {
    "formation_energy": "CGCNN 0.039, MEGNet 0.028 eV/atom (their own MP splits)",
    "band_gap": "CGCNN 0.388 eV (its own MP split)",
    "synthesizability": "Jang et al. (PU bagging, CGCNN): true-positive rate 87.4% on MP's "
                        "experimentally reported test set",
}


def ship(run: Path, name: str) -> Path:
    """``run/best.pt`` -> ``src/xtalgen/checkpoints/predictors/NAME.pt`` (elements recorded, fp32)."""
    from xtalgen.checkpoints import PREDICTOR_DIR
    from xtalgen.data import load_dataset
    from xtalgen.models.checkpoint import read_checkpoint, write_checkpoint
    from xtalgen.models.learned import slim_checkpoint

    best = run / "best.pt"
    payload = read_checkpoint(best)
    config = dict(payload["model_config"])
    if not config.get("elements"):
        provenance = payload.get("provenance") or {}
        train = load_dataset(provenance.get("dataset", "mp20"),
                             provenance.get("split", "offline_train"))
        config["elements"] = sorted({int(z) for c in train for z in c.species})
        fields = {k: v for k, v in payload.items() if k not in ("format", "version", "model_config")}
        write_checkpoint(best, model_config=config, **fields)
    return slim_checkpoint(best, PREDICTOR_DIR / f"{name}.pt")


def composition_baseline(train: list, test: list, column: str, alpha: float = 1e-3) -> dict:
    """The simple baselines beside a predictor: the training mean, and ridge regression on the
    element fractions (a composition-only model; ``alpha`` the ridge weight), fitted on the
    predictor's training split; MAE on the test crystals (property units)."""
    from xtalgen.crystal import MAX_Z

    def features(crystals: list) -> np.ndarray:
        x = np.zeros((len(crystals), MAX_Z + 1))
        for i, c in enumerate(crystals):
            z, counts = np.unique(c.species, return_counts=True)
            x[i, z - 1] = counts / counts.sum()
        x[:, -1] = 1.0  # intercept
        return x

    def labels(crystals: list) -> np.ndarray:
        return np.array([float(c.properties.get(column, np.nan)) for c in crystals])

    y_train, y_test = labels(train), labels(test)
    ok_train, ok_test = np.isfinite(y_train), np.isfinite(y_test)
    x_train = features([c for c, ok in zip(train, ok_train) if ok])
    x_test = features([c for c, ok in zip(test, ok_test) if ok])
    w = np.linalg.solve(x_train.T @ x_train + alpha * len(x_train) * np.eye(x_train.shape[1]),
                        x_train.T @ y_train[ok_train])
    return {"mean_mae": float(np.abs(y_train[ok_train].mean() - y_test[ok_test]).mean()),
            "ridge_composition_mae": float(np.abs(x_test @ w - y_test[ok_test]).mean())}


def pu_heldout(predictor) -> tuple[dict, dict]:
    """The PU predictor and the PU-bagging baseline on the predictor's own held-out crystals
    (rebuilt from its provenance: the same sources, cap and seeded holdout): ROC-AUC of labelled
    positives against unlabelled crystals, and the recall of labelled positives at 0.5."""
    from xtalgen.data import load_dataset
    from xtalgen.properties.pu import element_fractions, predictor_crystals, pu_bagging_scores
    from xtalgen.properties.trained import predictor_metrics, roc_auc

    prov = predictor.provenance
    train, held = predictor_crystals(
        load_dataset(prov["dataset"], prov["split"]), None, unlabelled=prov.get("unlabelled") or "",
        holdout=prov.get("holdout") or 0.0, max_atoms=prov.get("max_atoms") or 0,
        seed=prov.get("seed", 0))
    config = predictor.config
    start = time.perf_counter()
    metrics = {"split": f"held-out {prov.get('holdout')} ({len(held)} crystals)",
               **predictor_metrics(predictor, held)}
    metrics["seconds_per_1k"] = (time.perf_counter() - start) / len(held) * 1000
    y_train = np.array([config.label(c) for c in train]) > 0.5
    y_held = np.array([config.label(c) for c in held]) > 0.5
    scores = pu_bagging_scores(element_fractions(train), y_train, element_fractions(held),
                               n_bags=50, seed=0)
    baseline = {"pu_bagging_composition_auc": roc_auc(scores, y_held),
                "pu_bagging_composition_recall_at_0.5": float((scores[y_held] >= 0.5).mean())}
    return metrics, baseline


def measure(out: Path, dataset: str, split: str) -> dict:
    from xtalgen.checkpoints import PREDICTOR_DIR
    from xtalgen.data import load_dataset
    from xtalgen.properties.predictor import PROPERTIES
    from xtalgen.properties.trained import load_predictor, predictor_metrics

    test = list(load_dataset(dataset, split))
    rows = []
    for spec in PROPERTIES.values():
        path = PREDICTOR_DIR / f"{spec.shipped}.pt"
        if not path.is_file():
            print(f"{spec.shipped}: not shipped, skipped")
            continue
        predictor = load_predictor(path)
        row = {"predictor": spec.shipped, "property": spec.name, "units": spec.units,
               "params": sum(p.numel() for p in predictor.model.parameters()),
               "validation": predictor.metrics, "published": PUBLISHED.get(spec.name, "")}
        if spec.task == "regression":
            start = time.perf_counter()
            metrics = predictor_metrics(predictor, test)
            row["seconds_per_1k"] = (time.perf_counter() - start) / len(test) * 1000
            row["test"] = {"split": f"{dataset}:{split}", **metrics}
            provenance = predictor.provenance
            train = list(load_dataset(provenance.get("dataset", dataset),
                                      provenance.get("split", "offline_train")))
            row["baselines"] = composition_baseline(train, test, predictor.config.target)
        else:
            row["test"], row["baselines"] = pu_heldout(predictor)
        rows.append(row)
        print(json.dumps(row, default=float))
    result = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
              "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores, one torch thread",
              "rows": rows}
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2, default=float))
    lines = ["| predictor | params | test MAE (" + f"{dataset} {split}" + ") | baselines: training "
             "mean / ridge on element fractions | validation | published |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        test_mae = row.get("test", {}).get("mae")
        mae = f"{test_mae:.4f} {row['units']}" if test_mae is not None else "-"
        val = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in row["validation"].items() if k not in ("step",))
        base = row.get("baselines")
        if test_mae is None and "roc_auc_pu" in row.get("test", {}):
            mae = (f"PU AUC {row['test']['roc_auc_pu']:.3f}, recall@0.5 "
                   f"{row['test']['recall_at_0.5']:.3f} ({row['test']['split']})")
            base_text = (f"PU bagging on element fractions: AUC "
                         f"{base['pu_bagging_composition_auc']:.3f}, recall@0.5 "
                         f"{base['pu_bagging_composition_recall_at_0.5']:.3f}")
        else:
            base_text = (f"{base['mean_mae']:.4f} / {base['ridge_composition_mae']:.4f}"
                         if base else "-")
        lines.append(f"| {row['predictor']} | {row['params'] / 1e6:.2f} M | {mae} | {base_text} | "
                     f"{val} | {row['published']} |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[1:]))
    p.add_argument("--ship", nargs=2, metavar=("RUN", "NAME"), help="ship RUN/best.pt as NAME")
    p.add_argument("--dataset", default="mp20")
    p.add_argument("--split", default="pilot_test")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/predictors"))
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    if args.ship:
        print(f"shipped {ship(Path(args.ship[0]), args.ship[1])}")
        return
    np.seterr(all="ignore")
    measure(args.out, args.dataset, args.split)


if __name__ == "__main__":
    main()
