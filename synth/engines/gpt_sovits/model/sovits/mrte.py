"""MRTE: the content frames attend to the phone sequence, and the speaker style vector is added.

Sizes are fixed by the v2 architecture (the reference builds it with constant defaults regardless of
the model config): content/text channels 192, hidden 512, 4 heads; hence gin_channels must be 512.
"""
from __future__ import annotations

import torch
from torch import nn

from synth.engines.gpt_sovits.model.sovits.attentions import MultiHeadAttention

MRTE_CONTENT_CHANNELS = 192
MRTE_HIDDEN = 512
MRTE_HEADS = 4


class MRTE(nn.Module):
    """Multi-reference timbre encoder: cross attention (content -> text) plus the style vector."""

    def __init__(
        self,
        content_channels: int = MRTE_CONTENT_CHANNELS,
        hidden: int = MRTE_HIDDEN,
        out_channels: int = MRTE_CONTENT_CHANNELS,
        n_heads: int = MRTE_HEADS,
    ) -> None:
        super().__init__()
        self.cross_attention = MultiHeadAttention(hidden, hidden, n_heads, window=None)
        self.c_pre = nn.Conv1d(content_channels, hidden, 1)
        self.text_pre = nn.Conv1d(content_channels, hidden, 1)
        self.c_post = nn.Conv1d(hidden, out_channels, 1)

    def forward(
        self,
        content: torch.Tensor,
        content_mask: torch.Tensor,
        text: torch.Tensor,
        text_mask: torch.Tensor,
        ge: torch.Tensor,
    ) -> torch.Tensor:
        """content: (B, 192, Ty), text: (B, 192, Tx), masks (B, 1, T*), ge: (B, 512, 1) -> (B, 192, Ty)."""
        attn_mask = text_mask.unsqueeze(2) * content_mask.unsqueeze(-1)  # (B, 1, Ty, Tx)
        c = self.c_pre(content * content_mask)  # (B, 512, Ty)
        t = self.text_pre(text * text_mask)  # (B, 512, Tx)
        x = self.cross_attention(c * content_mask, t * text_mask, attn_mask) + c + ge  # (B, 512, Ty)
        return self.c_post(x * content_mask)  # (B, 192, Ty)
