"""The GPU check, in one short run: CUDA-graph decoding is correct and what it buys.

Meant to be run the moment a GPU machine is lent (no GPU has been so far): a full-size v2 GPT with
seeded random weights (EOS row zeroed: every row runs to its cap) in fp16 on CUDA decodes the same
items four ways — `decode_batch` (dynamic cache), `decode_static` eager, `decode_static` with CUDA
graphs, `decode_continuous` — and the script prints, per batch size, aggregate tokens/s (min/median
of `--reps`) and whether the graph replay gives the eager static path's tokens (it must: same
kernels, same order) and how close it is to the dynamic path (fp16: a few flips are possible where
two logits tie to fp16 precision; the count is printed). Then the whole engine on 32 sentences:
static batches, continuous decoding vocoding inline, and continuous decoding with SoVITS on a second
stream beside it (bench_gpt_sovits.py --ways), and the CUDA tests of the suite.

    python bench/gpu_check.py --batches 1,8,32 --tokens 200      # ~3 minutes on one GPU
    python bench/gpu_check.py --dry-run --batches 1,4 --tokens 20 --no-tests   # the script itself, on a CPU
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from synth.engines.gpt_sovits.model.t2s import SamplingParams, build_random_t2s, decode_batch  # noqa: E402
from synth.engines.gpt_sovits.model.t2s_continuous import decode_continuous  # noqa: E402
from synth.engines.gpt_sovits.model.t2s_static import decode_static  # noqa: E402

V2_T2S = {"vocab_size": 1025, "phoneme_vocab_size": 732, "embedding_dim": 512, "hidden_dim": 512, "head": 16,
          "n_layer": 24, "EOS": 1024}


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _timed(fn) -> tuple[float, list]:
    _sync()
    t0 = time.perf_counter()
    out = fn()
    _sync()
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    ap.add_argument("--no-tests", action="store_true")
    ap.add_argument("--dry-run", action="store_true",
                    help="check this script on a CPU: a tiny model, float32, graphs replaced by the eager static path")
    args = ap.parse_args()
    dry = args.dry_run
    if not dry and not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA device here (--dry-run checks the script on a CPU)")
    device, dtype = ("cpu", torch.float32) if dry else ("cuda", getattr(torch, args.dtype))
    name = "CPU dry run" if dry else torch.cuda.get_device_name()
    print(f"{name}, torch {torch.__version__}, {dtype}, {args.tokens} tokens per row")
    config = {**V2_T2S, "embedding_dim": 32, "hidden_dim": 32, "head": 2, "n_layer": 2} if dry else V2_T2S
    model = build_random_t2s(config, seed=0, device=device, dtype=dtype)
    with torch.no_grad():
        model.ar_predict_layer.weight[model.cfg.eos].zero_()
    gen = torch.Generator().manual_seed(1)
    sampling = SamplingParams(top_k=5)
    prompt = torch.randint(0, 1024, (75,), generator=gen)
    print(f"{'batch':>5} {'way':<18} {'best tok/s':>10} {'median':>8}  tokens vs dynamic / vs eager static")
    for batch in (int(b) for b in args.batches.split(",")):
        phones = [torch.randint(0, 732, (int(n),), generator=gen) for n in torch.randint(40, 120, (batch,), generator=gen)]
        bert = [torch.randn(1024, len(p), generator=gen).to(dtype) for p in phones]
        seeds = list(range(batch))
        ways = {
            "dynamic": lambda: decode_batch(model, phones, bert, prompt, sampling=sampling,
                                            early_stop_num=args.tokens, seed=seeds),
            "static eager": lambda: decode_static(model, phones, bert, prompt, sampling=sampling,
                                                  early_stop_num=args.tokens, seed=seeds, graphs=False),
            "static + graphs": lambda: decode_static(model, phones, bert, prompt, sampling=sampling,
                                                     early_stop_num=args.tokens, seed=seeds, graphs=not dry),
            "continuous": lambda: decode_continuous(model, phones, bert, prompt, slots=batch, sampling=sampling,
                                                    early_stop_num=args.tokens, seed=seeds),
        }
        outputs: dict[str, list] = {}
        for name, fn in ways.items():
            fn()  # warm-up: kernels, allocator, graph capture paths
            times = []
            for _ in range(args.reps):
                seconds, outputs[name] = _timed(fn)
                times.append(seconds)
            produced = sum(r.tokens.numel() for r in outputs[name])
            flips = ""
            if name == "continuous":  # a capped row keeps decode_naive's sequence (one token more)
                differ = sum(a.sequence.tolist() != b.sequence[: len(a.sequence)].tolist()
                             for a, b in zip(outputs["dynamic"], outputs[name]))
                flips = f"{differ}/{batch} rows differ (sequences)"
            elif name != "dynamic":
                differ = sum(a.tokens.tolist() != b.tokens.tolist() for a, b in zip(outputs["dynamic"], outputs[name]))
                flips = f"{differ}/{batch} rows differ"
            if name == "static + graphs":
                same = sum(a.tokens.tolist() == b.tokens.tolist()
                           for a, b in zip(outputs["static eager"], outputs[name]))
                flips += f" / {same}/{batch} rows equal"
            print(f"{batch:>5} {name:<18} {produced / min(times):>10.0f} {produced / statistics.median(times):>8.0f}  {flips}")
    if not dry:  # SoVITS vocoding beside continuous decoding (second stream) against inline, whole engine
        subprocess.run([sys.executable, str(REPO / "bench" / "bench_gpt_sovits.py"), "--sentences", "32",
                        "--batch-sizes", "8", "--ways", "static,continuous,overlap"], cwd=REPO, check=False)
    if not args.no_tests:
        tests = ["tests/test_gpt_sovits_static.py", "tests/test_gpt_sovits_t2s.py", "tests/test_gpt_sovits_sovits.py"]
        subprocess.run([sys.executable, "-m", "pytest", "-q", *tests], cwd=REPO, check=False)


if __name__ == "__main__":
    main()
