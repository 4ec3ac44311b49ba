"""T2S decoding of a book's sentences: static batches against continuous batching (aggregate tokens/s).

A full-size v2 GPT (24 layers, 512 wide: the shape of s1longer-v2.yaml) with seeded random weights
decodes the first `--sentences` sentences of a real book, phonemised by bookcast's own front end
and G2P. Random weights would stop at random steps, so the EOS row of the output layer is zeroed
and each sentence instead stops at its own cap — 2.2 semantic tokens (25 Hz) per phone, about
what speech takes — so the mix of lengths is the book's. A real voice does not speak every phone
alike (pauses, pace): `--length-noise σ` multiplies each cap by exp(σ·z), z a seeded normal, while
the bucketing below still only knows phone counts, as the worker pool does. Six ways (`--ways`
picks some), interleaved, ≥ 3 repetitions:

- static, book order: batches of `--batch` consecutive sentences, rows leaving as they finish;
- static, bucketed: the same after sorting by phone count (what the worker pool does);
- continuous, longest first: `--batch` slots, each refilled with the next sentence as soon as its
  row stops, all the sentences fed longest first;
- continuous, bucketed chunks: what `continuous = true` got until session 13 — the pool cut the
  chapter's sentences, sorted by phone count, into chunks of 4 × `--batch` (CONTINUOUS_FILL), and
  each worker call decodes its chunk through the slots, longest first, draining at its end;
- continuous, reading-order chunks: what it gets now — the same chunks cut in reading order, so each
  holds a mix of lengths (fed longest first, it drains on its short ones);
- continuous, book order: all the sentences through the slots in reading order;
- with `--more-fills 8`: reading-order chunks of 8 × `--batch`, what a larger CONTINUOUS_FILL would feed.

All produce the same tokens for every sentence (checked). Prints min/median wall and aggregate
tokens/s per way, and both longest-first continuous ways ÷ each static; and, since a shared
machine's speed drifts by tens of percent, what each way's forward passes did (counts, the same on any machine):
decoding steps, rows per step, cache columns attended per row and step, prefill positions. On a CPU
a step costs about a + b·rows + c·rows·columns (the weights' read, per-row products, the cache's
read), so those counts say which way must win before the clock does. CPU threads: `--threads`.
`--precision bfloat16` runs the model in bfloat16 (the voice's opt-in; CPUs with native bfloat16):
a row's tokens then depend on its batch, so the ways' tokens are counted, not required, to agree.
On a CUDA device (`--device cuda`, the default where there is one) the model runs in float16, as
the engine runs it there, and the same holds.

Without `--book` the sentences are phone counts from a real book shipped beside this script
(`data/moby-dick-phones.txt`: *Moby-Dick* from "Loomings" on — bookcast's chapter 3, after the
Etymology and the Extracts — as bookcast's front end phonemises it),
so the GPU check runs the same realistic mix on a machine with no books on it; the phone ids are
then seeded random ones, which cost what real ones cost.

    python bench/bench_continuous.py --book ~/books/moby-dick.epub --sentences 48 [--length-noise 0.2]
    python bench/bench_continuous.py --sentences 256 --batch 32 --length-noise 0.3   # shipped mix
    python bench/bench_continuous.py --book ~/books/moby-dick.epub --from-chapter 3 --sentences 1024 \
        --write-lengths bench/data/moby-dick-phones.txt                              # how it was made
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


LENGTHS = REPO / "bench" / "data" / "moby-dick-phones.txt"


def book_phones(book: Path, count: int, first_chapter: int = 1) -> list[list[int]]:
    """Phone ids of the book's first `count` sentences of ≥ 3 words from `first_chapter` on, in
    reading order."""
    from flows.steps.spoken import book_scripts
    from ingest.reader import read_book
    from synth.g2p import G2P, phones_to_ids

    parsed = read_book(book)
    g2p = G2P()
    out: list[list[int]] = []
    for i in range(first_chapter, len(parsed.chapters) + 1):
        for line in book_scripts(parsed, "gpt-sovits", None, [i])[i]:
            if len(line.sentence.text.split()) < 3:
                continue
            phones = [p for run in line.sentence.runs if run.lang in ("en", "zh") for p in g2p.run(run).phones]
            if phones:
                out.append(phones_to_ids(phones))
            if len(out) == count:
                return out
    return out


def shipped_phones(path: Path, count: int) -> list[list[int]]:
    """`count` sentences with the phone counts listed in `path` (one per line, # comments), their
    phone ids seeded random ones."""
    lengths = [int(line) for line in path.read_text(encoding="utf-8").splitlines()
               if line.strip() and not line.startswith("#")][:count]
    gen = torch.Generator().manual_seed(3)
    return [torch.randint(0, 732, (n,), generator=gen).tolist() for n in lengths]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--book", type=Path, help=f"a book to take the sentences from (default: {LENGTHS.name})")
    ap.add_argument("--from-chapter", type=int, default=1, help="with --book: the first chapter read")
    ap.add_argument("--write-lengths", type=Path, help="with --book: write the sentences' phone counts there and stop")
    ap.add_argument("--sentences", type=int, default=48)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--length-noise", type=float, default=0.0,
                    help="σ of a sentence's log length beyond its phone count (0: lengths follow phones exactly)")
    ap.add_argument("--ways", help="only the ways whose names contain one of these comma-separated words")
    ap.add_argument("--more-fills", type=lambda v: [int(x) for x in v.split(",") if x], default=[],
                    help=f"also reading-order chunks of these many slots' worth (the pool's is {CONTINUOUS_FILL})")
    ap.add_argument("--precision", choices=("float32", "bfloat16", "float16"),
                    help="default: float32 on a CPU, float16 on CUDA (as the engine runs)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    if args.write_lengths:
        if not args.book:
            raise SystemExit("--write-lengths needs --book")
        counts = [len(p) for p in book_phones(args.book, args.sentences, args.from_chapter)]
        args.write_lengths.parent.mkdir(parents=True, exist_ok=True)
        args.write_lengths.write_text(
            f"# phones per sentence: the first {len(counts)} sentences of >= 3 words of {args.book.name} from its "
            f"chapter {args.from_chapter} on,\n# as bookcast's front end and G2P phonemise them (written by "
            f"bench_continuous.py --write-lengths)\n" + "\n".join(map(str, counts)) + "\n", encoding="utf-8")
        print(f"{args.write_lengths}: {len(counts)} sentences")
        return
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    precision = args.precision or ("float16" if device.type == "cuda" else "float32")
    dtype = getattr(torch, precision)
    model = build_random_t2s(V2_T2S, seed=0, device=device, dtype=dtype)
    with torch.no_grad():
        model.ar_predict_layer.weight[model.cfg.eos].zero_()  # EOS never wins: sentences stop at their caps
    if device.type == "cpu":
        model.pack_for_cpu()  # as load_t2s does, once the weights are final
    source = args.book or LENGTHS
    ids = book_phones(args.book, args.sentences, args.from_chapter) if args.book else shipped_phones(LENGTHS, args.sentences)
    gen = torch.Generator().manual_seed(1)
    prompt_phones = torch.randint(0, 732, (24,), generator=gen)
    phones = [torch.cat([prompt_phones, torch.tensor(p)]).to(device) for p in ids]
    bert = [torch.randn(1024, len(p), generator=gen).to(device=device, dtype=dtype) for p in phones]
    prompt = torch.randint(0, 1024, (75,), generator=gen).to(device)  # a 3-second reference
    pace = torch.Generator().manual_seed(2)
    caps = [max(20, min(400, round(TOKENS_PER_PHONE * len(p) * math.exp(args.length_noise * float(
        torch.randn(1, generator=pace)))))) for p in ids]
    seeds = list(range(len(ids)))
    sampling = SamplingParams(top_k=15, top_p=1.0, temperature=1.0, repetition_penalty=1.35)
    total_tokens = sum(c + 1 for c in caps)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{args.threads} threads"
    print(f"{len(ids)} sentences of {source.name}: {min(len(p) for p in ids)}–{max(len(p) for p in ids)} phones, "
          f"{total_tokens} tokens in all (length noise σ {args.length_noise}); batch/slots {args.batch}; "
          f"{where}, {precision}; load {os.getloadavg()[0]:.2f}")

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
        return time.perf_counter() - started, [tokens[i] for i in sorted(tokens)]

    book_order = list(range(len(ids)))
    bucketed = sorted(book_order, key=lambda i: len(phones[i]))
    everything, pool = len(ids), CONTINUOUS_FILL * args.batch
    ways = {"static, book order": (book_order, args.batch, False), "static, bucketed": (bucketed, args.batch, False),
            "continuous, longest first": (bucketed, everything, True),
            f"continuous, bucketed chunks of {pool}": (bucketed, pool, True),
            f"continuous, reading-order chunks of {pool}": (book_order, pool, True),
            "continuous, book order": (book_order, everything, False)}
    for fill in args.more_fills:  # what a larger CONTINUOUS_FILL would feed
        ways[f"continuous, reading-order chunks of {fill * args.batch}"] = (book_order, fill * args.batch, True)
    if args.ways:
        ways = {w: v for w, v in ways.items() if any(part.strip() in w for part in args.ways.split(","))}
    times: dict[str, list[float]] = {w: [] for w in ways}
    counts: dict[str, dict[str, int]] = {}
    reference = None
    run(book_order[: args.batch], args.batch, False)  # warm-up: kernels, allocator (CUDA's first calls)
    for _ in range(args.reps):  # interleaved, so a busy moment hits every way alike
        for way, (order, chunk, longest_first) in ways.items():
            seconds, tokens = run(order, chunk, longest_first)
            times[way].append(seconds)
            print(f"  {way}: {seconds:.1f} s", flush=True)  # as it goes: a run cut short still says something
            counts[way] = dict(work)
            reference = reference or tokens
            moved = sum(a != b for a, b in zip(tokens, reference))
            assert moved == 0 or dtype != torch.float32, f"{way} produced other tokens"
            if moved and len(times[way]) == 1:
                print(f"{way}: {moved} of {len(ids)} sentences got other tokens than the first way's ({precision})")
    print("\n| way | min s | median s | tokens/s (median) | decoding steps | rows per step | columns per row-step |"
          " prefill positions |\n|---|---|---|---|---|---|---|---|")
    for way, t in times.items():
        c = counts[way]
        print(f"| {way} | {min(t):.1f} | {statistics.median(t):.1f} | {total_tokens / statistics.median(t):.0f} | "
              f"{c['steps']} | {c['row-steps'] / c['steps']:.2f} | {c['row-columns'] / c['row-steps']:.0f} | "
              f"{c['prefill positions']} |")
    for way in ("continuous, longest first", f"continuous, bucketed chunks of {pool}",
                *(f"continuous, reading-order chunks of {fill * args.batch}" for fill in (CONTINUOUS_FILL, *args.more_fills))):
        for static in ("static, book order", "static, bucketed"):
            if way not in times or static not in times:
                continue
            ratio = statistics.median(times[static]) / statistics.median(times[way])
            print(f"{way} vs {static}: {ratio:.2f}× aggregate tokens/s")


if __name__ == "__main__":
    main()
