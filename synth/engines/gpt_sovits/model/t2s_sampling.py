"""Next-token choice for the text-to-semantic decoder, in the reference's exact order.

Order (each step, per row): repetition penalty over every token so far (prompt included), applied
IN PLACE to the caller's logits because the EOS test afterwards looks at the penalised logits; then
top-p on the penalised logits (before temperature); then temperature; then top-k; softmax; draw.
Every operation is row-local, and the caller hands in float32 logits (the loops cast the model's
fp16/fp32 output), so a row's distribution does not depend on the rest of the batch or on the
model's precision beyond its logits.

The draw is the "exponential race": argmax(p_i / q_i) with q_i ~ Exp(1) i.i.d., which picks i with
probability p_i (min of independent exponentials with rates p_i). The reference draws q for the
whole batch from the global torch RNG. We give every ROW its own `torch.Generator` instead
(`choose_next`): at each step row r draws one (1, vocab) float32 block from generator r, in row
order, and nothing else touches that generator. So a row's noise depends only on its own seed and
step count, never on which rows share its batch, when they finish or in what order they sit; a
batch-of-1 decode is exactly the single-item decode. Shapes per step are the reference's (vocab-1
columns while EOS is excluded). A fresh CPU generator seeded with s yields the same numbers as the
global RNG after `torch.manual_seed(s)` (tested), so a float32 CPU reference run of ONE item seeded
that way should be reproduced draw for draw (a reference batch of several rows is not: it shares
one stream); the shipped goldens are greedy, so that last step is not verified against the
reference. With top_k=1 the probabilities are one-hot and the result is the argmax whatever q is;
q is clamped away from 0 so that 0/0 can never produce a NaN winner.

Devices: q is drawn in float32 on the GENERATOR's device and then moved to the logits' device. The
decoders make CPU generators, so the noise of a seed is the same numbers on a CPU and on a GPU (a
CUDA generator yields a different stream for the same seed): a sentence rendered on either then
differs only where the logits themselves differ. The copy is (rows, vocab) floats per step, next to
a per-step host sync the stop test needs anyway.
"""
from __future__ import annotations

from collections.abc import Sequence
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


def _exp_noise(rows: int, cols: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """q ~ Exp(1), float32 (rows, cols), drawn on the generator's device (else `device`)."""
    source = generator.device if generator is not None else device
    return torch.empty(rows, cols, dtype=torch.float32, device=source).exponential_(1.0, generator=generator)


def _race(probs: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    # probs (B, V), q (B, V) anywhere -> (B, 1) argmax of p / q, in float32 (float64 kept)
    if probs.dtype not in (torch.float32, torch.float64):
        probs = probs.float()
    q = q.to(device=probs.device, dtype=probs.dtype)
    q.clamp_(min=torch.finfo(q.dtype).tiny)
    return torch.argmax(probs / q, dim=-1, keepdim=True)


def draw(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Exponential-race draw: (B, V) probabilities -> (B, 1) int64 ids, one q block from `generator`.

    q is float32, drawn on the generator's device (the default generator's device when None) and
    moved to `probs`' device; the race runs in float32 (float64 kept) whatever the input precision.
    """
    return _race(probs, _exp_noise(probs.shape[0], probs.shape[1], generator, probs.device))


def draw_rows(probs: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
    """Per-row draw: row r of (B, V) uses only `generators[r]` (one (1, V) block, exactly as a batch
    of one would); the blocks are joined where they were drawn and moved once.

    Raises ValueError when the counts differ.
    """
    if len(generators) != probs.shape[0]:
        raise ValueError(f"{len(generators)} generators for {probs.shape[0]} rows")
    blocks = [_exp_noise(1, probs.shape[1], g, probs.device) for g in generators]  # each (1, V)
    if len({b.device for b in blocks}) > 1:
        blocks = [b.to(probs.device) for b in blocks]
    return _race(probs, torch.cat(blocks, dim=0))  # (B, 1)


def choose_next(
    logits: torch.Tensor,
    previous: torch.Tensor,
    params: SamplingParams,
    generators: Sequence[torch.Generator],
) -> torch.Tensor:
    """Penalise float32 `logits` (B, V) in place, then sample (B, 1) int64 ids, row r from
    `generators[r]`. Raises ValueError when the generator count is not B."""
    apply_repetition_penalty_(logits, previous, params.repetition_penalty)
    return draw_rows(probabilities(logits, params), generators)
