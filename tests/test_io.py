"""Structure files: every format written and read back, multi-structure files, bad input."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from xtalgen import io
from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError

# file name -> what the one-line error must say
BAD_FILES = {
    "empty.cif": "file is empty",
    "malformed.cif": "not a CIF file",
    "unknown_element.cif": "unknown element symbol 'Qx'",
    "zero_volume.cif": "zero volume",
    "nan_coords.cif": "bad fractional coordinate 'nan'",
    "nan_lattice.vasp": "NaN",
    "no_lattice.xyz": "no 3D periodic cell",
    "truncated.json": "invalid JSON",
    "notes.txt": "unsupported file type (extension '.txt')",
}
GOOD_FILES = {  # file name -> formulas in order
    "POSCAR": ["Si"],
    "alloy_disordered.cif": ["Cu3.6Au0.4"],
    "frames.extxyz": ["CsCl", "SrTiO3"],
    "multi_block.cif": ["CsCl", "SrTiO3"],
    "nacl_symmetrized.cif": ["NaCl"],
    "structures.json": ["CsCl", "SrTiO3"],
}


def canonical(crystal: Crystal) -> Crystal:
    """Sites sorted by species then coordinates (CIF readers reorder sites)."""
    frac = np.round(crystal.frac_coords, 6) % 1.0
    order = np.lexsort((frac[:, 2], frac[:, 1], frac[:, 0], crystal.species))
    occ = crystal.site_occupancies
    return crystal.replace(
        frac_coords=crystal.frac_coords[order],
        species=crystal.species[order],
        site_occupancies=None if occ is None else [occ[i] for i in order],
    )


def same_up_to_rotation(a: Crystal, b: Crystal, atol: float = 1e-6) -> bool:
    """Same lattice parameters, sites and occupancies (CIF keeps parameters, not orientation)."""
    a, b = canonical(a), canonical(b)
    params_close = np.allclose(a.lattice_parameters, b.lattice_parameters, atol=atol)
    return params_close and a.replace(lattice=b.lattice).allclose(b, atol=atol)


# -- every format written and read back --------------------------------------------------------
@pytest.mark.parametrize("name", ["x.cif", "POSCAR", "x.vasp", "CONTCAR_relaxed", "x.poscar",
                                  "x.extxyz", "x.xyz", "x.json"])
def test_each_format_round_trips(
    name: str, ordered_crystals: list[Crystal], tmp_path: Path
) -> None:
    for crystal in ordered_crystals:
        path = tmp_path / name
        assert io.write(crystal, path) == [path]
        (back,) = io.read(path)
        assert back.properties["source"] == name
        if io.detect_format(path) == "cif":  # CIF keeps lattice parameters, 8 digits
            assert same_up_to_rotation(back, crystal, atol=1e-6)
        else:
            assert back.allclose(crystal, atol=1e-7), f"{name}: {crystal.formula}"


@pytest.mark.parametrize("name", ["x.cif.gz", "CONTCAR.bz2", "x.extxyz.xz", "x.json.gz"])
def test_compressed_files(name: str, srtio3: Crystal, tmp_path: Path) -> None:
    path = tmp_path / name
    io.write(srtio3, path)
    assert path.read_bytes()[:2] in (b"\x1f\x8b", b"BZ", b"\xfd7")  # gzip, bz2, xz magic
    (back,) = io.read(path)
    assert same_up_to_rotation(back, srtio3) and back.properties["source"] == name
    path.write_bytes(b"not compressed at all")
    with pytest.raises(io.StructureFileError, match="cannot decompress"):
        io.read(path)


@pytest.mark.parametrize("suffix", [".cif", ".extxyz", ".json"])
def test_multi_structure_files(
    suffix: str, ordered_crystals: list[Crystal], tmp_path: Path
) -> None:
    path = tmp_path / f"many{suffix}"
    io.write(ordered_crystals, path)
    back = io.read(path)
    assert [c.formula for c in back] == [c.formula for c in ordered_crystals]
    assert [c.properties["source"] for c in back] == [f"many{suffix}#{i}" for i in range(4)]
    for got, want in zip(back, ordered_crystals):
        assert same_up_to_rotation(got, want)


@pytest.mark.parametrize("suffix", [".cif", ".extxyz", ".json"])
def test_properties_survive(suffix: str, cscl: Crystal, tmp_path: Path) -> None:
    properties = {
        "formation_energy_per_atom": -2.1, "n_steps": 3, "converged": True, "material_id": "mp-1",
        "digits": "123", "empty": "", "missing": None, "text": "a\n;b 'c' \"d\"",
        "tags": ["a", "b"], "energy": -7.5,
        "nested": {"generator": "flow", "seed": [0, 1]}, "source": "earlier.cif",
    }
    path = tmp_path / f"props{suffix}"
    io.write(cscl.with_properties(**properties), path)
    (back,) = io.read(path)
    assert dict(back.properties) == {**properties, "source": path.name}  # source: the new file


@pytest.mark.parametrize("suffix", [".cif", ".json", ".extxyz"])
def test_disordered_round_trip(suffix: str, disordered_alloy: Crystal, tmp_path: Path) -> None:
    path = tmp_path / f"alloy{suffix}"
    io.write(disordered_alloy, path)
    (back,) = io.read(path)
    assert not back.is_ordered
    assert back.composition.get_el_amt_dict() == pytest.approx({"Cu": 3.6, "Au": 0.4})
    assert same_up_to_rotation(back, disordered_alloy)


def test_poscar_refuses_what_it_cannot_hold(
    disordered_alloy: Crystal, ordered_crystals: list[Crystal], tmp_path: Path
) -> None:
    with pytest.raises(io.StructureFileError, match="partial occupancies"):
        io.write(disordered_alloy, tmp_path / "POSCAR")
    with pytest.raises(io.StructureFileError, match="one structure, got 4"):
        io.write(ordered_crystals, tmp_path / "x.vasp")
    with pytest.raises(io.StructureFileError, match="no crystals to write"):
        io.write([], tmp_path / "x.cif")
    with pytest.raises(io.StructureFileError, match=r"cannot write JSON .*not JSON serializable"):
        io.write(ordered_crystals[0].with_properties(when=object()), tmp_path / "x.json")
    with pytest.raises(XtalgenError, match="unknown format 'pdb'"):
        io.write(ordered_crystals, tmp_path / "out", fmt="pdb")
    assert not any(tmp_path.iterdir())


def test_write_folder_names_files_by_index_and_formula(
    ordered_crystals: list[Crystal], disordered_alloy: Crystal, tmp_path: Path
) -> None:
    paths = io.write(ordered_crystals, tmp_path / "out")
    assert [p.name for p in paths] == ["0000_NaCl.cif", "0001_Si.cif", "0002_CsCl.cif",
                                       "0003_SrTiO3.cif"]
    paths = io.write(ordered_crystals[:2], tmp_path / "out", fmt="vasp")  # existing folder
    assert [p.name for p in paths] == ["0000_NaCl.vasp", "0001_Si.vasp"]
    assert io.read(paths[1])[0].allclose(ordered_crystals[1])
    # nothing is written when one crystal does not fit the format
    with pytest.raises(io.StructureFileError, match="partial occupancies"):
        io.write([*ordered_crystals, disordered_alloy], tmp_path / "poscars", fmt="poscar")
    assert not (tmp_path / "poscars").exists()


def test_detect_format() -> None:
    assert io.detect_format("a/b.CIF") == "cif"
    assert io.detect_format("CONTCAR") == io.detect_format("POSCAR.orig") == "poscar"
    assert io.detect_format("POSCAR_2") == io.detect_format("contcar") == "poscar"
    with pytest.raises(io.StructureFileError, match="unsupported"):
        io.detect_format("POSCARS")
    assert io.detect_format("x.xyz") == "extxyz"
    assert io.detect_format("x.cif.gz") == "cif" and io.detect_format("POSCAR.xz") == "poscar"
    with pytest.raises(io.StructureFileError, match="no extension"):
        io.detect_format("README")
    with pytest.raises(io.StructureFileError, match=r"extension '\.txt'"):
        io.detect_format("notes.txt.gz")


# -- reading the fixture files -----------------------------------------------------------------
@pytest.mark.parametrize(("name", "formulas"), GOOD_FILES.items())
def test_good_fixture_files(name: str, formulas: list[str], fixtures_dir: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", io.StructureFileWarning)
        crystals = io.read(fixtures_dir / "good" / name)
    assert [c.formula for c in crystals] == formulas
    if name == "nacl_symmetrized.cif":  # symmetry operations expanded to the conventional cell
        assert crystals[0].num_sites == 8
    if name == "frames.extxyz":
        assert crystals[0].properties["material_id"] == "mp-22865"


@pytest.mark.parametrize(("name", "reason"), BAD_FILES.items())
def test_bad_files_raise_one_line_naming_the_file(
    name: str, reason: str, fixtures_dir: Path
) -> None:
    path = fixtures_dir / "bad" / name
    with pytest.raises(io.StructureFileError) as info:
        io.read(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert reason in message
    assert "\n" not in message
    assert isinstance(info.value, XtalgenError)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(io.StructureFileError, match="no such file"):
        io.read(tmp_path / "absent.cif")
    with pytest.raises(io.StructureFileError, match="is a folder"):
        io.read(tmp_path)
    with pytest.raises(io.StructureFileError, match="no such file or folder"):
        io.read_many(tmp_path / "absent")


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("POSCAR", "Xx Cl\n1.0\n4 0 0\n0 4 0\n0 0 4\nXx Cl\n1 1\nDirect\n0 0 0\n.5 .5 .5\n",
         "unknown element symbol"),
        ("POSCAR", "NaCl\n1.0\n4 0 0\n0 4 0\n0 0 4\n1 1\nDirect\n0 0 0\n.5 .5 .5\n",
         "no element symbols line"),
        ("POSCAR", "NaCl\n1.0\n4 0 0\n0 0 0\n0 0 4\nNa Cl\n1 1\nDirect\n0 0 0\n.5 .5 .5\n",
         "zero volume"),
        ("x.cif", "data_a\n_cell_length_a 4\n_cell_length_b 4\n_cell_length_c 4\n"
         "_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\n"
         "loop_\n_atom_site_label\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n"
         "Zz1 0 0 0\n", "unknown atom site label 'Zz1'"),
        ("x.cif", "data_a\n_cell_length_a 4\nloop_\n_atom_site_label\n_atom_site_fract_x\n"
         "Na1 0\n", "missing _cell_length_b"),
        ("x.json", '[{"a": 1}]', "item 0 is not a pymatgen Structure dict"),
        ("x.extxyz", '1\nLattice="4 0 0 0 4 0 0 0 4" Properties=species:S:1:pos:R:3\nNa 0 0\n',
         "not a valid extxyz file"),
    ],
)
def test_more_bad_content(name: str, text: str, reason: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(io.StructureFileError, match=reason) as info:
        io.read(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_one_bad_block_or_frame_fails_the_file(fixtures_dir: Path, tmp_path: Path) -> None:
    text = (fixtures_dir / "good" / "multi_block.cif").read_text()
    path = tmp_path / "multi.cif"
    path.write_text(text.replace("  Sr  Sr0", "  Qq  Qq0"))
    with pytest.raises(io.StructureFileError, match=r"CIF block 2 \(data_1_SrTiO3\): unknown"):
        io.read(path)
    frames = (fixtures_dir / "good" / "frames.extxyz").read_text().splitlines()
    frames[5] = frames[5].replace("Lattice=", "NoLattice=")  # comment line of the second frame
    path = tmp_path / "frames.extxyz"
    path.write_text("\n".join(frames) + "\n")
    with pytest.raises(io.StructureFileError, match="frame 1: no 3D periodic cell"):
        io.read(path)


def test_overlapping_sites_warn_but_read(fixtures_dir: Path, nacl: Crystal, tmp_path: Path) -> None:
    path = fixtures_dir / "overlapping.cif"
    with pytest.warns(io.OverlappingSitesWarning, match=r"overlapping.cif: .*0\.188 A"):
        (crystal,) = io.read(path)
    assert crystal.num_sites == 4
    # a site too close to its own periodic image counts too
    tiny = Crystal(np.diag([0.4, 5.0, 5.0]), [[0, 0, 0]], [1])
    io.write(tiny, tmp_path / "tiny.json")
    with pytest.warns(io.OverlappingSitesWarning, match="site 0 .* site 0"):
        io.read(tmp_path / "tiny.json")


# -- folders -----------------------------------------------------------------------------------
def test_read_many_mixed_folder(fixtures_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    shutil.copytree(fixtures_dir / "good", folder / "sub")
    for name in BAD_FILES:
        shutil.copy(fixtures_dir / "bad" / name, folder / name)
    (folder / ".hidden.cif").write_text("ignored: hidden")
    (folder / ".cache").mkdir()
    (folder / ".cache" / "x.cif").write_text("ignored: hidden folder")

    result = io.read_many(folder)
    expected = [f for formulas in GOOD_FILES.values() for f in formulas]
    assert sorted(c.formula for c in result.crystals) == sorted(expected)
    assert sorted(p.name for p, _ in result.errors) == sorted(BAD_FILES)
    for path, reason in result.errors:
        assert BAD_FILES[path.name] in reason
    assert sorted(p.name for p in result.files) == sorted(GOOD_FILES)
    sources = {c.properties["source"] for c in result.crystals}
    assert {"sub/POSCAR", "sub/frames.extxyz#1", "sub/nacl_symmetrized.cif"} <= sources

    single = io.read_many(fixtures_dir / "bad" / "empty.cif")
    assert single.crystals == [] and single.errors == [(fixtures_dir / "bad" / "empty.cif",
                                                        "file is empty")]
