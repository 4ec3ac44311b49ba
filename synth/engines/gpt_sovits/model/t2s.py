"""Public face of the GPT-SoVITS v2 text-to-semantic ("GPT") half: build, load, decode.

The implementation is split by responsibility: `t2s_model` (modules, config, KV cache, loading),
`t2s_sampling` (penalty, top-p/top-k/temperature, seeded draw) and `t2s_decode` (the two decoding
loops with the reference's stop rules). Import from here.
"""
from __future__ import annotations

from synth.engines.gpt_sovits.model.t2s_decode import (
    DEFAULT_MAX_STEPS,
    NO_EOS_STEPS,
    DecodeResult,
    decode_batch,
    decode_naive,
)
from synth.engines.gpt_sovits.model.t2s_model import (
    BERT_DIM,
    T2SConfig,
    Text2SemanticDecoder,
    build_random_t2s,
    load_t2s,
    pipeline_early_stop_num,
)
from synth.engines.gpt_sovits.model.t2s_sampling import SamplingParams

__all__ = [
    "BERT_DIM",
    "DEFAULT_MAX_STEPS",
    "NO_EOS_STEPS",
    "DecodeResult",
    "SamplingParams",
    "T2SConfig",
    "Text2SemanticDecoder",
    "build_random_t2s",
    "decode_batch",
    "decode_naive",
    "load_t2s",
    "pipeline_early_stop_num",
]
