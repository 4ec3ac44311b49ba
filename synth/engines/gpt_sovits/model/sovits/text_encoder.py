"""The prior encoder enc_p: semantic content + phones + style -> prior mean and log-std per frame.

content (quantized SSL vectors at 50 Hz) -> 1x1 projection -> self-attention encoder;
phones -> embedding -> self-attention encoder; MRTE lets content attend to phones and adds the style
vector; a second encoder refines it; `speed` resamples the frames linearly (fewer frames = faster
speech) before the final 1x1 projection to (mean, log-std).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from synth.engines.gpt_sovits.model.sovits.attentions import Encoder
from synth.engines.gpt_sovits.model.sovits.mrte import MRTE
from synth.engines.gpt_sovits.model.sovits.quantizer import SSL_DIM


class TextEncoder(nn.Module):
    """enc_p of SynthesizerTrn v2."""

    def __init__(
        self,
        out_channels: int,
        hidden_channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int,
        n_symbols: int,
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.ssl_proj = nn.Conv1d(SSL_DIM, hidden_channels, 1)
        # The content encoders are half as deep as the phone encoder (integer division, as trained).
        self.encoder_ssl = Encoder(hidden_channels, filter_channels, n_heads, n_layers // 2, kernel_size)
        self.encoder_text = Encoder(hidden_channels, filter_channels, n_heads, n_layers, kernel_size)
        self.text_embedding = nn.Embedding(n_symbols, hidden_channels)
        self.mrte = MRTE()
        self.encoder2 = Encoder(hidden_channels, filter_channels, n_heads, n_layers // 2, kernel_size)
        self.proj = nn.Conv1d(hidden_channels, out_channels * 2, 1)

    def forward(
        self,
        content: torch.Tensor,
        content_mask: torch.Tensor,
        phones: torch.Tensor,
        phone_mask: torch.Tensor,
        ge: torch.Tensor,
        speed: float = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Prior statistics.

        content: (B, 768, Ty) quantized SSL frames; content_mask: (B, 1, Ty);
        phones: (B, Tx) int64 ids; phone_mask: (B, 1, Tx); ge: (B or 1, 512, 1).
        Returns m_p, logs_p: (B, out, Ty') and the frame mask (B, 1, Ty'), where
        Ty' = Ty when speed == 1, else int(Ty / speed) + 1.
        """
        y = self.ssl_proj(content * content_mask) * content_mask  # (B, H, Ty)
        y = self.encoder_ssl(y * content_mask, content_mask)
        text = self.text_embedding(phones).transpose(1, 2)  # (B, H, Tx)
        text = self.encoder_text(text * phone_mask, phone_mask)
        y = self.mrte(y, content_mask, text, phone_mask, ge)  # (B, H, Ty)
        y = self.encoder2(y * content_mask, content_mask)
        mask = content_mask
        if speed != 1:
            frames = int(y.shape[-1] / speed) + 1
            y = F.interpolate(y, size=frames, mode="linear")  # (B, H, Ty')
            mask = F.interpolate(mask, size=frames, mode="nearest")  # (B, 1, Ty')
        stats = self.proj(y) * mask  # (B, 2*out, Ty')
        m_p, logs_p = torch.split(stats, self.out_channels, dim=1)
        return m_p, logs_p, mask
