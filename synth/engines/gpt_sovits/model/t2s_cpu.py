"""oneDNN-packed linear weights for the T2S decoding steps on a CPU.

A decoding step multiplies a few rows (the batch) by every weight matrix of the model: ~300 MB of
float32 read per step for 1–64 rows of arithmetic, so the matrix-vector kernel decides the speed.
PyTorch's default CPU path (MKL sgemm on a transposed weight) is poor at that shape; the same
product through oneDNN with the weight reordered once into its blocked layout is 1.3–1.9× faster
on this project's CPUs (24 layers' linears of one step, 2 threads: 24 → 13 ms at 1 row, 32 → 19
ms at 8, 56 → 41 ms at 32; bench/profile_t2s.py). For many rows (the prefill: hundreds of
positions) MKL is the faster of the two, so `packed_linear` picks by row count.

The packed copy is made once when a CPU float32 model is loaded (`Text2SemanticDecoder.pack_for_cpu`),
costs one more copy of the weights in memory, and is only an alternative layout of the same
numbers (results agree to float32 rounding: ~1e-6). It uses the `torch.ops.mkldnn` operators that
back PyTorch's own frozen-model CPU path; where they are missing, nothing is packed.
"""
from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

PACKED_MAX_ROWS = 64  # up to this many rows the packed weight is used; beyond, MKL's GEMM wins
_ROWS_HINT = 8  # the batch size oneDNN lays the weight out for (1–64 rows all run well with it)


def available() -> bool:
    """oneDNN is built in and its linear operators are registered."""
    ops = getattr(torch.ops, "mkldnn", None)
    return (torch.backends.mkldnn.is_available() and ops is not None
            and hasattr(ops, "_reorder_linear_weight") and hasattr(ops, "_linear_pointwise"))


def pack_weight(weight: torch.Tensor) -> torch.Tensor | None:
    """The oneDNN layout of a CPU float32 (out, in) weight, or None where that is not possible."""
    if weight.device.type != "cpu" or weight.dtype != torch.float32 or not available():
        return None
    try:
        return torch.ops.mkldnn._reorder_linear_weight(weight.detach(), _ROWS_HINT)
    except RuntimeError as exc:  # an unusual build: keep the plain path
        log.debug("oneDNN weight packing unavailable: %s", exc)
        return None


def packed_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                  packed: torch.Tensor | None) -> torch.Tensor:
    """`F.linear(x, weight, bias)`, through the packed weight when there is one and x has few rows."""
    if packed is not None and x.device.type == "cpu" and x.dtype == torch.float32 \
            and x.numel() <= PACKED_MAX_ROWS * x.shape[-1]:
        return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")
    return F.linear(x, weight, bias)
