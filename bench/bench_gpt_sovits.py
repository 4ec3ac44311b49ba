"""Synthesis throughput of the GPT-SoVITS v2 engine at batch sizes 1 and 8 (audio s per wall s).

Full-size models with random weights, shaped by the real default configs (`keys_full_v2.json` in
the shared fixtures: s1longer-v2.yaml's model section, s2.json): a 24-layer GPT (77.6 M params), the
SoVITS v2 generator, and a chinese-roberta-wwm-ext-large-shaped BERT (24 × 1024). Costs are those
of a real voice; the sound is noise. Random GPT weights would stop at a random step, so the EOS
row of the output layer is zeroed (its logit stays at 0, far below the top-k of random logits) and
every sentence runs exactly `--tokens` steps (100 tokens = 4 s of audio) — the batch then never
shrinks, which slightly flatters batching compared with real text.

    python bench/bench_gpt_sovits.py                 # CPU (or CUDA + fp16 when available)
    python bench/bench_gpt_sovits.py --device cpu --threads 2 --tokens 60
    python bench/bench_gpt_sovits.py --precision bfloat16   # the CPU opt-in (native bfloat16 CPUs)

Prints one row per batch size: wall time, audio seconds, the real-time factor and where the time
went (text = G2P + BERT, gpt = semantic decoding, sovits = waveform decoding).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ingest.segment import segment
from synth.engines.gpt_sovits.model.bert import BertFeatures
from synth.engines.gpt_sovits.model.sovits import build_random_sovits
from synth.engines.gpt_sovits.model.t2s import build_random_t2s
from synth.engines.gpt_sovits.engine import GptSovitsEngine, default_g2p, model_dtype, wave_dtype
from synth.engines.gpt_sovits.prompt import ReferencePrompt, reference_spec
from synth.engines.gpt_sovits.text import prompt_features
from synth.engines.gpt_sovits.voice import PRECISIONS, SamplingSettings

KEYS = Path(os.environ.get("BOOKCAST_SHARED") or REPO.parent / "shared") / "fixtures" / "gpt_sovits_v2" / "keys_full_v2.json"
PROMPT_TEXT = "今天天气真好，我们一起出去走走吧。"
PARAGRAPH = (
    "我们用 PyTorch 训练了一个新的语音模型。它可以在普通的电脑上运行，速度也还不错。"
    "The quick brown fox jumps over the lazy dog near the river bank. "
    "这本书一共有十二章，每一章都讲了一个不同的故事。"
    "She said the results would be ready by Friday afternoon at the latest. "
    "春天来了，公园里的花都开了，到处都是散步的人。"
    "If the weather holds, we will take the early train to the coast. "
    "他一边听音乐，一边在窗边慢慢地写着日记。"
)


def _bert(device: torch.device, dtype: torch.dtype) -> BertFeatures:
    """chinese-roberta-wwm-ext-large shape (24 × 1024, 16 heads, 4096 FFN, 21128 tokens), random."""
    from transformers import BertConfig, BertForMaskedLM, BertTokenizer

    chars = [chr(c) for c in range(0x4E00, 0x9FA6)]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"，。！？、,.!?-…", *"abcdefghijklmnopqrstuvwxyz"]
    vocab += chars
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
        tokenizer = BertTokenizer(str(Path(tmp) / "vocab.txt"))
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                     intermediate_size=4096, max_position_embeddings=512)
    torch.manual_seed(0)
    return BertFeatures.from_model(BertForMaskedLM(cfg), tokenizer, device, dtype)


def _reference_wav(seconds: float = 5.0, rate: int = 32000) -> np.ndarray:
    """A harmonic glide with a little noise, (1, n) float32: a stand-in reference clip."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 60 * t / seconds + 8 * np.sin(2 * np.pi * 5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    x = sum(0.7 ** (h - 1) * np.sin(h * phase) for h in range(1, 9))
    x = x + 0.05 * np.random.default_rng(0).standard_normal(t.size)
    return (0.6 * x / np.abs(x).max()).astype(np.float32)[None]


def build_engine(device: torch.device, dtype: torch.dtype) -> GptSovitsEngine:
    if not KEYS.is_file():
        raise SystemExit(f"needs the shared fixtures: {KEYS} not found")
    keys = json.loads(KEYS.read_text(encoding="utf-8"))
    gpt_cfg = keys["gpt"]["config_default_yaml"]
    t2s = build_random_t2s(gpt_cfg["model"], seed=0, device=device, dtype=dtype)
    with torch.no_grad():
        t2s.ar_predict_layer.weight[t2s.cfg.eos].zero_()  # never EOS: fixed-length decoding
    t2s.pack_for_cpu()  # as load_t2s does, once the weights are final
    sovits = build_random_sovits(keys["sovits"]["config_default_json"], seed=0).to(device=device, dtype=wave_dtype(dtype))
    bert = _bert(device, dtype)
    g2p = default_g2p()
    spec = reference_spec(sovits, _reference_wav(), sovits.config.sampling_rate)
    gen = torch.Generator().manual_seed(0)
    prompt = ReferencePrompt(
        semantic=torch.randint(0, 1024, (125,), generator=gen).to(device),  # 5 s of 25 Hz tokens
        text=prompt_features(PROMPT_TEXT, "zh", g2p, bert),
        specs=(spec,),
        ge=sovits.style([spec]),
    )
    return GptSovitsEngine.from_parts(t2s=t2s, sovits=sovits, bert=bert, prompt=prompt, g2p=g2p,
                                      settings=SamplingSettings())


