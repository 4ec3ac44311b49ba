"""oneDNN-packed linear weights for the T2S decoding steps on a CPU.

A decoding step multiplies a few rows (the batch) by every weight matrix of the model: ~300 MB of
float32 read per step for 1–64 rows of arithmetic, so the matrix-vector kernel decides the speed.
PyTorch's default CPU path (MKL sgemm on a transposed weight) is poor at that shape; the same
product through oneDNN with the weight reordered once into its blocked layout is 1.3–1.9× faster
on this project's CPUs (24 layers' linears of one step, 2 threads: 24 → 13 ms at 1 row, 32 → 19
ms at 8, 56 → 41 ms at 32; bench/profile_t2s.py). For many rows (a batch's prefill: hundreds of
positions per sentence) MKL is the faster of the two, so `packed_linear` picks by row count.

The packed copy is made once when a CPU model is loaded (`Text2SemanticDecoder.pack_for_cpu`),
costs one more copy of the weights in memory, and is only an alternative layout of the same
numbers (results agree to float32 rounding: ~1e-6). It uses the `torch.ops.mkldnn` operators that
back PyTorch's own frozen-model CPU path; where they are missing, nothing is packed.

A bfloat16 model (the voice's `precision = "bfloat16"`, opt-in) is packed too where the CPU does
bfloat16 natively (AVX-512 BF16 / AMX): half the bytes per step, and its attention then goes through
the fused kernel, which in bfloat16 is twice as fast as the two products (bench/README.md).
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

# Up to this many rows the packed weight is used (decoding steps, and the prefill of one or two
# sentences: 136 rows 150 vs 196 ms, 300 rows 315 vs 359 ms); at 640 rows MKL's GEMM wins (593 vs 678).
PACKED_MAX_ROWS = 384
_ROWS_HINT = 8  # the batch size oneDNN lays the weight out for (1–300 rows all run well with it)


def available() -> bool:
    """oneDNN is built in and its linear operators are registered."""
    ops = getattr(torch.ops, "mkldnn", None)
    return (torch.backends.mkldnn.is_available() and ops is not None
            and hasattr(ops, "_reorder_linear_weight") and hasattr(ops, "_linear_pointwise"))


@functools.cache  # the hardware does not change; asked once per packed weight
def bf16_native() -> bool:
    """This CPU computes bfloat16 in hardware (x86 AVX-512 BF16 or AMX). oneDNN also accepts
    bfloat16 on any AVX-512 CPU, but emulates it there, and that is not measured: off."""
    hardware = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    try:
        return (available() and any(getattr(torch.cpu, name, lambda: False)() for name in hardware)
                and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()))
    except (AttributeError, RuntimeError):
        return False


def pack_weight(weight: torch.Tensor) -> torch.Tensor | None:
    """The oneDNN layout of a CPU float32 (or, where native, bfloat16) (out, in) weight, or None
    where that is not possible."""
    if weight.device.type != "cpu" or not available():
        return None
    if weight.dtype != torch.float32 and not (weight.dtype == torch.bfloat16 and bf16_native()):
        return None
    try:
        return torch.ops.mkldnn._reorder_linear_weight(weight.detach(), _ROWS_HINT)
    except RuntimeError as exc:  # an unusual build: keep the plain path
        log.debug("oneDNN weight packing unavailable: %s", exc)
        return None


def packed_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                  packed: torch.Tensor | None) -> torch.Tensor:
    """`F.linear(x, weight, bias)`, through the packed weight when there is one and x has few rows."""
    if packed is not None and x.device.type == "cpu" and x.dtype == packed.dtype \
            and x.numel() <= PACKED_MAX_ROWS * x.shape[-1]:
        return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")
    return F.linear(x, weight, bias)


@dataclass(frozen=True)
class PackedLayer:
    """One transformer layer's weights for `decode_step`: packed matrices, plain vectors."""

    qkv: torch.Tensor
    qkv_bias: torch.Tensor
    out: torch.Tensor
    out_bias: torch.Tensor
    ffn1: torch.Tensor
    ffn1_bias: torch.Tensor
    ffn2: torch.Tensor
    ffn2_bias: torch.Tensor
    norm1: tuple[torch.Tensor, torch.Tensor]
    norm2: tuple[torch.Tensor, torch.Tensor]


class Cache(Protocol):
    def write(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


def _linear(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None, post: str = "none") -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, post, [], "")


def _linear_add(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None, residual: torch.Tensor) -> torch.Tensor:
    """`residual + linear(x)` in one oneDNN call (the residual add as the product's post-op)."""
    return torch.ops.mkldnn._linear_pointwise.binary(x, residual, packed, bias, "add")


