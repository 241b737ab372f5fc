"""Pack what a GPU lease needs into one folder (run here, before the lease).

    .venv/bin/python benchmarks/gpu/pack.py --out runs/gpu_pack \
        --mp20-templates /tmp/csp/mp20_tpl_200_r100.pkl

The lent GPU machine has torch and numpy but not pymatgen, so the datasets are sent as pickled
:class:`xtalgen.Crystal` lists (which need only numpy), with the element symbols, the data
provenance (source-file hashes, git commit) and the CSP targets that ``lease.py`` samples for:

* ``{perov5,mp20}_{offline_train,offline_val}.pkl``: training and validation crystals, and
  ``perov5_train.pkl`` (the complete standard train split, 11,356; the Perov-5 runs train on it);
* ``perov5_offline_test.pkl`` (all 3,785) and ``mp20_offline_test.pkl`` (pilot/test, 1,000);
* ``mp20_tpl200.pkl``: the seeded 200 MP-20 targets of ``bench_csp_model.py --targets 200
  --seed 0`` with their 100 retrieved templates each (``--template-cache`` of that benchmark);
* ``meta.json``: symbols, provenance per dataset and split.
"""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/gpu_pack")
    parser.add_argument("--mp20-templates", default=None,
                        help="template cache of bench_csp_model.py for the seeded 200 MP-20 targets")
    args = parser.parse_args()

    from xtalgen.crystal import element_symbol
    from xtalgen.data import load_dataset
    from xtalgen.models.checkpoint import git_commit

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta: dict = {"symbols": [element_symbol(z) for z in range(1, 119)], "git_commit": git_commit(),
                  "source_files": {}}
    splits = {"perov5": ("train", "offline_train", "offline_val", "offline_test"),
              "mp20": ("offline_train", "offline_val", "offline_test")}
    for dataset in ("perov5", "mp20"):
        for split in splits[dataset]:
            crystals = load_dataset(dataset, split)
            meta["source_files"][f"{dataset}/{split}"] = dict(getattr(crystals, "source_files", {}))
            with open(out / f"{dataset}_{split}.pkl", "wb") as fh:
                pickle.dump(list(crystals), fh, protocol=pickle.HIGHEST_PROTOCOL)
            print(dataset, split, len(crystals))
    if args.mp20_templates:
        test = list(load_dataset("mp20", "offline_test"))
        pick = np.sort(np.random.default_rng(0).choice(len(test), 200, replace=False))
        targets = [test[i] for i in pick]
        with open(args.mp20_templates, "rb") as fh:
            cached = pickle.load(fh)
        ids = [str(c.properties.get("material_id", i)) for i, c in enumerate(targets)]
        if cached["ids"] != ids:
            raise SystemExit(f"{args.mp20_templates} holds templates of other targets")
        with open(out / "mp20_tpl200.pkl", "wb") as fh:
            pickle.dump({"targets": targets, "templates": cached["templates"]}, fh,
                        protocol=pickle.HIGHEST_PROTOCOL)
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    print("packed into", out, f"{sum(p.stat().st_size for p in out.iterdir()) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
