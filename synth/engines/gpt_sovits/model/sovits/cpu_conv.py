"""The SoVITS decoder's 1-D convolutions as channels-last 2-D ones on a CPU.

oneDNN runs a 1-D convolution on a plain (B, C, T) tensor by reordering it into its blocked layout
and back around every call; the decoder's long, narrow activations (16–64 channels × 10^5 samples)
make those reorders most of the cost. The same convolution written as a 2-D one over (B, C, 1, T)
in channels-last memory needs no reorder: 1.5–6× faster per layer on this project's CPUs (the
whole decoder ~2×; bench/bench_peers.py). It is the same arithmetic in another summation order
(waveforms agree to ~1e-6); the element-wise steps between convolutions keep the layout.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def to_rows(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T) -> (B, C, 1, T) in channels-last memory."""
    return x.unsqueeze(2).contiguous(memory_format=torch.channels_last)


def from_rows(x: torch.Tensor) -> torch.Tensor:
    """(B, C, 1, T) -> contiguous (B, C, T)."""
    return x.squeeze(2).contiguous()


def _weight(module: nn.Conv1d | nn.ConvTranspose1d) -> torch.Tensor:
    """The module's weight as (O, I, 1, k) channels-last, cached until the weight changes."""
    weight = module.weight
    try:
        version = weight._version
    except RuntimeError:  # an inference tensor (loaded under inference_mode) keeps no version
        version = -1
    key = (weight.data_ptr(), version, weight.dtype)
    cached = getattr(module, "_rows_weight", None)
    if cached is None or cached[0] != key:
        cached = (key, weight.detach().unsqueeze(2).contiguous(memory_format=torch.channels_last))
        module._rows_weight = cached  # a plain attribute: not in the state dict
    return cached[1]


def conv_rows(module: nn.Conv1d | nn.ConvTranspose1d, x: torch.Tensor) -> torch.Tensor:
    """`module(x)` for x in the (B, C, 1, T) channels-last layout; same result, same layout out."""
    if module.groups != 1 or module.padding_mode != "zeros" or isinstance(module.padding, str):
        raise ValueError("only plain zero-padded, ungrouped convolutions are supported")
    stride, padding, dilation = (1, module.stride[0]), (0, module.padding[0]), (1, module.dilation[0])
    if isinstance(module, nn.ConvTranspose1d):
        return F.conv_transpose2d(x, _weight(module), module.bias, stride, padding,
                                  (0, module.output_padding[0]), 1, dilation)
    return F.conv2d(x, _weight(module), module.bias, stride, padding, dilation)
