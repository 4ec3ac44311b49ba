"""Next-token choice for the text-to-semantic decoder, in the reference's exact order.

Order (each step, per row): repetition penalty over every token so far (prompt included), applied
IN PLACE to the caller's logits because the EOS test afterwards looks at the penalised logits; then
top-p on the penalised logits (before temperature); then temperature; then top-k; softmax; draw.

The draw is the "exponential race": argmax(p_i / q_i) with q_i ~ Exp(1) i.i.d., which picks i with
probability p_i (min of independent exponentials with rates p_i). The reference draws q from the
global torch RNG; we draw it from an explicit `torch.Generator`, one (rows, vocab) float32 tensor
per step with the same shapes as the reference (vocab-1 columns while EOS is excluded). A fresh CPU
generator seeded with s yields the same numbers as the global RNG after `torch.manual_seed(s)`
(tested), so a float32 CPU reference run seeded that way should be reproduced draw for draw; the
shipped goldens are greedy, so that last step is not verified against the reference. With top_k=1
the probabilities are one-hot and the result is the argmax whatever q is; q is clamped away from 0
so that 0/0 can never produce a NaN winner. On CUDA pass a CUDA generator (or a seed).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings; `top_k` None/<=0 and `top_p` None/>=1 disable those filters.

    Defaults are the GPT-SoVITS TTS pipeline's defaults.
    """

    top_k: int | None = 5
    top_p: float | None = 1.0
    temperature: float = 1.0
    repetition_penalty: float = 1.35

    def __post_init__(self) -> None:
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")


def apply_repetition_penalty_(logits: torch.Tensor, previous: torch.Tensor, penalty: float) -> None:
    """Penalise every token id in `previous` (B, L) in `logits` (B, V), in place.

    Negative scores are multiplied and positive ones divided by `penalty`; repeated ids are
    penalised once (gather then scatter of the same values).
    """
    if penalty == 1.0 or previous.shape[1] == 0:
        return
    index = previous.long()  # (B, L)
    score = torch.gather(logits, 1, index)  # (B, L)
    score = torch.where(score < 0, score * penalty, score / penalty)
    logits.scatter_(1, index, score)


def probabilities(logits: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """Filtered, tempered distribution (B, V) from already penalised logits (B, V); no mutation."""
    work = logits
    if params.top_p is not None and params.top_p < 1.0:
        sorted_logits, order = torch.sort(work, descending=True)  # (B, V)
        cumulative = torch.cumsum(torch.softmax(sorted_logits, dim=-1), dim=-1)
        drop_sorted = cumulative > params.top_p
        drop_sorted[:, 0] = False  # the most likely token always survives
        drop = drop_sorted.scatter(1, order, drop_sorted)
        work = work.masked_fill(drop, float("-inf"))
    work = work / max(params.temperature, 1e-5)
    if params.top_k is not None and params.top_k > 0:
        kth = torch.topk(work, min(params.top_k, work.shape[-1])).values[:, -1:]  # (B, 1)
        work = torch.where(work < kth, float("-inf"), work)
    return torch.softmax(work, dim=-1)


def draw(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Exponential-race draw: (B, V) probabilities -> (B, 1) int64 token ids."""
    q = torch.empty_like(probs).exponential_(1.0, generator=generator)
    q.clamp_(min=torch.finfo(q.dtype).tiny)
    return torch.argmax(probs / q, dim=-1, keepdim=True)


def choose_next(
    logits: torch.Tensor,
    previous: torch.Tensor,
    params: SamplingParams,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Penalise `logits` (B, V) in place, then sample (B, 1) int64 ids."""
    apply_repetition_penalty_(logits, previous, params.repetition_penalty)
    return draw(probabilities(logits, params), generator)
