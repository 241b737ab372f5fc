"""Round trip of the CIF text form (issue 14): crystal -> symmetrised CIF text -> tokens -> text
-> crystal, matched to the original with the CSP StructureMatcher (stol 0.5, angle_tol 10,
ltol 0.3), on whole bundled splits; with the text lengths in tokens.

    python benchmarks/bench_cif_roundtrip.py --splits perov5:test mp20:offline_test carbon24:test \\
        --out benchmarks/results/cif_roundtrip.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections import Counter
from pathlib import Path

import numpy as np

from xtalgen.data import load_dataset
from xtalgen.matching import get_matcher
from xtalgen.parallel import parallel_map
from xtalgen.representations import cif_text as T

_TOKENIZER: T.CifTokenizer | None = None


def round_trip(crystal) -> tuple[str, int]:
    """('ok' or the failure, tokens) of one crystal."""
    global _TOKENIZER
    if _TOKENIZER is None:
        _TOKENIZER = T.CifTokenizer()
    try:
        text = T.crystal_to_cif_text(crystal)
        ids = _TOKENIZER.encode(text)
        back = T.record_to_crystal(T.parse_cif_text(_TOKENIZER.decode(ids)))
    except Exception as exc:  # report, do not stop
        return f"error: {type(exc).__name__}", 0
    ok = get_matcher("csp").fit(crystal.to_pymatgen(), back.to_pymatgen())
    return ("ok" if ok else "no match"), len(ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--splits", nargs="+", default=["perov5:test", "mp20:offline_test",
                                                        "carbon24:test"])
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/cif_roundtrip.json"))
    args = parser.parse_args()
    results = {"machine": platform.node(), "date": time.strftime("%Y-%m-%d"), "splits": {}}
    for spec in args.splits:
        name, split = spec.split(":")
        data = list(load_dataset(name, split, progress=False))
        start = time.perf_counter()
        out = parallel_map(round_trip, data, n_jobs=args.jobs, desc=spec, chunksize=32)
        outcomes = Counter(o for o, _ in out)
        lengths = np.array([n for _, n in out if n])
        results["splits"][spec] = {
            "n": len(data), "matched": outcomes["ok"], "rate": outcomes["ok"] / len(data),
            "outcomes": dict(outcomes), "tokens_mean": float(lengths.mean()),
            "tokens_p99": float(np.percentile(lengths, 99)), "tokens_max": int(lengths.max()),
            "seconds": round(time.perf_counter() - start, 1),
        }
        print(spec, json.dumps(results["splits"][spec]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
