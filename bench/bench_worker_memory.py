"""A GPT-SoVITS worker's memory over a real book's sentences: resident memory between batches, its
peak, and the wall time, against a baseline checkout side by side.

A synthesis worker lives for a whole book, and each sentence gives its models tensors of a new
size; what matters is whether its memory stays level and how high a batch takes it. The models are
the full-size random ones of bench_gpt_sovits.py (GPT, SoVITS, a BERT-large-shaped BERT: a real
voice's costs), the sentences a real book's, bucketed into batches of `--batch` as the worker pool
cuts them. Random weights do not stop by themselves (the EOS row is zeroed), and one shared cap
would give every clip the same length — which hides exactly the cost under test (oneDNN builds its
convolution kernels per clip length) — so each sentence stops at its own cap: 2.2 semantic tokens
(25 Hz) per phone times exp(σ·z), z a normal seeded by the sentence's phones (as in
bench_continuous.py). Rows are decoded as one batch up to the longest row's cap and then cut to
their own, so SoVITS sees the book's mix of lengths.

Each checkout runs in its own fresh process, set up as a pool worker sets itself up (its
`synth.pool._init_worker`) and trimmed after every batch as a worker is; the checkouts alternate
for `--reps` rounds. Prints, per run: RSS after loading, after each batch (min–max) and at the
end, the process's peak (VmHWM), wall seconds and audio seconds; then the current checkout ÷ the
baseline.

    git worktree add /tmp/base <rev>
    python bench/bench_worker_memory.py --book ~/books/moby-dick.epub --sentences 64 --baseline /tmp/base
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOKENS_PER_PHONE = 2.2


def _rss() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in MB."""
    status = Path("/proc/self/status").read_text()
    field = lambda name: int(status.split(name + ":")[1].split()[0]) // 1024
    return field("VmRSS"), field("VmHWM")


def _cap(phones, prompt_phones: int, sigma: float) -> int:
    """This sentence's own token cap: its phones' worth of speech, ± a seeded pace of its own."""
    digest = hashlib.sha256(phones.numpy().tobytes()).digest()
    u1, u2 = (int.from_bytes(digest[:8], "big") + 1) / 2**64, int.from_bytes(digest[8:16], "big") / 2**64
    z = math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)  # Box-Muller: one normal per sentence
    return max(20, min(400, round(TOKENS_PER_PHONE * (len(phones) - prompt_phones) * math.exp(sigma * z))))


def child(args: argparse.Namespace) -> None:
    """One worker's run, in the checkout `args.repo`; prints one JSON line."""
    import queue

    sys.path[:0] = [str(args.repo), str(args.repo / "bench")]
    from synth import pool

    devices: queue.Queue[str] = queue.Queue()
    devices.put("")
    pool._init_worker(devices, args.threads)  # type: ignore[arg-type] - what a CPU worker does first
    import bench_gpt_sovits
    import torch

    from flows.steps.spoken import book_scripts
    from ingest.reader import read_book
    from synth.engines.gpt_sovits import engine as engine_module
    from synth.jobs import bucket_batches

    torch.set_num_threads(args.threads)
    engine = bench_gpt_sovits.build_engine(torch.device("cpu"), torch.float32)
    engine.settings = replace(engine.settings, batch_size=args.batch)
    prompt_phones = len(engine.prompt.text.phones)
    inner = engine_module.decode_batch

    def own_caps(model, phones, berts, prompt, **kw):
        caps = [_cap(p, prompt_phones, args.length_noise) for p in phones]
        results = inner(model, phones, berts, prompt, **{**kw, "early_stop_num": max(caps)})
        return [replace(r, tokens=r.tokens[:cap]) for r, cap in zip(results, caps)]

    engine_module.decode_batch = own_caps
    book = read_book(args.book)
    sentences = []
    for chapter in range(1, len(book.chapters) + 1):
        sentences += [line.sentence for line in book_scripts(book, "gpt-sovits", None, [chapter])[chapter]]
        if len(sentences) >= args.sentences:
            break
    items = [(str(i), s) for i, s in enumerate(sentences[: args.sentences])]
    pool.release_free_heap()
    loaded = _rss()[0]
    between, audio, lengths = [], 0.0, set()
    started = time.perf_counter()
    for batch in bucket_batches(items, args.batch):
        clips = engine.synthesize([s for _, s in batch], seed=0)
        pool.release_free_heap()  # as _worker_batch does after every batch
        between.append(_rss()[0])
        audio += sum(c.duration for c in clips)
        lengths.update(len(c.audio) for c in clips)
    wall = time.perf_counter() - started
    print(json.dumps({"loaded": loaded, "between": between, "peak": _rss()[1], "wall": wall, "audio": audio,
                      "lengths": len(lengths), "clips": len(items)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--book", type=Path, default=REPO / "projects" / "sample-epub" / "lighthouse.epub")
    ap.add_argument("--sentences", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--length-noise", type=float, default=0.3, help="σ of a sentence's log length beyond its phones")
    ap.add_argument("--baseline", type=Path, help="another checkout to run side by side (e.g. a git worktree)")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--repo", type=Path, default=REPO, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    repos = {"baseline": args.baseline, "this": REPO} if args.baseline else {"this": REPO}
    runs: dict[str, list[dict]] = {name: [] for name in repos}
    print(f"{args.sentences} sentences of {args.book.name}, batches of {args.batch}, {args.threads} threads, "
          f"length noise σ {args.length_noise}; load {os.getloadavg()[0]:.2f}", flush=True)
    for _ in range(args.reps):
        for name, repo in repos.items():
            cmd = [sys.executable, __file__, "--child", "--repo", str(repo), "--book", str(args.book),
                   "--sentences", str(args.sentences), "--batch", str(args.batch), "--threads", str(args.threads),
                   "--length-noise", str(args.length_noise)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=False,
                                 env={**os.environ, "PYTHONPATH": str(repo)})
            if out.returncode:
                raise SystemExit(f"{name} ({repo}) failed:\n{out.stderr[-2000:]}")
            run = json.loads(out.stdout.strip().splitlines()[-1])
            runs[name].append(run)
            print(f"{name}: {json.dumps(run)}", flush=True)
    print("\n| checkout | loaded MB | between batches MB (min–max; end) | peak MB | wall s | audio s | clip lengths |"
          "\n|---|---|---|---|---|---|---|")
    for name, rs in runs.items():
        for r in rs:
            print(f"| {name} | {r['loaded']} | {min(r['between'])}–{max(r['between'])}; {r['between'][-1]} | "
                  f"{r['peak']} | {r['wall']:.0f} | {r['audio']:.0f} | {r['lengths']} of {r['clips']} |")
    if args.baseline:
        med = {name: {k: statistics.median(r[k] for r in rs) for k in ("peak", "wall")} for name, rs in runs.items()}
        ends = {name: statistics.median(r["between"][-1] for r in rs) for name, rs in runs.items()}
        print(f"this ÷ baseline: peak {med['this']['peak'] / med['baseline']['peak']:.2f}×, "
              f"RSS at the end {ends['this'] / ends['baseline']:.2f}×, wall {med['this']['wall'] / med['baseline']['wall']:.2f}×")


if __name__ == "__main__":
    main()
