"""The GPT-SoVITS v2 text-to-semantic model (the autoregressive "GPT" half), tensors only.

It reads phone ids plus 1024-dim BERT features and predicts 25 Hz semantic tokens one at a time.
Layout and parameter names follow the official checkpoints exactly (so loading is a strict identity
key map): a phone embedding plus a BERT projection, a sine positional table scaled by a learned
`alpha`, a semantic-token embedding with its own positional `alpha`, a stack of post-norm transformer
layers (`h.layers.N.*`, fused QKV projection) and a bias-free `ar_predict_layer` over the semantic
vocabulary, whose last entry is EOS.

Decoding loops live in `t2s_decode.py`; this module offers what they need: `embed_text`,
`embed_semantic` and `run`, which feeds new positions after what a `KVCache` holds (the whole
prefix on the first call, one token per call afterwards) and returns the last position's logits.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from synth.engines.gpt_sovits.model.checkpoint import GptCheckpoint, check_fits, load_state_strict
from synth.engines.gpt_sovits.model.t2s_cache import KVCache
from synth.engines.gpt_sovits.model.t2s_cpu import PackedLayer, attend_one, decode_step, pack_weight, packed_linear
from synth.engines.gpt_sovits.model.t2s_ort import OrtStep, OrtStepFailed, build_step
from synth.errors import VoiceError

log = logging.getLogger(__name__)

BERT_DIM = 1024  # width of the BERT features the frontend produces (fixed in the reference)
_LAYER_NORM_EPS = 1e-5


# Sane bounds for each hyper-parameter (the official v2 model: 1025 tokens, 732 phones, 512 wide,
# 16 heads, 24 layers); a value outside them is a damaged or hostile file, refused before use.
_T2S_RANGES = {"vocab_size": (2, 1 << 20), "phoneme_vocab_size": (1, 1 << 20), "embedding_dim": (1, 16384),
               "hidden_dim": (1, 16384), "num_heads": (1, 256), "num_layers": (1, 256), "eos": (1, 1 << 20)}


@dataclass(frozen=True)
class T2SConfig:
    """Hyper-parameters of the text-to-semantic model, read from a checkpoint's `config["model"]`."""

    vocab_size: int  # semantic tokens + EOS
    phoneme_vocab_size: int
    embedding_dim: int
    hidden_dim: int
    num_heads: int
    num_layers: int
    eos: int

    @property
    def ffn_dim(self) -> int:
        # The reference builds its feed-forward layers as 4 * hidden_dim and ignores the saved
        # `linear_units`; the checkpoint shapes follow the former.
        return 4 * self.hidden_dim

    @classmethod
    def from_checkpoint_config(cls, model_cfg: Mapping[str, object]) -> T2SConfig:
        """Build from `config["model"]`; raises VoiceError when a key is missing or inconsistent."""
        names = {
            "vocab_size": "vocab_size",
            "phoneme_vocab_size": "phoneme_vocab_size",
            "embedding_dim": "embedding_dim",
            "hidden_dim": "hidden_dim",
            "num_heads": "head",
            "num_layers": "n_layer",
            "eos": "EOS",
        }
        missing = [saved for saved in names.values() if saved not in model_cfg]
        if missing:
            raise VoiceError(f"GPT config lacks {', '.join(missing)}")
        try:
            values = {ours: int(model_cfg[saved]) for ours, saved in names.items()}  # type: ignore
        except (TypeError, ValueError) as exc:
            raise VoiceError(f"GPT config has a non-integer hyper-parameter ({exc})") from exc
        cfg = cls(**values)
        for name, value in values.items():  # before any division or allocation uses them
            low, high = _T2S_RANGES[name]
            if not low <= value <= high:
                raise VoiceError(f"GPT config {names[name]}={value} is outside {low}..{high:,}")
        if cfg.eos != cfg.vocab_size - 1:
            raise VoiceError(f"GPT config EOS={cfg.eos} is not the last token ({cfg.vocab_size - 1})")
        if cfg.embedding_dim != cfg.hidden_dim:
            raise VoiceError("GPT config embedding_dim and hidden_dim differ; the model needs them equal")
        if cfg.hidden_dim % cfg.num_heads:
            raise VoiceError(f"GPT hidden_dim {cfg.hidden_dim} is not divisible by head={cfg.num_heads}")
        return cfg


