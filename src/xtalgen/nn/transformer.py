"""The transformer core shared by the autoregressive families: a decoder-only (GPT-style)
network with a key/value cache, and one constrained sampler.

Each position's input is the embedding of its token, plus (optionally) the embedding of a
*slot*: a small integer naming the kind of token that comes next (a grammar position such as
"space group" or "x coordinate"), plus a learned position embedding. Blocks are pre-LayerNorm
causal self-attention and a GELU MLP. ``TransformerCore(tokens, slots)`` returns next-token
logits for every position; with a :class:`KVCache` only the new positions are computed, so
sampling a sequence of length L costs O(L) forward steps of one position each instead of O(L^2).

:func:`sample_sequences` draws a batch of sequences under a :class:`Grammar`, which masks the
vocabulary at every step (forced tokens, legal tokens) and says when each sequence is complete.
Temperature and top-k apply after the mask.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "Grammar",
    "KVCache",
    "TransformerConfig",
    "TransformerCore",
    "sample_from_logits",
    "sample_sequences",
]


@dataclass
class TransformerConfig:
    """Size of the core; saved inside the checkpoints of the families that use it."""

    vocab_size: int = 0
    num_slots: int = 0
    """Number of slot ids (0: no slot embedding)."""
    d_model: int = 256
    num_layers: int = 4
    num_heads: int = 8
    mlp_ratio: int = 4
    max_len: int = 256
    """Longest sequence (positions) the model accepts."""
    dropout: float = 0.1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class KVCache:
    """Keys and values of the positions seen so far, one (B, heads, T, head_dim) pair per layer.

    The buffers are allocated once for ``max_len`` positions and written in place, so a step
    copies only its new positions (concatenating the history at every step would move O(T)
    memory per step, O(T^2) per sequence: the bottleneck of long texts on the CPU)."""

    def __init__(self, num_layers: int, max_len: int | None = None) -> None:
        self.layers: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * num_layers
        self.lengths = [0] * num_layers
        self.max_len = max_len

    @property
    def length(self) -> int:
        return self.lengths[0]

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the new positions' keys and values; return those of every position so far."""
        start = self.lengths[layer]
        end = start + k.shape[2]
        buffers = self.layers[layer]
        if buffers is None or end > buffers[0].shape[2]:
            capacity = max(end, self.max_len or 0, 2 * buffers[0].shape[2] if buffers else 0)
            shape = (k.shape[0], k.shape[1], capacity, k.shape[3])
            grown = (k.new_empty(shape), v.new_empty(shape))
            if buffers is not None:
                grown[0][:, :, :start] = buffers[0][:, :, :start]
                grown[1][:, :, :start] = buffers[1][:, :, :start]
            buffers = self.layers[layer] = grown
        buffers[0][:, :, start:end] = k
        buffers[1][:, :, start:end] = v
        self.lengths[layer] = end
        return buffers[0][:, :, :end], buffers[1][:, :, :end]


class CausalSelfAttention(nn.Module):
    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        if config.d_model % config.num_heads:
            raise ValueError("d_model must be a multiple of num_heads")
        self.num_heads = config.num_heads
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.proj = nn.Linear(config.d_model, config.d_model)
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        batch, length, dim = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        past = cache.lengths[layer] if cache is not None else 0
        if cache is not None:
            k, v = cache.append(layer, k, v)
        dropout = self.dropout if self.training else 0.0
        if past and length == 1:  # one new position sees every cached one: no mask needed
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)
        elif not past:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout)
        else:  # new positions see every cached one and the earlier new ones
            total = k.shape[2]
            mask = torch.ones(length, total, dtype=torch.bool, device=x.device).tril(total - length)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        return self.proj(out.transpose(1, 2).reshape(batch, length, dim))


class Block(nn.Module):
    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.d_model)
        self.attn = CausalSelfAttention(config)
        self.norm2 = nn.LayerNorm(config.d_model)
        hidden = config.mlp_ratio * config.d_model
        self.mlp = nn.Sequential(nn.Linear(config.d_model, hidden), nn.GELU(),
                                 nn.Linear(hidden, config.d_model), nn.Dropout(config.dropout))

    def forward(self, x: torch.Tensor, cache: KVCache | None, layer: int) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), cache, layer)
        return x + self.mlp(self.norm2(x))


