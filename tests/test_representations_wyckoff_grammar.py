"""The Wyckoff token grammar: sequences round-trip, and its masks make every sequence legal."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.analysis.structure_matcher import StructureMatcher

from xtalgen.crystal import Crystal
from xtalgen.data import load_dataset
from xtalgen.errors import XtalgenError
from xtalgen.representations import wyckoff as W
from xtalgen.representations import wyckoff_grammar as G
from xtalgen.representations.tokens import TokenizerConfig, WyckoffTokenizer

TOKENIZER = WyckoffTokenizer(TokenizerConfig(max_count=20))
VOCAB = G.VocabIndex(TOKENIZER)


@pytest.fixture(scope="module")
def mp20_reps() -> list[tuple[Crystal, W.WyckoffRepresentation]]:
    crystals = list(load_dataset("mp20", "offline_val", progress=False))[:60]
    reps = W.encode_many(crystals, progress=False, cache=False, n_jobs=1)
    return [(c, r) for c, r in zip(crystals, reps) if r is not None]


def test_space_group_tables() -> None:
    fm3m = G.sg_table(225)
    assert fm3m.letters[:2] == ("a", "b") and fm3m.multiplicities[:3] == (4, 4, 8)
    assert fm3m.centring == 4 and not fm3m.has_free(0) and fm3m.free_axes[-1] == (0, 1, 2)
    assert G.sg_table(166).centring == 3 and G.sg_table(1).multiplicities == (1,)
    # 225 holds 4 (4a), 8 (4a + 4b, or 8c), 12 (4a + 8c), but not 2 or 6
    assert [fm3m.can_hold(c, 0) for c in (2, 4, 6, 8, 12)] == [False, True, False, True, True]


def test_realizable_shares_special_positions_between_elements() -> None:
    # rock salt: Na on 4a, Cl on 4b
    assert G.realizable(225, {11: 1, 17: 1})
    # three elements of one atom each: 225 has only two 4-fold special positions
    assert not G.realizable(225, {11: 1, 17: 1, 19: 1})
    # a perovskite ABX3 (5 atoms) fits 221 (1a, 1b, 3c) but not 225 (no 12-fold position)
    assert G.realizable(221, {38: 1, 22: 1, 8: 3}) and not G.realizable(225, {38: 1, 22: 1, 8: 3})
    assert all(G.realizable(1, {z: c}) for z, c in ((1, 1), (8, 7)))


def test_sequences_round_trip_and_replay_legally(mp20_reps) -> None:
    matcher = StructureMatcher()
    for crystal, rep in mp20_reps:
        tokens, slots = G.to_sequence(rep, TOKENIZER)
        assert len(tokens) == len(slots)
        back = G.from_sequence(tokens, TOKENIZER)
        assert back.spacegroup == rep.spacegroup and back.compact.count("|") == rep.compact.count("|")
        assert matcher.fit(crystal.to_pymatgen(), W.decode(back, primitive=True).to_pymatgen())
        state = G.SequenceState(VOCAB, elements=range(1, 95), max_atoms=20, max_elements=8)
        for token, slot in zip(tokens[1:], slots[1:]):
            assert state.slot == slot, (rep.compact, token)
            token_id = TOKENIZER.token_to_id[token]
            assert state.allowed()[token_id], (rep.compact, token)
            state.advance(token_id)
        assert state.done and state.failed is None


def test_lattice_slots_follow_the_crystal_system(mp20_reps) -> None:
    for _, rep in mp20_reps:
        tokens, slots = G.to_sequence(rep, TOKENIZER)
        lattice = slots[tokens.index("<stop>") + 1:]
        assert tuple(lattice) == G.LATTICE_SLOTS[rep.crystal_system]


def random_walk(state: G.SequenceState, rng: np.random.Generator) -> G.SequenceState:
    """Follow the grammar with uniformly random legal tokens."""
    while not state.done:
        allowed = np.flatnonzero(state.allowed())
        state.advance(int(rng.choice(allowed)) if len(allowed) else -1)
    return state


@pytest.mark.parametrize("spacegroup", [None, 2, 62, 139, 166, 194, 225, 227])
def test_random_legal_sequences_decode(spacegroup: int | None) -> None:
    rng = np.random.default_rng(spacegroup or 0)
    for _ in range(15):
        state = random_walk(G.SequenceState(VOCAB, elements=[3, 8, 25, 26], max_atoms=12,
                                            max_elements=3, spacegroup=spacegroup), rng)
        assert state.failed is None
        rep = G.from_sequence(state.tokens, TOKENIZER)
        assert spacegroup is None or rep.spacegroup == spacegroup
        comp = G.primitive_composition(rep)
        assert sum(comp.values()) <= 12 and len(comp) <= 3
        assert set(comp) <= {3, 8, 25, 26}


def test_forced_composition_is_met_exactly() -> None:
    rng = np.random.default_rng(1)
    composition = {3: 2, 25: 2, 8: 4}  # Li2Mn2O4
    assert not G.realizable(62, composition)  # Pnma's positions hold 4 or 8 atoms, never 2
    for spacegroup in (1, 2, 12, 14, 166):
        assert G.realizable(spacegroup, composition)
        for _ in range(5):
            state = random_walk(G.SequenceState(VOCAB, elements=[3, 8, 25], max_atoms=20,
                                                max_elements=3, spacegroup=spacegroup,
                                                composition=composition), rng)
            assert state.failed is None
            rep = G.from_sequence(state.tokens, TOKENIZER)
            assert G.primitive_composition(rep) == {3: 2, 8: 4, 25: 2}


def test_malformed_sequences_are_one_error() -> None:
    with pytest.raises(XtalgenError, match="Wyckoff sequence"):
        G.from_sequence(["<bos>", "SG225", "Na", "N1"], TOKENIZER)
