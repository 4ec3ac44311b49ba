"""Where a T2S decoding step spends its time, at batch 1 and 8 (torch.profiler, CPU).

A full-size v2 GPT (random weights, EOS row zeroed so every row runs to the cap) decodes `--tokens`
tokens for `--batch` items of a 60-phone text with a 75-token prompt; the profiler's table of the
most expensive operators (self CPU time) is printed per batch size, plus the time per step and the
share of the step spent outside matrix multiplies (the per-step overhead the issue asks to fuse).

    python bench/profile_t2s.py --batch 1,8 --tokens 60

A single row's steps run as one ONNX Runtime graph where onnxruntime is installed (t2s_ort.py): the
profiler then sees one opaque call per step. `BOOKCAST_T2S_ORT=0` profiles the PyTorch step instead.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from synth.engines.gpt_sovits.model.t2s import SamplingParams, build_random_t2s, decode_batch

V2_T2S = {"vocab_size": 1025, "phoneme_vocab_size": 732, "embedding_dim": 512, "hidden_dim": 512, "head": 16,
          "n_layer": 24, "EOS": 1024}
_MATMUL = ("mkldnn::_linear_pointwise", "aten::addmm", "aten::mm", "aten::bmm", "aten::baddbmm", "aten::linear", "aten::matmul",
           "aten::_scaled_dot_product_flash_attention_for_cpu", "aten::scaled_dot_product_attention")


def _inputs(batch: int, gen: torch.Generator) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
    phones = [torch.randint(0, 732, (84,), generator=gen) for _ in range(batch)]
    bert = [torch.randn(1024, 84, generator=gen) for _ in range(batch)]
    return phones, bert, torch.randint(0, 1024, (75,), generator=gen)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", default="1,8")
    ap.add_argument("--tokens", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rows", type=int, default=14, help="operators listed per table")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = build_random_t2s(V2_T2S, seed=0)
    with torch.no_grad():
        model.ar_predict_layer.weight[model.cfg.eos].zero_()
    model.pack_for_cpu()  # as load_t2s does, once the weights are final
    sampling = SamplingParams()
    for batch in (int(b) for b in args.batch.split(",")):
        phones, bert, prompt = _inputs(batch, torch.Generator().manual_seed(batch))
        decode_batch(model, phones, bert, prompt, sampling=sampling, early_stop_num=8, seed=list(range(batch)))
        t0 = time.perf_counter()
        decode_batch(model, phones, bert, prompt, sampling=sampling, early_stop_num=args.tokens,
                     seed=list(range(batch)))
        wall = time.perf_counter() - t0
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            decode_batch(model, phones, bert, prompt, sampling=sampling, early_stop_num=args.tokens,
                         seed=list(range(batch)))
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events)
        matmul = sum(e.self_cpu_time_total for e in events if e.key in _MATMUL)
        print(f"\n=== batch {batch}: {args.tokens} steps in {wall:.2f} s unprofiled = "
              f"{1000 * wall / args.tokens:.1f} ms/step, {batch * args.tokens / wall:.1f} tok/s; "
              f"matmul/attention {100 * matmul / total:.0f} % of self CPU, the rest {100 - 100 * matmul / total:.0f} %")
        print(events.table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
