"""bench_peers driver for the reference implementation itself, RVC-Boss/GPT-SoVITS (see common.py).

Runs in bench/.peers/reference/venv (made by setup/reference.sh) and imports the reference's own
modules from the extracted checkout bench/.peers/reference/src; nothing of bookcast. The models are
built with the steps of the reference's inference pipeline (`TTS_infer_pack/TTS.py`
`init_t2s_weights` / `init_vits_weights` / `_get_ref_spec` / `to_batch` / `run`), replicated by
calling the same functions and classes, because the `TTS` class itself would load BERT, HuBERT and
the v3/v4 vocoders from disk. float32 on the CPU, like the golden fixtures.

Timed paths:
- t2s: `Text2SemanticDecoder.infer_panel_batch_infer`, the pipeline's default (`parallel_infer=True`)
  for every batch size, batch 1 included; items left-padded exactly as `TTS.to_batch` prepares them.
- sovits: `SynthesizerTrn.decode(codes, phones, [refer_spec], noise_scale=0.5, speed=1)`, as the
  pipeline calls it; the reference spectrogram is computed once at load, as the pipeline caches it.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
PEER = HERE.parent / ".peers" / "reference"
SRC = Path(os.environ.get("GPT_SOVITS_REF_SRC", str(PEER / "src"))).resolve()
# The reference's own scripts run from the repository root with it and GPT_SoVITS/ on sys.path.
sys.path.extend([str(SRC), str(SRC / "GPT_SoVITS")])

import torch  # noqa: E402
from common import SAMPLING, Inputs, serve  # noqa: E402


def _commit() -> str:
    """The reference commit that setup/reference.sh extracted (reported as the driver's version)."""
    path = PEER / "COMMIT"
    return path.read_text().strip() if path.exists() else "unknown"


class State:
    """The loaded reference models plus what the pipeline caches per reference clip."""

    def __init__(self, inputs: Inputs) -> None:
        # Imported here, not at the top: serve() has already sent stdout to stderr by now, so any
        # print of the reference's import chain cannot corrupt the protocol.
        from AR.models.t2s_lightning_module import Text2SemanticLightningModule
        from module.mel_processing import spectrogram_torch
        from module.models import SynthesizerTrn
        from process_ckpt import get_sovits_version_from_path_fast, load_sovits_new

        self.inputs = inputs
        self.device = torch.device("cpu")
        self.precision = torch.float32

        # TTS.init_t2s_weights
        dict_s1 = torch.load(inputs.gpt, map_location=self.device, weights_only=True)  # plain data only
        config = dict_s1["config"]
        self.max_sec = config["data"]["max_sec"]  # the pipeline's cap would be 50 * max_sec
        t2s_model = Text2SemanticLightningModule(config, "****", is_train=False)
        t2s_model.load_state_dict(dict_s1["weight"])  # strict, as the pipeline does
        self.t2s_model = t2s_model.to(self.device).eval()

        # TTS.init_vits_weights (v1/v2 branch: SynthesizerTrn, no vocoder, no LoRA, no SV model)
        _, model_version, if_lora = get_sovits_version_from_path_fast(str(inputs.sovits))
        if "Pro" in model_version or model_version in {"v3", "v4"} or if_lora:
            raise RuntimeError(f"{inputs.sovits} reads as {model_version}; this driver builds v1/v2 only")
        dict_s2 = load_sovits_new(str(inputs.sovits))
        hps = dict_s2["config"]
        hps["model"]["semantic_frame_rate"] = "25hz"
        text_emb = dict_s2["weight"].get("enc_p.text_embedding.weight")
        hps["model"]["version"] = "v1" if text_emb is not None and text_emb.shape[0] == 322 else "v2"
        self.filter_length = hps["data"]["filter_length"]
        self.sampling_rate = hps["data"]["sampling_rate"]
        self.hop_length = hps["data"]["hop_length"]
        self.win_length = hps["data"]["win_length"]
        vits_model = SynthesizerTrn(
            self.filter_length // 2 + 1,
            hps["train"]["segment_size"] // self.hop_length,
            n_speakers=hps["data"]["n_speakers"],
            **hps["model"],
        )
        keys = vits_model.load_state_dict(dict_s2["weight"], strict=False)  # enc_q is never saved
        print(f"reference SoVITS {hps['model']['version']} ({model_version} by file): "
              f"{len(keys.missing_keys)} missing keys (enc_q: "
              f"{sum(k.startswith('enc_q.') for k in keys.missing_keys)}), "
              f"{len(keys.unexpected_keys)} unexpected", file=sys.stderr)
        self.vits_model = vits_model.to(self.device).eval()

        # TTS._get_ref_spec on the 32 kHz reference clip (no resampling needed, mono already)
        audio = torch.from_numpy(inputs.ref_wav).float()[None].to(self.device)
        maxx = audio.abs().max()
        if maxx > 1:
            audio /= min(2, maxx)
        spec = spectrogram_torch(audio, self.filter_length, self.sampling_rate, self.hop_length,
                                 self.win_length, center=False)
        self.refer_spec = [spec.to(dtype=self.precision, device=self.device)]
        # prompt_cache["prompt_semantic"] is codes[0, 0] of extract_latent: a 1-D int64 tensor
        self.prompt_semantic = torch.from_numpy(inputs.prompt).long().to(self.device)


def load(inputs: Inputs, args: Any) -> State:
    """Build the reference models once; the CPU only, as the benchmark's CPU comparison needs."""
    if args.device != "cpu":
        raise SystemExit("driver_reference runs float32 on the CPU only")
    return State(inputs)


def t2s(state: State, items: list[int], tokens: int, mode: str) -> list[int]:
    """One batch through `infer_panel_batch_infer`, prepared as `TTS.to_batch` + `TTS.run` do.

    Cap: the loop stops at the step where more than `early_stop_num` tokens were sampled and keeps
    `y[:, :-1]`, so early_stop_num=T makes T+1 forward steps (the prompt pass + T cached steps) and
    returns T tokens per row (EOS cannot come: its output row is zero) - the same cap bookcast's
    driver passes. Seeded per call so that reruns sample the same tokens.
    """
    if mode != "static":
        raise ValueError(f"mode {mode!r} not supported by the reference driver")
    inputs = state.inputs
    all_phones = [torch.LongTensor(inputs.full_phones(i).tolist()).to(state.device) for i in items]
    all_bert = [torch.from_numpy(inputs.full_bert(i)).to(dtype=state.precision, device=state.device)
                for i in items]
    all_phones_len = torch.LongTensor([p.shape[-1] for p in all_phones]).to(state.device)
    max_len = max(max(b.shape[-1] for b in all_bert), max(p.shape[-1] for p in all_phones))
    prompt = state.prompt_semantic.expand(len(all_phones), -1).to(state.device)
    torch.manual_seed(0)
    pred_list, idx_list = state.t2s_model.model.infer_panel_batch_infer(
        all_phones, all_phones_len, prompt, all_bert,
        top_k=SAMPLING["top_k"], top_p=SAMPLING["top_p"], temperature=SAMPLING["temperature"],
        early_stop_num=tokens, max_len=max_len, repetition_penalty=SAMPLING["repetition_penalty"],
    )
    # TTS.run keeps item[-idx:] of each row before SoVITS
    return [int(pred[-idx:].shape[0]) for pred, idx in zip(pred_list, idx_list)]


def sovits(state: State, item: int, tokens: int) -> tuple[int, int]:
    """`SynthesizerTrn.decode` with the pipeline's arguments (noise_scale default 0.5, speed 1)."""
    codes = torch.from_numpy(state.inputs.codes[:tokens]).long().reshape(1, 1, -1).to(state.device)
    phones = torch.LongTensor(state.inputs.phones[item].tolist())[None].to(state.device)
    torch.manual_seed(0)
    wav = state.vits_model.decode(codes, phones, state.refer_spec, noise_scale=0.5, speed=1).detach()[0, 0, :]
    return int(wav.shape[-1]), int(state.sampling_rate)


if __name__ == "__main__":
    serve("reference", load, t2s, sovits, modes=("static",), version=_commit())
