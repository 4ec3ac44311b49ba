"""bench_peers driver for bookcast's own engine (runs in bookcast's environment; see common.py).

With BOOKCAST_REPO set it measures that checkout instead (an earlier commit as the baseline)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
# BOOKCAST_REPO: another checkout of bookcast to measure (bench_peers.py --baseline), else this one
sys.path.insert(0, os.environ.get("BOOKCAST_REPO") or str(HERE.parents[1]))

import torch
from common import SAMPLING, Inputs, serve

from synth.engines.gpt_sovits.engine import decode_with_style
from synth.engines.gpt_sovits.model.checkpoint import load_gpt_checkpoint
from synth.engines.gpt_sovits.model.sovits.model import SynthesizerTrnV2
from synth.engines.gpt_sovits.model.t2s import SamplingParams, decode_batch, load_t2s
from synth.engines.gpt_sovits.model.t2s_continuous import decode_continuous
from synth.engines.gpt_sovits.prompt import reference_spec


class State:
    def __init__(self, inputs: Inputs, device: str) -> None:
        self.inputs = inputs
        self.device = torch.device(device)
        self.dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        self.t2s = load_t2s(load_gpt_checkpoint(inputs.gpt), self.device, self.dtype)
        self.sovits = SynthesizerTrnV2.from_checkpoint(inputs.sovits, self.device, self.dtype)
        spec = reference_spec(self.sovits, inputs.ref_wav[None], 32000)
        self.ge = self.sovits.style([spec])
        self.prompt = torch.from_numpy(inputs.prompt)
        self.sampling = SamplingParams(**SAMPLING)


def load(inputs: Inputs, args) -> State:
    return State(inputs, args.device)


def t2s(state: State, items: list[int], tokens: int, mode: str) -> list[int]:
    phones = [torch.from_numpy(state.inputs.full_phones(i)) for i in items]
    bert = [torch.from_numpy(state.inputs.full_bert(i)).to(state.dtype) for i in items]
    seeds = list(range(len(items)))
    if mode == "continuous":
        results = decode_continuous(state.t2s, phones, bert, state.prompt, slots=len(items), sampling=state.sampling,
                                    early_stop_num=tokens, seed=seeds)
    else:
        results = decode_batch(state.t2s, phones, bert, state.prompt, sampling=state.sampling,
                               early_stop_num=tokens, seed=seeds)
    return [r.tokens.numel() for r in results]


def sovits(state: State, item: int, tokens: int) -> tuple[int, int]:
    codes = torch.from_numpy(state.inputs.codes[:tokens]).reshape(1, 1, -1).to(state.device)
    phones = torch.from_numpy(state.inputs.phones[item])[None].to(state.device)
    wav = decode_with_style(state.sovits, codes, phones, state.ge, 0.5, 1.0, torch.Generator().manual_seed(0))
    return wav.shape[-1], 32000


if __name__ == "__main__":
    serve("bookcast", load, t2s, sovits, modes=("static", "continuous"))
