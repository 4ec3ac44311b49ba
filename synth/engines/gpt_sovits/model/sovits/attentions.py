"""Transformer pieces of the SoVITS text/content encoders (VITS style, channel-first tensors).

`MultiHeadAttention` optionally adds Shaw-style relative-position terms: learned key/value
embeddings for offsets -W..W (shared by all heads) that contribute to the attention logits and to
the attended values; offsets beyond the window contribute nothing. We add them diagonal by
diagonal instead of with pad-and-reshape tricks: the result is the same, and it reads as the
definition.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from synth.engines.gpt_sovits.model.sovits.commons import ChannelLayerNorm

# Value the reference uses for masked logits (not -inf: fully masked rows stay finite).
_MASKED_LOGIT = -1e4


class MultiHeadAttention(nn.Module):
    """Multi-head attention over (B, C, T) tensors with 1x1 conv projections.

    window: relative-position window W (None = plain attention, as in MRTE's cross attention).
    """

    def __init__(self, channels: int, out_channels: int, n_heads: int, window: int | None = None) -> None:
        super().__init__()
        if channels % n_heads:
            raise ValueError(f"channels {channels} not divisible by n_heads {n_heads}")
        self.n_heads = n_heads
        self.k_channels = channels // n_heads
        self.window = window
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, out_channels, 1)
        if window is not None:
            scale = self.k_channels**-0.5
            self.emb_rel_k = nn.Parameter(torch.randn(1, 2 * window + 1, self.k_channels) * scale)
            self.emb_rel_v = nn.Parameter(torch.randn(1, 2 * window + 1, self.k_channels) * scale)

    def forward(self, x: torch.Tensor, c: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        """x: (B, C, Tq) queries, c: (B, C, Ts) keys/values, attn_mask: (B, 1, Tq, Ts) 0/1 or None."""
        b, channels, t_q = x.shape
        t_s = c.shape[2]
        h, d = self.n_heads, self.k_channels
        q = self.conv_q(x).view(b, h, d, t_q).transpose(2, 3)  # (B, H, Tq, D)
        k = self.conv_k(c).view(b, h, d, t_s).transpose(2, 3)  # (B, H, Ts, D)
        v = self.conv_v(c).view(b, h, d, t_s).transpose(2, 3)  # (B, H, Ts, D)

        q = q / math.sqrt(d)
        scores = torch.matmul(q, k.transpose(-2, -1))  # (B, H, Tq, Ts)
        if self.window is not None:
            if t_q != t_s:
                raise ValueError("relative attention needs self-attention (Tq == Ts)")
            rel_logits = torch.matmul(q, self.emb_rel_k.unsqueeze(0).transpose(-2, -1))  # (B, H, T, 2W+1)
            self._add_band(scores, rel_logits)
        if attn_mask is not None:
            scores = scores.masked_fill(attn_mask == 0, _MASKED_LOGIT)
        p_attn = F.softmax(scores, dim=-1)  # (B, H, Tq, Ts)
        out = torch.matmul(p_attn, v)  # (B, H, Tq, D)
        if self.window is not None:
            rel_weights = self._band_to_relative(p_attn)  # (B, H, T, 2W+1)
            out = out + torch.matmul(rel_weights, self.emb_rel_v.unsqueeze(0))  # (B, H, T, D)
        out = out.transpose(2, 3).contiguous().view(b, channels, t_q)  # (B, C, Tq)
        return self.conv_o(out)

    def _offsets(self, length: int) -> range:
        """Relative offsets j - i inside the window that exist for a sequence of this length."""
        assert self.window is not None
        reach = min(self.window, length - 1)
        return range(-reach, reach + 1)

    def _add_band(self, scores: torch.Tensor, rel_logits: torch.Tensor) -> None:
        """scores[..., i, i+o] += rel_logits[..., i, o+W] for every in-window offset o (in place)."""
        length = scores.shape[-1]
        for o in self._offsets(length):
            start, stop = max(0, -o), length - max(0, o)  # rows i that have a column i+o
            diag = torch.diagonal(scores, offset=o, dim1=-2, dim2=-1)  # (B, H, T-|o|) view
            diag.add_(rel_logits[:, :, start:stop, o + self.window])

    def _band_to_relative(self, p_attn: torch.Tensor) -> torch.Tensor:
        """rel[..., i, o+W] = p_attn[..., i, i+o] (zero where i+o falls outside the sequence)."""
        b, h, length, _ = p_attn.shape
        rel = p_attn.new_zeros(b, h, length, 2 * self.window + 1)  # (B, H, T, 2W+1)
        for o in self._offsets(length):
            start, stop = max(0, -o), length - max(0, o)
            rel[:, :, start:stop, o + self.window] = torch.diagonal(p_attn, offset=o, dim1=-2, dim2=-1)
        return rel


class FFN(nn.Module):
    """Two 'same'-padded convolutions with ReLU between them, masked before each conv."""

    def __init__(self, channels: int, filter_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.conv_1 = nn.Conv1d(channels, filter_channels, kernel_size)
        self.conv_2 = nn.Conv1d(filter_channels, channels, kernel_size)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel_size == 1:
            return x
        return F.pad(x, ((self.kernel_size - 1) // 2, self.kernel_size // 2))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        """x: (B, C, T), x_mask: (B, 1, T) -> (B, C, T)."""
        y = torch.relu(self.conv_1(self._pad(x * x_mask)))  # (B, F, T)
        y = self.conv_2(self._pad(y * x_mask))  # (B, C, T)
        return y * x_mask


class Encoder(nn.Module):
    """Post-norm transformer encoder: relative self-attention + conv FFN, `n_layers` times."""

    def __init__(
        self,
        hidden_channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int,
        window: int = 4,
    ) -> None:
        super().__init__()
        self.n_layers = n_layers
        self.attn_layers = nn.ModuleList(
            MultiHeadAttention(hidden_channels, hidden_channels, n_heads, window=window)
            for _ in range(n_layers)
        )
        self.norm_layers_1 = nn.ModuleList(ChannelLayerNorm(hidden_channels) for _ in range(n_layers))
        self.ffn_layers = nn.ModuleList(
            FFN(hidden_channels, filter_channels, kernel_size) for _ in range(n_layers)
        )
        self.norm_layers_2 = nn.ModuleList(ChannelLayerNorm(hidden_channels) for _ in range(n_layers))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        """x: (B, C, T), x_mask: (B, 1, T) -> (B, C, T)."""
        attn_mask = x_mask.unsqueeze(2) * x_mask.unsqueeze(-1)  # (B, 1, T, T)
        x = x * x_mask
        for i in range(self.n_layers):
            x = self.norm_layers_1[i](x + self.attn_layers[i](x, x, attn_mask))
            x = self.norm_layers_2[i](x + self.ffn_layers[i](x, x_mask))
        return x * x_mask
