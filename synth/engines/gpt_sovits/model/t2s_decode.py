"""Autoregressive decoding loops of the text-to-semantic model, with the reference's stop rules.

Two loops, matching the two the GPT-SoVITS pipeline uses (and its golden outputs token for token):

- `decode_naive`: one item; the semantics of the reference `infer_panel_naive`.
- `decode_batch`: several items left-padded into one batch, rows leaving the batch as they finish;
  the semantics of the reference `infer_panel_batch_infer` (the pipeline's default).

Shared rules: EOS cannot win in the first `NO_EOS_STEPS` steps (its logit column is removed); a row
stops when the sampled token OR the argmax of the penalised logits is EOS (the EOS is not kept), or
when more than `early_stop_num` tokens were generated, or at `max_steps`. The token produced at step
k sits at semantic position prompt_len + k.

The reference's returned index `idx` (the step at which decoding stopped) and its slice
`y[-idx:]` are reproduced, quirks included: when the step cap stops a single-item decode, `y` keeps
all k+1 tokens and the slice drops the FIRST generated one; the batched loop drops the LAST one
instead. In reference-free mode (no prompt) the single-item decode returns every generated token.

Randomness is per row (see `t2s_sampling`): each item owns a `torch.Generator`, seeded from its own
seed, that only its row draws from and that leaves the batch with the row. Together with row-local
masking (a left-padded row attends to exactly the keys it would see alone) this makes an item's
tokens the same alone and in any batch, in any order, for any sampling settings, as long as its
logits agree to float precision (they do in float32: ~1e-6). `decode_naive` is the batch-of-1 case.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from synth.engines.gpt_sovits.model.t2s_model import BERT_DIM, Text2SemanticDecoder
from synth.engines.gpt_sovits.model.t2s_sampling import SamplingParams, choose_next

log = logging.getLogger(__name__)

NO_EOS_STEPS = 11  # steps (0..10) in which EOS is excluded: at least ~0.4 s of speech
DEFAULT_MAX_STEPS = 1500  # hard cap of the reference loops (60 s of 25 Hz tokens)

StopReason = Literal["eos", "cap"]
DEFAULT_SAMPLING = SamplingParams()  # frozen: safe to share as a default


@dataclass(frozen=True)
class DecodeResult:
    """One decoded item (all tensors int64 / float32 on the CPU).

    tokens: (G,) semantic tokens to hand to SoVITS, i.e. the reference's `y[-idx:]` slice
    sequence: the reference's full `y` for this item (prompt tokens + kept generated tokens)
    index: the reference's returned `idx` (0 in reference-free single-item mode)
    stop: "eos" or "cap" (early_stop_num or max_steps)
    steps: forward passes this item took part in
    logits: (steps, vocab) raw logits per step (before EOS removal and penalty), if requested
    """

    tokens: torch.Tensor
    sequence: torch.Tensor
    index: int
    stop: StopReason
    steps: int
    logits: torch.Tensor | None = None


def _device_dtype(model: Text2SemanticDecoder) -> tuple[torch.device, torch.dtype]:
    param = model.ar_predict_layer.weight
    return param.device, param.dtype


def _make_generators(
    count: int, seed: int | Sequence[int], generators: Sequence[torch.Generator] | None
) -> list[torch.Generator]:
    """One generator per row: the given ones (any device), else fresh CPU ones seeded per row.

    CPU generators make a seed's noise independent of the model's device (see `t2s_sampling`).
    Raises ValueError when the counts differ.
    """
    if generators is not None:
        gens = list(generators)
        if len(gens) != count:
            raise ValueError(f"{len(gens)} generators for {count} items")
        return gens
    seeds = [seed] * count if isinstance(seed, int) else [int(s) for s in seed]
    if len(seeds) != count:
        raise ValueError(f"{len(seeds)} seeds for {count} items")
    return [torch.Generator(device="cpu").manual_seed(s) for s in seeds]


def _check_item(
    model: Text2SemanticDecoder, phones: torch.Tensor, bert: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalise one item to phones (1, N) long and bert (1, 1024, N); ValueError on bad shapes."""
    if phones.dim() == 1:
        phones = phones.unsqueeze(0)
    if bert.dim() == 2:
        bert = bert.unsqueeze(0)
    if phones.dim() != 2 or phones.shape[0] != 1 or bert.dim() != 3 or bert.shape[:2] != (1, BERT_DIM):
        raise ValueError(f"expected phones (N,) and bert ({BERT_DIM}, N); got {tuple(phones.shape)}, "
                         f"{tuple(bert.shape)}")
    if phones.shape[1] != bert.shape[2] or phones.shape[1] == 0:
        raise ValueError(f"{phones.shape[1]} phones but {bert.shape[2]} BERT frames")
    if int(phones.max()) >= model.cfg.phoneme_vocab_size or int(phones.min()) < 0:
        raise ValueError("phone id outside the model's phoneme vocabulary")
    return phones.long(), bert


