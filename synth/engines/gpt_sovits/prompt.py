"""The reference prompt of a voice, computed once: semantic tokens, transcript features, style `ge`.

What the reference TTS pipeline derives from its reference clips before any text is spoken:
- the first clip at 16 kHz (3–10 s, plus 0.3·32000 zero samples) → HuBERT → SoVITS
  `extract_latent` → the prompt semantic tokens the GPT continues from;
- its transcript → phones + BERT features, prepended to every sentence;
- every clip at the SoVITS rate → linear spectrogram → one style vector each, averaged into `ge`
  (timbre fusion when there are several clips).
Without a transcript (reference-free mode) the GPT gets no prompt at all; the clip still gives `ge`
and must still be 3–10 s long, as in the reference.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from synth.engines.gpt_sovits.model.bert import BertFeatures
from synth.engines.gpt_sovits.model.sovits import SynthesizerTrnV2
from synth.engines.gpt_sovits.model.spectrogram import SpectrogramConfig, linear_spectrogram
from synth.engines.gpt_sovits.model.ssl import (
    HubertFeatures,
    check_reference_length,
    padded_prompt_wav,
    read_audio,
    reference_16k,
    reference_for_spectrogram,
)
from synth.engines.gpt_sovits.text import Phonemizer, TextFeatures, prompt_features
from synth.engines.gpt_sovits.voice import Voice

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReferencePrompt:
    """Everything the engine reuses for every sentence of a voice."""

    semantic: torch.Tensor | None  # (P,) int64 on the model device; None in reference-free mode
    text: TextFeatures | None  # transcript features; None in reference-free mode
    specs: tuple[torch.Tensor, ...]  # each (1, n_fft//2+1, frames) in the model dtype/device
    ge: torch.Tensor  # (1, gin, 1) averaged style vector

    @property
    def reference_free(self) -> bool:
        return self.semantic is None


@torch.no_grad()
def prompt_semantic(sovits: SynthesizerTrnV2, hubert: HubertFeatures, wav16k: np.ndarray) -> torch.Tensor:
    """Prompt semantic tokens (P,) int64 of a 16 kHz clip (already checked for length)."""
    sr = sovits.config.sampling_rate
    ssl = hubert(padded_prompt_wav(wav16k, sr))  # (1, 768, T)
    codes = sovits.extract_latent(ssl)  # (1, 1, T // 2)
    return codes[0, 0]


def reference_spec(sovits: SynthesizerTrnV2, audio: np.ndarray, rate: int) -> torch.Tensor:
    """Linear spectrogram (1, n_fft//2+1, frames) of a (channels, n) clip, computed in float32 and
    then cast to the model dtype (the reference halves the spectrogram on fp16 too)."""
    cfg = sovits.config
    wav = reference_for_spectrogram(audio, rate, cfg.sampling_rate)  # (1, n)
    spec_cfg = SpectrogramConfig(cfg.filter_length, cfg.hop_length, cfg.win_length, cfg.sampling_rate)
    weight = sovits.ssl_proj.weight
    spec = linear_spectrogram(torch.from_numpy(wav).to(weight.device), spec_cfg)  # (1, F, frames)
    return spec.to(weight.dtype)


def build_prompt(
    voice: Voice, sovits: SynthesizerTrnV2, hubert: HubertFeatures, bert: BertFeatures, g2p: Phonemizer
) -> ReferencePrompt:
    """Compute the prompt of a voice. Raises VoiceError for unreadable or out-of-range clips and
    SynthesisError when the transcript yields no phones."""
    specs = []
    semantic = None
    for i, clip in enumerate(voice.references):
        audio, rate = read_audio(clip.audio)
        if i == 0:
            wav16k = reference_16k(audio, rate)
            check_reference_length(wav16k, clip.audio)
            if not voice.reference_free:
                semantic = prompt_semantic(sovits, hubert, wav16k)
        specs.append(reference_spec(sovits, audio, rate))
    text = None if voice.reference_free else prompt_features(voice.prompt.text, voice.prompt.language, g2p, bert)
    ge = sovits.style(specs)  # (1, gin, 1)
    log.info(
        "voice %s: %s prompt, %d reference clip(s)",
        voice.name, "no" if semantic is None else f"{semantic.numel()}-token", len(specs),
    )
    return ReferencePrompt(semantic=semantic, text=text, specs=tuple(specs), ge=ge)