def _timed(engine: GptSovitsEngine, name: str, totals: dict[str, float]) -> None:
    """Wrap one engine method on this instance so its time is added to totals[name]."""
    inner = getattr(engine, name)

    def wrapper(*args, **kwargs):
        if engine.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = inner(*args, **kwargs)
        if engine.device.type == "cuda":
            torch.cuda.synchronize()
        totals[name] = totals.get(name, 0.0) + time.perf_counter() - t0
        return out

    setattr(engine, name, wrapper)


WAYS = {  # way -> (continuous decoding, vocoding beside the decoder)
    "static": (False, False),
    "continuous": (True, False),  # each finished sentence vocoded inline, between decoding steps
    "overlap": (True, True),  # ... on a background thread (its own CUDA stream on a GPU)
}


def run(engine: GptSovitsEngine, sentences: list, batch_size: int, way: str = "static") -> dict[str, float]:
    continuous, overlap = WAYS[way]
    engine.settings = replace(engine.settings, batch_size=batch_size, continuous=continuous)
    engine.overlap_vocoder = overlap
    totals: dict[str, float] = {}
    for name in ("sentence_features", "_semantic_tokens", "_vocode"):
        _timed(engine, name, totals)
    t0 = time.perf_counter()
    clips = engine.synthesize(sentences, seed=0)
    wall = time.perf_counter() - t0
    for name in ("sentence_features", "_semantic_tokens", "_vocode"):
        delattr(engine, name)  # back to the class methods
    audio = sum(c.duration for c in clips)
    return {"batch": batch_size, "way": way, "wall": wall, "audio": audio, "rtf": audio / wall,
            "text": totals.get("sentence_features", 0.0), "gpt": totals.get("_semantic_tokens", 0.0),
            "sovits": totals.get("_vocode", 0.0)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    parser.add_argument("--tokens", type=int, default=100, help="semantic tokens per sentence (25 per second)")
    parser.add_argument("--sentences", type=int, default=8)
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--fp32", action="store_true", help="float32 on CUDA too (same as --precision float32)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="the voice setting: auto = float16 on CUDA, float32 on a CPU")
    parser.add_argument("--ways", default="static",
                        help="comma-separated: static, continuous (vocoding inline), overlap (vocoding on a "
                             "second thread/stream beside continuous decoding)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = model_dtype(device, "float32" if args.fp32 else args.precision)

    t0 = time.perf_counter()
    engine = build_engine(device, dtype)
    engine.early_stop_num = args.tokens  # the batched cap keeps exactly early_stop_num tokens
    sentences = segment(PARAGRAPH, default="zh")
    sentences = (sentences * (args.sentences // len(sentences) + 1))[: args.sentences]
    print(f"models built in {time.perf_counter() - t0:.1f} s; device {device} ({dtype}), "
          f"{torch.get_num_threads()} CPU threads, {len(sentences)} sentences × {args.tokens} tokens")
    engine.synthesize(sentences[:1], seed=0)  # warm-up (allocations, kernels)

    rows = [run(engine, sentences, int(b), way) for b in args.batch_sizes.split(",") for way in args.ways.split(",")]
    print("(continuous: gpt s includes the inline vocoding; overlap: gpt and sovits run at the same time)")
    print(f"{'batch':>5} {'way':<10} {'wall s':>8} {'audio s':>8} {'audio s/wall s':>15} {'text s':>7} {'gpt s':>7} "
          f"{'sovits s':>8}")
    for r in rows:
        print(f"{r['batch']:>5} {r['way']:<10} {r['wall']:>8.2f} {r['audio']:>8.1f} {r['rtf']:>15.3f} {r['text']:>7.2f} "
              f"{r['gpt']:>7.2f} {r['sovits']:>8.2f}")
    if len(rows) > 1 and len({r['way'] for r in rows}) == 1:
        print(f"speed-up batch {rows[-1]['batch']} vs {rows[0]['batch']}: {rows[-1]['rtf'] / rows[0]['rtf']:.2f}×")


if __name__ == "__main__":
    main()
