"""T2S decoding of a book's sentences: static batches against continuous batching (aggregate tokens/s).

A full-size v2 GPT (24 layers, 512 wide: the shape of s1longer-v2.yaml) with seeded random weights
decodes the first `--sentences` sentences of a real book, phonemised by bookcast's own front end
and G2P. Random weights would stop at random steps, so the EOS row of the output layer is zeroed
and each sentence instead stops at its own cap — 2.2 semantic tokens (25 Hz) per phone, about
what speech takes — so the mix of lengths is the book's. A real voice does not speak every phone
alike (pauses, pace): `--length-noise σ` multiplies each cap by exp(σ·z), z a seeded normal, while
the bucketing below still only knows phone counts, as the worker pool does. Five ways, interleaved,
≥ 3 repetitions:

- static, book order: batches of `--batch` consecutive sentences, rows leaving as they finish;
- static, bucketed: the same after sorting by phone count (what the worker pool does);
- continuous, longest first: `--batch` slots, each refilled with the next sentence as soon as its
  row stops, all the sentences fed longest first;
- continuous, bucketed chunks: what `continuous = true` really gets — the pool cuts the chapter's
  sentences, sorted by phone count, into chunks of 4 × `--batch` (CONTINUOUS_FILL), and each
  worker call decodes its chunk through the slots, longest first, draining at its end;
- continuous, book order: all the sentences through the slots in reading order.

All produce the same tokens for every sentence (checked). Prints min/median wall and aggregate
tokens/s per way, and both longest-first continuous ways ÷ each static; and, since a shared
machine's speed drifts by tens of percent, what each way's forward passes did (counts, the same on any machine):
decoding steps, rows per step, cache columns attended per row and step, prefill positions. On a CPU
a step costs about a + b·rows + c·rows·columns (the weights' read, per-row products, the cache's
read), so those counts say which way must win before the clock does. CPU threads: `--threads`.
`--precision bfloat16` runs the model in bfloat16 (the voice's opt-in; CPUs with native bfloat16):
a row's tokens then depend on its batch, so the ways' tokens are counted, not required, to agree.

    python bench/bench_continuous.py --book ~/books/moby-dick.epub --sentences 48 [--length-noise 0.2]
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from synth.engines.gpt_sovits import CONTINUOUS_FILL  # noqa: E402
from synth.engines.gpt_sovits.model.t2s_continuous import decode_continuous  # noqa: E402
from synth.engines.gpt_sovits.model.t2s_model import build_random_t2s  # noqa: E402
from synth.engines.gpt_sovits.model.t2s_sampling import SamplingParams  # noqa: E402

V2_T2S = {"vocab_size": 1025, "phoneme_vocab_size": 732, "embedding_dim": 512, "hidden_dim": 512, "head": 16,
          "n_layer": 24, "EOS": 1024}  # s1longer-v2.yaml, model section
TOKENS_PER_PHONE = 2.2


def book_phones(book: Path, count: int) -> list[list[int]]:
    """Phone ids of the book's first `count` sentences of ≥ 3 words, in reading order."""
    from flows.steps.spoken import book_scripts
    from ingest.reader import read_book
    from synth.g2p import G2P, phones_to_ids

    parsed = read_book(book)
    g2p = G2P()
    out: list[list[int]] = []
    for i in range(1, len(parsed.chapters) + 1):
        for line in book_scripts(parsed, "gpt-sovits", None, [i])[i]:
            if len(line.sentence.text.split()) < 3:
                continue
            phones = [p for run in line.sentence.runs if run.lang in ("en", "zh") for p in g2p.run(run).phones]
            if phones:
                out.append(phones_to_ids(phones))
            if len(out) == count:
                return out
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--book", type=Path, default=REPO / "projects" / "sample-epub" / "lighthouse.epub")
    ap.add_argument("--sentences", type=int, default=48)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--length-noise", type=float, default=0.0,
                    help="σ of a sentence's log length beyond its phone count (0: lengths follow phones exactly)")
    ap.add_argument("--precision", choices=("float32", "bfloat16"), default="float32")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if args.precision == "bfloat16" else torch.float32
    model = build_random_t2s(V2_T2S, seed=0, dtype=dtype)
    with torch.no_grad():
        model.ar_predict_layer.weight[model.cfg.eos].zero_()  # EOS never wins: sentences stop at their caps
    model.pack_for_cpu()  # as load_t2s does, once the weights are final
    ids = book_phones(args.book, args.sentences)
    gen = torch.Generator().manual_seed(1)
    prompt_phones = torch.randint(0, 732, (24,), generator=gen)
    phones = [torch.cat([prompt_phones, torch.tensor(p)]) for p in ids]
    bert = [torch.randn(1024, len(p), generator=gen).to(dtype) for p in phones]
    prompt = torch.randint(0, 1024, (75,), generator=gen)  # a 3-second reference
    pace = torch.Generator().manual_seed(2)
    caps = [max(20, min(400, round(TOKENS_PER_PHONE * len(p) * math.exp(args.length_noise * float(
        torch.randn(1, generator=pace)))))) for p in ids]
    seeds = list(range(len(ids)))
    sampling = SamplingParams(top_k=15, top_p=1.0, temperature=1.0, repetition_penalty=1.35)
    total_tokens = sum(c + 1 for c in caps)
    print(f"{len(ids)} sentences of {args.book.name}: {min(len(p) for p in ids)}–{max(len(p) for p in ids)} phones, "
          f"{total_tokens} tokens in all (length noise σ {args.length_noise}); batch/slots {args.batch}; "
          f"{args.threads} threads, {args.precision}; load {os.getloadavg()[0]:.2f}")

    work: dict[str, int] = {}  # what the forward passes of one way did: machine-independent counts
    inner_run = model.run

    def counted_run(x: torch.Tensor, cache, allowed):  # noqa: ANN001 - the model's own signature
        key = "prefill positions" if x.shape[1] > 1 else "steps"
        work[key] = work.get(key, 0) + (x.shape[0] * x.shape[1] if x.shape[1] > 1 else 1)
        if x.shape[1] == 1:
            work["row-steps"] = work.get("row-steps", 0) + x.shape[0]
            work["row-columns"] = work.get("row-columns", 0) + x.shape[0] * (cache.length + 1)
        return inner_run(x, cache, allowed)

    model.run = counted_run  # type: ignore[method-assign]

    def run(order: list[int], chunk: int, longest_first: bool) -> tuple[float, list[list[int]]]:
        """Decode `order` in groups of `chunk` sentences, each group through `batch` slots (a group of
        `batch` is a static batch, a longer one continuous decoding), fed longest first or as given."""
        tokens: dict[int, list[int]] = {}
        work.clear()
        started = time.perf_counter()
        groups = [order[k:k + chunk] for k in range(0, len(order), chunk)]
        if longest_first:
            groups = [sorted(g, key=lambda i: -len(phones[i])) for g in groups]
        for group in groups:
            results = decode_continuous(model, [phones[i] for i in group], [bert[i] for i in group], prompt,
                                        slots=args.batch, sampling=sampling, seed=[seeds[i] for i in group],
                                        early_stop_num=[caps[i] for i in group])
            tokens.update({i: r.tokens.tolist() for i, r in zip(group, results)})
        return time.perf_counter() - started, [tokens[i] for i in range(len(ids))]

    book_order = list(range(len(ids)))
    bucketed = sorted(book_order, key=lambda i: len(phones[i]))
    everything, pool = len(ids), CONTINUOUS_FILL * args.batch
    ways = {"static, book order": (book_order, args.batch, False), "static, bucketed": (bucketed, args.batch, False),
            "continuous, longest first": (bucketed, everything, True),
            f"continuous, bucketed chunks of {pool}": (bucketed, pool, True),
            "continuous, book order": (book_order, everything, False)}
    times: dict[str, list[float]] = {w: [] for w in ways}
    counts: dict[str, dict[str, int]] = {}
    reference = None
    for _ in range(args.reps):  # interleaved, so a busy moment hits every way alike
        for way, (order, chunk, longest_first) in ways.items():
            seconds, tokens = run(order, chunk, longest_first)
            times[way].append(seconds)
            counts[way] = dict(work)
            reference = reference or tokens
            moved = sum(a != b for a, b in zip(tokens, reference))
            assert moved == 0 or dtype != torch.float32, f"{way} produced other tokens"
            if moved and len(times[way]) == 1:
                print(f"{way}: {moved} of {len(ids)} sentences got other tokens than the first way's (bfloat16)")
    print("\n| way | min s | median s | tokens/s (median) | decoding steps | rows per step | columns per row-step |"
          " prefill positions |\n|---|---|---|---|---|---|---|---|")
    for way, t in times.items():
        c = counts[way]
        print(f"| {way} | {min(t):.1f} | {statistics.median(t):.1f} | {total_tokens / statistics.median(t):.0f} | "
              f"{c['steps']} | {c['row-steps'] / c['steps']:.2f} | {c['row-columns'] / c['row-steps']:.0f} | "
              f"{c['prefill positions']} |")
    for way in ("continuous, longest first", f"continuous, bucketed chunks of {pool}"):
        for static in ("static, book order", "static, bucketed"):
            ratio = statistics.median(times[static]) / statistics.median(times[way])
            print(f"{way} vs {static}: {ratio:.2f}× aggregate tokens/s")


if __name__ == "__main__":
    main()