def _check_limits(model: Text2SemanticDecoder, prompt: torch.Tensor | None, early_stop_num: int,
                  max_steps: int) -> None:
    if early_stop_num < -1 or max_steps < 1:
        raise ValueError(f"bad limits early_stop_num={early_stop_num}, max_steps={max_steps}")
    if prompt is None or prompt.numel() == 0:
        return
    if int(prompt.max()) >= model.cfg.eos or int(prompt.min()) < 0:
        raise ValueError("prompt semantic token outside 0..EOS-1")


def _prefix_blocked(text_len: int, prompt_len: int, device: torch.device) -> torch.Tensor:
    """(S, S) bool, True = blocked: text sees only text; prompt tokens see text + earlier prompt."""
    size = text_len + prompt_len
    blocked = torch.zeros(size, size, dtype=torch.bool, device=device)
    blocked[:text_len, text_len:] = True
    blocked[text_len:, text_len:] = torch.ones(prompt_len, prompt_len, dtype=torch.bool,
                                               device=device).triu(1)
    return blocked


def _slice(sequence: torch.Tensor, index: int, prompt_len: int) -> torch.Tensor:
    # The reference's y[-idx:]; idx == 0 would return the prompt too (y[-0:]), so we return only
    # what was generated in that degenerate case (reachable only with early_stop_num=0).
    return sequence[sequence.shape[0] - index:] if index > 0 else sequence[prompt_len:]


