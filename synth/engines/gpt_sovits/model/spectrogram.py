"""The linear-magnitude spectrogram SoVITS v2 takes as its speaker reference (pure torch).

Definition (GPT-SoVITS `spectrogram_torch(..., center=False)`): reflect-pad the waveform by
(n_fft - hop) // 2 on both sides; frames start every `hop` samples (1 + (len - n_fft) // hop of
them); each frame is weighted by a periodic Hann window of `win_length` samples centred in n_fft;
one-sided FFT; magnitude sqrt(re^2 + im^2 + 1e-8). Output layout (B, n_fft // 2 + 1, frames).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

from synth.errors import VoiceError

# Added under the square root so silent bins stay differentiable and finite (as trained).
_MAGNITUDE_EPS = 1e-8


@dataclass(frozen=True)
class SpectrogramConfig:
    """STFT geometry; SoVITS v2 uses n_fft=win=2048, hop=640 at 32 kHz."""

    n_fft: int = 2048
    hop_length: int = 640
    win_length: int = 2048
    sampling_rate: int = 32000

    @classmethod
    def from_data_config(cls, data: Mapping[str, Any]) -> SpectrogramConfig:
        """From a SoVITS config's `data` section (filter_length, hop_length, win_length, sampling_rate).

        Raises VoiceError when an entry is missing or not an integer.
        """
        try:
            return cls(
                n_fft=int(data["filter_length"]),
                hop_length=int(data["hop_length"]),
                win_length=int(data["win_length"]),
                sampling_rate=int(data["sampling_rate"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise VoiceError(f"SoVITS config 'data' section lacks a valid STFT setting ({exc})") from exc

    @property
    def pad(self) -> int:
        return (self.n_fft - self.hop_length) // 2

    def min_samples(self) -> int:
        """Shortest waveform that yields one frame (reflect padding also needs len > pad)."""
        return max(self.n_fft - 2 * self.pad, self.pad + 1)


def linear_spectrogram(wav: torch.Tensor, config: SpectrogramConfig = SpectrogramConfig()) -> torch.Tensor:
    """Magnitude spectrogram (B, n_fft // 2 + 1, frames) of float waveforms (B, N) or (N,) in [-1, 1].

    Computed in float32 (or float64 if given) on the waveform's device; cast the result to the
    model's dtype afterwards. Raises VoiceError when the waveform is too short for one frame.
    """
    if wav.dim() == 1:
        wav = wav.unsqueeze(0)
    if wav.dim() != 2:
        raise ValueError(f"waveform must be (N,) or (B, N), got {tuple(wav.shape)}")
    if wav.shape[-1] < config.min_samples():
        raise VoiceError(
            f"reference audio too short for a spectrogram ({wav.shape[-1]} samples, need {config.min_samples()})"
        )
    if wav.dtype not in (torch.float32, torch.float64):
        wav = wav.float()
    padded = F.pad(wav.unsqueeze(1), (config.pad, config.pad), mode="reflect").squeeze(1)  # (B, N + 2*pad)
    window = torch.hann_window(config.win_length, periodic=True, device=wav.device, dtype=wav.dtype)
    spec = torch.stft(
        padded,
        config.n_fft,
        hop_length=config.hop_length,
        win_length=config.win_length,
        window=window,
        center=False,
        normalized=False,
        onesided=True,
        return_complex=True,
    )  # (B, n_fft // 2 + 1, frames) complex
    return torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + _MAGNITUDE_EPS)
