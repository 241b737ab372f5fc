"""The one training loop of every learned family of xtalgen.

The model comes from its config (``model_class_for(config)``, see :mod:`xtalgen.models.learned`
for the contract: ``prepare``, ``collate``, ``loss`` and the optional ``train_step`` hook of a
family whose step differs, such as a GAN or a GFlowNet, and ``training_done`` of a family with
its own stopping rule, such as a GFlowNet's budget of reward evaluations).

AdamW (one optimiser; a family may split its parameters into groups with ``param_groups``,
each optionally with an ``lr_scale`` on the scheduled rate) with gradient clipping, a
warmup + cosine learning-rate schedule, EMA weights, a seeded
validation loss, checkpoints (config, data provenance, optimiser state) written atomically every
few minutes, resume after interruption, and a progress bar with loss and steps per second.
Runs on the CPU or one GPU by default, and with torch DDP when launched by ``torchrun``
(``WORLD_SIZE > 1``): each rank takes every ``world_size``-th crystal of a batch draw and rank
0 writes the checkpoints.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.models.checkpoint import CHECKPOINT_NAMES, read_checkpoint, write_checkpoint
from xtalgen.models.learned import model_class_for

__all__ = ["EMA", "TrainConfig", "train"]


@dataclass
class TrainConfig:
    """Optimisation settings; saved in every checkpoint."""

    max_steps: int = 100_000
    max_time_s: float | None = None
    """Stop (with a checkpoint) after this much wall time in this process (with
    ``lr_schedule="time"``: in all, resumed runs included)."""
    batch_size: int = 64
    lr: float = 5e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 500
    min_lr_ratio: float = 0.05
    """Cosine decay from ``lr`` to ``lr * min_lr_ratio`` at ``max_steps`` (or ``max_time_s``)."""
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    val_every: int = 1000
    val_max_crystals: int = 512
    checkpoint_every_s: float = 300.0
    log_every: int = 50
    seed: int = 0
    lr_schedule: str = "steps"
    """``"steps"``: the cosine runs over ``max_steps``. ``"time"``: it runs over ``max_time_s``
    of training wall time (resumed runs included; counted from the start, warmup included) and
    training stops there, so a fixed time budget (a GPU lease, a night) ends with a fully
    decayed rate whatever the speed, provided the warmup steps fit well inside the budget."""
    device: str = "cpu"
    num_threads: int | None = None
    tf32: bool = True
    """On a CUDA device, let float32 matrix products use TF32 (``torch.set_float32_matmul_
    precision("high")``, process-wide); no effect on the CPU."""


class EMA:
    """Exponential moving average of a module's floating-point parameters and buffers."""

    def __init__(self, module: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in module.state_dict().items()}

    @torch.no_grad()
    def update(self, module: torch.nn.Module, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))  # short warmup of the average
        floats, targets = [], []
        for key, value in module.state_dict().items():
            if value.dtype.is_floating_point:
                floats.append(self.shadow[key])
                targets.append(value.detach())
            else:
                self.shadow[key].copy_(value)
        if floats:  # one fused kernel per dtype/device instead of two per tensor (GPU launches)
            torch._foreach_lerp_(floats, targets, 1 - decay)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow


def _lr_factor(step: int, config: TrainConfig, elapsed_s: float = 0.0) -> float:
    """Learning-rate multiplier: linear warmup over ``warmup_steps``, then a cosine to
    ``min_lr_ratio`` over the steps (or, with ``lr_schedule="time"``, over ``max_time_s``)."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.lr_schedule == "time":
        progress = min(1.0, elapsed_s / config.max_time_s)
    else:
        progress = min(1.0, (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps))
    cosine = 0.5 * (1 + math.cos(math.pi * progress))
    return config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine


def _batch_indices(n: int, step: int, config: TrainConfig, rank: int, world: int) -> list[int]:
    """Indices of the crystals of ``step``: epochs of seeded permutations, so resuming at a
    step reproduces the same data order."""
    per_epoch = max(1, n // config.batch_size)
    epoch, offset = divmod(step, per_epoch)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed + 7919 * epoch))
    chunk = perm[offset * config.batch_size : (offset + 1) * config.batch_size].tolist()
    return chunk[rank::world]


@torch.no_grad()
def validation_loss(
    model: torch.nn.Module, examples: Sequence[Any], config: TrainConfig
) -> float:
    """Mean loss over (at most ``val_max_crystals``) validation examples (``model.prepare``d)
    with a fixed seed."""
    examples = list(examples)[: config.val_max_crystals]
    was_training = model.training
    model.eval()
    state = torch.random.get_rng_state()
    torch.manual_seed(12345)
    total, count = 0.0, 0
    for i in range(0, len(examples), config.batch_size):
        chunk = examples[i : i + config.batch_size]
        batch = model.collate(chunk, device=config.device)
        total += float(model.loss(batch)["loss"]) * len(chunk)
        count += len(chunk)
    torch.random.set_rng_state(state)
    model.train(was_training)
    return total / max(count, 1)


def _distributed(device: str = "cpu") -> tuple[int, int]:
    """(rank, world_size), initialising torch.distributed when launched by torchrun (NCCL for
    a CUDA device, gloo otherwise)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        cuda = torch.device(device).type == "cuda" and torch.cuda.is_available()
        dist.init_process_group("nccl" if cuda else "gloo")
    return dist.get_rank(), world