def sine_table(length: int, dim: int) -> torch.Tensor:
    """Sinusoidal positions (length, dim): even columns sin(p * w_i), odd columns cos(p * w_i).

    Computed in float32 like the reference and cast by the caller; w_i = 10000^(-2i/dim).
    """
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)  # (L, 1)
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * -(math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq)
    return table


class TokenEmbedding(nn.Module):
    """Plain embedding, nested as `word_embeddings` to match the checkpoint key names."""

    def __init__(self, vocab: int, dim: int) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.word_embeddings(ids)


class SinePosition(nn.Module):
    """Adds `alpha * sine_table[position]`; `alpha` is the only learned parameter.

    The table is a non-persistent buffer (never saved) grown on demand, so long decodes never index
    past its end.
    """

    def __init__(self, dim: int, initial_length: int = 4000) -> None:
        super().__init__()
        self.dim = dim
        self.alpha = nn.Parameter(torch.ones(1))
        self.register_buffer("table", sine_table(initial_length, dim), persistent=False)

    def _ensure(self, length: int) -> torch.Tensor:
        if self.table.shape[0] < length:
            grown = sine_table(max(length, 2 * self.table.shape[0]), self.dim)
            self.table = grown.to(device=self.alpha.device, dtype=self.alpha.dtype)
        return self.table

    def forward(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        # x: (B, T, D) -> (B, T, D), positions start .. start+T-1
        table = self._ensure(start + x.shape[1])
        return x + self.alpha * table[start : start + x.shape[1]].to(dtype=x.dtype)


class Linear(nn.Linear):
    """`nn.Linear` that may carry a oneDNN-packed copy of its weight for CPU decoding steps
    (t2s_cpu.py; a plain attribute, so the state dict and the checkpoint keys are unchanged)."""

    packed: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return packed_linear(x, self.weight, self.bias, self.packed)


class SelfAttention(nn.Module):
    """Multi-head self-attention with a fused QKV projection (`in_proj_*`) as in the checkpoints."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.in_proj_packed: torch.Tensor | None = None  # see t2s_cpu.py
        self.out_proj = Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(
        self, x: torch.Tensor, cache: KVCache, layer: int, allowed: torch.Tensor | None
    ) -> torch.Tensor:
        # x: (B, T, D); allowed: bool (B, 1, T, S) with True = may attend, None = attend to all, or
        # (CPU decoding step, T = 1) a float bias (B, 1, 1, S) of 0 / -inf built once by `run`
        bsz, t, dim = x.shape
        qkv = packed_linear(x, self.in_proj_weight, self.in_proj_bias, self.in_proj_packed)
        q, k, v = qkv.chunk(3, dim=-1)  # (B, T, D) each
        head_dim = dim // self.heads
        q = q.view(bsz, t, self.heads, head_dim).transpose(1, 2)  # (B, H, T, Dh)
        k = k.view(bsz, t, self.heads, head_dim).transpose(1, 2)
        v = v.view(bsz, t, self.heads, head_dim).transpose(1, 2)
        k_all, v_all = cache.write(layer, k, v)  # (B, H, S, Dh), S = cached + T
        if allowed is not None and allowed.dtype != torch.bool and x.device.type == "cpu":  # see `run`
            out = attend_one(q, k_all, v_all, allowed)  # (B, H, 1, Dh)
        else:
            out = F.scaled_dot_product_attention(q, k_all, v_all, attn_mask=allowed)  # (B, H, T, Dh)
        out = out.transpose(1, 2).reshape(bsz, t, dim)  # (B, T, D)
        return self.out_proj(out)


class TransformerLayer(nn.Module):
    """Post-norm layer: x = LN1(x + attn(x)); x = LN2(x + W2 relu(W1 x))."""

    def __init__(self, dim: int, heads: int, ffn_dim: int) -> None:
        super().__init__()
        self.self_attn = SelfAttention(dim, heads)
        self.linear1 = Linear(dim, ffn_dim)
        self.linear2 = Linear(ffn_dim, dim)
        self.norm1 = nn.LayerNorm(dim, eps=_LAYER_NORM_EPS)
        self.norm2 = nn.LayerNorm(dim, eps=_LAYER_NORM_EPS)

    def forward(
        self, x: torch.Tensor, cache: KVCache, layer: int, allowed: torch.Tensor | None
    ) -> torch.Tensor:
        x = self.norm1(x + self.self_attn(x, cache, layer, allowed))
        return self.norm2(x + self.linear2(F.relu(self.linear1(x))))


class TransformerStack(nn.Module):
    """Only a container, so that parameter names read `h.layers.N.*` like the checkpoints."""

    def __init__(self, cfg: T2SConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerLayer(cfg.hidden_dim, cfg.num_heads, cfg.ffn_dim) for _ in range(cfg.num_layers)
        )


class Text2SemanticDecoder(nn.Module):
    """The AR semantic-token model; parameter names equal the checkpoint keys without `model.`."""

    def __init__(self, cfg: T2SConfig) -> None:
        super().__init__()
        self.cfg = cfg
        dim = cfg.embedding_dim
        self.bert_proj = nn.Linear(BERT_DIM, dim)
        self.ar_text_embedding = TokenEmbedding(cfg.phoneme_vocab_size, dim)
        self.ar_text_position = SinePosition(dim)
        self.ar_audio_embedding = TokenEmbedding(cfg.vocab_size, dim)
        self.ar_audio_position = SinePosition(dim)
        self.h = TransformerStack(cfg)
        self.ar_predict_layer = Linear(cfg.hidden_dim, cfg.vocab_size, bias=False)
        self.cpu_layers: list[PackedLayer] | None = None  # set by pack_for_cpu: the flat decoding step
        self.ort_step: OrtStep | None = None  # set by pack_for_cpu: the step through ONNX Runtime

    def pack_for_cpu(self) -> int:
        """Give every transformer linear a oneDNN-packed copy of its weight (CPU float32, or bfloat16
        where the CPU does it natively; see t2s_cpu.py). Call after the weights are final: the
        copies do not follow later edits or moves (used only for inputs of their own dtype on the
        CPU). Returns how many were packed."""
        count = 0
        for module in self.modules():
            if isinstance(module, Linear):
                module.packed = pack_weight(module.weight)
                count += module.packed is not None
            elif isinstance(module, SelfAttention):
                module.in_proj_packed = pack_weight(module.in_proj_weight)
                count += module.in_proj_packed is not None
        self.cpu_layers = self._packed_layers() if count == 4 * len(self.h.layers) + 1 else None
        self.ort_step = build_step(self)
        return count

    def _packed_layers(self) -> list[PackedLayer]:
        out = []
        for layer in self.h.layers:
            attn = layer.self_attn
            out.append(PackedLayer(
                qkv=attn.in_proj_packed, qkv_bias=attn.in_proj_bias, out=attn.out_proj.packed,
                out_bias=attn.out_proj.bias, ffn1=layer.linear1.packed, ffn1_bias=layer.linear1.bias,
                ffn2=layer.linear2.packed, ffn2_bias=layer.linear2.bias, norm1=(layer.norm1.weight, layer.norm1.bias),
                norm2=(layer.norm2.weight, layer.norm2.bias)))
        return out

    def new_cache(self) -> KVCache:
        return KVCache(self.cfg.num_layers)

    def embed_text(self, phone_ids: torch.Tensor, bert: torch.Tensor) -> torch.Tensor:
        """Phones (B, N) long + BERT features (B, 1024, N) -> positioned text embedding (B, N, D)."""
        x = self.ar_text_embedding(phone_ids)  # (B, N, D)
        x = x + self.bert_proj(bert.transpose(1, 2).to(x.dtype))  # (B, N, D)
        return self.ar_text_position(x)

    def embed_semantic(self, tokens: torch.Tensor, start: int) -> torch.Tensor:
        """Semantic tokens (B, T) at positions start.. -> (B, T, D)."""
        return self.ar_audio_position(self.ar_audio_embedding(tokens.long()), start)

    def run(self, x: torch.Tensor, cache: KVCache, allowed: torch.Tensor | None) -> torch.Tensor:
        """Feed x (B, T, D) after what the cache holds; returns logits of the LAST position (B, V).

        `allowed` is a bool mask (B, 1, T, cached + T), True where attention is permitted, or for
        one new position a float bias (B, 1, 1, S) of 0 / -inf (the static cache's, t2s_static.py).

        A decoding step on a CPU (one new position) attends with two plain matrix products instead
        of the fused kernel: for a single query row the fused CPU kernel costs about twice as much
        (bench/profile_t2s.py), and attention is most of a step at batch 8 and more. Its mask is
        then an additive bias (0 or -inf), built once here for all layers; with packed weights
        the whole step is one flat loop (`t2s_cpu.decode_step`).
        """
        if x.shape[1] == 1 and x.device.type == "cpu":
            if allowed is not None and allowed.dtype == torch.bool:
                bias = torch.zeros(allowed.shape, dtype=x.dtype, device=x.device)
                allowed = bias.masked_fill_(~allowed, float("-inf"))
            if self.ort_step is not None and self.ort_step.fits(x, cache):  # see t2s_ort.py
                try:
                    hidden, logits = self.ort_step(x, cache, allowed)
                except OrtStepFailed as exc:  # said once; this model's steps stay on PyTorch from here
                    log.warning("%s; decoding on PyTorch from now on", exc)
                    self.ort_step = None
                else:
                    hooked = self.ar_predict_layer._forward_hooks or self.ar_predict_layer._forward_pre_hooks
                    return self.ar_predict_layer(hidden) if hooked else logits  # (B, V); a hooked layer runs as a module
            if self.cpu_layers is not None and x.dtype == self.cpu_layers[0].qkv.dtype:  # see t2s_cpu.decode_step
                hidden = decode_step(x, self.cpu_layers, cache, allowed, self.h.layers[0].self_attn.heads,
                                     _LAYER_NORM_EPS)  # allowed None: every column visible, no bias
                cache.advance(1)
                return self.ar_predict_layer(hidden)  # (B, V)
            if allowed is None:
                allowed = torch.zeros((x.shape[0], 1, 1, cache.length + 1), dtype=x.dtype, device=x.device)
        for i, layer in enumerate(self.h.layers):
            x = layer(x, cache, i, allowed)
        cache.advance(x.shape[1])
        return self.ar_predict_layer(x[:, -1])  # (B, V)


def pipeline_early_stop_num(config: Mapping[str, object]) -> int:
    """The step cap the GPT-SoVITS pipeline passes: 50 * config["data"]["max_sec"] (or -1).

    With the default max_sec=54 this is 2700, above the 1500-step hard cap, so in practice
    `max_steps` decides. Returns -1 (no cap) when the checkpoint config has no max_sec.
    """
    data = config.get("data")
    max_sec = data.get("max_sec") if isinstance(data, Mapping) else None
    return 50 * int(max_sec) if isinstance(max_sec, int | float) else -1


def load_t2s(
    ckpt: GptCheckpoint,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Text2SemanticDecoder:
    """Build the model from `ckpt.config["model"]` and load its weights strictly, in eval mode.

    Raises VoiceError (naming the file) when the config or any weight key/shape does not fit.
    """
    try:
        cfg = T2SConfig.from_checkpoint_config(ckpt.config["model"])
    except VoiceError as exc:
        raise VoiceError(str(exc), ckpt.path) from exc
    check_fits(lambda: Text2SemanticDecoder(cfg), ckpt.weights, source=ckpt.path)  # before allocating
    model = Text2SemanticDecoder(cfg)
    load_state_strict(model, ckpt.weights, source=ckpt.path)
    model = model.to(device=device, dtype=dtype).eval()
    packed = model.pack_for_cpu()
    log.debug("built T2S model from %s: %s (%d linears packed for the CPU)", ckpt.path, cfg, packed)
    return model


def build_random_t2s(
    config_model: Mapping[str, object],
    seed: int,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Text2SemanticDecoder:
    """A model of the given (e.g. full-size v2) shape with seeded random weights, for benchmarks.

    Weights are drawn so that activations stay in a sane range (normal init scaled by 1/sqrt(fan_in),
    LayerNorm at identity, alpha=1); the output is meaningless speech-wise but costs exactly what a
    real model costs. Not packed for the CPU (edit the weights, then call `pack_for_cpu`).
    Raises VoiceError when the config is incomplete.
    """
    cfg = T2SConfig.from_checkpoint_config(config_model)
    model = Text2SemanticDecoder(cfg)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("alpha") or (".norm" in name and name.endswith("weight")):
                param.fill_(1.0)
            elif param.dim() == 1:
                param.zero_()
            else:
                fan_in = param.shape[1] if "embedding" not in name else 1
                param.copy_(torch.randn(param.shape, generator=gen) / math.sqrt(fan_in))
    return model.to(device=device, dtype=dtype).eval()
