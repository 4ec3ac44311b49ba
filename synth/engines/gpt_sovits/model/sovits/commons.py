"""Small tensor helpers shared by the SoVITS modules: masks, channel-first LayerNorm, gated tanh.

Everything here runs on whatever device/dtype its inputs live on; nothing creates CPU tensors in the
hot path (masks are built with `torch.arange(..., device=...)`).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrizations, parametrize

# Leaky-ReLU slope of the HiFi-GAN style decoder and its residual blocks.
LRELU_SLOPE = 0.1


def sequence_mask(lengths: torch.Tensor, max_length: int) -> torch.Tensor:
    """Boolean (B, max_length) mask, True where the frame index is below the item's length."""
    positions = torch.arange(max_length, device=lengths.device, dtype=lengths.dtype)  # (T,)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)  # (B, T)


def full_mask(batch: int, length: int, like: torch.Tensor) -> torch.Tensor:
    """A (B, 1, T) all-ones float mask in `like`'s dtype/device (unpadded batch-of-equal-lengths)."""
    return torch.ones(batch, 1, length, device=like.device, dtype=like.dtype)


def gated_tanh(x: torch.Tensor, cond: torch.Tensor | None, half: int) -> torch.Tensor:
    """WaveNet gate: tanh(first half) * sigmoid(second half) of (x + cond) along channels.

    x, cond: (B, 2*half, T) -> (B, half, T).
    """
    a = x if cond is None else x + cond
    return torch.tanh(a[:, :half]) * torch.sigmoid(a[:, half:])


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of a (B, C, T) tensor.

    Parameters are called gamma/beta because that is how the checkpoints name them.
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.channels = channels
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.transpose(1, -1)  # (B, T, C)
        y = F.layer_norm(y, (self.channels,), self.gamma, self.beta, self.eps)
        return y.transpose(1, -1)  # (B, C, T)


def with_weight_norm(conv: nn.Module) -> nn.Module:
    """Attach a weight-norm parametrization (dim 0), matching how the checkpoints store g and v.

    The saved `weight_g`/`weight_v` load into `parametrizations.weight.original0/1`; after loading,
    `fold_weight_norm` bakes g*v/||v|| into a plain weight so inference pays nothing for it.
    """
    return parametrizations.weight_norm(conv, name="weight", dim=0)


def fold_weight_norm(module: nn.Module) -> int:
    """Replace every weight-norm parametrization below `module` by its current weight.

    Returns how many were folded. Idempotent (a second call folds nothing).
    """
    folded = 0
    for sub in module.modules():
        if parametrize.is_parametrized(sub, "weight"):
            parametrize.remove_parametrizations(sub, "weight", leave_parametrized=True)
            folded += 1
    return folded
