"""Reference clips: reading, resampling, the 3–10 s rule, and HuBERT ("ssl") features.

A GPT-SoVITS voice is conditioned on a short reference clip in two ways, at two sample rates:
- 16 kHz → chinese-hubert-base → (1, 768, T) features → SoVITS `extract_latent` → prompt semantic
  tokens (what the GPT continues from);
- the SoVITS rate (32 kHz) → linear spectrogram → style vector `ge` (the timbre).
The reference pipeline reads the clip twice with two libraries (librosa for 16 kHz, torchaudio for
the spectrogram); we reproduce what each of those reads does — channel averaging, the length rule,
the 0.3 s of appended silence, the peak rescale — with soundfile + soxr, because librosa and
torchaudio are not dependencies of bookcast. Resampling is soxr HQ, which is what librosa's default
(`soxr_hq`) runs, so the 16 kHz path is the same computation; the spectrogram path only resamples
when a clip is not already at the SoVITS rate (torchaudio's sinc resampler differs slightly there).
"""
from __future__ import annotations

import json
import logging
import math
import pickle
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch
from safetensors import SafetensorError

from synth.engines.gpt_sovits.model.hf_folder import read_config
from synth.errors import VoiceError

log = logging.getLogger(__name__)

# What a corrupt or truncated Hugging Face weight file raises while loading.
_LOAD_ERRORS = (OSError, ValueError, RuntimeError, EOFError, pickle.UnpicklingError, SafetensorError)

HUBERT_SAMPLE_RATE = 16000
HUBERT_DIM = 768
# The reference refuses prompt clips outside 3–10 s, measured on the 16 kHz signal.
MIN_REFERENCE_SAMPLES_16K = 3 * HUBERT_SAMPLE_RATE
MAX_REFERENCE_SAMPLES_16K = 10 * HUBERT_SAMPLE_RATE
# Silence appended before HuBERT; the reference sizes it with the SoVITS rate even though it is
# concatenated to the 16 kHz signal (0.3 × 32000 = 9600 samples = 0.6 s at 16 kHz). Kept as is.
PROMPT_PAD_SECONDS = 0.3


MAX_REFERENCE_S = 60.0  # the prompt clip must be 3-10 s; style clips are short too


def read_audio(path: Path, max_seconds: float = MAX_REFERENCE_S) -> tuple[np.ndarray, int]:
    """The clip as float32 (channels, samples) in [-1, 1] (int PCM scaled by 1/32768) and its rate.

    The duration is read from the header first: a clip longer than `max_seconds` is refused before
    anything is decoded (a 3-hour file would need gigabytes). Raises VoiceError when the file is
    missing, not a regular file, unreadable, too long or empty.
    """
    try:
        if not Path(path).is_file():
            raise VoiceError("reference audio is missing or not a regular file", path)
        info = sf.info(str(path))
        if info.samplerate <= 0 or info.frames / info.samplerate > max_seconds:
            seconds = info.frames / max(info.samplerate, 1)
            raise VoiceError(f"reference audio is {seconds:,.0f} s long; reference clips must be 3-10 s "
                             f"(anything over {max_seconds:.0f} s is refused unread)", path)
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)  # (n, ch)
    except (OSError, RuntimeError, sf.LibsndfileError) as exc:
        raise VoiceError(f"cannot read reference audio ({str(exc).strip()[:160]})", path) from exc
    if data.shape[0] == 0:
        raise VoiceError("reference audio is empty", path)
    return np.ascontiguousarray(data.T), int(rate)  # (ch, n)


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """soxr HQ resampling of a 1-D float32 signal, trimmed/zero-padded to ceil(n·out/in) samples
    (librosa's `fix=True` length rule, so lengths agree with the reference exactly)."""
    if rate_in == rate_out:
        return audio.astype(np.float32, copy=False)
    out = soxr.resample(audio.astype(np.float32, copy=False), rate_in, rate_out, quality="HQ")
    n_out = math.ceil(audio.shape[-1] * rate_out / rate_in)
    if out.shape[-1] > n_out:
        out = out[:n_out]
    elif out.shape[-1] < n_out:
        out = np.pad(out, (0, n_out - out.shape[-1]))
    return out.astype(np.float32, copy=False)


def reference_16k(audio: np.ndarray, rate: int) -> np.ndarray:
    """(channels, n) → mono float32 (n16,) at 16 kHz, as `librosa.load(path, sr=16000)` gives it:
    mean over all channels, then resample."""
    mono = audio.mean(axis=0, dtype=np.float32) if audio.shape[0] > 1 else audio[0]
    return resample(mono, rate, HUBERT_SAMPLE_RATE)


