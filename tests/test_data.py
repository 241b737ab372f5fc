"""xtalgen.data: bundled row counts, offline splits, cache, user files, downloads, CLI."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xtalgen import Crystal, XtalgenError
from xtalgen.data import (
    CrystalDataset,
    download_split,
    git_blob_id,
    list_datasets,
    load_dataset,
    reference_file,
    verify_blob,
)
from xtalgen.data.load import count_rows, read_table
from xtalgen.data.registry import BUNDLED_DIR, DATASETS, bundled_manifest
from xtalgen.data.splits import RECIPES, select_rows

# Row counts from the data README (published standard splits and bundled subsets).
PUBLISHED = {
    "mp20": (27136, 9047, 9046),
    "perov5": (11356, 3787, 3785),
    "carbon24": (6091, 2032, 2030),
    "mpts52": (27380, 5000, 8096),
}
BUNDLED_ROWS = {
    "mp_20/pilot/train.csv.gz": 1000,
    "mp_20/pilot/val.csv.gz": 1000,
    "mp_20/pilot/test.csv.gz": 1000,
    "mp_20/biternary/val.csv.gz": 7140,
    "mp_20/biternary/test.csv.gz": 7118,
    "perov_5/val.csv.gz": 3787,
    "perov_5/test.csv.gz": 3785,
    "carbon_24/val.csv.gz": 2032,
    "carbon_24/test.csv.gz": 2030,
    "mpts_52/val.csv.gz": 5000,
}


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private, initially empty cache for this module (restored afterwards)."""
    root = tmp_path_factory.mktemp("xtalgen-cache")
    old = os.environ.get("XTALGEN_CACHE")
    os.environ["XTALGEN_CACHE"] = str(root)
    yield root
    if old is None:
        os.environ.pop("XTALGEN_CACHE", None)
    else:
        os.environ["XTALGEN_CACHE"] = old


@pytest.fixture(scope="module")
def pilot_test(cache_root: Path) -> tuple[CrystalDataset, float]:
    """MP-20 pilot_test parsed once (first load, timed)."""
    start = time.perf_counter()
    dataset = load_dataset("mp20", "pilot_test", progress=False)
    return dataset, time.perf_counter() - start


def _ids(path: str, columns: tuple[str, ...] = ("material_id",)) -> pd.DataFrame:
    return read_table(BUNDLED_DIR / path, usecols=list(columns))


# -- published and bundled row counts ---------------------------------------------------------
def test_published_row_counts_in_registry() -> None:
    info = list_datasets()
    for name, (train, val, test) in PUBLISHED.items():
        assert info[name]["published_rows"] == {"train": train, "val": val, "test": test}
    assert (
        sum(PUBLISHED["mp20"]) == 45229
    )  # the CDVAE paper quotes 45,231; its split files hold 45,229
    assert sum(PUBLISHED["perov5"]) == 18928
    assert sum(PUBLISHED["carbon24"]) == 10153
    assert sum(PUBLISHED["mpts52"]) == 40476


@pytest.mark.parametrize("path", sorted(BUNDLED_ROWS))
def test_bundled_file_row_counts(path: str) -> None:
    assert count_rows(BUNDLED_DIR / path) == BUNDLED_ROWS[path]
    assert bundled_manifest()[path]["rows"] == BUNDLED_ROWS[path]


def test_complete_bundled_splits_have_published_counts() -> None:
    info = list_datasets()
    bundled = [
        (n, s)
        for n, i in info.items()
        for s in ("train", "val", "test")
        if i["splits"][s]["bundled"]
    ]
    assert sorted(bundled) == [
        ("carbon24", "test"),
        ("carbon24", "train"),
        ("carbon24", "val"),
        ("mpts52", "val"),
        ("perov5", "test"),
        ("perov5", "train"),
        ("perov5", "val"),
    ]
    for name, split in bundled:
        (path,) = DATASETS[name].bundled[split]
        assert count_rows(BUNDLED_DIR / path) == info[name]["published_rows"][split]


def test_bundled_files_match_manifest_sha256() -> None:
    from xtalgen.data.cache import sha256_file

    for path, entry in bundled_manifest().items():
        assert sha256_file(BUNDLED_DIR / path) == entry["sha256"], path
    assert reference_file("cdvae_constants.json").is_file()


