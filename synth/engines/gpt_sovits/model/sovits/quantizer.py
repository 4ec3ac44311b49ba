"""Inference half of the residual vector quantizer that turns SSL features into semantic codes.

Only the codebooks matter at inference: encode = index of the nearest codebook vector (squared
Euclidean distance), decode = codebook lookup, residual over the quantizer stages. The EMA training
statistics stored beside the codebook (`inited`, `cluster_size`, `embed_avg`) are not needed; the
checkpoint key map drops exactly those names.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

SSL_DIM = 768
CODEBOOK_SIZE = 1024


class Codebook(nn.Module):
    """One codebook of `size` vectors of `dim` channels."""

    def __init__(self, dim: int, size: int) -> None:
        super().__init__()
        self.register_buffer("embed", torch.zeros(size, dim))  # (K, D)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, D) -> (N,) int64 index of the nearest vector.

        Computed in float32 even for a half-precision model: |x|^2 over 768 channels overflows fp16.
        The score -(|x|^2 - 2 x.e + |e|^2) is the reference's formula; argmax of it = argmin distance.
        """
        xf = x.float()  # (N, D)
        ef = self.embed.float()  # (K, D)
        score = -(xf.pow(2).sum(1, keepdim=True) - 2 * xf @ ef.t() + ef.pow(2).sum(1).unsqueeze(0))  # (N, K)
        return score.argmax(dim=-1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: (...) int -> (..., D)."""
        return F.embedding(codes, self.embed)


class ResidualVectorQuantizer(nn.Module):
    """`n_q` residual stages (GPT-SoVITS v2 uses one: dim 768, 1024 entries)."""

    def __init__(self, dim: int = SSL_DIM, size: int = CODEBOOK_SIZE, n_q: int = 1) -> None:
        super().__init__()
        self.codebooks = nn.ModuleList(Codebook(dim, size) for _ in range(n_q))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, D, T) -> codes (n_q, B, T) int64."""
        b, d, t = x.shape
        residual = x.transpose(1, 2).reshape(b * t, d)  # (B*T, D)
        all_codes = []
        for book in self.codebooks:
            codes = book.encode(residual)  # (B*T,)
            residual = residual - book.decode(codes)
            all_codes.append(codes.view(b, t))
        return torch.stack(all_codes)  # (n_q, B, T)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: (n_q', B, T) with n_q' <= n_q -> (B, D, T), the sum of the stages' vectors."""
        if codes.dim() != 3 or codes.shape[0] > len(self.codebooks):
            raise ValueError(f"codes must be (n_q<={len(self.codebooks)}, B, T), got {tuple(codes.shape)}")
        out = None
        for book, stage in zip(self.codebooks, codes):
            vec = book.decode(stage)  # (B, T, D)
            out = vec if out is None else out + vec
        return out.transpose(1, 2)  # (B, D, T)