def check_reference_length(wav16k: np.ndarray, path: Path) -> None:
    """The reference's 3–10 s rule on the 16 kHz signal. Raises VoiceError outside it."""
    n = wav16k.shape[-1]
    if n < MIN_REFERENCE_SAMPLES_16K or n > MAX_REFERENCE_SAMPLES_16K:
        raise VoiceError(
            f"reference clip is {n / HUBERT_SAMPLE_RATE:.2f} s; it must be 3–10 s long", path
        )


def reference_for_spectrogram(audio: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """(channels, n) → (1, m) float32 at the SoVITS rate, ready for the linear spectrogram.

    Like the reference: a 2-channel clip is averaged (we average any channel count), resampled when
    needed, and divided by min(2, peak) only when its peak exceeds 1 (possible after resampling).
    """
    mono = audio.mean(axis=0, dtype=np.float32) if audio.shape[0] > 1 else audio[0]
    wav = resample(mono, rate, target_rate)[None, :]  # (1, m)
    peak = float(np.abs(wav).max()) if wav.size else 0.0
    if peak > 1.0:
        wav = wav / np.float32(min(2.0, peak))
    return wav.astype(np.float32, copy=False)


def padded_prompt_wav(wav16k: np.ndarray, sovits_rate: int) -> np.ndarray:
    """The 16 kHz clip followed by int(sovits_rate × 0.3) zeros, the HuBERT input of the reference."""
    pad = np.zeros(int(sovits_rate * PROMPT_PAD_SECONDS), dtype=np.float32)
    return np.concatenate([wav16k.astype(np.float32, copy=False), pad])


def inspect_hubert_folder(folder: Path) -> dict:
    """Check a local chinese-hubert-base folder without loading weights; returns its config.

    Raises VoiceError naming the folder and the missing or wrong piece.
    """
    cfg, cfg_path = read_config(folder, "HuBERT", "chinese-hubert-base", HUBERT_DIM)
    if not any((folder / n).is_file() for n in ("model.safetensors", "pytorch_model.bin")):
        raise VoiceError("HuBERT folder has no model.safetensors or pytorch_model.bin", folder)
    pre = folder / "preprocessor_config.json"
    if pre.is_file():
        try:
            rate = json.loads(pre.read_text(encoding="utf-8")).get("sampling_rate", HUBERT_SAMPLE_RATE)
        except (OSError, ValueError) as exc:
            raise VoiceError(f"unreadable HuBERT preprocessor config ({exc})", pre) from exc
        if rate != HUBERT_SAMPLE_RATE:
            raise VoiceError(f"HuBERT expects {rate} Hz audio, GPT-SoVITS uses 16000 Hz", pre)
    return cfg


class HubertFeatures:
    """chinese-hubert-base from a local folder; audio (16 kHz) → (1, 768, T) features.

    The reference pipeline calls the bare `HubertModel` on the raw waveform (its feature extractor
    is loaded but not applied on this path), so no normalisation happens here either.
    """

    def __init__(self, folder: Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
        """Raises VoiceError when the folder is not a loadable HuBERT model."""
        from transformers import (
            HubertModel,  # heavy import, only when a voice is loaded
        )

        folder = Path(folder)
        inspect_hubert_folder(folder)
        try:
            # dtype float32 explicitly: transformers 5 would otherwise keep the file's (fp16) dtype,
            # while the reference (transformers 4) loads into float32 and halves only on CUDA.
            model = HubertModel.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32)
        except _LOAD_ERRORS as exc:
            raise VoiceError(f"cannot load HuBERT model ({str(exc).strip()[:200]})", folder) from exc
        self.folder = folder
        self.device = torch.device(device)
        self.dtype = dtype
        self.model = model.eval().to(device=self.device, dtype=dtype)
        self.parameters = sum(p.numel() for p in self.model.parameters())

    @torch.no_grad()
    def __call__(self, wav16k: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(n,) 16 kHz samples → (1, 768, T) features on the model's device and dtype."""
        wav = torch.as_tensor(wav16k).to(device=self.device, dtype=self.dtype).reshape(1, -1)  # (1, n)
        hidden = self.model(wav)["last_hidden_state"]  # (1, T, 768)
        return hidden.transpose(1, 2)  # (1, 768, T)