# -- offline splits (material_ids only, no CIF parsing) ----------------------------------------
def _recipe_ids(name: str, split: str, columns: tuple[str, ...] = ("material_id",)) -> set[str]:
    spec, recipe = DATASETS[name], RECIPES[name][split]
    table = pd.concat(
        [_ids(f, columns) for part in recipe.parts for f in spec.bundled[part]], ignore_index=True
    )
    exclude = {
        i for part in recipe.exclude for f in spec.bundled[part] for i in _ids(f)["material_id"]
    }
    rows = select_rows(recipe, table, exclude)
    assert len(rows) == len(set(rows)) and np.all(np.diff(rows) > 0)
    selected = table["material_id"].iloc[rows]
    assert selected.is_unique
    return set(selected)


def test_mp20_offline_splits_disjoint_from_test() -> None:
    train, val = _recipe_ids("mp20", "offline_train"), _recipe_ids("mp20", "offline_val")
    test = set(_ids("mp_20/pilot/test.csv.gz")["material_id"])
    test |= set(_ids("mp_20/biternary/test.csv.gz")["material_id"])
    assert not (train | val) & test
    assert not train & val
    pool = set()
    for f in ("pilot/train", "pilot/val", "biternary/val"):
        pool |= set(_ids(f"mp_20/{f}.csv.gz")["material_id"])
    assert train | val == pool - test
    assert 8000 < len(pool) < 9140  # pilot/val overlaps biternary/val
    assert abs(len(val) / len(pool) - 0.03) < 0.002
    assert (len(train), len(val)) == (8094, 250)  # fixed seed: the same on every machine
    assert _recipe_ids("mp20", "offline_test") == set(
        _ids("mp_20/pilot/test.csv.gz")["material_id"]
    )


@pytest.mark.parametrize("name", ["perov5", "carbon24"])
def test_val_based_offline_splits(name: str) -> None:
    train, val = _recipe_ids(name, "offline_train"), _recipe_ids(name, "offline_val")
    folder = DATASETS[name].folder
    test = set(_ids(f"{folder}/test.csv.gz")["material_id"])
    assert not train & val and not (train | val) & test
    assert train | val == set(_ids(f"{folder}/val.csv.gz")["material_id"])
    assert round(0.03 * PUBLISHED[name][1]) == len(val)
    assert _recipe_ids(name, "offline_test") == test


def test_mpts52_offline_splits_are_chronological() -> None:
    table = _ids("mpts_52/val.csv.gz", ("material_id", "year")).set_index("material_id")
    years = {
        split: table.loc[sorted(_recipe_ids("mpts52", split, ("material_id", "year"))), "year"]
        for split in ("offline_train", "offline_val", "offline_test")
    }
    assert years["offline_train"].max() < years["offline_val"].min()
    assert years["offline_val"].max() < years["offline_test"].min()
    assert [len(y) for y in years.values()] == [3288, 685, 1027]


def test_offline_split_is_deterministic() -> None:
    assert _recipe_ids("perov5", "offline_val") == _recipe_ids("perov5", "offline_val")


# -- parsing, properties and the cache ---------------------------------------------------------
def test_pilot_test_crystals_and_properties(pilot_test: tuple[CrystalDataset, float]) -> None:
    from pymatgen.core import Structure

    dataset, _ = pilot_test
    assert len(dataset) == 1000 and not dataset.errors
    assert "cif" not in dataset.table.columns
    assert {
        "material_id",
        "formation_energy_per_atom",
        "band_gap",
        "e_above_hull",
        "spacegroup.number",
    } <= set(dataset.table.columns)
    raw = read_table(BUNDLED_DIR / "mp_20/pilot/test.csv.gz")
    for i in (0, 417, 999):
        crystal = dataset[i]
        assert isinstance(crystal, Crystal)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymatgen's "rounded to ideal values" notes
            structure = Structure.from_str(raw["cif"][i], fmt="cif")
        expected = Crystal.from_pymatgen(structure)
        assert crystal.allclose(expected, atol=1e-8)
        props = crystal.properties
        assert props["material_id"] == raw["material_id"][i]
        assert props["formation_energy_per_atom"] == pytest.approx(
            raw["formation_energy_per_atom"][i]
        )
        assert props["spacegroup.number"] == raw["spacegroup.number"][i]
        assert (props["dataset"], props["split"]) == ("mp20", "pilot_test")
    assert np.all((dataset.frac_coords >= 0) & (dataset.frac_coords < 1))
    assert list(dataset.source_files.values()) == [
        bundled_manifest()["mp_20/pilot/test.csv.gz"]["sha256"]
    ]


