"""The GFlowNet over the Wyckoff grammar: on an enumerable toy it samples in proportion to the
reward; it trains through the one training loop, checkpoints, loads and samples complete valid
crystals of its chemical system; invalid terminals get the floor and are counted; bad input is
one clear error."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from xtalgen.crystal import Crystal, atomic_number
from xtalgen.errors import XtalgenError
from xtalgen.models import load_model
from xtalgen.models.checkpoint import read_checkpoint
from xtalgen.models.gflownet.env import CrystalEnv, CrystalEnvConfig, chemical_system
from xtalgen.models.gflownet.losses import trajectory_balance
from xtalgen.models.gflownet.model import (
    GFlowNet,
    GFlowNetConfig,
    GFlowNetGenerator,
    ReplayBuffer,
)
from xtalgen.models.gflownet.policy import Trajectory
from xtalgen.models.gflownet.rewards import ToyReward, make_reward
from xtalgen.models.gflownet.toy import sampled_vs_reward, toy_env_config
from xtalgen.nn.transformer import TransformerConfig
from xtalgen.pipelines.gflownet import train_toy

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(d_model: int = 32) -> TransformerConfig:
    return TransformerConfig(d_model=d_model, num_layers=1, num_heads=2, dropout=0.0)


def trajectories_of(env: CrystalEnv, sequences) -> list[Trajectory]:
    out = []
    for ids in sequences:
        _, slots, masks = env.replay(ids)
        out.append(Trajectory(list(ids), slots, masks))
    return out


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gflownet-toy")
    train_toy(out, steps=300)  # the toy of xtalgen.models.gflownet.toy, through the one loop
    return out


def test_toy_samples_in_proportion_to_the_reward(toy_run: Path) -> None:
    generator = load_model(toy_run / "last.pt")
    assert isinstance(generator, GFlowNetGenerator)
    env = generator.model.env
    result = sampled_vs_reward(generator.model, n=4000, seed=1)
    terminals = result["terminals"]
    assert 100 < len(terminals) < 400 and result["n_samples"] == 4000
    # coincident atoms are masked in this toy: every terminal is a valid crystal
    assert all(env.decode(ids)[0] is not None for ids in terminals)
    assert result["outside"] == 0  # every sample is one of the enumerated terminals
    assert result["target"].sum() == pytest.approx(1.0)
    assert result["correlation"] > 0.9, result["correlation"]
    # log Z learned close to log(sum R) (normalised here by the exact enumeration)
    assert abs(result["log_z"] - result["log_total"]) < 1.0


def test_checkpoint_records_the_family_and_the_loop_logged_tb_terms(toy_run: Path) -> None:
    payload = read_checkpoint(toy_run / "last.pt")
    assert payload["family"] == "gflownet" and payload["step"] == 300
    config = GFlowNetConfig.from_dict(payload["model_config"])
    assert config.env.elements == [11, 17] and config.reward == "toy"
    last = (toy_run / "log.jsonl").read_text().splitlines()[-1]
    for key in ("loss", "grad_norm", "log_z", "mean_log_reward", "valid_fraction"):
        assert f'"{key}"' in last


def test_forward_policy_is_a_distribution_over_the_tree() -> None:
    """P_B = 1: the terminals' trajectory probabilities sum to one, and TB is zero exactly when
    log Z + log P_F = log R."""
    torch.manual_seed(0)
    model = GFlowNet(GFlowNetConfig(env=toy_env_config(), transformer=tiny(), reward="toy"))
    terminals = model.env.terminals()
    with torch.no_grad():
        log_pf = model.policy.log_prob(trajectories_of(model.env, terminals), model.env.vocab.pad)
    assert float(log_pf.exp().sum()) == pytest.approx(1.0, abs=1e-4)
    log_r = log_pf + 2.0
    assert float(trajectory_balance(torch.tensor(2.0), log_pf, log_r)) == pytest.approx(0.0, abs=1e-9)


def test_invalid_terminals_get_the_floor_and_are_counted() -> None:
    overlapping = ["<bos>", "SG99", "Na", "N1", "Cl", "N1", "<sep>", "WYK_a", "Na", "X0",
                   "WYK_a", "Cl", "X0", "<stop>", "LEN6", "LEN6"]
    env = CrystalEnv(toy_env_config())
    ids = env.tokenizer.ids_from_tokens(overlapping)
    with pytest.raises(XtalgenError, match="not a legal action"):  # masked: same position
        env.replay(ids)
    env = CrystalEnv(toy_env_config(mask_coincident=False))
    env.replay(ids)
    fine = env.tokenizer.ids_from_tokens([*overlapping[:12], "X1", *overlapping[13:]])
    scored = env.score([ids, fine], ToyReward())
    assert scored.log_rewards[0] == -10.0 and scored.reasons[0].startswith("atoms closer")
    assert scored.reasons[1] == "" and scored.log_rewards[1] > -10.0
    assert env.invalid == Counter({scored.reasons[0]: 1}) and env.n_reward_evaluations == 1
    env.score([ids, fine], ToyReward())  # cached: neither decoded nor rewarded again
    assert env.n_terminals == 2 and env.n_reward_evaluations == 1


def test_replay_buffer_keeps_the_best_distinct_terminals() -> None:
    buffer = ReplayBuffer(2)
    for key, value in (((1,), -3.0), ((2,), -1.0), ((2,), -1.0), ((3,), -2.0), ((4,), -5.0)):
        buffer.add(key, value)
    assert len(buffer) == 2 and buffer.best(2) == [((2,), -1.0), ((3,), -2.0)]


@pytest.fixture(scope="module")
def system_run(tmp_path_factory) -> Path:
    """A tiny GFlowNet in Li-Mn-O with the toy reward through the CLI (the one loop)."""
    from xtalgen.cli.main import main

    out = tmp_path_factory.mktemp("gflownet-limno")
    main(["gflownet", "train", "--system", "Li-Mn-O", "--reward", "toy", "--steps", "8",
          "--max-atoms", "6", "--hidden-dim", "32", "--num-layers", "1", "--batch-size", "8",
          "--spacegroups", "1-20,225", "--threads", "1", "--out", str(out)])
    return out


def test_samples_are_complete_valid_crystals_of_the_system(system_run: Path) -> None:
    generator = load_model(system_run / "last.pt", batch_size=16)
    crystals = generator.generate(12, seed=3)
    report = generator.last_report
    assert report["requested"] == 12
    assert len(crystals) + report["given_up"] == 12  # nothing dropped silently
    allowed = {atomic_number(s) for s in ("Li", "Mn", "O")}
    for crystal in crystals:
        assert isinstance(crystal, Crystal) and crystal.num_sites <= 6
        assert set(int(z) for z in crystal.species) <= allowed
        assert crystal.properties["generator"] == "gflownet"
        assert crystal.properties["system"] == "Li-Mn-O" and crystal.properties["wyckoff"]
    again = load_model(system_run / "last.pt", batch_size=16).generate(12, seed=3)
    assert [c.formula for c in again] == [c.formula for c in crystals]  # seeded
    scored = load_model(system_run / "last.pt", with_reward=True).generate(3, seed=0)
    assert all(np.isfinite(c.properties["log_reward"]) for c in scored)


def test_sample_command_reads_a_gflownet_checkpoint(system_run: Path, tmp_path: Path) -> None:
    from xtalgen.cli.main import main
    from xtalgen.io import read

    main(["sample", str(system_run / "last.pt"), "--n", "5", "--out", str(tmp_path)])
    assert len(read(tmp_path / "samples.extxyz")) == 5


def test_save_and_load_round_trip(system_run: Path, tmp_path: Path) -> None:
    generator = load_model(system_run / "last.pt")
    generator.save(tmp_path / "copy.pt")
    copy = load_model(tmp_path / "copy.pt")
    assert isinstance(copy, GFlowNetGenerator)
    for (k, a), b in zip(generator.model.state_dict().items(), copy.model.state_dict().values()):
        assert torch.equal(a, b), k


@pytest.mark.parametrize("argv, message", [
    (["--system", "Li-Xx-O"], "unknown element 'Xx'"),
    (["--system", ""], "names no element"),
    (["--system", "Li-O", "--reward", "no-such-reward"], "unknown reward"),
    (["--system", "Li-O", "--spacegroups", "0-3"], "1-230"),
    (["--system", "Po-O"], "never saw Po"),
])
def test_bad_input_is_one_clear_error(argv, message, tmp_path: Path, capsys) -> None:
    from xtalgen.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(["gflownet", "train", *argv, "--steps", "1", "--out", str(tmp_path)])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and message in err[-1], err


def test_python_api_errors() -> None:
    with pytest.raises(XtalgenError, match="unknown element"):
        chemical_system(["Li", "Qq"])
    with pytest.raises(XtalgenError, match="needs a chemical system"):
        CrystalEnv(CrystalEnvConfig(elements=[]))
    with pytest.raises(XtalgenError, match="beta"):
        make_reward("toy", beta=-1.0)
    generator = GFlowNetGenerator(GFlowNet(GFlowNetConfig(env=toy_env_config(), transformer=tiny())))
    with pytest.raises(XtalgenError, match="no --composition"):
        generator.generate(2, composition="NaCl")
    with pytest.raises(XtalgenError, match="not in its action space"):
        generator.generate(2, spacegroup=225)
    (crystal,) = generator.generate(1, spacegroup=221, seed=0)
    assert crystal.properties["spacegroup_requested"] == 221


def test_chgnet_rewards_score_tiny_structures() -> None:
    """Formation energy (single point) against the hull's references, charge neutrality as a
    hard term (CHGNet bundled in its wheel: no download)."""
    from xtalgen.properties.rewards import CHGNetFormationEnergyReward

    reward = make_reward("chgnet-formation-energy", beta=5.0)
    assert isinstance(reward, CHGNetFormationEnergyReward)
    rocksalt = Crystal(np.eye(3) * 5.64, [[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0],
                                          [.5, 0, 0], [0, .5, 0], [0, 0, .5], [.5, .5, .5]],
                       [11] * 4 + [17] * 4)
    salty = Crystal(np.eye(3) * 4.0, [[0, 0, 0], [.5, .5, .5], [0, .5, .5]], [11, 17, 17])
    assert reward.invalid_reasons([rocksalt, salty]) == [None, "not charge neutral"]
    energy = float(reward.energies([rocksalt])[0])
    assert -3.0 < energy < -1.0  # eV/atom; NaCl's formation energy is about -2.1
    assert float(reward([rocksalt])[0]) == pytest.approx(-5.0 * energy)


def test_training_stops_at_the_reward_evaluation_budget(tmp_path: Path) -> None:
    """``max_reward_evaluations`` ends training through the loop's ``training_done`` hook; the
    count is saved, so a resumed run does not spend the budget again."""
    from xtalgen.pipelines.gflownet import train_gflownet

    options = dict(reward="toy", steps=200, max_reward_evaluations=20, max_atoms=2,
                   spacegroups="99,221", hidden_dim=32, num_layers=1, batch_size=8,
                   progress=False)
    path = train_gflownet("Na-Cl", tmp_path, **options)
    payload = read_checkpoint(path)
    used = int(payload["state_dict"]["reward_evaluations"])
    assert 20 <= used < 20 + 8 and payload["step"] < 200
    again = read_checkpoint(train_gflownet("Na-Cl", tmp_path, **options))
    assert again["step"] == payload["step"]  # resumed: the budget is already spent
    assert GFlowNetConfig.from_dict(again["model_config"]).max_reward_evaluations == 20
