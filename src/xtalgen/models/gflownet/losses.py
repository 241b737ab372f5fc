"""GFlowNet training objectives, written here.

torchgfn (the well-kept GFlowNet library) was read for its design but is not a dependency: its
2.4.1 release declares ``numpy<2``, which xtalgen's base set cannot take, and the objective
needed here is a few lines.

Trajectory balance (Malkin et al., 2022), for a complete trajectory tau = (s_0 -> ... -> x):

    L(tau) = (log Z + sum_t log P_F(s_t+1 | s_t) - log R(x) - sum_t log P_B(s_t | s_t+1))^2

with a learned scalar log Z. At its minimum over all trajectories, P_F samples terminals x with
probability R(x) / Z. In the Wyckoff-grammar environment every state has one parent (the
sequence is built left to right), so P_B = 1 and the last sum is zero.
"""

from __future__ import annotations

import torch

__all__ = ["trajectory_balance"]


def trajectory_balance(
    log_z: torch.Tensor,
    log_pf: torch.Tensor,
    log_reward: torch.Tensor,
    log_pb: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean trajectory-balance loss (nats squared) of a batch.

    Args:
        log_z: () learned log-partition function.
        log_pf: (B,) summed forward log-probabilities of each trajectory.
        log_reward: (B,) log-rewards of the trajectories' terminal states.
        log_pb: (B,) summed backward log-probabilities; None: a tree (P_B = 1).
    """
    residual = log_z + log_pf - log_reward.to(log_pf.dtype)
    if log_pb is not None:
        residual = residual - log_pb
    return residual.pow(2).mean()
