"""bench_peers driver for `gpt-sovits-cpufast` 0.1.0 (PyPI), a CPU-focused inference fork of GPT-SoVITS.

Runs in `bench/.peers/cpufast/venv` (made by `bench/peers/setup/cpufast.sh`); see common.py for the
protocol. It only calls the installed package; none of the peer's code lives in this repository.

The peer's own entry points used, and why:
- Loading mirrors what the fork's `TTS.init_t2s_weights` / `TTS.init_vits_weights` do (its
  optimised load path), calling the same package functions directly: `TTS` itself cannot be
  built here without the whole text front-end stack (jieba_fast, pyopenjtalk, g2pW, ...), which
  the benchmark never times. So: `Text2SemanticLightningModule(..., build_t2s_transformer=False,
  build_h_module=False)` + `load_inference_only_state_dict` (rebuilds the fused `t2s_transformer`
  straight from the checkpoint, no `self.h`) + `release_inference_only_unused_modules`; and
  `process_ckpt.load_sovits_new` + `module.models.SynthesizerTrn` + `dec.remove_weight_norm()`.
- T2S (timed): `Text2SemanticDecoder.infer_panel_batch_infer`, the lowest-level batched decoder,
  which the fork's `TTS.run` selects with `parallel_infer=True`. It is natively batched. Options
  are the fork's CPU defaults from `TTS.run`: `stable_batch_remap=True`, batch shrink on,
  `torch_sdpa=True`; the hybrid `addmm` linears are always on for rows > 1.
- SoVITS (timed): `SynthesizerTrn.decode(..., ge=, ge_text=)` with the style condition built once
  by `build_decode_condition` at load, as the fork's run-level cache does (the README's VITS
  optimisation); `vits_parallel_infer` is irrelevant for one item.
Everything is float32 on CPU (the fork refuses half precision on CPU). Sampling uses torch's
global generator, seeded per request; the peer has no per-row seeds.

Token counts: with `early_stop_num=T` the peer runs T+1 decoder steps and keeps T tokens (as
upstream GPT-SoVITS and bookcast do); the driver reports each row's length minus the prompt.
"""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gpt_sovits_cpufast
import torch
from common import SAMPLING, Inputs, serve
from gpt_sovits_cpufast.runtime import configure_runtime

# The fork's own launcher setup puts its top-level code dirs on sys.path; it also chdirs to
# GPT_SOVITS_DATA_DIR, so pin that to the current directory to keep --work paths valid.
# Its modules may print at import, before serve() guards stdout, hence the redirect.
os.environ["GPT_SOVITS_DATA_DIR"] = os.getcwd()
with contextlib.redirect_stdout(sys.stderr):
    configure_runtime()
    from AR.models.t2s_lightning_module import Text2SemanticLightningModule
    from module.mel_processing import spectrogram_torch
    from module.models import SynthesizerTrn
    from process_ckpt import load_sovits_new


class State:
    """The loaded models plus the reference-side inputs that the peer caches per run."""

    def __init__(self, inputs: Inputs) -> None:
        self.inputs = inputs
        self.t2s = _load_t2s(inputs.gpt)
        self.vits, data = _load_vits(inputs.sovits)
        self.rate: int = int(data["sampling_rate"])
        self.refer = [_reference_spec(inputs, data)]
        self.ge, self.ge_text = self.vits.build_decode_condition(self.refer, None)
        self.prompt = torch.from_numpy(inputs.prompt)[None]


def _load_t2s(path: Path) -> Any:
    """The fork's inference-only T2S load (see module docstring); returns the decoder module."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)  # tensors, dicts, strings only
    lightning = Text2SemanticLightningModule(ckpt["config"], "****", is_train=False,
                                             build_t2s_transformer=False, build_h_module=False)
    lightning.load_inference_only_state_dict(ckpt["weight"])
    del ckpt
    lightning.model.release_inference_only_unused_modules()
    return lightning.eval().model


def _load_vits(path: Path) -> tuple[Any, dict]:
    """SoVITS as the fork builds it; returns the model and the config's `data` section."""
    ckpt = load_sovits_new(str(path))
    hps = ckpt["config"]
    weights = ckpt["weight"]
    hps["model"]["semantic_frame_rate"] = "25hz"
    text_emb = weights.get("enc_p.text_embedding.weight")
    hps["model"]["version"] = "v1" if text_emb is not None and text_emb.shape[0] == 322 else "v2"
    data = hps["data"]
    model = SynthesizerTrn(data["filter_length"] // 2 + 1, hps["train"]["segment_size"] // data["hop_length"],
                           n_speakers=data["n_speakers"], **hps["model"])
    result = model.load_state_dict(weights, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("enc_q.")]
    if missing:  # a silent partial load would benchmark random layers
        raise RuntimeError(f"cpufast: SoVITS weights lack {len(missing)} keys, e.g. {missing[:3]}")
    model.dec.remove_weight_norm()
    return model.eval(), data


def _reference_spec(inputs: Inputs, data: dict) -> torch.Tensor:
    """The reference clip's linear spectrogram, as the fork's `_get_ref_spec` makes it (32 kHz in)."""
    audio = torch.from_numpy(inputs.ref_wav).float()[None]
    peak = audio.abs().max()
    if peak > 1:
        audio = audio / min(2.0, float(peak))
    return spectrogram_torch(audio, data["filter_length"], data["sampling_rate"], data["hop_length"],
                             data["win_length"], center=False)


def load(inputs: Inputs, args: Any) -> State:
    if args.device != "cpu":
        raise RuntimeError("cpufast: this driver benchmarks the fork's CPU path only (--device cpu)")
    return State(inputs)


def t2s(state: State, items: list[int], tokens: int, mode: str) -> list[int]:
    """One batch through `infer_panel_batch_infer`; returns the tokens each row generated."""
    if mode != "static":
        raise ValueError(f"cpufast: mode {mode!r} unsupported")
    torch.manual_seed(0)
    phones = [torch.from_numpy(state.inputs.full_phones(i)) for i in items]
    bert = [torch.from_numpy(state.inputs.full_bert(i)) for i in items]
    lens = torch.LongTensor([p.shape[0] for p in phones])
    max_len = max(int(lens.max()), max(b.shape[-1] for b in bert))
    prompts = state.prompt.expand(len(items), -1)
    rows, _ = state.t2s.infer_panel_batch_infer(
        phones, lens, prompts, bert, early_stop_num=tokens, max_len=max_len,
        top_k=SAMPLING["top_k"], top_p=SAMPLING["top_p"], temperature=SAMPLING["temperature"],
        repetition_penalty=SAMPLING["repetition_penalty"], stable_batch_remap=True)
    return [int(r.shape[-1]) - prompts.shape[1] for r in rows]


def sovits(state: State, item: int, tokens: int) -> tuple[int, int]:
    """The first `tokens` codes through `SynthesizerTrn.decode` with the cached style."""
    torch.manual_seed(0)
    codes = torch.from_numpy(state.inputs.codes[:tokens]).view(1, 1, -1)
    phones = torch.from_numpy(state.inputs.phones[item])[None]
    wav = state.vits.decode(codes, phones, state.refer, noise_scale=0.5, speed=1.0,
                            ge=state.ge, ge_text=state.ge_text)
    return int(wav.shape[-1]), state.rate


if __name__ == "__main__":
    serve("gpt-sovits-cpufast", load, t2s, sovits, version=gpt_sovits_cpufast.__version__)
