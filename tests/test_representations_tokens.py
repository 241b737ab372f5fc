"""Token sequences: fixed vocabulary, round trip up to discretisation, bad sequences."""

from __future__ import annotations

import pytest
from pymatgen.analysis.structure_matcher import StructureMatcher

from test_representations_examples import EXAMPLES, nacl
from xtalgen.errors import XtalgenError
from xtalgen.representations import tokens as T
from xtalgen.representations import wyckoff as W


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_round_trip_up_to_discretisation(name) -> None:
    crystal = EXAMPLES[name]()
    ids = T.encode(crystal)
    assert all(isinstance(i, int) for i in ids)
    decoded = T.decode(ids)
    assert StructureMatcher().fit(decoded.to_pymatgen(), crystal.to_pymatgen())
    # tokens of the decoded crystal's representation are the same sequence
    tok = T.WyckoffTokenizer()
    rep = tok.detokenize(tok.tokens_from_ids(ids))
    assert T.encode(rep) == ids
    assert rep.compact == W.encode(crystal).compact


def test_nacl_tokens() -> None:
    tok = T.WyckoffTokenizer()
    tokens = tok.tokenize(W.encode(nacl()))
    # 5.64 A / 0.05 = LEN113 (rounded), 90 deg / 0.5 = ANG180
    assert tokens == ["<bos>", "SG225", "LEN113", "LEN113", "LEN113", "ANG180", "ANG180", "ANG180",
                      "Na", "WYK_a", "Cl", "WYK_b", "<eos>"]  # fmt: skip
    assert tok.ids_from_tokens(tokens)[0] == tok.bos_id


def test_vocabulary_is_fixed_and_unique() -> None:
    tok = T.WyckoffTokenizer()
    assert len(set(tok.vocab)) == tok.vocab_size
    assert tok.vocab[:4] == list(T.SPECIAL_TOKENS)
    assert tok.vocab == T.WyckoffTokenizer().vocab
    small = T.WyckoffTokenizer(T.TokenizerConfig(coord_bins=10))
    assert small.vocab_size == tok.vocab_size - 90


def test_free_coordinates_are_discretised() -> None:
    rep = W.encode(EXAMPLES["pyxtal"]())
    tok = T.WyckoffTokenizer(T.TokenizerConfig(coord_bins=20))
    back = tok.detokenize(tok.tokenize(rep))
    for a, b in zip(rep.sites, back.sites):
        assert a.label == b.label and a.element == b.element
        for x, y in zip(a.free_params, b.free_params):
            assert abs((x - y + 0.5) % 1 - 0.5) <= 0.025 + 1e-12
            assert (y * 20) == round(y * 20)


def test_pad_and_decode_padded() -> None:
    tok = T.WyckoffTokenizer()
    seqs = [tok.encode(EXAMPLES[n]()) for n in ("NaCl", "SrTiO3")]
    padded = tok.pad(seqs)
    assert padded.shape == (2, max(map(len, seqs)))
    assert padded[0, len(seqs[0]) :].eq(tok.pad_id).all()
    # a padded row still decodes (everything after <eos> is ignored)
    assert tok.decode(padded[0].tolist()).formula == "NaCl"
    assert tok.pad(seqs, max_len=5).shape == (2, 5)


def test_bad_sequences() -> None:
    tok = T.WyckoffTokenizer()
    good = tok.tokenize(W.encode(nacl()))
    with pytest.raises(XtalgenError, match="expected an element"):
        tok.detokenize([*good[:-1], "X5", "<eos>"])
    with pytest.raises(XtalgenError, match="no Wyckoff position"):
        tok.detokenize([*good[:9], "WYK_z", "<eos>"])
    with pytest.raises(XtalgenError, match="expected a LEN"):
        tok.detokenize(["<bos>", "SG225", "Na"])
    with pytest.raises(XtalgenError, match="vocabulary"):
        tok.ids_from_tokens(["SG231"])
    with pytest.raises(XtalgenError, match="ids"):
        tok.tokens_from_ids([tok.vocab_size])
