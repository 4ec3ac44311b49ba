"""Continuous batching for the text-to-semantic decoder: a fixed number of slots kept full.

`decode_batch` decodes a fixed batch whose rows leave as they reach EOS, so the batch shrinks to
a straggler or two while the device idles. A book is thousands of sentences: here, when a row
finishes, its slot is refilled at once with the next sentence — prefilled alone (its text and the
prompt through the model, with its own fresh cache), its keys and values spliced into the running
batch's cache (rows are left-padded to a common length, each row attending only to its own
positions), and decoding goes on with every row at its own step and position.

Every row keeps the single-item semantics of `decode_naive` exactly: its own generator (drawn one
(1, V) block per step, V-1 wide while EOS is excluded in its first steps — rows at different
steps are sampled in two groups so that no row's noise stream changes), its own repetition history
(padded with a copy of its own first token, which the once-per-id penalty ignores), its own stop
rules and its own result slicing. So a sentence's tokens are the same alone, in a static batch and
here, whatever it shares its slots with (as long as its logits agree to float precision).
"""
from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from synth.engines.gpt_sovits.model.t2s_decode import (
    DEFAULT_MAX_STEPS,
    DEFAULT_SAMPLING,
    NO_EOS_STEPS,
    DecodeResult,
    StopReason,
    _check_item,
    _check_limits,
    _device_dtype,
    _make_generators,
    _prefix_blocked,
    _slice,
)
from synth.engines.gpt_sovits.model.t2s_model import KVCache, Text2SemanticDecoder
from synth.engines.gpt_sovits.model.t2s_sampling import SamplingParams, choose_next

log = logging.getLogger(__name__)

TRIM_AT = 32  # drop leading cache columns once this many are padding for every row


@dataclass
class _Row:
    item: int
    generator: torch.Generator
    tokens: list[int]  # prompt + generated so far
    step: int = 0  # the step whose logits come next (0 = the prefill's)
    raw: list[torch.Tensor] = field(default_factory=list)


@torch.inference_mode()
def decode_continuous(
    model: Text2SemanticDecoder,
    phone_ids: Sequence[torch.Tensor],
    bert: Sequence[torch.Tensor],
    prompt: torch.Tensor,
    *,
    slots: int = 8,
    sampling: SamplingParams = DEFAULT_SAMPLING,
    early_stop_num: int | Sequence[int] = -1,
    max_steps: int = DEFAULT_MAX_STEPS,
    seed: int | Sequence[int] = 0,
    generators: Sequence[torch.Generator] | None = None,
    keep_logits: bool = False,
    on_done: Callable[[int, DecodeResult], None] | None = None,
) -> list[DecodeResult]:
    """Decode every item (phones[i] (N_i,), bert[i] (1024, N_i)) with the prompt's semantic tokens
    (P,), at most `slots` at a time, refilling a slot as soon as its row stops. Item i samples
    from its own generator (or a CPU one seeded with seed[i]) and gets the tokens `decode_naive`
    gives it. `early_stop_num` may be given per item (a cap for each sentence, e.g. from its length).
    `on_done(i, result)` is called as each item finishes (e.g. to start vocoding it).
    Results come in input order. Raises ValueError as `decode_batch` does."""
    if len(phone_ids) != len(bert) or not phone_ids:
        raise ValueError(f"{len(phone_ids)} phone sequences but {len(bert)} BERT matrices")
    if slots < 1:
        raise ValueError(f"slots must be at least 1, not {slots}")
    device, _ = _device_dtype(model)
    gens = _make_generators(len(phone_ids), seed, generators)
    items = [_check_item(model, p.to(device), b.to(device)) for p, b in zip(phone_ids, bert, strict=True)]
    prompt = prompt.reshape(1, -1).to(device).long()
    caps = [early_stop_num] * len(items) if isinstance(early_stop_num, int) else [int(c) for c in early_stop_num]
    if len(caps) != len(items):
        raise ValueError(f"{len(caps)} early_stop_num values for {len(items)} items")
    for cap in caps:
        _check_limits(model, prompt, cap, max_steps)
    plen = prompt.shape[1]
    if plen == 0:
        raise ValueError("continuous decoding needs a prompt (reference-free items decode alone)")
    eos = model.cfg.eos
    results: list[DecodeResult | None] = [None] * len(items)
    queue = deque(range(len(items)))
    rows: list[_Row] = []
    cache = model.new_cache()
    allowed = torch.zeros(0, 0, dtype=torch.bool, device=device)  # (B, L): which cache columns a row sees
    logits = torch.zeros(0, model.cfg.vocab_size, device=device)
    position = model.ar_audio_position

    def finish(k: int, stop: StopReason) -> None:
        row = rows[k]
        sequence = torch.tensor(row.tokens, dtype=torch.long)
        index = row.step
        result = DecodeResult(tokens=_slice(sequence, index, plen), sequence=sequence, index=index, stop=stop,
                              steps=row.step + 1, logits=torch.stack(row.raw) if keep_logits else None)
        results[row.item] = result
        if on_done is not None:
            on_done(row.item, result)

    while queue or rows:
        # Refill: prefill new items alone, then splice them into the batch.
        while queue and len(rows) < slots:
            item = queue.popleft()
            phones, item_bert = items[item]
            xy = torch.cat([model.embed_text(phones, item_bert), model.embed_semantic(prompt, 0)], dim=1)
            own = model.new_cache()
            first = model.run(xy, own, ~_prefix_blocked(phones.shape[1], plen, device)[None, None]).float()
            cache, allowed = _splice(cache, allowed, own, xy.shape[1])
            logits = torch.cat([logits, first], dim=0)
            rows.append(_Row(item, gens[item], prompt[0].tolist()))
        # Sample every row from its logits, early rows (EOS excluded) and later rows apart.
        if keep_logits:
            for k, row in enumerate(rows):
                row.raw.append(logits[k].cpu().clone())
        chosen = torch.empty(len(rows), dtype=torch.long, device=device)
        argmax_eos = torch.zeros(len(rows), dtype=torch.bool, device=device)
        for early in (True, False):
            group = [k for k, row in enumerate(rows) if (row.step < NO_EOS_STEPS) == early]
            if not group:
                continue
            index = torch.tensor(group, device=device)
            part = logits.index_select(0, index)
            part = part[:, :-1] if early else part
            history = _histories([rows[k].tokens for k in group], device)
            nxt = choose_next(part, history, sampling, [rows[k].generator for k in group])  # (g, 1)
            chosen[index] = nxt[:, 0]
            if not early:
                argmax_eos[index] = part.argmax(dim=-1) == eos
        chosen_list = chosen.tolist()
        ended_list = ((chosen == eos) | argmax_eos).tolist()
        keep = []
        for k, row in enumerate(rows):
            row.tokens.append(chosen_list[k])
            if ended_list[k]:
                row.tokens.pop()
                finish(k, "eos")
            elif (caps[row.item] != -1 and len(row.tokens) - plen > caps[row.item]) or row.step == max_steps - 1:
                finish(k, "cap")
            else:
                keep.append(k)
        if len(keep) < len(rows):
            index = torch.tensor(keep, dtype=torch.long, device=device)
            cache.keep_rows(index)
            allowed = allowed.index_select(0, index)
            rows = [rows[k] for k in keep]
            cache, allowed = _trim(cache, allowed)
        if not rows:  # the next items start a fresh batch
            cache, allowed, logits = model.new_cache(), allowed[:0, :0], logits[:0]
            continue
        # One step for every row, each at its own position.
        last = torch.tensor([[row.tokens[-1]] for row in rows], dtype=torch.long, device=device)  # (B, 1)
        where = torch.tensor([plen + row.step for row in rows], device=device)
        table = position._ensure(int(where.max()) + 1)
        embedded = model.ar_audio_embedding(last)  # (B, 1, D), as embed_semantic with a start per row
        step_in = embedded + position.alpha * table[where][:, None].to(dtype=embedded.dtype)
        allowed = F.pad(allowed, (0, 1), value=True)
        logits = model.run(step_in, cache, allowed[:, None, None, :]).float()
        for row in rows:
            row.step += 1
    log.debug("T2S continuous decode of %d items in %d slots", len(items), slots)
    return [r for r in results if r is not None]


