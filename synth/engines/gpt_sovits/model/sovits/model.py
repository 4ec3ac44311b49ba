"""SynthesizerTrnV2: semantic codes + phones + reference spectrograms -> waveform (inference only).

Layered so each step can be run and checked on its own:
    style(refer_specs)                  -> ge, the averaged style vector        (1, gin, 1)
    prior(codes, phones, ge, speed)     -> m_p, logs_p, mask                     (B, inter, T')
    flow.reverse(z_p, mask, ge)         -> z                                     (B, inter, T')
    dec(z * mask, ge)                   -> waveform                              (B, 1, T' * hop)
`decode` chains them exactly like the reference `SynthesizerTrn.decode`; `extract_latent` turns SSL
features into semantic codes. The posterior encoder (enc_q) is training-only and absent here.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from synth.engines.gpt_sovits.model.checkpoint import check_fits, load_sovits_checkpoint, load_state_strict
from synth.engines.gpt_sovits.model.sovits.commons import fold_weight_norm, full_mask
from synth.engines.gpt_sovits.model.sovits.config import SovitsConfig
from synth.engines.gpt_sovits.model.sovits.flow import ResidualCouplingFlow
from synth.engines.gpt_sovits.model.sovits.generator import Generator
from synth.engines.gpt_sovits.model.sovits.keymap import sovits_module_key
from synth.engines.gpt_sovits.model.sovits.quantizer import SSL_DIM, ResidualVectorQuantizer
from synth.engines.gpt_sovits.model.sovits.ref_encoder import V2_REF_BINS, MelStyleEncoder
from synth.engines.gpt_sovits.model.sovits.text_encoder import TextEncoder
from synth.engines.gpt_sovits.model.spectrogram import SpectrogramConfig
from synth.errors import SynthesisError

log = logging.getLogger(__name__)


class SynthesizerTrnV2(nn.Module):
    """The SoVITS v2 generator path. Build with `from_checkpoint` (or `build_random_sovits`)."""

    def __init__(self, config: SovitsConfig) -> None:
        super().__init__()
        self.config = config
        self.enc_p = TextEncoder(
            config.inter_channels,
            config.hidden_channels,
            config.filter_channels,
            config.n_heads,
            config.n_layers,
            config.kernel_size,
            config.n_symbols,
        )
        self.dec = Generator(
            config.inter_channels,
            config.resblock,
            config.resblock_kernel_sizes,
            config.resblock_dilation_sizes,
            config.upsample_rates,
            config.upsample_initial_channel,
            config.upsample_kernel_sizes,
            config.gin_channels,
        )
        self.flow = ResidualCouplingFlow(config.inter_channels, config.hidden_channels, config.gin_channels)
        self.ref_enc = MelStyleEncoder(V2_REF_BINS, out_dim=config.gin_channels)
        # 25 Hz codes: the SSL features (50 Hz) are pooled pairwise by a stride-2 convolution.
        stride = 2 if config.semantic_frame_rate == "25hz" else 1
        self.ssl_proj = nn.Conv1d(SSL_DIM, SSL_DIM, stride, stride=stride)
        self.quantizer = ResidualVectorQuantizer()

    # ----------------------------------------------------------------- loading

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> SynthesizerTrnV2:
        """Load an official SoVITS v2 `.pth` file, strictly, into an eval-mode model.

        Raises VoiceError (unreadable file, bad config, missing/unexpected/mis-shaped weights) and
        UnsupportedError (not a v2 model).
        """
        ckpt = load_sovits_checkpoint(path)
        config = SovitsConfig.from_config(ckpt.config, source=ckpt.path)
        check_fits(lambda: cls(config), ckpt.weights, key_map=sovits_module_key, source=ckpt.path)
        model = cls(config)
        model.load_weights(ckpt.weights, source=ckpt.path)
        log.info("loaded SoVITS %s (%s) from %s", ckpt.version, ckpt.info, ckpt.path)
        return model.to(device=device, dtype=dtype).eval()

    def load_weights(self, weights: Mapping[str, torch.Tensor], source: str | Path | None = None) -> None:
        """Strictly load checkpoint-keyed tensors, then fold weight norm into plain weights.

        Must be called on a freshly built (unfolded) model. Raises VoiceError on any key or shape
        mismatch.
        """
        load_state_strict(self, weights, key_map=sovits_module_key, source=source)
        fold_weight_norm(self)

    @property
    def spectrogram_config(self) -> SpectrogramConfig:
        """The STFT geometry this model's reference spectrograms must use (from its config)."""
        c = self.config
        return SpectrogramConfig(c.filter_length, c.hop_length, c.win_length, c.sampling_rate)

    @property
    def sampling_rate(self) -> int:
        """Output (and reference) sample rate in Hz."""
        return self.config.sampling_rate

    # ----------------------------------------------------------------- layers of decode

    @property
    def _device_dtype(self) -> tuple[torch.device, torch.dtype]:
        weight = self.ssl_proj.weight
        return weight.device, weight.dtype

    @torch.no_grad()
    def style(self, refer_specs: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
        """Style vector ge (1, gin, 1): the mean of each reference spectrogram's vector.

        refer_specs: linear spectrograms (1, filter_length//2+1, frames), see spectrogram.py.
        Only the lowest 704 bins are used (v2). Raises ValueError for an empty list or bad shapes.
        """
        specs = [refer_specs] if isinstance(refer_specs, torch.Tensor) else list(refer_specs)
        if not specs:
            raise ValueError("at least one reference spectrogram is needed")
        device, dtype = self._device_dtype
        ges = []
        for spec in specs:
            if spec.dim() != 3 or spec.shape[1] < V2_REF_BINS or spec.shape[2] == 0:
                raise ValueError(
                    f"reference spectrogram must be (B, >={V2_REF_BINS}, T>0), got {tuple(spec.shape)}"
                )
            spec = spec.to(device=device, dtype=dtype)
            mask = full_mask(spec.shape[0], spec.shape[2], spec)  # (B, 1, T)
            ges.append(self.ref_enc(spec[:, :V2_REF_BINS] * mask, mask))  # (B, gin, 1)
        return torch.stack(ges, 0).mean(0)  # (B, gin, 1)

    @torch.no_grad()
    def prior(
        self, codes: torch.Tensor, phones: torch.Tensor, ge: torch.Tensor, speed: float = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Prior mean/log-std and frame mask from codes (n_q, B, T) and phone ids (B, N).

        Returns m_p, logs_p (B, inter, T') and mask (B, 1, T'); T' = 2T (25 Hz codes) at speed 1,
        int(2T / speed) + 1 otherwise.
        """
        device, dtype = self._device_dtype
        codes, phones = codes.to(device), phones.to(device)
        quantized = self.quantizer.decode(codes).to(dtype)  # (B, 768, T)
        if self.config.semantic_frame_rate == "25hz":
            quantized = quantized.repeat_interleave(2, dim=-1)  # nearest 25 -> 50 Hz: (B, 768, 2T)
        content_mask = full_mask(quantized.shape[0], quantized.shape[2], quantized)  # (B, 1, 2T)
        phone_mask = full_mask(phones.shape[0], phones.shape[1], quantized)  # (B, 1, N)
        return self.enc_p(quantized, content_mask, phones, phone_mask, ge, speed)

    @torch.no_grad()
    def decode(
        self,
        codes: torch.Tensor,
        text_phone_ids: torch.Tensor,
        refer_specs: Sequence[torch.Tensor] | torch.Tensor,
        noise_scale: float = 0.5,
        speed: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Waveform (B, 1, T' * prod(upsample_rates)) in [-1, 1] at config.sampling_rate.

        codes: (n_q=1, B, T) semantic tokens (the GPT's output as `pred[None]`); text_phone_ids:
        (B, N) v2 phone ids; refer_specs: list of reference spectrograms (their style vectors are
        averaged). noise_scale=0 is deterministic; otherwise the prior noise is drawn from
        `generator` (on the model's device) or the global RNG. speed > 1 speaks faster.
        Raises SynthesisError when there are no codes or phones, ValueError for malformed shapes or
        a non-positive speed.
        """
        if codes.dim() != 3 or text_phone_ids.dim() != 2 or codes.shape[1] != text_phone_ids.shape[0]:
            raise ValueError(
                "expected codes (n_q, B, T) and phone ids (B, N), "
                f"got {tuple(codes.shape)} and {tuple(text_phone_ids.shape)}"
            )
        if codes.shape[2] == 0 or text_phone_ids.shape[1] == 0:
            raise SynthesisError("nothing to decode: no semantic tokens or no phones")
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed}")
        ge = self.style(refer_specs)  # (1, gin, 1)
        m_p, logs_p, mask = self.prior(codes, text_phone_ids, ge, speed)  # (B, inter, T')
        z_p = m_p
        if noise_scale != 0:
            noise = torch.randn(m_p.shape, generator=generator, device=m_p.device, dtype=m_p.dtype)
            z_p = m_p + noise * torch.exp(logs_p) * noise_scale
        z = self.flow.reverse(z_p, mask, ge)  # (B, inter, T')
        return self.dec(z * mask, ge)  # (B, 1, samples)

    @torch.no_grad()
    def extract_latent(self, ssl: torch.Tensor) -> torch.Tensor:
        """Semantic codes (B, n_q=1, T_ssl // 2) of SSL (cnhubert) features (B, 768, T_ssl) at 50 Hz.

        Computed in float32 whatever the model dtype. Raises ValueError for malformed shapes.
        """
        if ssl.dim() != 3 or ssl.shape[1] != SSL_DIM:
            raise ValueError(f"ssl features must be (B, {SSL_DIM}, T), got {tuple(ssl.shape)}")
        device, _ = self._device_dtype
        # float32 even for a half-precision model: bf16 rounding here flips nearest-code decisions.
        proj = self.ssl_proj
        bias = None if proj.bias is None else proj.bias.float()
        x = ssl.to(device=device, dtype=torch.float32)
        projected = F.conv1d(x, proj.weight.float(), bias, stride=proj.stride)  # (B, 768, T // stride)
        return self.quantizer.encode(projected).transpose(0, 1)  # (B, n_q, T // stride)


def build_random_sovits(
    config: Mapping | SovitsConfig, seed: int = 0, codebook_scale: float = 0.6
) -> SynthesizerTrnV2:
    """A full-size model with random (PyTorch default-initialised) weights, for benchmarks only.

    `config` is a SoVITS config dict (e.g. keys_full_v2.json's `config_default_json`) or a
    SovitsConfig. The global RNG is left untouched. Raises VoiceError/UnsupportedError for a bad
    config.
    """
    cfg = config if isinstance(config, SovitsConfig) else SovitsConfig.from_config(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SynthesizerTrnV2(cfg)
        for book in model.quantizer.codebooks:
            book.embed.normal_(0.0, codebook_scale)
    fold_weight_norm(model)
    return model.eval()
