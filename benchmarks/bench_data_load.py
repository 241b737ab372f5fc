"""Dataset load times: first load (CIF parsing, in parallel) and cached load (npz + parquet).

Runs every load against a fresh temporary cache (``$XTALGEN_CACHE``), so the first load really
parses. Measured on the largest bundled splits (MP-20 offline_train, 9,140 source rows -> 8,094
crystals; MP-20 biternary_test, 7,118 rows) and on an MP-20-sized stand-in: 27,136 rows drawn
(seeded, with replacement) from the bundled MP-20 files, since the full train split is not
bundled. The in-process memo of file hashes is cleared before each cached load.

    .venv/bin/python benchmarks/bench_data_load.py [--no-standin]
"""

from __future__ import annotations

import argparse
import datetime
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

MP20_TRAIN_ROWS = 27136


def _clear_memos() -> None:
    from xtalgen.data import cache, load

    cache._sha256_cached.cache_clear()
    load._material_ids.cache_clear()


def _time_load(name: str, split: str | None) -> tuple[float, float, float, int, int]:
    """(first load s, cached load s, build every Crystal s, crystals, parsed source rows),
    in a fresh cache."""
    from xtalgen.data import load_dataset
    from xtalgen.data.load import count_rows

    with tempfile.TemporaryDirectory(prefix="xtalgen-bench-") as root:
        os.environ["XTALGEN_CACHE"] = root
        _clear_memos()
        start = time.perf_counter()
        first = load_dataset(name, split, progress=True)
        t_first = time.perf_counter() - start
        _clear_memos()
        start = time.perf_counter()
        second = load_dataset(name, split, progress=False)
        t_cached = time.perf_counter() - start
        start = time.perf_counter()
        crystals = second.to_list()
        t_build = time.perf_counter() - start
        assert len(crystals) == len(first)
        parsed = sum(count_rows(Path(f)) for f in first.source_files)
        return t_first, t_cached, t_build, len(first), parsed


def _standin_csv(folder: Path) -> Path:
    from xtalgen.data.load import read_table
    from xtalgen.data.registry import BUNDLED_DIR

    parts = [
        read_table(BUNDLED_DIR / f"mp_20/{p}.csv.gz")
        for p in ("pilot/train", "pilot/val", "pilot/test", "biternary/val", "biternary/test")
    ]
    pool = pd.concat(parts, ignore_index=True)
    sample = pool.sample(n=MP20_TRAIN_ROWS, replace=True, random_state=0).reset_index(drop=True)
    path = folder / "mp20_train_standin.csv"
    sample.to_csv(path)  # plain CSV, as the downloaded canonical file is
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-standin", action="store_true", help="skip the 27,136-row stand-in")
    args = parser.parse_args()

    rows = []
    for name, split, label in (
        ("mp20", "offline_train", "MP-20 offline_train (9,140 source rows)"),
        ("mp20", "biternary_test", "MP-20 biternary_test"),
    ):
        rows.append((label, *_time_load(name, split)))
    if not args.no_standin:
        with tempfile.TemporaryDirectory(prefix="xtalgen-standin-") as folder:
            path = _standin_csv(Path(folder))
            label = "MP-20-sized stand-in (27,136 rows drawn from bundled MP-20)"
            rows.append((label, *_time_load(str(path), None)))

    print(f"\n{datetime.date.today()}, {os.cpu_count()} CPUs")
    print(
        "| data | CIFs parsed | crystals | first load (s) | cached load (s) | "
        "build every Crystal (s) | first load per 1,000 CIFs (s) | "
        "first load extrapolated to 27,136 CIFs (s) | cached load extrapolated (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for label, t_first, t_cached, t_build, n, parsed in rows:
        per_k = 1000 * t_first / parsed
        scale = MP20_TRAIN_ROWS / n
        print(
            f"| {label} | {parsed:,} | {n:,} | {t_first:.1f} | {t_cached:.3f} | {t_build:.2f} | "
            f"{per_k:.2f} | {per_k * MP20_TRAIN_ROWS / 1000:.0f} | {t_cached * scale:.2f} |"
        )


if __name__ == "__main__":
    main()