def train(
    model_config: Any,
    train_set: Sequence[Crystal],
    val_set: Sequence[Crystal] | None,
    config: TrainConfig,
    out_dir: str | Path,
    *,
    provenance: Mapping[str, Any] | None = None,
    resume: bool = True,
    progress: bool = True,
) -> Path:
    """Train a model of any family and return the path of its last checkpoint
    (``out_dir/last.pt``).

    ``model_config`` is the family's config dataclass; its statistics (lattice scale, atom
    counts, elements, ...) are fitted on ``train_set`` unless resuming. With ``resume`` and an existing ``last.pt`` the run continues
    from it (same config, optimiser, EMA and data order). ``provenance`` (dataset, split,
    source file hashes, ...) is stored in every checkpoint.
    """
    if len(train_set) == 0:
        raise XtalgenError("the training set is empty")
    if config.lr_schedule not in ("steps", "time"):
        raise XtalgenError(f"lr_schedule must be 'steps' or 'time', got {config.lr_schedule!r}")
    if config.lr_schedule == "time" and not config.max_time_s:
        raise XtalgenError("lr_schedule='time' needs max_time_s (the time budget)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    last_path = out_dir / CHECKPOINT_NAMES["last"]
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    rank, world = _distributed(config.device)
    device = torch.device(config.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", rank % torch.cuda.device_count())
    if device.type == "cuda" and config.tf32:
        torch.set_float32_matmul_precision("high")

    ckpt = read_checkpoint(last_path) if resume and last_path.exists() else None
    family = model_config.family
    if ckpt is not None:
        if ckpt.get("family", "iterative") != family:
            raise XtalgenError(f"{last_path} holds a {ckpt.get('family', 'iterative')} model, not "
                               f"a {family} one: choose another --out or --no-resume")
        model_config = type(model_config).from_dict(ckpt["model_config"])
    else:
        model_config.fit_statistics(train_set)
    torch.manual_seed(config.seed + rank)
    model = model_class_for(model_config)(model_config).to(device)
    train_examples = model.prepare(train_set)
    val_examples = model.prepare(val_set) if val_set is not None and len(val_set) else None
    if len(train_examples) == 0:
        raise XtalgenError("no training example left after preparing the training set")
    ema = EMA(model, config.ema_decay)
    own_groups = getattr(model, "param_groups", None)  # e.g. a GAN: generator and critic
    optimizer = torch.optim.AdamW(own_groups() if own_groups is not None else model.parameters(),
                                  lr=config.lr, weight_decay=config.weight_decay)
    step, best_val, wall = 0, float("inf"), 0.0
    if ckpt is not None:
        model.load_state_dict(ckpt["state_dict"])
        ema.shadow = {k: v.to(device) for k, v in ckpt["ema_state_dict"].items()}
        optimizer.load_state_dict(ckpt["optimizer"])
        step, best_val, wall = ckpt["step"], ckpt.get("best_val_loss", best_val), ckpt["wall_time_s"]
        torch.set_rng_state(ckpt["rng_state"])
    ddp_model: torch.nn.Module = model
    if world > 1:
        ddp_model = torch.nn.parallel.DistributedDataParallel(
            model, find_unused_parameters=getattr(model, "ddp_find_unused_parameters", False)
        )
    custom_step = getattr(model, "train_step", None)
    finished = getattr(model, "training_done", None)  # a family's own stopping rule

    provenance = dict(provenance or {})
    provenance.setdefault("n_train", len(train_set))
    provenance.setdefault("n_val", len(val_set) if val_set is not None else 0)
    provenance.setdefault("n_train_examples", len(train_examples))
    log_file = out_dir / "log.jsonl"

    def save(name: str) -> None:
        if rank != 0:
            return
        write_checkpoint(
            out_dir / CHECKPOINT_NAMES[name],
            family=family,
            model_config=model_config,
            state_dict=model.state_dict(),
            ema_state_dict=ema.state_dict(),
            optimizer=optimizer.state_dict(),
            train_config=asdict(config),
            provenance=provenance,
            step=step,
            wall_time_s=wall + time.monotonic() - start,
            best_val_loss=best_val,
            rng_state=torch.get_rng_state(),
        )

    def log(record: dict[str, Any]) -> None:
        if rank == 0:
            with log_file.open("a") as fh:
                fh.write(json.dumps(record) + "\n")

    start = last_save = time.monotonic()
    bar = tqdm(total=config.max_steps, initial=step, disable=not progress or rank != 0, desc="train")
    model.train()
    running: float | None = None
    by_time = config.lr_schedule == "time"
    while step < config.max_steps:
        if finished is not None and finished():  # checked first: a resumed run may be done
            break
        elapsed = time.monotonic() - start
        if config.max_time_s is not None:  # under DDP every rank stops at rank 0's step
            elapsed = _rank0_value(elapsed, world, device)
        if config.max_time_s is not None and (wall + elapsed if by_time else elapsed) > config.max_time_s:
            break
        for group in optimizer.param_groups:
            group["lr"] = config.lr * group.get("lr_scale", 1.0) * _lr_factor(step, config, wall + elapsed)
        idx = _batch_indices(len(train_examples), step, config, rank, world)
        batch = model.collate([train_examples[i] for i in idx], device=device)
        if custom_step is not None:  # the family's own step (GAN, GFlowNet): see models.learned
            losses = custom_step(batch, optimizer, step, config.grad_clip)
            grad_norm = losses.pop("grad_norm", torch.tensor(float("nan")))
        else:
            losses = ddp_model(batch)  # forward() is the loss; DDP all-reduces its gradients
            optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
        ema.update(model, step)
        step += 1
        loss = float(losses["loss"].detach())
        running = loss if running is None else 0.98 * running + 0.02 * loss
        bar.update(1)
        bar.set_postfix(loss=f"{running:.4f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
        if step % config.log_every == 0:
            log({"step": step, "lr": optimizer.param_groups[0]["lr"], "grad_norm": float(grad_norm),
                 **{k: float(v.detach()) for k, v in losses.items()},
                 "steps_per_s": bar.format_dict.get("rate")})
        if val_examples is not None and len(val_examples) and step % config.val_every == 0:
            val = _ema_validation(model, ema, val_examples, config)
            log({"step": step, "val_loss": val})
            if val < best_val:
                best_val = val
                save("best")
        if time.monotonic() - last_save > config.checkpoint_every_s:
            save("last")
            last_save = time.monotonic()
    bar.close()
    save("last")
    return last_path


def _rank0_value(value: float, world: int, device: torch.device) -> float:
    """``value`` as rank 0 sees it (under DDP), so that time-based decisions agree."""
    if world <= 1:
        return value
    import torch.distributed as dist

    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(tensor, src=0)
    return float(tensor)


def _ema_validation(
    model: torch.nn.Module, ema: EMA, val_set: Sequence[Any], config: TrainConfig
) -> float:
    """Validation loss of the EMA weights (the weights that are sampled from)."""
    current = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(ema.state_dict())
    try:
        return validation_loss(model, val_set, config)
    finally:
        model.load_state_dict(current)