def head_bias(bias: torch.Tensor | None, heads: int) -> torch.Tensor | None:
    """A step's (B, 1, 1, S) bias as (B·H, 1, S) for `attend_heads`, built once for all layers; None
    (every column visible, e.g. one sentence alone) stays None and costs nothing."""
    if bias is None:
        return None
    bsz, _, _, columns = bias.shape
    return bias.expand(bsz, heads, 1, columns).reshape(bsz * heads, 1, columns)


def attend_heads(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Attention of ONE new position per row: q (B, H, 1, Dh) over keys/values (B, H, S, Dh) with
    an additive bias (B·H, 1, S) of 0 / -inf or None -> (B, H·Dh), heads side by side.

    Two plain batched products over (B·H) 3-D views of the cache (no copies: a row's heads are
    contiguous in the buffers), the scale and the bias inside the first (`baddbmm`): for a single
    query row the fused CPU kernel costs about twice as much (bench/profile_t2s.py), and at batch 1
    the per-operator cost is a fifth of the step, so every operator saved counts."""
    bsz, heads, _, head_dim = q.shape
    columns = keys.shape[2]
    q3 = q.reshape(bsz * heads, 1, head_dim)
    k3 = keys.reshape(bsz * heads, columns, head_dim).transpose(1, 2)  # (B·H, Dh, S)
    v3 = values.reshape(bsz * heads, columns, head_dim)
    scale = head_dim ** -0.5
    if bias is None:
        scores = torch.bmm(q3, k3).mul_(scale)
    else:
        scores = torch.baddbmm(bias, q3, k3, alpha=scale)  # (B·H, 1, S)
    return torch.bmm(torch.softmax(scores, dim=-1), v3).view(bsz, heads * head_dim)


def attend_fused(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """`attend_heads` for a bfloat16 cache: bias (B, 1, 1, S) or None -> (B, H·Dh). In bfloat16 the
    two products are slow (the transposed keys get copied) and the fused kernel, which reads the
    keys in place, is the faster: 24 layers at 8 rows × 300 columns 7.6 ms against 18.6 (and 15
    for the float32 products)."""
    bsz, heads, _, head_dim = q.shape
    return F.scaled_dot_product_attention(q, keys, values, attn_mask=bias).reshape(bsz, heads * head_dim)


def attend_one(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """`attend_heads` for the modules' path: bias (B, 1, 1, S) or None -> (B, H, 1, Dh)."""
    bsz, heads, _, head_dim = q.shape
    if q.dtype == torch.bfloat16:
        return attend_fused(q, keys, values, bias).view(bsz, heads, 1, head_dim)
    return attend_heads(q, keys, values, head_bias(bias, heads)).view(bsz, heads, 1, head_dim)


def decode_step(x: torch.Tensor, layers: Sequence[PackedLayer], cache: Cache, bias: torch.Tensor | None,
                heads: int, eps: float) -> torch.Tensor:
    """Every layer for ONE new position per row, x (B, 1, D) -> hidden (B, D): the modules'
    arithmetic in one flat loop. At a few rows the step is so short that module calls, head
    transposes and separate adds are a fifth of it; here q/k/v are views of the fused projection,
    the ReLU and the residual adds run inside the matrix products, the attention bias is expanded
    once for all layers, and nothing goes through `nn.Module`. `bias` (B, 1, 1, S) is 0 / -inf per
    visible column, S = cached + 1, or None when every row sees every column."""
    bsz, _, dim = x.shape
    head_dim = dim // heads
    h = x.reshape(bsz, dim)
    fused = x.dtype == torch.bfloat16  # see attend_fused
    bias3 = None if fused else head_bias(bias, heads)
    for i, layer in enumerate(layers):
        q, k, v = _linear(h, layer.qkv, layer.qkv_bias).view(bsz, 3, heads, 1, head_dim).unbind(1)  # (B, H, 1, Dh)
        k_all, v_all = cache.write(i, k, v)  # (B, H, S, Dh)
        attended = attend_fused(q, k_all, v_all, bias) if fused else attend_heads(q, k_all, v_all, bias3)  # (B, D)
        h = F.layer_norm(_linear_add(attended, layer.out, layer.out_bias, h), (dim,), *layer.norm1, eps)
        inner = _linear(h, layer.ffn1, layer.ffn1_bias, "relu")
        h = F.layer_norm(_linear_add(inner, layer.ffn2, layer.ffn2_bias, h), (dim,), *layer.norm2, eps)
    return h