def test_sequence_protocol(pilot_test: tuple[CrystalDataset, float]) -> None:
    dataset, _ = pilot_test
    part = dataset[10:13]
    assert isinstance(part, CrystalDataset) and len(part) == 3
    assert part[0].allclose(dataset[10]) and part[-1].allclose(dataset[12])
    assert dataset[-1].properties["material_id"] == dataset.material_ids[-1]
    assert sum(1 for _ in dataset[:7]) == 7
    assert list(part.table["material_id"]) == dataset.material_ids[10:13]
    with pytest.raises(IndexError):
        dataset[1000]


def test_cache_hit_is_identical_and_faster(pilot_test: tuple[CrystalDataset, float]) -> None:
    first, first_time = pilot_test
    start = time.perf_counter()
    second = load_dataset("mp20", "offline_test", progress=False)  # same file, cached
    second_time = time.perf_counter() - start
    assert second_time < first_time / 3 and second_time < 2.0
    assert np.array_equal(first.lattices, second.lattices)
    assert np.array_equal(first.frac_coords, second.frac_coords)
    assert np.array_equal(first.species, second.species)
    pd.testing.assert_frame_equal(first.table, second.table)
    assert second.split == "offline_test"


# -- a user's CSV and folder -------------------------------------------------------------------
def _user_csv(tmp_path: Path, bad: bool) -> Path:
    raw = read_table(BUNDLED_DIR / "perov_5/test.csv.gz").head(4)
    table = raw[["cif", "heat_ref"]].copy()
    table["label"] = ["a", "b", "c", "d"]
    if bad:
        table.loc[2, "cif"] = "data_broken\n_cell_length_a 1\n"
    path = tmp_path / "mine.csv.gz"
    table.to_csv(path, index=False)
    return path


def test_user_csv_with_a_bad_row(tmp_path: Path, cache_root: Path) -> None:
    path = _user_csv(tmp_path, bad=True)
    with pytest.warns(UserWarning, match="1 entries"):
        dataset = load_dataset(path, progress=False)
    assert len(dataset) == 3 and dataset.split is None and dataset.name == "mine"
    assert [(Path(f).name, row) for f, row, _ in dataset.errors] == [("mine.csv.gz", 2)]
    assert list(dataset.table["label"]) == ["a", "b", "d"]
    assert dataset.material_ids == ["mine-0", "mine-1", "mine-3"]
    assert dataset[2].properties["heat_ref"] == pytest.approx(
        read_table(BUNDLED_DIR / "perov_5/test.csv.gz")["heat_ref"][3]
    )
    with pytest.warns(UserWarning):  # cached: the error list survives the cache
        assert len(load_dataset(str(path), progress=False).errors) == 1


def test_user_csv_without_cif_column(tmp_path: Path, cache_root: Path) -> None:
    path = tmp_path / "nocif.csv"
    pd.DataFrame({"material_id": ["x"], "energy": [1.0]}).to_csv(path, index=False)
    with pytest.raises(XtalgenError, match="no 'cif' column"):
        load_dataset(path)


def test_user_folder(tmp_path: Path, cache_root: Path) -> None:
    io = pytest.importorskip("xtalgen.io")
    raw = read_table(BUNDLED_DIR / "carbon_24/test.csv.gz").head(2)
    folder = tmp_path / "structures"
    folder.mkdir()
    for i, cif in enumerate(raw["cif"]):
        (folder / f"c{i}.cif").write_text(cif)
    (folder / "junk.cif").write_text("not a cif at all\n")
    with pytest.warns(UserWarning, match="could not be read"):
        dataset = load_dataset(folder, progress=False)
    assert len(dataset) == 2 and len(dataset.errors) == 1
    assert "junk.cif" in dataset.errors[0][0]
    assert dataset[0].formula == "C" and dataset[1].num_sites > 1
    assert len(dataset.source_files) == 2
    assert hasattr(io, "read_many")


