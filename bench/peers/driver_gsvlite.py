"""bench_peers driver for gsv-tts-lite (PyPI `gsv-tts-lite`, import `gsv_tts`; see common.py).

Runs in bench/.peers/gsvlite/venv (made by setup/gsvlite.sh). Loading goes through the peer's own
user API: `TTS(device=...)`, `load_gpt_model` / `load_sovits_model` on the official .ckpt/.pth files
(the peer renames the GPT keys and builds its own fused-QKV T2S model), and the reference clip's
spectrogram from `TTS._get_spec` then `SynthesizerTrn.get_ge` (what `cache_spk_audio` does for v2,
less the speaker-verification net that only v2Pro uses).

Timed calls:
- t2s: `Text2SemanticDecoder.infer_batched`, the peer's continuous-batching scheduler (prefill of all
  rows, then one decode step for every slot per iteration; a finished slot takes the next waiting
  item). It is synchronous; everything below the text front end.
- sovits: `SynthesizerTrn.decode` (quantizer, text encoder + MRTE, flow, HiFi-GAN generator).

Configuration: the peer's own defaults per device. CPU: float32, SDPA forced to the MATH backend,
no CUDA graphs (the peer enables graphs and flash-attn only on CUDA; the README has no other CPU
advice). CUDA: its default dtype (fp16 from sm 7.0), CUDA graphs for the T2S decode step, and
`use_flash_attn=True` (the README's recommendation; the peer falls back itself without flash_attn).
tqdm is disabled: the scheduler wraps every decode step in a progress bar.

Deviations from the protocol, all the peer's own design:
- No step cap argument: a row stops when its KV cache is full (the last bucket of the `gpt_cache`
  `(batch, length)` pairs given to `TTS`), tested every 5 steps. So each request sets the cache of
  its `batch` slots to (longest prompt + T' + 6) positions, prompt = reference + sentence phones + 75
  prompt tokens and T' = T rounded up to a multiple of 5, with nested buckets every 256 positions
  under it (the README's "nested KV cache": early steps attend over a shorter cache; 256 is the
  spacing of TTS's default gpt_cache). The row with the longest prompt gets T' tokens; a row with a
  shorter one gets more (T' + its length gap, rounded up to 5). The counts returned are the real
  ones. A finished row keeps its slot and is computed until the whole batch ends. The table keeps
  every batch size seen (as a user's gpt_cache would list them); a new (batch, cap) rebuilds it
  (allocation, the peer's 3 warm-up decode steps per bucket, graph capture on CUDA) inside that
  first timed call; repeats of the same request reuse it, so warm up each shape once.
- Its batched sampling ignores repetition_penalty (the call accepts it; the peer's comment says
  it is switched off in batched mode), and the token sampled at prefill is fed back but left out of
  the returned tokens, so a row of n tokens costs n + 1 decode steps after the prefill.
- Only "static": `infer_batched` is the one batched path; with as many slots as items (as here) it
  never refills, and there is no separate non-continuous batched decoder to compare it with.
"""
from __future__ import annotations

import os
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("TQDM_DISABLE", "1")  # tqdm reads it when first imported (by torch)
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may be fetched at run time
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch
from common import SAMPLING, Inputs, serve

VERSION = version("gsv-tts-lite")
CHECK_INTERVAL = 5  # infer_batched's default: how often a row's stop condition is tested
NEST_STEP = 256  # spacing of the nested KV buckets under the cap, as in TTS's default gpt_cache


