"""Continuous batching for the text-to-semantic decoder: a fixed number of slots kept full.

`decode_batch` decodes a fixed batch whose rows leave as they reach EOS, so the batch shrinks to
a straggler or two while the device idles. A book is thousands of sentences: here, when a row
finishes, its slot is refilled at once with the next sentence — prefilled alone (its text and the
prompt through the model, with its own fresh cache), its keys and values placed into its row of
the running batch's cache (`RaggedCache`: each row's columns packed at the front, each row writing
its next key after its own last), and decoding goes on with every row at its own step and position.

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

from synth.engines.gpt_sovits.model.t2s_cache import RaggedCache
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
from synth.engines.gpt_sovits.model.t2s_model import Text2SemanticDecoder
from synth.engines.gpt_sovits.model.t2s_sampling import SamplingParams, choose_next

log = logging.getLogger(__name__)

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
    rows: list[_Row | None] = [None] * min(slots, len(items))  # one per slot; None: free
    cache = RaggedCache(model.cfg.num_layers, len(rows))
    logits = torch.zeros(len(rows), model.cfg.vocab_size, device=device)
    position = model.ar_audio_position

    def finish(k: int, stop: StopReason) -> None:
        row = rows[k]
        assert row is not None
        sequence = torch.tensor(row.tokens, dtype=torch.long)
        index = row.step
        result = DecodeResult(tokens=_slice(sequence, index, plen), sequence=sequence, index=index, stop=stop,
                              steps=row.step + 1, logits=torch.stack(row.raw) if keep_logits else None)
        results[row.item] = result
        rows[k] = None
        cache.release(k)
        if on_done is not None:
            on_done(row.item, result)

    while queue or any(r is not None for r in rows):
        # Refill free slots: each new item is prefilled alone and its keys/values written into its
        # slot's row of the cache, at columns 0.. (positions are in the embeddings; the row sees
        # only its own columns).
        for k in range(len(rows)):
            if rows[k] is None and queue:
                item = queue.popleft()
                phones, item_bert = items[item]
                xy = torch.cat([model.embed_text(phones, item_bert), model.embed_semantic(prompt, 0)], dim=1)
                own = model.new_cache()
                logits[k] = model.run(xy, own, ~_prefix_blocked(phones.shape[1], plen, device)[None, None])[0].float()
                cache.place(k, own)
                rows[k] = _Row(item, gens[item], prompt[0].tolist())
        if not queue and any(r is None for r in rows):  # nothing left to refill with: drop free slots
            keep = torch.tensor([k for k, r in enumerate(rows) if r is not None], dtype=torch.long, device=device)
            cache.keep_rows(keep)
            logits = logits.index_select(0, keep)
            rows = [r for r in rows if r is not None]
            if not rows:
                break
        live: list[_Row] = [r for r in rows if r is not None]
        # Sample every row from its logits, early rows (EOS excluded) and later rows apart.
        if keep_logits:
            for k, row in enumerate(live):
                row.raw.append(logits[k].cpu().clone())
        chosen = torch.empty(len(live), dtype=torch.long, device=device)
        argmax_eos = torch.zeros(len(live), dtype=torch.bool, device=device)
        for early in (True, False):
            group = [k for k, row in enumerate(live) if (row.step < NO_EOS_STEPS) == early]
            if not group:
                continue
            index = torch.tensor(group, device=device)
            part = logits.index_select(0, index)
            part = part[:, :-1] if early else part
            history = _histories([live[k].tokens for k in group], device)
            nxt = choose_next(part, history, sampling, [live[k].generator for k in group])  # (g, 1)
            chosen[index] = nxt[:, 0]
            if not early:
                argmax_eos[index] = part.argmax(dim=-1) == eos
        chosen_list = chosen.tolist()
        ended_list = ((chosen == eos) | argmax_eos).tolist()
        for k, row in enumerate(live):
            row.tokens.append(chosen_list[k])
            if ended_list[k]:
                row.tokens.pop()
                finish(k, "eos")
            elif (caps[row.item] != -1 and len(row.tokens) - plen > caps[row.item]) or row.step == max_steps - 1:
                finish(k, "cap")
        if all(r is None for r in rows):
            continue
        # One step for every row, each at its own position (a slot freed just now steps idly; the
        # refill overwrites it).
        last = torch.tensor([[r.tokens[-1] if r else 0] for r in rows], dtype=torch.long, device=device)  # (B, 1)
        where = torch.tensor([plen + r.step if r else 0 for r in rows], device=device)
        table = position._ensure(int(where.max()) + 1)
        embedded = model.ar_audio_embedding(last)  # (B, 1, D), as embed_semantic with a start per row
        step_in = embedded + position.alpha * table[where][:, None].to(dtype=embedded.dtype)
        logits = model.run(step_in, cache, cache.bias(step_in.dtype)).float()
        for r in rows:
            if r is not None:
                r.step += 1
    log.debug("T2S continuous decode of %d items in %d slots", len(items), slots)
    return [r for r in results if r is not None]


def _histories(tokens: list[list[int]], device: torch.device) -> torch.Tensor:
    """Rows' token histories as one (g, T) tensor, each padded with a copy of its own first token:
    the penalty touches each id once, so a repeated id changes nothing."""
    width = max(len(t) for t in tokens)
    return torch.tensor([t + [t[0]] * (width - len(t)) for t in tokens], dtype=torch.long, device=device)
