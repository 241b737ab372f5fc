"""Wyckoff round trip on MP-20 test data: encode -> decode -> StructureMatcher.

For each structure: ``wyckoff.encode`` at symprec = 0.1 A (no fallback), ``wyckoff.decode``
(conventional cell, and its primitive cell), then pymatgen ``StructureMatcher()`` (default
tolerances) against the original. A structure that fails in both cells is retried at the smaller
tolerances of ``wyckoff.FALLBACK_SYMPRECS`` (exactly what ``encode(..., verify=True)`` does).
Reports the rates at 0.1 (conventional, primitive, either), the rate with fallbacks,
per-structure times, the space-group agreement with the dataset's ``spacegroup.number`` column,
and every failure with its reason.

    .venv/bin/python benchmarks/bench_wyckoff_roundtrip.py                  # both test sets
    .venv/bin/python benchmarks/bench_wyckoff_roundtrip.py --splits pilot_test --limit 200
    .venv/bin/python benchmarks/bench_wyckoff_roundtrip.py --splits pilot_test --tokens
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from dataclasses import asdict, dataclass

from pymatgen.analysis.structure_matcher import StructureMatcher
from tqdm import tqdm

from xtalgen.crystal import Crystal
from xtalgen.data import load_dataset
from xtalgen.representations import wyckoff as W
from xtalgen.representations.tokens import WyckoffTokenizer

TOKENIZER = WyckoffTokenizer()


@dataclass
class Outcome:
    material_id: str
    formula: str
    num_sites: int
    ok_conventional: bool  # decode(rep) matches, rep encoded at symprec = 0.1
    ok_primitive: bool  # decode(rep, primitive=True) matches, same rep
    ok: bool  # round_trip_matches at 0.1 or at a fallback tolerance (= encode(verify=True))
    symprec_used: float | None
    spacegroup: int | None
    dataset_spacegroup: int | None
    encode_ms: float
    decode_ms: float
    match_ms: float
    reason: str = ""
    ok_tokens: bool | None = None  # with --tokens: token ids of the 0.1 rep decode to a match

    @property
    def ok_at_01(self) -> bool:
        return self.ok_conventional or self.ok_primitive


def round_trip(crystal: Crystal, matcher: StructureMatcher, tokens: bool = False) -> Outcome:
    props = crystal.properties
    outcome = Outcome(
        material_id=str(props.get("material_id", "?")),
        formula=crystal.formula,
        num_sites=crystal.num_sites,
        ok_conventional=False,
        ok_primitive=False,
        ok=False,
        symprec_used=None,
        spacegroup=None,
        dataset_spacegroup=int(props["spacegroup.number"])
        if "spacegroup.number" in props
        else None,
        encode_ms=0.0,
        decode_ms=0.0,
        match_ms=0.0,
    )
    reasons = []
    original = crystal.to_pymatgen()
    for tol in (0.1, *W.FALLBACK_SYMPRECS):
        t0 = time.perf_counter()
        try:
            rep = W.encode(crystal, symprec=tol, fallback_symprecs=())
        except Exception as exc:
            reasons.append(f"symprec={tol:g}: encode failed: {exc}")
            continue
        t1 = time.perf_counter()
        try:
            decoded = W.decode(rep)
        except Exception as exc:
            reasons.append(f"symprec={tol:g}: decode failed: {exc}")
            continue
        t2 = time.perf_counter()
        if tol == 0.1:
            outcome.ok_conventional = bool(matcher.fit(original, decoded.to_pymatgen()))
            t3 = time.perf_counter()
            primitive = W.to_primitive(decoded)
            outcome.ok_primitive = bool(matcher.fit(original, primitive.to_pymatgen()))
            outcome.encode_ms, outcome.decode_ms, outcome.match_ms = (
                1e3 * (t1 - t0), 1e3 * (t2 - t1), 1e3 * (t3 - t2),
            )  # fmt: skip
            outcome.spacegroup = rep.spacegroup
            matched = outcome.ok_at_01
            if tokens:
                try:
                    ids = TOKENIZER.encode(rep)
                    rep_tokens = TOKENIZER.detokenize(TOKENIZER.tokens_from_ids(ids))
                    outcome.ok_tokens = W.round_trip_matches(crystal, rep_tokens)
                    if not outcome.ok_tokens:
                        reasons.append(f"tokens: no match ({rep_tokens.to_string(4)})")
                except Exception as exc:
                    outcome.ok_tokens = False
                    reasons.append(f"tokens: {exc}")
        else:
            matched = W.round_trip_matches(crystal, rep)
        if matched:
            outcome.ok, outcome.symprec_used = True, tol
            break
        reasons.append(
            f"symprec={tol:g}: no match ({rep.compact}; {decoded.num_sites} sites decoded "
            f"for {crystal.num_sites} input)"
        )
    if not outcome.ok_conventional:
        reasons.insert(
            0,
            f"conventional: no match; primitive: {'match' if outcome.ok_primitive else 'no match'}",
        )
    outcome.reason = "; ".join(reasons)
    return outcome


def summarise(split: str, outcomes: list[Outcome]) -> dict:
    n = len(outcomes)
    encode = [o.encode_ms for o in outcomes if o.encode_ms]
    decode = [o.decode_ms for o in outcomes if o.decode_ms]
    same_sg = [o for o in outcomes if o.dataset_spacegroup is not None and o.spacegroup is not None]
    return {
        "split": split,
        "n": n,
        "rate_conventional_0.1": sum(o.ok_conventional for o in outcomes) / n,
        "rate_primitive_0.1": sum(o.ok_primitive for o in outcomes) / n,
        "rate_either_0.1": sum(o.ok_at_01 for o in outcomes) / n,
        "rate_tokens": (
            sum(bool(o.ok_tokens) for o in outcomes) / n
            if any(o.ok_tokens is not None for o in outcomes)
            else None
        ),
        "rate_with_fallbacks": sum(o.ok for o in outcomes) / n,
        "symprec_used": dict(Counter(str(o.symprec_used) for o in outcomes)),
        "encode_ms_mean": statistics.fmean(encode),
        "encode_ms_median": statistics.median(encode),
        "decode_ms_mean": statistics.fmean(decode),
        "decode_ms_median": statistics.median(decode),
        "spacegroup_agrees_with_dataset": sum(o.spacegroup == o.dataset_spacegroup for o in same_sg)
        / max(1, len(same_sg)),
        "failures": [asdict(o) for o in outcomes if not o.ok_conventional or not o.ok],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", nargs="+", default=["pilot_test", "biternary_test"])
    parser.add_argument("--limit", type=int, default=None, help="first N structures per split")
    parser.add_argument("--json", default=None, help="write the full summary to this file")
    parser.add_argument(
        "--tokens", action="store_true", help="also round-trip the default token sequence"
    )
    args = parser.parse_args()

    matcher = StructureMatcher()
    W.encode(load_dataset("mp20", args.splits[0], progress=False)[0])  # warm pyxtal's tables
    summaries = []
    for split in args.splits:
        crystals = list(load_dataset("mp20", split))
        if args.limit:
            crystals = crystals[: args.limit]
        outcomes = [
            round_trip(c, matcher, args.tokens) for c in tqdm(crystals, desc=f"mp20/{split}")
        ]
        s = summarise(split, outcomes)
        summaries.append(s)
        print(
            f"mp20/{split}: n={s['n']}  round trip at symprec=0.1: conventional cell "
            f"{s['rate_conventional_0.1']:.2%}, primitive {s['rate_primitive_0.1']:.2%}, either "
            f"{s['rate_either_0.1']:.2%}; with fallbacks {W.FALLBACK_SYMPRECS} (encode(verify=True)): "
            f"{s['rate_with_fallbacks']:.2%}\n  "
            f"encode {s['encode_ms_mean']:.1f} ms (median {s['encode_ms_median']:.1f})  "
            f"decode {s['decode_ms_mean']:.2f} ms (median {s['decode_ms_median']:.2f}; first use "
            "of a space group loads its tables)  "
            f"space group = dataset column: {s['spacegroup_agrees_with_dataset']:.2%}"
        )
        print(f"  tolerance that succeeded: {s['symprec_used']}")
        if s["rate_tokens"] is not None:
            print(f"  token round trip (default TokenizerConfig): {s['rate_tokens']:.2%}")
        for f in s["failures"] + [asdict(o) for o in outcomes if o.ok_tokens is False]:
            print(f"  {f['material_id']} {f['formula']} ({f['num_sites']} sites): {f['reason']}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(summaries, fh, indent=1)


if __name__ == "__main__":
    main()