class State:
    """The peer's loaded models, the reference style and its KV bucket table."""

    def __init__(self, inputs: Inputs, device: str) -> None:
        from gsv_tts import TTS  # imported here so that an import failure is a load failure

        self.inputs = inputs
        # TTS() downloads its front-end pack (HuBERT, G2P dictionaries, speaker-verification net)
        # unless these three folders exist under models_dir. None of them is on the timed paths:
        # placeholders keep it offline (HuBERT points at the shared random folder).
        self._models_dir = tempfile.TemporaryDirectory(prefix="gsvlite-models-")
        models = Path(self._models_dir.name)
        (models / "chinese-hubert-base").symlink_to(inputs.hubert_dir.resolve(), target_is_directory=True)
        (models / "g2p").mkdir()
        (models / "sv").mkdir()
        cuda = device.startswith("cuda")
        self.tts = TTS(device=device, models_dir=str(models), gpt_cache=[(1, 128)], use_flash_attn=cuda)
        self.device = self.tts.tts_config.device
        self.dtype = self.tts.tts_config.dtype
        self.tts.load_gpt_model(str(inputs.gpt))
        self.tts.load_sovits_model(str(inputs.sovits))
        self.t2s = self.tts.gpt_models[str(inputs.gpt)].t2s_model
        sovits = self.tts.sovits_models[str(inputs.sovits)]
        self.vq = sovits.vq_model
        self.rate = int(sovits.hps.data.sampling_rate)
        # ref.wav is inputs.ref_wav as 16-bit PCM at 32 kHz; the peer reads clips from files.
        spec, _wav16k = self.tts._get_spec(sovits.hps, str(inputs.ref_wav_path))
        self.ge = self.vq.get_ge(spec)
        self.prompt = torch.from_numpy(inputs.prompt).to(self.device)
        self.buckets: dict[int, list[int]] = {1: [128]}  # batch -> KV lengths, as TTS was made

    def use_cache(self, batch: int, lengths: list[int]) -> None:
        """Make the T2S bucket table hold `batch` slots with nested KV `lengths` (the last: its cap).

        The table is the peer's `gpt_cache`: every batch size seen so far keeps its buckets (all are
        views of one root sized for the largest), so alternating batch sizes costs no rebuild.
        `initialize_runtime` is the peer's own builder (run once by `load_gpt_model`); it only adds
        to an empty table, so a changed entry rebuilds the whole table.
        """
        if self.buckets.get(batch) == lengths:
            return
        self.buckets[batch] = lengths
        self.t2s.cuda_graph_buckets = {}
        cache = [(b, n) for b, ns in sorted(self.buckets.items()) for n in ns]
        self.t2s.initialize_runtime(self.dtype, self.device, cache)


def load(inputs: Inputs, args: Any) -> State:
    """Fail in one line where the peer cannot run, else load it (see State)."""
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"gsvlite: --device {args.device} but this torch has no CUDA")
    return State(inputs, args.device)


def t2s(state: State, items: list[int], tokens: int, mode: str) -> list[int]:
    """One `infer_batched` call over `items`, its cache capped so the longest prompt gets T' tokens."""
    if mode != "static":
        raise ValueError(f"gsvlite has one batched decoder; mode {mode!r} is not offered")
    inputs = state.inputs
    phones = [torch.from_numpy(inputs.full_phones(i)).to(state.device) for i in items]
    # The peer takes BERT features time-major: (phones, 1024).
    bert = [torch.from_numpy(inputs.full_bert(i).T.copy()).to(state.device, state.dtype) for i in items]
    prompts = [state.prompt] * len(items)
    steps = -(-tokens // CHECK_INTERVAL) * CHECK_INTERVAL
    longest = max(p.numel() for p in phones) + state.prompt.numel()
    # With cap C, a row with prompt length L returns the first multiple of 5 >= C - L - 6 tokens.
    cap = longest + steps + CHECK_INTERVAL + 1
    # The scheduler moves up one bucket per stop test, so buckets must lie well over 5 apart (a
    # bucket within 5 of the next makes a row skip its stop test and overrun the cache).
    nested = [n for n in range(NEST_STEP, cap - NEST_STEP // 2, NEST_STEP) if n > longest]
    state.use_cache(len(items), nested + [cap])
    torch.manual_seed(0)
    semantic, rows = state.t2s.infer_batched(phones, prompts, bert, check_interval=CHECK_INTERVAL, **SAMPLING)
    got = [0] * len(items)
    for seg, row in zip(semantic, rows.tolist()):
        got[row] = int(seg.numel())
    return got


def sovits(state: State, item: int, tokens: int) -> tuple[int, int]:
    """`decode` as the peer's own `infer` calls it: one clip, the cached style, its CUDA-graph default."""
    codes = torch.from_numpy(state.inputs.codes[:tokens]).to(state.device).reshape(1, 1, -1)
    text = torch.from_numpy(state.inputs.phones[item]).to(state.device)[None]
    torch.manual_seed(0)
    audio, _attn = state.vq.decode(codes, text, state.ge, noise_scale=0.5, speed=1.0)
    return audio.shape[-1], state.rate


if __name__ == "__main__":
    serve("gsv-tts-lite", load, t2s, sovits, modes=("static",), version=VERSION)
