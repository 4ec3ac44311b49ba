"""The normalizing flow between the prior (enc_p) and the decoder latent: mean-only affine couplings.

At inference it runs in reverse: for each coupling (last first) the channel halves are swapped back
and the predicted shift is subtracted. v2 hard-codes 4 couplings, each with a 4-layer WaveNet of
kernel 5 and dilation rate 1, conditioned on the style vector.
"""
from __future__ import annotations

import torch
from torch import nn

from synth.engines.gpt_sovits.model.sovits.commons import gated_tanh, with_weight_norm

FLOW_COUPLINGS = 4
FLOW_WN_LAYERS = 4
FLOW_KERNEL = 5
FLOW_DILATION_RATE = 1


class WaveNet(nn.Module):
    """Non-causal gated WaveNet stack with global conditioning (weight-normed convolutions)."""

    def __init__(
        self, hidden: int, kernel_size: int, dilation_rate: int, n_layers: int, gin_channels: int
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"WaveNet kernel size must be odd, got {kernel_size}")
        self.hidden = hidden
        self.n_layers = n_layers
        self.cond_layer = with_weight_norm(nn.Conv1d(gin_channels, 2 * hidden * n_layers, 1))
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        for i in range(n_layers):
            dilation = dilation_rate**i
            padding = (kernel_size * dilation - dilation) // 2
            self.in_layers.append(
                with_weight_norm(nn.Conv1d(hidden, 2 * hidden, kernel_size, dilation=dilation, padding=padding))
            )
            # The last layer only feeds the skip sum, so it has no residual half.
            out = 2 * hidden if i < n_layers - 1 else hidden
            self.res_skip_layers.append(with_weight_norm(nn.Conv1d(hidden, out, 1)))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """x: (B, H, T), x_mask: (B, 1, T), g: (B, gin, 1) -> (B, H, T)."""
        cond = self.cond_layer(g)  # (B, 2H*L, 1)
        skip = torch.zeros_like(x)
        two_h = 2 * self.hidden
        for i, (in_layer, res_skip) in enumerate(zip(self.in_layers, self.res_skip_layers)):
            acts = gated_tanh(in_layer(x), cond[:, i * two_h : (i + 1) * two_h], self.hidden)  # (B, H, T)
            rs = res_skip(acts)
            if i < self.n_layers - 1:
                x = (x + rs[:, : self.hidden]) * x_mask
                skip = skip + rs[:, self.hidden :]
            else:
                skip = skip + rs
        return skip * x_mask


class MeanOnlyCoupling(nn.Module):
    """x1 += shift(x0) going forward; inference (reverse) subtracts it."""

    def __init__(self, channels: int, hidden: int, gin_channels: int) -> None:
        super().__init__()
        self.half = channels // 2
        self.pre = nn.Conv1d(self.half, hidden, 1)
        self.enc = WaveNet(hidden, FLOW_KERNEL, FLOW_DILATION_RATE, FLOW_WN_LAYERS, gin_channels)
        self.post = nn.Conv1d(hidden, self.half, 1)

    def reverse(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """x: (B, C, T) -> (B, C, T)."""
        x0, x1 = x[:, : self.half], x[:, self.half :]
        h = self.enc(self.pre(x0) * x_mask, x_mask, g)  # (B, hidden, T)
        shift = self.post(h) * x_mask  # (B, C/2, T)
        return torch.cat([x0, (x1 - shift) * x_mask], dim=1)


class ResidualCouplingFlow(nn.Module):
    """Couplings alternating with channel flips; only the reverse direction is implemented."""

    def __init__(
        self, channels: int, hidden: int, gin_channels: int, n_couplings: int = FLOW_COUPLINGS
    ) -> None:
        super().__init__()
        if channels % 2:
            raise ValueError(f"flow channels must be even, got {channels}")
        self.couplings = nn.ModuleList(
            MeanOnlyCoupling(channels, hidden, gin_channels) for _ in range(n_couplings)
        )

    def reverse(self, z_p: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Prior sample z_p (B, C, T) -> decoder latent z (B, C, T)."""
        x = z_p
        for coupling in reversed(self.couplings):
            x = coupling.reverse(torch.flip(x, [1]), x_mask, g)
        return x
