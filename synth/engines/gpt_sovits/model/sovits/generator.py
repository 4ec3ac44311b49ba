"""HiFi-GAN (v1 style) waveform generator conditioned on the style vector.

Latent frames (B, inter, T) -> waveform (B, 1, T * prod(upsample_rates)). Upsampling layers and
residual blocks use weight-normed convolutions (folded into plain weights after loading).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ingest.errors import UnsupportedError
from synth.engines.gpt_sovits.model.sovits.commons import LRELU_SLOPE, with_weight_norm
from synth.engines.gpt_sovits.model.sovits.cpu_conv import conv_rows, from_rows, to_rows

Conv = Callable[[nn.Module, torch.Tensor], torch.Tensor]
CPU_ROWS = True  # the channels-last 2-D layout on a CPU (cpu_conv.py); False: plain 1-D convolutions


def _call(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return module(x)


def _same_padding(kernel_size: int, dilation: int) -> int:
    return (kernel_size * dilation - dilation) // 2


class ResBlock1(nn.Module):
    """Three (dilated conv, conv) pairs, each a residual branch with leaky-ReLU pre-activations."""

    def __init__(self, channels: int, kernel_size: int, dilations: Sequence[int]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            with_weight_norm(
                nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=_same_padding(kernel_size, d))
            )
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            with_weight_norm(nn.Conv1d(channels, channels, kernel_size, padding=_same_padding(kernel_size, 1)))
            for _ in dilations
        )

    def forward(self, x: torch.Tensor, conv: Conv = _call) -> torch.Tensor:
        """x: (B, C, T) -> (B, C, T), or (B, C, 1, T) channels-last with `conv=conv_rows`."""
        for c1, c2 in zip(self.convs1, self.convs2):
            # In place where a buffer is fresh: the same values, two of a pair's five allocations fewer.
            xt = conv(c2, F.leaky_relu(conv(c1, F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE, inplace=True))
            x = xt.add_(x)
        return x


class Generator(nn.Module):
    """conv_pre (+ style) -> [leaky-ReLU, transposed conv, mean of ResBlocks] x N -> conv_post -> tanh."""

    def __init__(
        self,
        in_channels: int,
        resblock: str,
        resblock_kernel_sizes: Sequence[int],
        resblock_dilation_sizes: Sequence[Sequence[int]],
        upsample_rates: Sequence[int],
        upsample_initial_channel: int,
        upsample_kernel_sizes: Sequence[int],
        gin_channels: int,
    ) -> None:
        super().__init__()
        if str(resblock) != "1":
            raise UnsupportedError(f"SoVITS decoder resblock type {resblock!r} is not supported (only '1')")
        if len(upsample_rates) != len(upsample_kernel_sizes):
            raise ValueError("upsample_rates and upsample_kernel_sizes differ in length")
        self.num_kernels = len(resblock_kernel_sizes)
        self.conv_pre = nn.Conv1d(in_channels, upsample_initial_channel, 7, 1, padding=3)
        self.cond = nn.Conv1d(gin_channels, upsample_initial_channel, 1)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        ch = upsample_initial_channel
        for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes)):
            ch_in, ch = upsample_initial_channel // (2**i), upsample_initial_channel // (2 ** (i + 1))
            self.ups.append(with_weight_norm(nn.ConvTranspose1d(ch_in, ch, k, u, padding=(k - u) // 2)))
            for k_res, dil in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(ResBlock1(ch, k_res, dil))
        self.conv_post = nn.Conv1d(ch, 1, 7, 1, padding=3, bias=False)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """x: (B, inter, T), g: (B, gin, 1) -> (B, 1, T * prod(upsample_rates)).

        On a CPU the upsampling stack runs in the channels-last 2-D layout (see cpu_conv.py).
        """
        x = self.conv_pre(x) + self.cond(g)  # (B, C0, T)
        rows = CPU_ROWS and x.device.type == "cpu"
        conv: Conv = conv_rows if rows else _call
        if rows:
            x = to_rows(x)  # (B, C0, 1, T)
        for i, up in enumerate(self.ups):
            x = conv(up, F.leaky_relu(x, LRELU_SLOPE))  # (B, C_i, T * u_0..u_i)
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            acc = blocks[0](x, conv)
            for block in blocks[1:]:
                acc.add_(block(x, conv))
            x = acc.div_(self.num_kernels)
        x = conv(self.conv_post, F.leaky_relu(x))  # default slope 0.01 here, as trained
        return torch.tanh(from_rows(x) if rows else x)  # (B, 1, samples)
