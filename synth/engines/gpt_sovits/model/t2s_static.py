"""Batched T2S decoding with a static KV cache, its steps replayed as CUDA graphs on a GPU.

A decoding step of the dynamic cache (`KVCache`) has shapes that grow every step and rows that
leave the batch, so each step re-launches ~400 small kernels from Python; on a GPU that launch
overhead, not arithmetic, bounds a batch of 8. Here every buffer is allocated once, at a bucketed
capacity (`CAPACITIES`), and a step writes the new keys/values at a column held in a device tensor
and attends over the whole capacity through an additive bias (0 = visible, -inf = not: padding,
unwritten columns). Its shapes and addresses never change, so on CUDA the whole 24-layer step is
captured once per (batch, capacity) as a CUDA graph and replayed; when the rows outgrow a capacity
the cache moves to the next bucket (one copy and one new capture).

Finished rows stay in the batch (shapes are static) and are simply no longer sampled. Everything
else is `decode_batch`: the same left-padded prefill, the same per-row generators, stop rules and
result slicing, so each item's tokens are the ones it gets alone (tested on the CPU, where the same
code path runs without graph capture). The setting that selects it is the voice's `cuda_graphs`.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import torch

from synth.engines.gpt_sovits.model.t2s_cache import KVCache
from synth.engines.gpt_sovits.model.t2s_decode import (
    DEFAULT_MAX_STEPS,
    DEFAULT_SAMPLING,
    DecodeResult,
    StopReason,
    _check_limits,
    _make_generators,
    _slice,
    left_padded_prefix,
    sample_rows,
)
from synth.engines.gpt_sovits.model.t2s_model import Text2SemanticDecoder
from synth.engines.gpt_sovits.model.t2s_sampling import SamplingParams

log = logging.getLogger(__name__)

CAPACITIES = (256, 512, 1024, 2048)  # columns; prefix + the 1500-step cap fits the last


def capacity_for(columns: int, capacities: Sequence[int] = CAPACITIES) -> int:
    """The smallest bucket holding `columns`, else `columns` rounded up to a multiple of 1024."""
    for capacity in capacities:
        if columns <= capacity:
            return capacity
    return -(-columns // 1024) * 1024


class StaticKVCache(KVCache):
    """Key/value buffers (B, H, capacity, Dh) per layer allocated once, with the attention bias.

    The prefill writes columns 0..S-1 like `KVCache`; a one-position step writes at `pos` (a device
    tensor, so a captured graph reads the current column) and sees every column, masked by `bias`
    (B, 1, 1, capacity). `length` mirrors `pos` on the host for bookkeeping.
    """

    def __init__(self, model: Text2SemanticDecoder, batch: int, capacity: int) -> None:
        super().__init__(model.cfg.num_layers)
        param = model.ar_predict_layer.weight
        heads = model.h.layers[0].self_attn.heads
        shape = (batch, heads, capacity, model.cfg.hidden_dim // heads)
        self.keys = [param.new_zeros(shape) for _ in range(model.cfg.num_layers)]
        self.values = [param.new_zeros(shape) for _ in range(model.cfg.num_layers)]
        self.bias = param.new_full((batch, 1, 1, capacity), float("-inf"))
        self.pos = torch.zeros(1, dtype=torch.long, device=param.device)

    @property
    def capacity(self) -> int:
        return self.bias.shape[3]

    def write(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        buf_k, buf_v = self.keys[layer], self.values[layer]
        assert buf_k is not None and buf_v is not None
        if k.shape[2] > 1:  # the prefill, eager, at the host-side length
            end = self.length + k.shape[2]
            buf_k[:, :, self.length:end] = k
            buf_v[:, :, self.length:end] = v
            return buf_k[:, :, :end], buf_v[:, :, :end]
        buf_k.index_copy_(2, self.pos, k)
        buf_v.index_copy_(2, self.pos, v)
        return buf_k, buf_v

    def keep_rows(self, rows: torch.Tensor) -> None:
        raise NotImplementedError("a static cache keeps its rows; finished rows are ignored instead")

    def grown(self, model: Text2SemanticDecoder, capacity: int) -> StaticKVCache:
        """A copy at a larger capacity (the unwritten columns stay masked)."""
        bigger = StaticKVCache(model, self.bias.shape[0], capacity)
        for layer in range(len(self.keys)):
            bigger.keys[layer][:, :, : self.capacity] = self.keys[layer]  # type: ignore[index]
            bigger.values[layer][:, :, : self.capacity] = self.values[layer]  # type: ignore[index]
        bigger.bias[..., : self.capacity] = self.bias
        bigger.length = self.length
        bigger.pos.copy_(self.pos)
        return bigger


def static_step(model: Text2SemanticDecoder, cache: StaticKVCache, x: torch.Tensor) -> torch.Tensor:
    """One position for every row: x (B, 1, D) -> logits (B, V). Makes column `pos` visible to all
    rows, runs the model and moves `pos` on — all on the device, so it can be captured."""
    cache.bias.index_fill_(3, cache.pos, 0.0)
    logits = model.run(x, cache, cache.bias)
    cache.pos.add_(1)
    return logits


class GraphStep:
    """`static_step` of one cache captured as a CUDA graph; calling it replays the graph."""

    def __init__(self, model: Text2SemanticDecoder, cache: StaticKVCache) -> None:
        self.cache = cache
        self.x = cache.bias.new_zeros(cache.bias.shape[0], 1, model.cfg.hidden_dim)
        length, pos = cache.length, cache.pos.clone()
        # Warm-up on a side stream (as graph capture requires); a step there writes only column
        # `pos`, which the first real step overwrites, so restoring pos and length undoes it.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):
                static_step(model, cache, self.x)
                cache.pos.copy_(pos)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.logits = static_step(model, cache, self.x)
        cache.pos.copy_(pos)
        cache.length = length

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.x.copy_(x)
        self.graph.replay()
        self.cache.length += 1
        return self.logits


@torch.inference_mode()
def decode_static(
    model: Text2SemanticDecoder,
    phone_ids: Sequence[torch.Tensor],
    bert: Sequence[torch.Tensor],
    prompts: torch.Tensor,
    *,
    sampling: SamplingParams = DEFAULT_SAMPLING,
    early_stop_num: int = -1,
    max_steps: int = DEFAULT_MAX_STEPS,
    max_len: int | None = None,
    seed: int | Sequence[int] = 0,
    generators: Sequence[torch.Generator] | None = None,
    keep_logits: bool = False,
    graphs: bool | None = None,
    capacities: Sequence[int] = CAPACITIES,
) -> list[DecodeResult]:
    """`decode_batch` (with a prompt) on a static cache; `graphs` (default: on CUDA) replays each
    step as a CUDA graph. Item i's tokens are those it gets alone with its seed/generator.
    Raises ValueError as `decode_batch` does, or when graphs are asked for off CUDA."""
    if len(phone_ids) != len(bert) or not phone_ids:
        raise ValueError(f"{len(phone_ids)} phone sequences but {len(bert)} BERT matrices")
    device = model.ar_predict_layer.weight.device
    graphs = device.type == "cuda" if graphs is None else graphs
    if graphs and device.type != "cuda":
        raise ValueError("CUDA graphs need the model on a CUDA device")
    gens = _make_generators(len(phone_ids), seed, generators)
    prefix = left_padded_prefix(model, phone_ids, bert, prompts, max_len)
    y = prefix.y
    bsz, prompt_len = y.shape
    _check_limits(model, y, early_stop_num, max_steps)
    width = prefix.xy.shape[1]
    bound = max_steps if early_stop_num == -1 else min(max_steps, early_stop_num + 1)
    cache = StaticKVCache(model, bsz, capacity_for(min(width + bound, width + 64), capacities))
    logits = model.run(prefix.xy, cache, prefix.allowed).float()  # (B, V), eager prefill
    cache.pos.fill_(cache.length)
    cache.bias[..., :width] = torch.where(prefix.row_allowed, 0.0, float("-inf")).to(cache.bias.dtype)
    step: Callable[[torch.Tensor], torch.Tensor] = GraphStep(model, cache) if graphs else (
        lambda x: static_step(model, cache, x))

    eos = model.cfg.eos
    live = list(range(bsz))  # rows still decoding
    results: list[DecodeResult | None] = [None] * bsz
    raw: list[list[torch.Tensor]] = [[] for _ in range(bsz)]

    def finish(row: int, idx: int, stop: StopReason, sequence: torch.Tensor) -> None:
        results[row] = DecodeResult(
            tokens=_slice(sequence, idx, prompt_len), sequence=sequence, index=idx, stop=stop,
            steps=idx + 1, logits=torch.stack(raw[row]) if keep_logits else None,
        )

    for idx in range(max_steps):
        index = torch.tensor(live, device=device)
        part = logits.index_select(0, index)
        if keep_logits:
            for k, row in enumerate(live):
                raw[row].append(part[k].cpu().clone())
        nxt, ending = sample_rows(part, y.index_select(0, index), idx, sampling, [gens[r] for r in live], eos)
        ended = ending.tolist()
        column = y[:, -1:].clone()  # finished rows repeat their last token (never sampled again)
        column[index] = nxt
        y = torch.cat([y, column], dim=1)
        for k, row in enumerate(live):
            if ended[k]:
                finish(row, idx, "eos", y[row, :-1].cpu())
        live = [row for k, row in enumerate(live) if not ended[k]]
        if (early_stop_num != -1 and y.shape[1] - prompt_len > early_stop_num) or idx == max_steps - 1:
            for row in live:
                finish(row, idx, "cap", y[row, :-1].cpu())
            break
        if not live:
            break
        if cache.length + 1 > cache.capacity:  # outgrown: the next bucket, captured anew
            cache = cache.grown(model, capacity_for(cache.length + 1 + 64, capacities))
            step = GraphStep(model, cache) if graphs else (lambda x, c=cache: static_step(model, c, x))
        logits = step(model.embed_semantic(y[:, -1:], prompt_len + idx)).float()  # (B, V)
    assert all(r is not None for r in results), "every row stops by EOS or by the cap"
    log.debug("T2S static decode of %d items: %d steps, capacity %d", bsz, idx + 1, cache.capacity)
    return [r for r in results if r is not None]
