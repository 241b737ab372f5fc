"""``xtalgen train``: train a generator of any learned family, or a property predictor, on a
dataset split.

``--model flow|diffusion --conditions chemical_system,spacegroup,band_gap,formation_energy``
trains a model for classifier-free guidance (:mod:`xtalgen.models.iterative.generative`): the
conditions are read from each training crystal (elements, the space group from the dataset's
column or spglib at symprec 0.1, the ``band_gap`` and ``formation_energy_per_atom`` columns)
and each is dropped with probability ``--cond-dropout``.

``--model vae`` trains the CDVAE-style VAE (:mod:`xtalgen.models.oneshot.vae_model`; de novo,
``--task`` does not apply) with ``--latent-dim``, ``--beta`` and ``--kl-anneal-steps``; its
property head learns the dataset's label where there is one (MP-20 formation energy).

``--model gan`` trains the WGAN-GP (:mod:`xtalgen.models.oneshot.gan`; de novo, ``--task``
does not apply) with ``--n-critic`` and ``--gp-weight``; ``--batch-size`` real crystals per
generator update. GANs usually want ``--lr 1e-4``.

``--model predictor --property formation_energy|band_gap|synthesizability`` trains a property
predictor (:mod:`xtalgen.properties.predictor`, whose docstring has the commands of the three
shipped ones) through the same loop; afterwards its validation metrics (MAE; for
synthesisability the PU ROC-AUC and recall) are written into the checkpoints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xtalgen.errors import XtalgenError


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)


def train_command(
    dataset: Annotated[str, typer.Option("--dataset", help="Dataset name (perov5, mp20, ...) or path.")],
    out: Annotated[Path, typer.Option("--out", help="Run folder (checkpoints, log.jsonl).")],
    model: Annotated[str, typer.Option("--model", help="diffusion (DiffCSP), flow (FlowMM), wyckoff (the Wyckoff-token transformer, CrystalFormer-style), cif-lm (a language model over symmetrised CIF text, CrystaLLM-style) predictor (a property predictor on the shared backbone; needs --property), vae (CDVAE-style variational autoencoder, DNG; decoder: the flow conditioned on z) or gan (a WGAN-GP, DNG; critic: the shared backbone).")] = "diffusion",
    task: Annotated[str, typer.Option("--task", help="csp (composition given) or dng (de novo); a wyckoff or cif-lm model serves both.")] = "csp",
    lattice_repr: Annotated[str, typer.Option("--lattice-repr", help="ks (rotation-free log form) or matrix (DiffCSP).")] = "ks",
    type_path: Annotated[str, typer.Option("--type-path", help="Flow DNG atom types: masked (discrete, absorbing state) or analog (continuous one-hot).")] = "masked",
    split: Annotated[str, typer.Option("--split", help="Training split.")] = "offline_train",
    val_split: Annotated[str, typer.Option("--val-split", help="Validation split ('' for none).")] = "offline_val",
    max_steps: Annotated[int, typer.Option("--max-steps")] = 100_000,
    max_time: Annotated[float, typer.Option("--max-time", help="Stop after this many seconds (0: no limit).")] = 0.0,
    lr_schedule: Annotated[str, typer.Option("--lr-schedule", help="Cosine decay over --max-steps (steps) or over the --max-time budget (time).")] = "steps",
    batch_size: Annotated[int, typer.Option("--batch-size")] = 64,
    lr: Annotated[float, typer.Option("--lr", help="Peak AdamW learning rate.")] = 5e-4,
    hidden_dim: Annotated[int, typer.Option("--hidden-dim", help="Backbone width (wyckoff, cif-lm: transformer d_model, heads of 32).")] = 256,
    num_layers: Annotated[int, typer.Option("--num-layers")] = 4,
    dropout: Annotated[float, typer.Option("--dropout", help="wyckoff, cif-lm: transformer dropout.")] = 0.1,
    val_every: Annotated[int, typer.Option("--val-every")] = 1000,
    checkpoint_every: Annotated[float, typer.Option("--checkpoint-every", help="Seconds between checkpoints.")] = 300.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    device: Annotated[str, typer.Option("--device")] = "cpu",
    threads: Annotated[int, typer.Option("--threads", help="torch CPU threads (0: torch default).")] = 0,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Continue from OUT/last.pt.")] = True,
    prop: Annotated[str, typer.Option("--property", help="predictor: formation_energy (eV/atom), band_gap (eV) or synthesizability (PU learning on the theoretical flag).")] = "",
    holdout: Annotated[float, typer.Option("--holdout", help="predictor: hold out this seeded fraction of the training crystals as the validation set (instead of --val-split).")] = 0.0,
    unlabelled: Annotated[str, typer.Option("--unlabelled", help="synthesizability: NAME:SPLIT (or path) of crystals added as unlabelled (theoretical), minus the material_ids of the training split.")] = "",
    max_atoms: Annotated[int, typer.Option("--max-atoms", help="predictor: keep only crystals with at most this many sites (0: all).")] = 0,
    class_prior: Annotated[float, typer.Option("--class-prior", help="synthesizability: assumed share of synthesisable crystals among the unlabelled (nnPU's pi).")] = 0.5,
    conditions: Annotated[str, typer.Option("--conditions", help="diffusion, flow: train for classifier-free guidance on these comma-separated conditions: chemical_system, spacegroup, band_gap, formation_energy (then `xtalgen sample --chemical-system/--spacegroup/--condition --guidance`).")] = "",
    cond_dropout: Annotated[float, typer.Option("--cond-dropout", help="With --conditions: probability of dropping each condition per crystal in training (its null embedding; MatterGen uses 0.2).")] = 0.2,
    latent_dim: Annotated[int, typer.Option("--latent-dim", help="vae: size of the latent z (CDVAE: 256).")] = 256,
    beta: Annotated[float, typer.Option("--beta", help="vae: KL weight after annealing (CDVAE: 0.01).")] = 0.01,
    kl_anneal_steps: Annotated[int, typer.Option("--kl-anneal-steps", help="vae: steps of the linear ramp of the KL weight from 0 to --beta.")] = 2000,
    n_critic: Annotated[int, typer.Option("--n-critic", help="gan: critic updates per generator update, each on 1/n of --batch-size.")] = 5,
    gp_weight: Annotated[float, typer.Option("--gp-weight", help="gan: weight of the WGAN-GP gradient penalty.")] = 10.0,
) -> None:
    """Train a generator; interrupt at any time and rerun the same command to resume."""
    from xtalgen.data import load_dataset
    from xtalgen.models.autoregressive.cif_lm import CifLMConfig
    from xtalgen.models.autoregressive.wyckoff import WyckoffConfig
    from xtalgen.models.checkpoint import git_commit
    from xtalgen.models.iterative.flow import TYPE_PATHS, FlowConfig
    from xtalgen.models.iterative.generative import ModelConfig
    from xtalgen.nn.backbone import BackboneConfig
    from xtalgen.nn.transformer import TransformerConfig
    from xtalgen.train import TrainConfig, train

    if type_path not in TYPE_PATHS:
        raise XtalgenError(f"--type-path must be one of {', '.join(TYPE_PATHS)}, got {type_path!r}")
    if lr_schedule not in ("steps", "time"):
        raise XtalgenError(f"--lr-schedule must be steps or time, got {lr_schedule!r}")
    if lr_schedule == "time" and not max_time:
        raise XtalgenError("--lr-schedule time needs --max-time (the time budget in seconds)")
    if model not in ("diffusion", "flow", "wyckoff", "cif-lm", "predictor", "vae", "gan"):
        raise XtalgenError(f"--model must be diffusion, flow, wyckoff, cif-lm, predictor, vae or gan, got {model!r}")
    if model == "predictor" and not prop:
        raise XtalgenError("--model predictor needs --property formation_energy, band_gap or "
                           "synthesizability")
    if model != "predictor" and (prop or holdout or unlabelled or max_atoms):
        raise XtalgenError("--property, --holdout, --unlabelled and --max-atoms are options of "
                           "--model predictor")
    from xtalgen.conditions import condition_name

    condition_names = [condition_name(c) for c in conditions.split(",") if c.strip()]
    if not 0 <= cond_dropout < 1:
        raise XtalgenError(f"--cond-dropout must be in [0, 1), got {cond_dropout}")
    if condition_names and model not in ("diffusion", "flow"):
        raise XtalgenError(f"--conditions is an option of --model flow and diffusion, not {model}")
    if not 0 <= holdout < 1:
        raise XtalgenError(f"--holdout must be in [0, 1), got {holdout}")
    if model in ("wyckoff", "cif-lm") and hidden_dim % 32:
        raise XtalgenError(f"--hidden-dim must be a multiple of 32 for {model}, got {hidden_dim}")
    train_set = load_dataset(dataset, split)
    val_set = load_dataset(dataset, val_split) if val_split and not holdout else None
    source_files = {**getattr(train_set, "source_files", {}),
                    **(getattr(val_set, "source_files", {}) if val_set is not None else {})}
    if model == "predictor":
        from xtalgen.properties.pu import predictor_crystals

        train_set, val_set = predictor_crystals(train_set, val_set, unlabelled=unlabelled,
                                                holdout=holdout, max_atoms=max_atoms, seed=seed)
    core = TransformerConfig(d_model=hidden_dim, num_layers=num_layers,
                             num_heads=hidden_dim // 32, dropout=dropout)
    if model == "predictor":
        from xtalgen.properties.predictor import PredictorConfig

        model_config = PredictorConfig.for_property(
            prop, class_prior=class_prior,
            backbone=BackboneConfig(hidden_dim=hidden_dim, num_layers=num_layers))
    elif model == "wyckoff":
        model_config = WyckoffConfig(transformer=core)
    elif model == "cif-lm":
        model_config = CifLMConfig(transformer=core)
    elif model == "vae":
        from xtalgen.models.oneshot.vae import VAEConfig

        model_config = VAEConfig(  # encoder and decoder of one size; the decoder is a CSP flow
            latent_dim=latent_dim, beta=beta, kl_anneal_steps=kl_anneal_steps,
            encoder=BackboneConfig(hidden_dim=hidden_dim, num_layers=num_layers),
            decoder=ModelConfig(process="flow", task="csp", flow=FlowConfig(n_steps=50),
                                backbone=BackboneConfig(hidden_dim=hidden_dim, num_layers=num_layers)))
    elif model == "gan":
        from xtalgen.models.oneshot.gan import GANConfig

        model_config = GANConfig(  # generator MLP and critic backbone of one width
            hidden_dim=hidden_dim, n_critic=n_critic, gp_weight=gp_weight,
            critic=BackboneConfig(hidden_dim=hidden_dim, num_layers=num_layers, n_freqs=8,
                                  time_dim=16))
    else:
        model_config = ModelConfig(
            process=model, task=task, lattice_repr=lattice_repr,
            backbone=BackboneConfig(hidden_dim=hidden_dim, num_layers=num_layers),
            flow=FlowConfig(type_path=type_path),
            conditions=condition_names, cond_dropout=cond_dropout,
        )
    config = TrainConfig(
        max_steps=max_steps, max_time_s=max_time or None, batch_size=batch_size, lr=lr,
        lr_schedule=lr_schedule, val_every=val_every, checkpoint_every_s=checkpoint_every,
        seed=seed, device=device,
        num_threads=threads or None,
    )
    provenance = {
        "dataset": dataset, "split": split, "val_split": val_split or None,
        "source_files": source_files,
        "git_commit": git_commit(),
    }
    if model == "predictor":
        provenance.update(holdout=holdout or None, unlabelled=unlabelled or None,
                          max_atoms=max_atoms or None, seed=seed)
        if holdout:
            provenance["val_split"] = f"{holdout:g} of {split} (seed {seed})"
    path = train(model_config, train_set, val_set, config, out, provenance=provenance, resume=resume)
    typer.echo(f"checkpoint: {path}")
    if model == "predictor" and val_set is not None and len(val_set):
        from xtalgen.properties.trained import record_metrics

        for name in ("best.pt", "last.pt"):
            if (path.parent / name).is_file():
                metrics = record_metrics(path.parent / name, val_set,
                                         split=provenance.get("val_split"))
                typer.echo(f"{name} validation: " + ", ".join(
                    f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                    for k, v in metrics.items()))
