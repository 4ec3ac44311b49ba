"""SoVITS v2 hyper-parameters, read from the config saved inside the weight file.

Only what inference needs is kept. Training-only fields (dropout, segment size, speakers, quantizer
freezing, posterior encoder depth) are ignored. The v2 architecture also hard-codes some sizes
regardless of the config (MRTE 192/512, flow depth, the 704 reference bins); `validate` refuses a
config that contradicts them, since such weights could never have been trained by the reference.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.errors import UnsupportedError
from synth.engines.gpt_sovits.model.sovits.mrte import MRTE_CONTENT_CHANNELS, MRTE_HIDDEN
from synth.errors import VoiceError

# Number of phone symbols of the v2 symbol table (text/symbols2.py); v1 has 322.
V2_SYMBOL_COUNT = 732
_FRAME_RATES = ("25hz", "50hz")
_MAX_SIZE = 16384  # channels, kernels, layers, FFT sizes: the official v2 model stays under 2048
_MAX_RATE = 192_000


def _ints(value: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in value)


def _int_rows(value: Any) -> tuple[tuple[int, ...], ...]:
    return tuple(_ints(row) for row in value)


@dataclass(frozen=True)
class SovitsConfig:
    """Everything needed to build SynthesizerTrnV2 and its reference spectrogram."""

    inter_channels: int
    hidden_channels: int
    filter_channels: int
    n_heads: int
    n_layers: int
    kernel_size: int
    resblock: str
    resblock_kernel_sizes: tuple[int, ...]
    resblock_dilation_sizes: tuple[tuple[int, ...], ...]
    upsample_rates: tuple[int, ...]
    upsample_initial_channel: int
    upsample_kernel_sizes: tuple[int, ...]
    gin_channels: int
    semantic_frame_rate: str
    filter_length: int
    hop_length: int
    win_length: int
    sampling_rate: int
    n_symbols: int = V2_SYMBOL_COUNT
    version: str = "v2"

    @property
    def samples_per_frame(self) -> int:
        """Output samples per 50 Hz latent frame (= prod(upsample_rates), normally hop_length)."""
        return math.prod(self.upsample_rates)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], source: str | Path | None = None) -> SovitsConfig:
        """Build from the checkpoint's nested config dict (`config["model"]`, `config["data"]`).

        Raises VoiceError when a required entry is missing or malformed, UnsupportedError when the
        config describes something other than a SoVITS v2 model.
        """
        model = config.get("model")
        data = config.get("data")
        if not isinstance(model, Mapping) or not isinstance(data, Mapping):
            raise VoiceError("SoVITS config lacks its 'model' or 'data' section", source)
        version = str(model.get("version", config.get("version", "v2")))

        def get(section: Mapping[str, Any], name: str, convert: Callable[[Any], Any]) -> Any:
            if name not in section:
                raise VoiceError(f"SoVITS config lacks '{name}'", source)
            value = section[name]
            try:
                return convert(value)
            except (TypeError, ValueError) as exc:
                raise VoiceError(f"SoVITS config entry '{name}' is malformed: {value!r}", source) from exc

        cfg = cls(
            inter_channels=get(model, "inter_channels", int),
            hidden_channels=get(model, "hidden_channels", int),
            filter_channels=get(model, "filter_channels", int),
            n_heads=get(model, "n_heads", int),
            n_layers=get(model, "n_layers", int),
            kernel_size=get(model, "kernel_size", int),
            resblock=get(model, "resblock", str),
            resblock_kernel_sizes=get(model, "resblock_kernel_sizes", _ints),
            resblock_dilation_sizes=get(model, "resblock_dilation_sizes", _int_rows),
            upsample_rates=get(model, "upsample_rates", _ints),
            upsample_initial_channel=get(model, "upsample_initial_channel", int),
            upsample_kernel_sizes=get(model, "upsample_kernel_sizes", _ints),
            gin_channels=get(model, "gin_channels", int),
            semantic_frame_rate=get(model, "semantic_frame_rate", str),
            filter_length=get(data, "filter_length", int),
            hop_length=get(data, "hop_length", int),
            win_length=get(data, "win_length", int),
            sampling_rate=get(data, "sampling_rate", int),
            version=version,
        )
        cfg.validate(source)
        return cfg

    def _check_ranges(self, source: str | Path | None) -> None:
        """Every size positive and sane before any division or allocation uses it (a damaged or
        hostile file: zero heads, negative channels, a billion-wide layer)."""
        sizes = {"inter_channels": self.inter_channels, "hidden_channels": self.hidden_channels,
                 "filter_channels": self.filter_channels, "n_heads": self.n_heads, "n_layers": self.n_layers,
                 "kernel_size": self.kernel_size, "upsample_initial_channel": self.upsample_initial_channel,
                 "gin_channels": self.gin_channels, "filter_length": self.filter_length,
                 "hop_length": self.hop_length, "win_length": self.win_length, "sampling_rate": self.sampling_rate}
        listed = {"resblock_kernel_sizes": self.resblock_kernel_sizes, "upsample_rates": self.upsample_rates,
                  "upsample_kernel_sizes": self.upsample_kernel_sizes,
                  "resblock_dilation_sizes": tuple(v for row in self.resblock_dilation_sizes for v in row)}
        for name, value in [*sizes.items(), *((n, v) for n, vs in listed.items() for v in vs)]:
            high = _MAX_RATE if name == "sampling_rate" else _MAX_SIZE
            if not 1 <= value <= high:
                raise VoiceError(f"SoVITS config {name}={value} is outside 1..{high:,}", source)
        if not all(listed.values()) or len(self.upsample_rates) > 8:
            raise VoiceError("SoVITS config: decoder lists must be non-empty (at most 8 upsampling stages)", source)

    def validate(self, source: str | Path | None = None) -> None:
        """Raise UnsupportedError/VoiceError when the values cannot describe a v2 model."""
        if self.version != "v2":
            raise UnsupportedError(f"SoVITS config is version {self.version}; only v2 is supported", source)
        self._check_ranges(source)
        if self.hidden_channels != MRTE_CONTENT_CHANNELS or self.gin_channels != MRTE_HIDDEN:
            raise UnsupportedError(
                f"SoVITS v2 needs hidden_channels={MRTE_CONTENT_CHANNELS} and gin_channels={MRTE_HIDDEN} "
                f"(fixed by its MRTE), config has {self.hidden_channels}/{self.gin_channels}",
                source,
            )
        if self.semantic_frame_rate not in _FRAME_RATES:
            raise VoiceError(
                f"SoVITS semantic_frame_rate must be one of {_FRAME_RATES}, got {self.semantic_frame_rate!r}", source
            )
        if self.hidden_channels % self.n_heads or self.inter_channels % 2:
            raise VoiceError(
                "SoVITS config: hidden_channels must divide by n_heads and inter_channels be even", source
            )
        upsample_ok = len(self.upsample_rates) == len(self.upsample_kernel_sizes)
        if not upsample_ok or len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes):
            raise VoiceError("SoVITS config: decoder list lengths disagree", source)
        if self.win_length > self.filter_length or self.hop_length <= 0:
            raise VoiceError("SoVITS config: need 0 < hop_length and win_length <= filter_length", source)