# -- errors ------------------------------------------------------------------------------------
def test_unknown_dataset_and_split(cache_root: Path) -> None:
    with pytest.raises(XtalgenError, match="unknown dataset 'mp30'"):
        load_dataset("mp30", "train")
    with pytest.raises(XtalgenError, match="unknown split 'training'"):
        load_dataset("perov5", "training")
    with pytest.raises(XtalgenError, match="choose a split"):
        load_dataset("carbon24")


def test_missing_standard_split_explains_how_to_get_it(cache_root: Path) -> None:
    with pytest.raises(XtalgenError) as info:
        load_dataset("MP-20", "train")
    message = str(info.value)
    assert "not bundled" in message and "xtalgen data download mp20 --split train" in message
    assert "offline_train" in message


# -- downloads (never the network) -------------------------------------------------------------
def test_git_blob_id() -> None:
    # `printf 'hello\n' | git hash-object --stdin` and the empty blob
    assert git_blob_id(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"
    assert git_blob_id(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"


def test_bundled_cdvae_file_matches_its_git_blob() -> None:
    data = gzip.decompress((BUNDLED_DIR / "perov_5/val.csv.gz").read_bytes())
    verify_blob(data, DATASETS["perov5"].git_blob_ids["val"])
    with pytest.raises(XtalgenError, match="does not match"):
        verify_blob(data[:-10], DATASETS["perov5"].git_blob_ids["val"])


class _FakeResponse:
    def __init__(self, data: bytes) -> None:
        self.data, self.headers = data, {"Content-Length": str(len(data))}

    def read(self, n: int = -1) -> bytes:
        chunk, self.data = self.data[:n], self.data[n:]
        return chunk

    def __enter__(self) -> _FakeResponse:
        return self

    def __exit__(self, *args: object) -> None:
        return None


def test_download_offline_mismatch_and_success(
    monkeypatch: pytest.MonkeyPatch, cache_root: Path
) -> None:
    import urllib.error
    import urllib.request

    def offline(url: str, timeout: float) -> None:
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(XtalgenError, match=r"could not download .*cdvae.*mp_20/train\.csv"):
        download_split("mp20", "train", progress=False)

    good = gzip.decompress((BUNDLED_DIR / "carbon_24/val.csv.gz").read_bytes())
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: _FakeResponse(b"x" + good))
    with pytest.raises(XtalgenError, match="does not match"):
        download_split("carbon24", "val", force=True, progress=False)
    assert not (cache_root / "downloads/carbon_24/val.csv").exists()

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: _FakeResponse(good))
    path = download_split("carbon24", "val", force=True, progress=False)
    assert path == cache_root / "downloads/carbon_24/val.csv" and path.read_bytes() == good
    assert list_datasets()["carbon24"]["splits"]["val"]["downloaded"]


