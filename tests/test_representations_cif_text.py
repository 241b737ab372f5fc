"""The symmetrised CIF text form and its tokenizer: round trips on the bundled splits, prompts,
and one clear reason for every text that does not parse."""

from __future__ import annotations

import numpy as np
import pytest

from xtalgen.data import load_dataset
from xtalgen.errors import XtalgenError
from xtalgen.matching import get_matcher
from xtalgen.representations import cif_text as T


@pytest.fixture(scope="module")
def tokenizer() -> T.CifTokenizer:
    return T.CifTokenizer()


@pytest.mark.parametrize(("name", "split"), [("perov5", "test"), ("mp20", "offline_test"),
                                             ("carbon24", "test")])
def test_round_trip_through_text_and_tokens(name: str, split: str, tokenizer) -> None:
    data = load_dataset(name, split, progress=False)
    picks = np.random.default_rng(0).choice(len(data), 12, replace=False)
    matcher = get_matcher("csp")
    for i in picks:
        crystal = data[int(i)]
        text = T.crystal_to_cif_text(crystal)
        ids = tokenizer.encode(text)
        assert ids[-1] == tokenizer.eos and tokenizer.decode(ids) == text
        record = T.parse_cif_text(text)
        assert record.spacegroup_number == int(record.values["_symmetry_Int_Tables_number"])
        back = T.record_to_crystal(record)
        assert sum(s.multiplicity for s in record.sites) == back.num_sites
        assert matcher.fit(crystal.to_pymatgen(), back.to_pymatgen())


def test_text_form_is_compact_and_symmetrised() -> None:
    rocksalt = load_dataset("perov5", "test", progress=False)[0]
    text = T.crystal_to_cif_text(rocksalt)
    lines = text.splitlines()
    assert lines[0].startswith("data_") and " " not in lines[0]
    assert lines[1].startswith("_symmetry_space_group_name_H-M ")
    assert "_symmetry_equiv_pos_as_xyz" not in text and "oxidation" not in text
    assert all(len(x.split(".")[1]) == 4 for x in lines[2].split()[1:])  # 4 decimals


def test_sg_symbol_is_one_token_and_elements_are_not_split(tokenizer) -> None:
    ids = tokenizer.encode("data_Cl2Co1\n_symmetry_space_group_name_H-M P6_3/mmc\n", eos=False)
    tokens = [tokenizer.vocab[i] for i in ids]
    assert tokens == ["data_", "Cl", "2", "Co", "1", "\n", "_symmetry_space_group_name_H-M", " ",
                      "SG:P6_3/mmc", "\n"]
    assert 350 < tokenizer.vocab_size < 600
    with pytest.raises(T.CifTextError, match="outside the vocabulary"):
        tokenizer.encode("data_Na1Cl1 ~")


def test_prompts() -> None:
    assert T.prompt() == "data_"
    assert T.prompt("NaCl") == "data_Na1Cl1\n"
    assert T.prompt("Na4Cl4", 225) == "data_Na4Cl4\n_symmetry_space_group_name_H-M Fm-3m\n"
    with pytest.raises(XtalgenError, match="1-230"):
        T.prompt("NaCl", 231)
    with pytest.raises(XtalgenError, match="needs a formula"):
        T.prompt(None, 225)


@pytest.mark.parametrize(("edit", "reason"), [
    (lambda t: t.replace("data_", "dta_", 1), "no data_ line"),
    (lambda t: t.replace("Pm-3m", "Xx-9"), "unknown space group"),
    (lambda t: t.replace("_cell_volume", "_cell_volumes"), "unknown line"),
    (lambda t: t.replace("_cell_length_a 3.", "_cell_length_a 3..", 1), "malformed number"),
    (lambda t: t.split("loop_")[0], "no atom sites"),
])
def test_bad_texts_give_a_reason(edit, reason: str) -> None:
    from xtalgen.crystal import Crystal

    cubic = Crystal(lattice=np.eye(3) * 3.9, frac_coords=[[0, 0, 0], [0.5, 0.5, 0.5]],
                    species=[38, 22])
    text = T.crystal_to_cif_text(cubic)
    assert "Pm-3m" in text
    with pytest.raises(T.CifTextError) as info:
        T.record_to_crystal(T.parse_cif_text(edit(text)))
    assert info.value.reason == reason