def _histories(tokens: list[list[int]], device: torch.device) -> torch.Tensor:
    """Rows' token histories as one (g, T) tensor, each padded with a copy of its own first token:
    the penalty touches each id once, so a repeated id changes nothing."""
    width = max(len(t) for t in tokens)
    return torch.tensor([t + [t[0]] * (width - len(t)) for t in tokens], dtype=torch.long, device=device)


def _splice(cache: KVCache, allowed: torch.Tensor, own: KVCache, length: int) -> tuple[KVCache, torch.Tensor]:
    """Append a prefilled row (its cache `own`, `length` positions) to the batch's cache, both
    left-padded to a common length; returns the new cache and (B, L) visibility."""
    rows, current = allowed.shape
    width = max(current, length)
    merged = KVCache(len(own.keys))
    for layer, (k_new, v_new) in enumerate(zip(own.keys, own.values, strict=True)):
        k_new, v_new = k_new[:, :, :length], v_new[:, :, :length]  # type: ignore[index]
        parts_k, parts_v = [], []
        if rows:
            k_old = cache.keys[layer][:, :, :current]  # type: ignore[index]
            v_old = cache.values[layer][:, :, :current]  # type: ignore[index]
            parts_k.append(F.pad(k_old, (0, 0, width - current, 0)))
            parts_v.append(F.pad(v_old, (0, 0, width - current, 0)))
        parts_k.append(F.pad(k_new, (0, 0, width - length, 0)))
        parts_v.append(F.pad(v_new, (0, 0, width - length, 0)))
        merged.keys[layer], merged.values[layer] = torch.cat(parts_k), torch.cat(parts_v)
    merged.length = width
    seen = torch.zeros(rows + 1, width, dtype=torch.bool, device=allowed.device)
    seen[:rows, width - current:] = allowed
    seen[rows, width - length:] = True
    return merged, seen


def _trim(cache: KVCache, allowed: torch.Tensor) -> tuple[KVCache, torch.Tensor]:
    """Drop leading cache columns that no remaining row attends to (once there are TRIM_AT)."""
    if allowed.shape[0] == 0:
        return cache, allowed
    lead = int(allowed.float().argmax(dim=1).min())  # first visible column of the earliest row
    if lead < TRIM_AT:
        return cache, allowed
    for layer in range(len(cache.keys)):
        cache.keys[layer] = cache.keys[layer][:, :, lead:cache.length].contiguous()  # type: ignore[index]
        cache.values[layer] = cache.values[layer][:, :, lead:cache.length].contiguous()  # type: ignore[index]
    cache.length -= lead
    return cache, allowed[:, lead:]
