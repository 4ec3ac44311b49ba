"""MelStyleEncoder: a reference spectrogram -> one style vector `ge` (the voice's timbre).

v2 feeds it the lowest 704 of the 1025 linear-spectrogram bins. Pipeline: two Mish-activated
linear layers per frame, two gated (GLU) residual convolutions over time, one multi-head
self-attention with a residual, a linear projection to gin channels, then a masked mean over time.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

V2_REF_BINS = 704
STYLE_HIDDEN = 128
STYLE_KERNEL = 5
STYLE_HEADS = 2


def _mish(x: torch.Tensor) -> torch.Tensor:
    return x * torch.tanh(F.softplus(x))


class GatedConv(nn.Module):
    """Residual GLU convolution over time: x + a * sigmoid(b), [a; b] = conv(x)."""

    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.channels = channels
        self.conv = nn.Conv1d(channels, 2 * channels, kernel_size, padding=(kernel_size - 1) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, T) -> (B, C, T)."""
        y = self.conv(x)  # (B, 2C, T)
        return x + y[:, : self.channels] * torch.sigmoid(y[:, self.channels :])


class StyleSelfAttention(nn.Module):
    """Multi-head self-attention on (B, T, C) with a residual connection.

    The logits are scaled by sqrt(model width), not sqrt(head width): that is what the trained
    weights expect.
    """

    def __init__(self, channels: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.head_dim = channels // n_heads
        self.temperature = math.sqrt(channels)
        self.w_qs = nn.Linear(channels, channels)
        self.w_ks = nn.Linear(channels, channels)
        self.w_vs = nn.Linear(channels, channels)
        self.fc = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
        """x: (B, T, C); pad: (B, T) True at padded frames (or None) -> (B, T, C)."""
        b, t, c = x.shape
        h, d = self.n_heads, self.head_dim

        def heads(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, h, d).transpose(1, 2)  # (B, H, T, D)

        q, k, v = heads(self.w_qs(x)), heads(self.w_ks(x)), heads(self.w_vs(x))
        logits = torch.matmul(q, k.transpose(-2, -1)) / self.temperature  # (B, H, T, T)
        if pad is not None:
            logits = logits.masked_fill(pad[:, None, None, :], float("-inf"))
        out = torch.matmul(F.softmax(logits, dim=-1), v)  # (B, H, T, D)
        out = out.transpose(1, 2).reshape(b, t, c)  # (B, T, C)
        return self.fc(out) + x


class MelStyleEncoder(nn.Module):
    """Spectrogram frames (B, n_bins, T) + mask (B, 1, T) -> style vector (B, out_dim, 1)."""

    def __init__(
        self,
        n_bins: int = V2_REF_BINS,
        out_dim: int = 512,
        hidden: int = STYLE_HIDDEN,
        kernel_size: int = STYLE_KERNEL,
        n_heads: int = STYLE_HEADS,
    ) -> None:
        super().__init__()
        self.spectral1 = nn.Linear(n_bins, hidden)
        self.spectral2 = nn.Linear(hidden, hidden)
        self.temporal = nn.ModuleList(GatedConv(hidden, kernel_size) for _ in range(2))
        self.slf_attn = StyleSelfAttention(hidden, n_heads)
        self.out = nn.Linear(hidden, out_dim)

    def forward(self, spec: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """spec: (B, n_bins, T) already multiplied by mask; mask: (B, 1, T) 0/1 -> (B, out_dim, 1)."""
        pad = mask.squeeze(1) == 0  # (B, T) True = padding
        x = spec.transpose(1, 2)  # (B, T, n_bins)
        x = _mish(self.spectral2(_mish(self.spectral1(x))))  # (B, T, H)
        x = x.transpose(1, 2)  # (B, H, T)
        for conv in self.temporal:
            x = conv(x)
        x = x.transpose(1, 2)  # (B, T, H)
        x = x.masked_fill(pad.unsqueeze(-1), 0)
        x = self.out(self.slf_attn(x, pad))  # (B, T, out_dim)
        # Masked mean over time; divide before summing (float32) as the reference does.
        count = (~pad).sum(dim=1).view(-1, 1, 1)  # (B, 1, 1)
        xf = x.masked_fill(pad.unsqueeze(-1), 0).float() / count
        return xf.sum(dim=1).to(x.dtype).unsqueeze(-1)  # (B, out_dim, 1)
