"""A small seeded random T2S model and items of mixed lengths, shared by the decoder tests."""
from __future__ import annotations

import torch

from synth.engines.gpt_sovits.model.t2s_model import Text2SemanticDecoder, build_random_t2s
from synth.engines.gpt_sovits.model.t2s_sampling import SamplingParams

SAMPLED = SamplingParams(top_k=5, top_p=0.95, temperature=0.9, repetition_penalty=1.35)
SMALL = {"vocab_size": 24, "phoneme_vocab_size": 40, "embedding_dim": 32, "hidden_dim": 32, "head": 2,
         "n_layer": 2, "EOS": 23}


def small_setup(count: int, first_seed: int) -> tuple[Text2SemanticDecoder, list[torch.Tensor], list[torch.Tensor],
                                                      torch.Tensor, list[int]]:
    """(model, phones (3–29 each), bert, a 7-token prompt, per-item seeds first_seed..)."""
    torch.set_num_threads(1)
    model = build_random_t2s(SMALL, seed=3)
    g = torch.Generator().manual_seed(5)
    phones = [torch.randint(0, 40, (int(torch.randint(3, 30, (1,), generator=g)),), generator=g)
              for _ in range(count)]
    bert = [torch.randn(1024, len(p), generator=g) for p in phones]
    prompt = torch.randint(0, 23, (7,), generator=g)
    return model, phones, bert, prompt, list(range(first_seed, first_seed + count))


def plain_modules(model: Text2SemanticDecoder) -> Text2SemanticDecoder:
    """The same model back on the modules' path (in place): no packed weights, no flat decoding
    step, no ONNX Runtime step — the plain reference the CPU fast paths are compared with."""
    for module in model.modules():
        if hasattr(module, "packed"):
            module.packed = None
        if hasattr(module, "in_proj_packed"):
            module.in_proj_packed = None
    model.cpu_layers, model.ort_step = None, None
    return model