def sample_rows(logits: torch.Tensor, history: torch.Tensor, step: int, sampling: SamplingParams,
                generators: Sequence[torch.Generator], eos: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One step's choice for every row of float32 logits (b, V) at decoding step `step`: the EOS
    column removed in the first `NO_EOS_STEPS` steps, the penalty over `history` (b, L) applied in
    place, row r drawn from generators[r]. Returns the ids (b, 1) and whether each row ends (b,)
    bool: the draw or the argmax of the penalised logits is EOS."""
    if step < NO_EOS_STEPS:
        logits = logits[:, :-1]  # EOS is the last column
    nxt = choose_next(logits, history, sampling, generators)
    return nxt, (nxt[:, 0] == eos) | (logits.argmax(dim=-1) == eos)


@torch.inference_mode()
def decode_naive(
    model: Text2SemanticDecoder,
    phone_ids: torch.Tensor,
    bert: torch.Tensor,
    prompt: torch.Tensor | None,
    *,
    sampling: SamplingParams = DEFAULT_SAMPLING,
    early_stop_num: int = -1,
    max_steps: int = DEFAULT_MAX_STEPS,
    seed: int = 0,
    generator: torch.Generator | None = None,
    keep_logits: bool = False,
) -> DecodeResult:
    """Decode one item: phone ids (N,), BERT (1024, N), optional prompt semantic tokens (P,).

    `prompt=None` is reference-free mode. `generator` (any device; default a CPU one seeded with
    `seed`) is advanced by one (1, V) block per step. Raises ValueError for inconsistent shapes or
    out-of-range ids.
    """
    device, _ = _device_dtype(model)
    phones, bert = _check_item(model, phone_ids.to(device), bert.to(device))
    if prompt is not None:
        prompt = prompt.reshape(1, -1).to(device).long()  # (1, P)
    _check_limits(model, prompt, early_stop_num, max_steps)
    gens = _make_generators(1, seed, None if generator is None else [generator])
    eos = model.cfg.eos

    x = model.embed_text(phones, bert)  # (1, N, D)
    if prompt is not None:
        y = prompt
        xy = torch.cat([x, model.embed_semantic(y, 0)], dim=1)  # (1, N + P, D)
    else:
        y = torch.zeros(1, 0, dtype=torch.long, device=device)
        xy = x
    prompt_len = y.shape[1]
    allowed = ~_prefix_blocked(x.shape[1], prompt_len, device)[None, None]  # (1, 1, S, S)

    cache = model.new_cache()
    raw: list[torch.Tensor] = []
    stop: StopReason = "cap"
    step_in = xy
    for idx in range(max_steps):
        logits = model.run(step_in, cache, allowed if idx == 0 else None).float()  # (1, V)
        if keep_logits:
            raw.append(logits[0].cpu().clone())
        nxt, ended = sample_rows(logits, y, idx, sampling, gens, eos)  # (1, 1), (1,)
        y = torch.cat([y, nxt], dim=1)
        done = early_stop_num != -1 and y.shape[1] - prompt_len > early_stop_num
        if bool(ended[0]):
            y, stop, done = y[:, :-1], "eos", True
        if done or idx == max_steps - 1:
            break
        step_in = model.embed_semantic(y[:, -1:], prompt_len + idx)  # (1, 1, D)
    if y.shape[1] == 0:  # the reference's "bad zero prediction" guard
        y = torch.zeros(1, 1, dtype=torch.long, device=device)
    sequence = y[0].cpu()
    index = idx if prompt is not None else 0
    tokens = _slice(sequence, index, prompt_len) if prompt is not None else sequence
    log.debug("T2S naive decode: %d tokens, stop=%s after %d steps", tokens.numel(), stop, idx + 1)
    return DecodeResult(
        tokens=tokens, sequence=sequence, index=index, stop=stop, steps=idx + 1,
        logits=torch.stack(raw) if keep_logits else None,
    )


@dataclass(frozen=True)
class Prefix:
    """A batch's first forward pass, items left-padded to one width (see `left_padded_prefix`).

    y: (B, P) prompt tokens per row; xy: (B, S, D) text + prompt embeddings, S = width + P;
    allowed: (B, 1, S, S) bool attention mask of the prefill; row_allowed: (B, 1, 1, S) bool, the
    columns a row's new tokens may attend to (its padding excluded).
    """

    y: torch.Tensor
    xy: torch.Tensor
    allowed: torch.Tensor
    row_allowed: torch.Tensor


def left_padded_prefix(
    model: Text2SemanticDecoder,
    phone_ids: Sequence[torch.Tensor],
    bert: Sequence[torch.Tensor],
    prompts: torch.Tensor,
    max_len: int | None = None,
) -> Prefix:
    """Embed items (phones (N_i,), bert (1024, N_i)) left-padded to `max_len` (default the longest)
    followed by the prompt (P,) or (B, P); each row attends only to its own positions. Raises
    ValueError for bad shapes or ids, a prompt count that is not B, or max_len too short."""
    device, _ = _device_dtype(model)
    items = [_check_item(model, p.to(device), b.to(device)) for p, b in zip(phone_ids, bert, strict=True)]
    bsz = len(items)
    y = prompts.to(device).long()
    y = y.reshape(1, -1).expand(bsz, -1) if y.dim() == 1 or y.shape[0] == 1 else y  # (B, P)
    if y.shape[0] != bsz:
        raise ValueError(f"{y.shape[0]} prompts for {bsz} items")
    lengths = [p.shape[1] for p, _ in items]
    width = max(lengths) if max_len is None else max_len
    if width < max(lengths):
        raise ValueError(f"max_len={width} is shorter than an item ({max(lengths)} phones)")
    text = [model.embed_text(p, b)[0] for p, b in items]  # each (N_i, D), own positions from 0
    x = torch.stack([torch.nn.functional.pad(t, (0, 0, width - t.shape[0], 0)) for t in text])  # (B, M, D)
    prompt_len = y.shape[1]
    xy = torch.cat([x, model.embed_semantic(y, 0)], dim=1)  # (B, M + P, D)
    pad = torch.zeros(bsz, width + prompt_len, dtype=torch.bool, device=device)  # (B, S)
    for row, n in enumerate(lengths):
        pad[row, : width - n] = True
    blocked = _prefix_blocked(width, prompt_len, device)[None] | pad[:, None, :]  # (B, S, S)
    # padded query rows still see the real text: no NaN
    return Prefix(y=y, xy=xy, allowed=(~blocked)[:, None], row_allowed=(~pad)[:, None, None, :])


@torch.inference_mode()
def decode_batch(
    model: Text2SemanticDecoder,
    phone_ids: Sequence[torch.Tensor],
    bert: Sequence[torch.Tensor],
    prompts: torch.Tensor | None,
    *,
    sampling: SamplingParams = DEFAULT_SAMPLING,
    early_stop_num: int = -1,
    max_steps: int = DEFAULT_MAX_STEPS,
    max_len: int | None = None,
    seed: int | Sequence[int] = 0,
    generators: Sequence[torch.Generator] | None = None,
    keep_logits: bool = False,
) -> list[DecodeResult]:
    """Decode several items at once: phones[i] (N_i,), bert[i] (1024, N_i), prompts (P,) or (B, P).

    Text is left-padded to `max_len` (default: the longest item). Without prompts every item is
    decoded alone in reference-free mode, as the reference does. Results come in input order.
    Item i samples from its own generator: `generators[i]` (any device) if given, else a fresh
    CPU one seeded with `seed[i]`; an int `seed` seeds every item alike. Either way item i gets
    the tokens it gets alone with that generator/seed; give distinct per-item seeds (e.g. derived
    from the text) so that rows do not share their noise.
    Raises ValueError for inconsistent shapes, out-of-range ids, max_len shorter than an item, or
    seeds/generators that do not match the items.
    """
    if len(phone_ids) != len(bert) or not phone_ids:
        raise ValueError(f"{len(phone_ids)} phone sequences but {len(bert)} BERT matrices")
    gens = _make_generators(len(phone_ids), seed, generators)
    if prompts is None:
        return [
            decode_naive(model, p, b, None, sampling=sampling, early_stop_num=early_stop_num,
                         max_steps=max_steps, generator=g, keep_logits=keep_logits)
            for p, b, g in zip(phone_ids, bert, gens, strict=True)
        ]
    prefix = left_padded_prefix(model, phone_ids, bert, prompts, max_len)
    y, xy, allowed, row_allowed = prefix.y, prefix.xy, prefix.allowed, prefix.row_allowed
    bsz, prompt_len = y.shape
    _check_limits(model, y, early_stop_num, max_steps)
    eos = model.cfg.eos
    cache = model.new_cache()
    active = list(range(bsz))  # original item index of each current batch row
    results: list[DecodeResult | None] = [None] * bsz
    raw: list[list[torch.Tensor]] = [[] for _ in range(bsz)]  # per item, when keep_logits

    def finish(row: int, idx: int, stop: StopReason) -> None:
        item = active[row]
        sequence = y[row, :-1].cpu()
        results[item] = DecodeResult(
            tokens=_slice(sequence, idx, prompt_len), sequence=sequence, index=idx, stop=stop,
            steps=idx + 1, logits=torch.stack(raw[item]) if keep_logits else None,
        )

    step_in = xy
    for idx in range(max_steps):
        logits = model.run(step_in, cache, allowed if idx == 0 else row_allowed).float()  # (b, V)
        row_allowed = torch.nn.functional.pad(row_allowed, (0, 1), value=True)
        if keep_logits:
            for row, item in enumerate(active):
                raw[item].append(logits[row].cpu().clone())
        nxt, ended = sample_rows(logits, y, idx, sampling, gens, eos)  # (b, 1), (b,)
        y = torch.cat([y, nxt], dim=1)
        if bool(ended.any()):
            for row in ended.nonzero().flatten().tolist():
                finish(row, idx, "eos")
            keep = (~ended).nonzero().flatten()
            y, row_allowed = y[keep], row_allowed[keep]
            cache.keep_rows(keep)
            kept = keep.tolist()
            active = [active[i] for i in kept]
            gens = [gens[i] for i in kept]  # a row keeps its own stream
        if (early_stop_num != -1 and y.shape[1] - prompt_len > early_stop_num) or idx == max_steps - 1:
            for row in range(len(active)):
                finish(row, idx, "cap")
            break
        if not active:
            break
        step_in = model.embed_semantic(y[:, -1:], prompt_len + idx)  # (b, 1, D)
    assert all(r is not None for r in results), "every row stops by EOS or by the cap"
    log.debug("T2S batch decode of %d items: %d steps", bsz, idx + 1)
    return [r for r in results if r is not None]
