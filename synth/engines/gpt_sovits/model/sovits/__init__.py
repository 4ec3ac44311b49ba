"""SoVITS v2 (SynthesizerTrn) inference: semantic codes + phones + reference spectrograms -> audio.

Pure tensor code; it knows nothing of text, languages or voices. Public entry points:
`SynthesizerTrnV2.from_checkpoint`, `SynthesizerTrnV2.decode`, `SynthesizerTrnV2.extract_latent`,
`build_random_sovits`, and `SovitsConfig`.
"""
from synth.engines.gpt_sovits.model.sovits.config import SovitsConfig
from synth.engines.gpt_sovits.model.sovits.model import SynthesizerTrnV2, build_random_sovits

__all__ = ["SovitsConfig", "SynthesizerTrnV2", "build_random_sovits"]