# -- CLI ---------------------------------------------------------------------------------------
def test_cli_info_on_user_csv(tmp_path: Path, cache_root: Path) -> None:
    from typer.testing import CliRunner

    from xtalgen.cli.data import data_app

    path = _user_csv(tmp_path, bad=False)
    plot = tmp_path / "info.png"
    result = CliRunner().invoke(
        data_app, ["info", str(path), "--plot", str(plot)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "crystals" in result.output and "4" in result.output
    assert "spglib (symprec=0.1)" in result.output  # perov test has no space-group column
    assert plot.stat().st_size > 1000


def test_cli_list_and_missing_split(cache_root: Path) -> None:
    env = {**os.environ, "XTALGEN_CACHE": str(cache_root), "COLUMNS": "200"}
    run = [sys.executable, "-m", "xtalgen.cli.main", "data"]
    listed = subprocess.run([*run, "list"], capture_output=True, text=True, env=env, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "27,136" in listed.stdout and "offline_train" in listed.stdout
    missing = subprocess.run(
        [*run, "info", "mpts52", "--split", "test"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert missing.returncode == 1
    assert (
        missing.stderr.startswith("error: the MPTS-52 test split")
        and "Traceback" not in missing.stderr
    )


# -- end to end on small stand-in files --------------------------------------------------------
def test_offline_splits_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_root: Path
) -> None:
    """offline_* of a val-based dataset, on 120 val rows and a test file that shares 2 ids."""
    import dataclasses

    from xtalgen.data import registry

    val = read_table(BUNDLED_DIR / "carbon_24/val.csv.gz").head(120)
    test = pd.concat(
        [read_table(BUNDLED_DIR / "carbon_24/test.csv.gz").head(10), val.iloc[[5, 50]]]
    )
    val.to_csv(tmp_path / "val.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    small = dataclasses.replace(
        DATASETS["carbon24"],
        bundled={"val": (str(tmp_path / "val.csv"),), "test": (str(tmp_path / "test.csv"),)},
    )
    monkeypatch.setitem(registry.DATASETS, "carbon24", small)
    train = load_dataset("carbon24", "offline_train", progress=False)
    held = load_dataset("carbon24", "offline_val", progress=False)
    final = load_dataset("carbon24", "offline_test", progress=False)
    assert len(final) == 12 and len(train) + len(held) == 118 and len(held) == 4
    assert not set(train.material_ids) & set(final.material_ids)
    assert not set(train.material_ids) & set(held.material_ids)
    assert train[0].properties["split"] == "offline_train"
    assert train[0].properties["energy_per_atom"] == pytest.approx(
        val.set_index("material_id").loc[train.material_ids[0], "energy_per_atom"]
    )
    assert load_dataset("carbon24", "val", progress=False).material_ids == list(val.material_id)


def test_disordered_sites_survive_the_cache(tmp_path: Path, cache_root: Path) -> None:
    from pymatgen.core import Lattice, Structure

    disordered = Structure(
        Lattice.cubic(3.6), [{"Fe": 0.5, "Co": 0.5}, "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    ordered = Structure(Lattice.cubic(4.2), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    path = tmp_path / "mixed.csv"
    pd.DataFrame(
        {"material_id": ["dis", "ord"], "cif": [disordered.to(fmt="cif"), ordered.to(fmt="cif")]}
    ).to_csv(path, index=False)
    for _ in range(2):  # parse, then from the cache
        dataset = load_dataset(path, progress=False)
        assert dataset[1].site_occupancies is None
        assert dataset[0].site_occupancies is not None
        occ = dict(next(o for o in dataset[0].site_occupancies if o is not None))
        assert occ == {26: 0.5, 27: 0.5}
        assert dataset[0].composition.reduced_formula == disordered.composition.reduced_formula


def test_unverifiable_download_checks_rows_and_follows_lfs(
    monkeypatch: pytest.MonkeyPatch, cache_root: Path
) -> None:
    import urllib.request

    urls: list[str] = []
    csv = b"material_id,cif\nmp-1,x\n"

    def fake(url: str, timeout: float) -> _FakeResponse:
        urls.append(url)
        return _FakeResponse(
            b"version https://git-lfs.github.com/spec/v1\n" if not urls[1:] else csv
        )

    monkeypatch.setattr(urllib.request, "urlopen", fake)
    with pytest.raises(XtalgenError, match="has 1 rows, expected the published 8,096"):
        download_split("mpts52", "test", progress=False)
    assert urls[0].startswith("https://raw.githubusercontent.com/jiaor17/DiffCSP/")
    assert urls[1].startswith("https://media.githubusercontent.com/media/jiaor17/DiffCSP/")
    assert urls[1].endswith("/data/mpts_52/test.csv")
    assert not (cache_root / "downloads/mpts_52/test.csv").exists()


def test_atoms_per_cell_binning() -> None:
    from xtalgen.cli.data import _binned

    assert _binned({4: 2, 8: 1}) == [(4, 2), (8, 1)]
    wide = _binned({n: 1 for n in range(1, 53)})
    assert wide[0] == ("1-3", 3) and wide[-1] == ("52-54", 1)
    assert sum(n for _, n in wide) == 52 and len(wide) <= 24
