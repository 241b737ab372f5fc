"""The shared transformer core: causal masking, the KV cache and the constrained sampler."""

from __future__ import annotations

import pytest
import torch

from xtalgen.nn.transformer import (
    TransformerConfig,
    TransformerCore,
    sample_from_logits,
    sample_sequences,
)


@pytest.fixture
def core() -> TransformerCore:
    torch.manual_seed(0)
    config = TransformerConfig(vocab_size=11, num_slots=3, d_model=16, num_layers=2, num_heads=2,
                               max_len=12, dropout=0.0)
    return TransformerCore(config).eval()


def test_logits_are_causal(core: TransformerCore) -> None:
    tokens = torch.randint(0, 11, (2, 8))
    slots = torch.randint(0, 3, (2, 8))
    full = core(tokens, slots)
    changed = tokens.clone()
    changed[:, 5:] = (changed[:, 5:] + 1) % 11
    assert torch.allclose(core(changed, slots)[:, :5], full[:, :5], atol=1e-5)
    assert not torch.allclose(core(changed, slots)[:, 5:], full[:, 5:], atol=1e-5)


def test_kv_cache_gives_the_full_forward(core: TransformerCore) -> None:
    tokens = torch.randint(0, 11, (3, 9))
    slots = torch.randint(0, 3, (3, 9))
    full = core(tokens, slots)
    cache = core.new_cache()
    steps = [core(tokens[:, :4], slots[:, :4], cache)]  # a prefix, then one token at a time
    steps += [core(tokens[:, i: i + 1], slots[:, i: i + 1], cache) for i in range(4, 9)]
    assert cache.length == 9
    assert torch.allclose(torch.cat(steps, 1), full, atol=1e-5)
    with pytest.raises(ValueError, match="max_len"):
        core(tokens[:, :4], slots[:, :4], cache)


def test_sample_from_logits_respects_mask_top_k_and_temperature() -> None:
    logits = torch.tensor([[0.0, 5.0, 1.0, 2.0], [1.0, 1.0, 1.0, 1.0]])
    mask = torch.tensor([[True, False, True, True], [False, False, False, False]])
    gen = torch.Generator().manual_seed(0)
    greedy = sample_from_logits(logits, temperature=0, mask=mask)
    assert greedy.tolist() == [3, -1]  # the best allowed token; -1 where nothing is allowed
    draws = torch.stack([sample_from_logits(logits[:1], top_k=1, generator=gen) for _ in range(20)])
    assert set(draws.flatten().tolist()) == {1}


class CountDown:
    """A toy grammar: token 1 exactly ``n`` times, then token 2, then done."""

    def __init__(self, counts: list[int]) -> None:
        self.left = list(counts)
        self.done = torch.zeros(len(counts), dtype=torch.bool)

    def allowed(self) -> torch.Tensor:
        mask = torch.zeros(len(self.left), 11, dtype=torch.bool)
        for row, left in enumerate(self.left):
            mask[row, 1 if left > 0 else 2] = True
        return mask

    def slots(self) -> torch.Tensor:
        return torch.tensor([1 if left > 0 else 2 for left in self.left])

    def advance(self, tokens: torch.Tensor) -> None:
        for row, token in enumerate(tokens.tolist()):
            if self.done[row]:
                continue
            if token == 2:
                self.done[row] = True
            self.left[row] -= 1


def test_sample_sequences_follows_the_grammar(core: TransformerCore) -> None:
    grammar = CountDown([2, 5, 0])
    out = sample_sequences(core, grammar, torch.zeros(3, dtype=torch.long),
                           generator=torch.Generator().manual_seed(1))
    assert out[0].tolist()[:4] == [0, 1, 1, 2]
    assert out[1].tolist()[:7] == [0, 1, 1, 1, 1, 1, 2]
    assert out[2].tolist()[:2] == [0, 2] and set(out[2].tolist()[2:]) == {0}
