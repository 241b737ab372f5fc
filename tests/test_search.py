"""Search generators: random symmetric search and prototype substitution (tiny budgets).

Relaxation tests use a Lennard-Jones potential (ASE) so that they run in well under a second;
CHGNet itself is exercised in tests/test_relax.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.models import load_generator
from xtalgen.search import PrototypeSubstitution, RandomSymmetricSearch, SearchBudget
from xtalgen.search.common import detect_spacegroup, distinct, min_distance_ok, parse_composition
from xtalgen.search.prototypes import map_species, prototype_key, reduced_counts

PROVENANCE = {"generator", "seed", "composition", "spacegroup_requested", "spacegroup",
              "n_potential_calls", "sample_index", "relaxed"}


@pytest.fixture(scope="module")
def lj_potential():
    """A cheap stand-in for CHGNet: Lennard-Jones with a 2.5 A minimum."""
    from ase.calculators.lj import LennardJones

    from xtalgen.relax import Potential

    return Potential("lj", LennardJones(sigma=2.5 / 2 ** (1 / 6), epsilon=0.1, rc=6.0))


def test_registered_names_load() -> None:
    assert isinstance(load_generator("random-search", relax=False), RandomSymmetricSearch)
    assert isinstance(load_generator("substitution", relax=False), PrototypeSubstitution)


def test_random_search_unrelaxed_respects_composition_and_group() -> None:
    search = RandomSymmetricSearch(relax=False, energies=False, progress=False, dedupe=False,
                                   formula_units=(4,))
    out = search.generate(3, composition="NaCl", spacegroup=225, seed=0)
    assert len(out) == 3
    for crystal in out:
        assert crystal.formula == "NaCl"
        assert set(crystal.properties) >= PROVENANCE
        assert crystal.properties["generator"] == "random-search"
        assert crystal.properties["spacegroup_requested"] == 225
        assert crystal.properties["spacegroup"] == 225  # Na and Cl on 4a/4b: always Fm-3m
        assert crystal.properties["n_potential_calls"] == 0
        assert min_distance_ok(crystal, factor=0.5)


def test_random_search_is_reproducible_and_seed_dependent() -> None:
    search = RandomSymmetricSearch(relax=False, energies=False, progress=False, dedupe=False,
                                   formula_units=(2,))
    a = search.generate(2, composition="Li2MnO3", seed=3)
    b = search.generate(2, composition="Li2MnO3", seed=3)
    c = search.generate(2, composition="Li2MnO3", seed=4)
    assert all(x.allclose(y) for x, y in zip(a, b))
    assert not all(x.allclose(y) for x, y in zip(a, c))
    assert all(x.num_sites == 12 and x.formula == "Li2MnO3" for x in a)


def test_random_search_relaxes_ranks_and_honours_budget(lj_potential) -> None:
    search = RandomSymmetricSearch(potential=lj_potential, max_steps=3, progress=False,
                                   candidates_per_structure=3, formula_units=(1,))
    out = search.generate(2, composition="Si", seed=1)
    energies = [c.properties["energy_per_atom"] for c in out]
    assert all(math.isfinite(e) for e in energies)
    assert energies == sorted(energies)
    assert all(1 <= c.properties["n_potential_calls"] <= 4 for c in out)
    assert all(c.properties["relaxed"] for c in out)

    tight = RandomSymmetricSearch(potential=lj_potential, max_steps=50, progress=False,
                                  candidates_per_structure=4, formula_units=(1,),
                                  budget=SearchBudget(max_potential_calls=5))
    with pytest.warns(UserWarning, match="budget"):
        few = tight.generate(4, composition="Si", seed=1)
    assert few and all(c.properties["search_potential_calls"] <= 5 for c in few)


def test_random_search_dng_draws_from_compositions() -> None:
    search = RandomSymmetricSearch(relax=False, energies=False, progress=False, dedupe=False,
                                   compositions=["NaCl", "SrTiO3"], max_atoms=10)
    out = search.generate(4, seed=0)
    assert {c.formula for c in out} <= {"NaCl", "SrTiO3"}
    assert all(c.properties["composition"] == c.formula for c in out)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"composition": "Xx2O"}, "composition"),
        ({"composition": "NaCl", "spacegroup": 231}, "1-230"),
        ({"composition": "NaCl0.5"}, "whole atom counts"),
        ({"composition": "SrTiO3", "spacegroup": 225}, "cannot hold"),
    ],
)
def test_random_search_bad_input(kwargs, message) -> None:
    search = RandomSymmetricSearch(relax=False, progress=False, formula_units=(1,))
    with pytest.raises(XtalgenError, match=message):
        search.generate(1, **kwargs)


def test_species_map_by_amount_and_chemistry() -> None:
    template = reduced_counts(np.array([38, 22, 8, 8, 8]))  # SrTiO3
    target = {56: 1, 40: 1, 16: 3}  # BaZrS3
    by_en = map_species(template, target, "electronegativity")
    assert by_en.mapping == {38: 56, 22: 40, 8: 16}
    assert map_species(template, target, "similarity").mapping == by_en.mapping
    assert map_species(template, {38: 1, 22: 1, 8: 3}).distance == 0.0


def test_substitution_perovskite_keeps_prototype(srtio3: Crystal, nacl: Crystal, cscl: Crystal) -> None:
    gen = PrototypeSubstitution(pool=[srtio3, nacl, cscl], relax=False, energies=False,
                                progress=False)
    (bazro3,) = gen.generate(1, composition="BaZrO3", seed=0)
    assert bazro3.formula == "BaZrO3"
    assert bazro3.properties["spacegroup"] == 221
    assert bazro3.properties["species_substitution"] == "Sr->Ba,Ti->Zr"
    assert bazro3.volume > srtio3.volume  # Ba, Zr are larger than Sr, Ti
    assert prototype_key(bazro3) == prototype_key(srtio3)

    kbr = gen.generate(2, composition="KBr", seed=0)
    assert [c.formula for c in kbr] == ["KBr", "KBr"]
    assert {c.properties["spacegroup"] for c in kbr} == {221, 225}  # both AB prototypes, once each


def test_substitution_exact_composition_is_retrieved_first(nacl: Crystal, cscl: Crystal) -> None:
    gen = PrototypeSubstitution(pool=[cscl, nacl], relax=False, energies=False, progress=False)
    best = gen.generate(1, composition="NaCl")[0]
    assert best.properties["template_material_id"] == "mp-22862"
    assert best.properties["substitution_distance"] == 0.0
    assert np.isclose(best.volume, nacl.volume)


def test_substitution_without_template_is_a_clear_error(nacl: Crystal) -> None:
    gen = PrototypeSubstitution(pool=[nacl], relax=False, progress=False)
    with pytest.raises(XtalgenError, match="no template for Li2MnO3"):
        gen.generate(1, composition="Li2MnO3")
    with pytest.raises(XtalgenError, match="species_map"):
        PrototypeSubstitution(pool=[nacl], species_map="random")


def test_substitution_relaxed_with_energies(srtio3: Crystal, lj_potential) -> None:
    gen = PrototypeSubstitution(pool=[srtio3], potential=lj_potential, max_steps=2, progress=False)
    (out,) = gen.generate(1, composition="CaTiO3")
    assert out.properties["relaxed"] and math.isfinite(out.properties["energy_per_atom"])
    assert out.properties["n_potential_calls"] <= 3


def test_substitution_dng_proposes_new_compositions(srtio3: Crystal, nacl: Crystal) -> None:
    gen = PrototypeSubstitution(pool=[srtio3, nacl], relax=False, energies=False,
                                progress=False, dedupe=False)
    out = gen.generate(6, seed=0)
    assert len(out) == 6
    known = {"SrTiO3", "NaCl"}
    assert all(c.formula not in known for c in out)
    assert all(c.properties["composition"] == c.formula for c in out)
    assert len({c.formula for c in out}) > 1


def test_configs_share_the_scoring_fields() -> None:
    from xtalgen.search import EvolutionConfig, RandomSearchConfig, SubstitutionConfig
    from xtalgen.search.scoring import RelaxSettings, ScoringConfig

    for cls in (RandomSearchConfig, SubstitutionConfig, EvolutionConfig):
        assert issubclass(cls, ScoringConfig)
        cfg = cls(relax=False, max_steps=7, fmax=0.05)
        assert cfg.relax_settings() == RelaxSettings(False, True, "chgnet", 0.05, 7)
    assert EvolutionConfig().max_steps == 100 and SubstitutionConfig().max_steps == 300
    assert SubstitutionConfig(None, "electronegativity").species_map == "electronegativity"


def test_helpers(nacl: Crystal, si: Crystal) -> None:
    assert detect_spacegroup(nacl) == (225, "Fm-3m")
    assert detect_spacegroup(si)[0] == 227
    assert parse_composition({"Na": 1, "Cl": 1}).reduced_formula == "NaCl"
    squeezed = nacl.replace(lattice=np.eye(3) * 2.0)
    assert min_distance_ok(nacl) and not min_distance_ok(squeezed)
    assert len(distinct([nacl, nacl, si])) == 2


def test_evolution_improves_on_its_initial_population(lj_potential) -> None:
    from xtalgen.search import EvolutionarySearch

    ga = EvolutionarySearch(potential=lj_potential, population_size=3, offspring_per_generation=3,
                            n_generations=2, max_steps=2, progress=False, formula_units=(2,))
    out = ga.generate(3, composition="NaCl", seed=0)
    assert 1 <= len(out) <= 3
    energies = [c.properties["energy_per_atom"] for c in out]
    assert energies == sorted(energies)
    assert all(c.formula == "NaCl" and c.num_sites == 4 for c in out)
    assert {c.properties["generator"] for c in out} == {"evolution"}
    assert 3 < out[0].properties["n_evaluated"] <= 3 + 2 * 3
    assert out[0].properties["search_potential_calls"] <= out[0].properties["n_evaluated"] * 3
    assert all(c.properties["operator"] in {"random", "symmetric", "strain", "permutation",
                                            "crossover"} for c in out)
    again = ga.generate(3, composition="NaCl", seed=0)
    assert [c.properties["energy_per_atom"] for c in again] == pytest.approx(energies)


def test_evolution_needs_a_composition_and_energies() -> None:
    from xtalgen.search import EvolutionarySearch

    with pytest.raises(XtalgenError, match="composition"):
        EvolutionarySearch(progress=False).generate(1)
    with pytest.raises(XtalgenError, match="energies"):
        EvolutionarySearch(relax=False, energies=False)
    with pytest.raises(XtalgenError, match="operators"):
        EvolutionarySearch(operator_weights={"teleport": 1.0})


def test_operators_preserve_composition(nacl: Crystal, si: Crystal) -> None:
    from xtalgen.search import operators

    rng = np.random.default_rng(0)
    strained = operators.lattice_strain(nacl, rng, sigma=0.2)
    assert np.isclose(strained.volume, nacl.volume)
    assert not np.allclose(strained.lattice, nacl.lattice)
    swapped = operators.permutation(nacl, rng, n_swaps=1)
    assert sorted(swapped.species) == sorted(nacl.species)
    assert not np.array_equal(swapped.species, nacl.species)
    assert operators.permutation(si, rng) is None
    for _ in range(5):
        child = operators.cut_and_splice(nacl, strained, rng)
        assert child is not None and child.formula == "NaCl" and child.num_sites == 8
    mutated = [operators.symmetric_mutation(nacl, np.random.default_rng(i)) for i in range(4)]
    mutated = [m for m in mutated if m is not None]
    assert mutated and all(m.formula == "NaCl" for m in mutated)
    assert any(not np.allclose(m.lattice, nacl.lattice) for m in mutated)
    first = operators.symmetric_mutation(nacl, np.random.default_rng(7))
    second = operators.symmetric_mutation(nacl, np.random.default_rng(7))
    assert (first is None and second is None) or first.allclose(second)


class _ReversedExecutor:
    """Executor stand-in: runs tasks in this process, yielding them in reverse order."""

    name = "reversed"
    n_workers = 3

    def imap_unordered(self, fn, items):
        import pickle

        return [fn(pickle.loads(pickle.dumps(item))) for item in reversed(list(items))]

    def close(self) -> None:
        pass


def test_scoring_through_an_executor_matches_in_process(srtio3: Crystal, nacl: Crystal) -> None:
    from ase.calculators.lj import LennardJones

    from xtalgen.relax import Potential, register_potential
    from xtalgen.search.common import BudgetTracker
    from xtalgen.search.scoring import RelaxSettings, score_crystals

    register_potential("lj-search-test", lambda: Potential("lj", LennardJones(sigma=2.2, rc=6.0)))
    crystals = [srtio3, nacl, srtio3.replace(lattice=np.eye(3) * 4.1), nacl]
    settings = RelaxSettings(potential="lj-search-test", max_steps=2)
    serial = score_crystals(crystals, settings, BudgetTracker(None))
    tracker = BudgetTracker(None)
    parallel = score_crystals(crystals, settings, tracker, executor=_ReversedExecutor())
    assert [s.energy_per_atom for s in parallel] == pytest.approx([s.energy_per_atom for s in serial])
    assert tracker.potential_calls == sum(s.n_potential_calls for s in serial)
    limited = score_crystals(crystals, settings, BudgetTracker(SearchBudget(max_potential_calls=3)),
                             executor=_ReversedExecutor())
    assert len(limited) == 3  # one round of 3 workers sharing 3 calls, then the budget is spent
    assert [s.n_potential_calls for s in limited] == [1, 1, 1]


def test_spacegroup_prior_steers_the_draw() -> None:
    from xtalgen.search.symmetric import compatible_spacegroups, pick_spacegroup

    rng = np.random.default_rng(0)
    options = compatible_spacegroups((4, 4))
    assert 225 in options and 1 in options and 230 not in options
    picks = [pick_spacegroup([4, 4], rng, weights={225: 1.0, 221: 1e-9}) for _ in range(50)]
    assert picks.count(225) >= 40  # groups missing from the prior keep only a floor weight
    assert pick_spacegroup([4, 4], rng, allowed=[230]) is None
    search = RandomSymmetricSearch(relax=False, energies=False, progress=False, dedupe=False,
                                   formula_units=(4,), spacegroup_weights={225: 1.0})
    drawn = [c.properties["spacegroup_drawn"] for c in search.generate(6, composition="NaCl", seed=2)]
    assert drawn.count(225) >= 4
