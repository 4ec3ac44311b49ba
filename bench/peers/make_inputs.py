"""Write the shared inputs of `bench_peers.py`: full-size random v2 weights in the official file
formats, and the sentences every system decodes.

Every system under test loads the SAME two files, so the cost compared is the cost of the same
arithmetic. The weights are random (the shapes and the configs are the real defaults from the
shared fixtures' `keys_full_v2.json`: s1longer-v2.yaml and s2.json), saved exactly as the reference
trainer saves them (fp16 entries; `model.`-prefixed GPT keys; SoVITS without `enc_q`). The EOS row
of the GPT's output layer is zero: its logit stays 0, far under the top-k of random logits, so no
system can stop early and every one samples exactly the tokens it is asked for.

Inputs (`inputs.npz`): the phone ids of a real book's sentences (bookcast's front end and G2P,
v2 symbol ids), seeded BERT-shaped features per phone, a reference text's phones + features, 75
prompt semantic tokens (3 s), a 32 kHz reference waveform and 1000 semantic codes for SoVITS. Also
random BERT-large and HuBERT-base-shaped Hugging Face folders for peers that insist on loading
their own front-end models (they are never on the timed path).

    python bench/peers/make_inputs.py --out bench/.peers/work --book ~/books/moby-dick.epub
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

KEYS = Path(os.environ.get("BOOKCAST_SHARED") or REPO.parent / "shared") / "fixtures" / "gpt_sovits_v2" / "keys_full_v2.json"
SENTENCES = 64
PROMPT_TOKENS = 75
REF_SECONDS = 5.0


def _random_tensor(name: str, shape: list[int], gen: torch.Generator) -> torch.Tensor:
    """A value in a sane range for a tensor of this name (float32; saved as fp16 later)."""
    leaf = name.rsplit(".", 1)[-1]
    if leaf in ("gamma", "alpha", "inited", "cluster_size") or (".norm" in name and leaf == "weight"):
        return torch.ones(shape)
    if leaf in ("beta", "bias") or len(shape) <= 1 and leaf != "weight_g":
        return torch.zeros(shape)
    if "embed" in leaf and "quantizer" in name:  # codebook vectors (embed, embed_avg)
        return torch.randn(shape, generator=gen) * 0.6
    fan_in = 1 if "embedding" in name else max(1, math.prod(shape[1:]))
    return torch.randn(shape, generator=gen) / math.sqrt(fan_in)


def _weights(keys: list, seed: int) -> OrderedDict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for name, shape, _saved, _orig in keys:
        if name.endswith(".weight_g"):  # weight norm: g = |v| per output channel, so weight == v
            continue
        out[name] = _random_tensor(name, shape, gen)
    for name, shape, _saved, _orig in keys:
        if name.endswith(".weight_g"):
            v = out[name[: -len("_g")] + "_v"]
            out[name] = v.flatten(1).norm(dim=1).reshape(shape)
    return OrderedDict((name, out[name].half()) for name, *_ in keys)


def write_weights(out: Path, eos_scale: float = 0.0, max_sec: int | None = None) -> tuple[Path, Path]:
    """gpt.ckpt and sovits.pth in the official formats (fp16, configs as the trainer saves them).

    `eos_scale` multiplies the GPT's EOS row: 0 (the peers' bench) never stops a row early; about 2
    lets random weights end sentences at random lengths, as a voice does (gpu_e2e.py). `max_sec`
    replaces the config's cap on a sentence's speech (the pipeline stops at 50 tokens a second)."""
    spec = json.loads(KEYS.read_text(encoding="utf-8"))
    gpt = _weights(spec["gpt"]["keys"], seed=17)
    gpt_config = json.loads(json.dumps(spec["gpt"]["config_default_yaml"]))
    eos = int(gpt_config["model"]["EOS"])
    gpt["model.ar_predict_layer.weight"][eos] *= eos_scale
    if max_sec is not None:
        gpt_config["data"]["max_sec"] = max_sec
    gpt_path, sovits_path = out / "gpt.ckpt", out / "sovits.pth"
    torch.save(OrderedDict(weight=gpt, config=gpt_config, info="GPT-e15"), gpt_path)
    config = json.loads(json.dumps(spec["sovits"]["config_default_json"]))
    config["model"]["version"] = "v2"
    sovits = _weights(spec["sovits"]["keys"], seed=23)
    torch.save(OrderedDict(weight=sovits, config=config, info="8epoch_1000iteration"), sovits_path)
    return gpt_path, sovits_path


def _reference_wav(rate: int = 32000) -> np.ndarray:
    """A harmonic glide with a little noise on the int16 grid: a stand-in reference clip."""
    t = np.arange(int(REF_SECONDS * rate)) / rate
    f0 = 120 + 60 * t / REF_SECONDS + 8 * np.sin(2 * np.pi * 5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    x = sum(0.7 ** (h - 1) * np.sin(h * phase) for h in range(1, 9))
    x = x + 0.05 * np.random.default_rng(0).standard_normal(t.size)
    return np.round(0.6 * x / np.abs(x).max() * 32767).astype(np.float32) / 32768


def _hf_folders(out: Path) -> None:
    """Random BERT-large (chinese-roberta shape) and HuBERT-base folders, tokenizer included."""
    from transformers import BertConfig, BertForMaskedLM, HubertConfig, HubertModel

    bert_dir, hubert_dir = out / "chinese-roberta-wwm-ext-large", out / "chinese-hubert-base"
    if not (bert_dir / "config.json").is_file():
        vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"，。！？、,.!?-…", *"abcdefghijklmnopqrstuvwxyz"]
        vocab += [chr(c) for c in range(0x4E00, 0x9FA6)]
        torch.manual_seed(0)
        cfg = BertConfig(vocab_size=len(vocab), hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                         intermediate_size=4096, max_position_embeddings=512)
        BertForMaskedLM(cfg).save_pretrained(bert_dir)
        (bert_dir / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    if not (hubert_dir / "config.json").is_file():
        torch.manual_seed(0)
        HubertModel(HubertConfig()).save_pretrained(hubert_dir)
        (hubert_dir / "preprocessor_config.json").write_text(json.dumps({
            "do_normalize": True, "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1,
            "padding_side": "right", "padding_value": 0, "return_attention_mask": False, "sampling_rate": 16000}))


def write_inputs(out: Path, book: Path, count: int) -> Path:
    from bench_continuous import book_phones

    ids = book_phones(book, count)
    if len(ids) < count:
        raise SystemExit(f"{book}: only {len(ids)} sentences of ≥ 3 words, need {count}")
    gen = torch.Generator().manual_seed(5)
    arrays: dict[str, np.ndarray] = {"count": np.array(count)}
    for i, p in enumerate(ids):
        arrays[f"phones_{i}"] = np.array(p, dtype=np.int64)
        arrays[f"bert_{i}"] = (torch.randn(1024, len(p), generator=gen) * 0.5).numpy()
    ref = torch.randint(0, 732, (24,), generator=gen)
    arrays["ref_phones"] = ref.numpy()
    arrays["ref_bert"] = (torch.randn(1024, ref.numel(), generator=gen) * 0.5).numpy()
    arrays["prompt"] = torch.randint(0, 1024, (PROMPT_TOKENS,), generator=gen).numpy()
    arrays["codes"] = torch.randint(0, 1024, (1000,), generator=gen).numpy()
    arrays["ref_wav"] = _reference_wav()
    path = out / "inputs.npz"
    np.savez(path, **arrays)
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "bench" / ".peers" / "work")
    ap.add_argument("--book", type=Path, default=REPO / "projects" / "sample-epub" / "lighthouse.epub")
    ap.add_argument("--sentences", type=int, default=SENTENCES)
    args = ap.parse_args(argv)
    if not KEYS.is_file():
        raise SystemExit(f"needs the shared fixtures: {KEYS} not found")
    args.out.mkdir(parents=True, exist_ok=True)
    gpt, sovits = write_weights(args.out)
    inputs = write_inputs(args.out, args.book, args.sentences)
    import soundfile

    soundfile.write(args.out / "ref.wav", np.load(inputs)["ref_wav"], 32000, subtype="PCM_16")
    (args.out / "ref.txt").write_text("It was the best of times, it was the worst of times.\n", encoding="utf-8")
    _hf_folders(args.out)
    print(f"wrote {gpt}, {sovits}, {inputs} and the front-end folders in {args.out}")


if __name__ == "__main__":
    main()