class TransformerCore(nn.Module):
    """Token (+ slot) (+ position) embeddings, causal blocks, a final norm and the LM head."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        if config.vocab_size < 1:
            raise ValueError("TransformerConfig.vocab_size must be set")
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.slot_embedding = nn.Embedding(max(config.num_slots, 1), config.d_model)
        self.position_embedding = nn.Embedding(config.max_len, config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.head.weight = self.token_embedding.weight  # tied input and output embeddings
        self.apply(self._init)
        for name, param in self.named_parameters():  # GPT-2: scaled residual projections
            if name.endswith(("attn.proj.weight", "mlp.2.weight")):
                nn.init.normal_(param, std=0.02 / math.sqrt(2 * config.num_layers))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)

    def forward(self, tokens: torch.Tensor, slots: torch.Tensor | None = None,
                cache: KVCache | None = None) -> torch.Tensor:
        """(B, L) token ids (and slot ids) -> (B, L, vocab) next-token logits.

        With ``cache``, ``tokens`` are the positions after the cached ones, and the cache is
        extended in place.
        """
        return self.head(self.features(tokens, slots, cache))

    def features(self, tokens: torch.Tensor, slots: torch.Tensor | None = None,
                 cache: KVCache | None = None) -> torch.Tensor:
        """(B, L, d_model) final hidden states; ``head`` maps them to logits (apply it to the
        positions that need them only, e.g. the non-padding ones in training)."""
        start = cache.length if cache is not None else 0
        length = tokens.shape[1]
        if start + length > self.config.max_len:
            raise ValueError(f"sequence of {start + length} tokens exceeds max_len "
                             f"{self.config.max_len}")
        positions = torch.arange(start, start + length, device=tokens.device)
        x = self.token_embedding(tokens) + self.position_embedding(positions)[None]
        if slots is not None and self.config.num_slots:
            x = x + self.slot_embedding(slots)
        x = self.drop(x)
        for layer, block in enumerate(self.blocks):
            x = block(x, cache, layer)
        return self.norm(x)

    def new_cache(self) -> KVCache:
        return KVCache(len(self.blocks), self.config.max_len)


def sample_from_logits(
    logits: torch.Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    mask: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(B, V) logits -> (B,) token ids; ``mask`` (B, V) True where a token is allowed.

    Temperature 0 is greedy. Rows whose mask allows nothing return -1.
    """
    logits = logits.float()
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf"))
    empty = torch.isinf(logits).all(-1) if mask is not None else None
    if empty is not None and empty.any():
        logits = logits.masked_fill(empty[:, None], 0.0)
    if temperature <= 0:
        out = logits.argmax(-1)
    else:
        logits = logits / temperature
        if top_k is not None and top_k < logits.shape[-1]:
            kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        # Gumbel-max: argmax(logits + Gumbel noise) is a draw from softmax(logits), and much
        # cheaper than torch.multinomial on the CPU
        uniform = torch.rand(logits.shape, generator=generator, device=logits.device)
        gumbel = -torch.log(-torch.log(uniform.clamp(1e-20, 1.0 - 1e-7)))
        out = (logits + gumbel).argmax(-1)
    if empty is not None:
        out = out.masked_fill(empty, -1)
    return out


class Grammar(Protocol):
    """The rules a batch of sequences is sampled under (one state per row).

    ``allowed()`` is the (B, V) mask of the next token, ``slots()`` the (B,) slot ids of the
    next position, ``advance(tokens)`` consumes the chosen (B,) tokens (-1 where a row had no
    legal token: the grammar marks it failed), and ``done`` is True for finished rows.
    """

    done: torch.Tensor

    def allowed(self) -> torch.Tensor: ...

    def slots(self) -> torch.Tensor: ...

    def advance(self, tokens: torch.Tensor) -> None: ...


@torch.no_grad()
def sample_sequences(
    core: TransformerCore,
    grammar: Grammar,
    first_tokens: torch.Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
    pad_id: int = 0,
    epsilon: float = 0.0,
) -> torch.Tensor:
    """Sample a batch of sequences, one token per step, with a KV cache.

    ``first_tokens`` (B,) start every row (e.g. <bos>); ``grammar`` decides the legal tokens.
    With ``epsilon`` > 0, each row's token is drawn uniformly among the legal ones with that
    probability instead (a GFlowNet's exploration). Returns the (B, L) ids, ``pad_id`` after a
    row is done.
    """
    device = first_tokens.device
    cache = core.new_cache()
    rows = [first_tokens]
    logits = core(first_tokens[:, None], grammar.slots()[:, None].to(device), cache)[:, -1]
    for _ in range(core.config.max_len - 1):
        mask = grammar.allowed().to(device)
        tokens = sample_from_logits(logits, temperature=temperature, top_k=top_k, mask=mask,
                                    generator=generator)
        if epsilon > 0:
            uniform = sample_from_logits(torch.zeros_like(logits), mask=mask, generator=generator)
            explore = torch.rand(tokens.shape[0], generator=generator, device=device) < epsilon
            tokens = torch.where(explore, uniform, tokens)
        tokens = torch.where(grammar.done.to(device), torch.full_like(tokens, pad_id), tokens)
        grammar.advance(tokens.cpu())
        rows.append(tokens.clamp(min=0))
        if bool(grammar.done.all()):
            break
        feed = tokens.clamp(min=0)[:, None]
        logits = core(feed, grammar.slots()[:, None].to(device), cache)[:, -1]
    return torch.stack(rows, dim=1)
