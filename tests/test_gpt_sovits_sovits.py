"""SoVITS v2 inference against goldens produced by the reference implementation (tiny checkpoint).

Tolerances come from the fixture README: spectrogram rtol 1e-5/atol 1e-3, style vector atol 1e-5,
prior/flow intermediates and waveforms atol 1e-4 (observed float32 noise ~1e-6), codes exact.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from gpt_sovits_fixtures import expected, fixture_path, load_json, load_npy

from ingest.errors import UnsupportedError
from synth.errors import SynthesisError, VoiceError
from synth.engines.gpt_sovits.model.checkpoint import load_sovits_checkpoint
from synth.engines.gpt_sovits.model.sovits import SovitsConfig, SynthesizerTrnV2, build_random_sovits
from synth.engines.gpt_sovits.model.sovits.keymap import sovits_module_key
from synth.engines.gpt_sovits.model.spectrogram import SpectrogramConfig, linear_spectrogram

WAVE_ATOL = 1e-4
GE_ATOL = 1e-5


def _t(*parts: str) -> torch.Tensor:
    return torch.from_numpy(load_npy(*parts))


@pytest.fixture(scope="module")
def model() -> SynthesizerTrnV2:
    torch.set_num_threads(1)
    return SynthesizerTrnV2.from_checkpoint(fixture_path("tiny_e1_s1.pth"))


@pytest.fixture(scope="module")
def inputs() -> dict[str, torch.Tensor]:
    return {
        "codes": _t("sovits", "codes.npy"),
        "text": _t("sovits", "text_phone_ids.npy"),
        "ref": _t("sovits", "ref_spec.npy"),
        "ref2": _t("sovits", "ref2_spec.npy"),
    }


def _close(actual: torch.Tensor, golden: np.ndarray, atol: float, rtol: float = 0.0) -> None:
    assert tuple(actual.shape) == golden.shape
    np.testing.assert_allclose(actual.detach().float().cpu().numpy(), golden, rtol=rtol, atol=atol)


# ------------------------------------------------------------------ reference spectrogram


@pytest.mark.parametrize("name", ["ref", "ref2"])
def test_spectrogram_matches_reference(name: str) -> None:
    data = load_json("expected.json")["sovits_pth"]["config"]["data"]
    spec = linear_spectrogram(_t("sovits", f"{name}_wav.npy"), SpectrogramConfig.from_data_config(data))
    _close(spec, load_npy("sovits", f"{name}_spec.npy"), atol=1e-3, rtol=1e-5)


def test_model_spectrogram_config_comes_from_checkpoint(model: SynthesizerTrnV2) -> None:
    assert model.spectrogram_config == SpectrogramConfig(2048, 640, 2048, 32000)
    assert model.sampling_rate == 32000
    spec = linear_spectrogram(_t("sovits", "ref_wav.npy"), model.spectrogram_config)
    _close(spec, load_npy("sovits", "ref_spec.npy"), atol=1e-3, rtol=1e-5)


def test_spectrogram_accepts_1d_and_rejects_too_short() -> None:
    wav = torch.linspace(-0.5, 0.5, 4000)
    spec = linear_spectrogram(wav)
    assert spec.shape == (1, 1025, 1 + (4000 + 2 * 704 - 2048) // 640)
    with pytest.raises(VoiceError, match="too short"):
        linear_spectrogram(torch.zeros(500))


# ------------------------------------------------------------------ decode, layer by layer


def test_style_vector_single_and_each(model: SynthesizerTrnV2, inputs: dict) -> None:
    _close(model.style([inputs["ref"]]), load_npy("sovits", "decode_ge.npy"), GE_ATOL)
    each = load_npy("sovits", "multi_ge_each.npy")
    _close(model.style([inputs["ref"]]), each[0], GE_ATOL)
    _close(model.style([inputs["ref2"]]), each[1], GE_ATOL)
    _close(model.style([inputs["ref"], inputs["ref2"]]), each.mean(0), GE_ATOL)


def test_prior_and_flow_intermediates(model: SynthesizerTrnV2, inputs: dict) -> None:
    with torch.no_grad():
        ge = model.style([inputs["ref"]])
        m_p, logs_p, mask = model.prior(inputs["codes"], inputs["text"], ge)
        z = model.flow.reverse(m_p, mask, ge)
    _close(m_p, load_npy("sovits", "decode_m_p.npy"), WAVE_ATOL)
    _close(logs_p, load_npy("sovits", "decode_logs_p.npy"), WAVE_ATOL)
    _close(z, load_npy("sovits", "decode_z.npy"), WAVE_ATOL)


@pytest.mark.parametrize(
    ("golden", "refs", "speed"),
    [
        ("decode_out.npy", ("ref",), 1.0),
        ("multi_out.npy", ("ref", "ref2"), 1.0),
        ("speed_out.npy", ("ref",), 1.25),
    ],
)
def test_decode_matches_reference(
    model: SynthesizerTrnV2, inputs: dict, golden: str, refs: tuple, speed: float
) -> None:
    out = model.decode(inputs["codes"], inputs["text"], [inputs[r] for r in refs], noise_scale=0, speed=speed)
    _close(out, load_npy("sovits", golden), WAVE_ATOL)


def test_decode_end_to_end_gpt_tokens(model: SynthesizerTrnV2, inputs: dict) -> None:
    pred = _t("gpt", "naive_rp1.35_pred.npy")  # (1, idx)
    out = model.decode(pred[None], inputs["text"], [inputs["ref"]], noise_scale=0)
    _close(out, load_npy("sovits", "e2e_out.npy"), WAVE_ATOL)


def test_bare_tensor_reference_equals_list(model: SynthesizerTrnV2, inputs: dict) -> None:
    a = model.decode(inputs["codes"], inputs["text"], inputs["ref"], noise_scale=0)
    b = model.decode(inputs["codes"], inputs["text"], [inputs["ref"]], noise_scale=0)
    assert torch.equal(a, b)


def test_extract_latent_codes_identical(model: SynthesizerTrnV2) -> None:
    codes = model.extract_latent(_t("sovits", "ssl.npy"))
    golden = load_npy("sovits", "extract_latent_codes.npy")
    assert codes.shape == golden.shape
    assert codes.tolist() == golden.tolist()
    assert codes[0, 0].tolist() == expected()["sovits"]["cases"]["extract_latent"]["codes"]


def test_noise_is_seeded_by_generator(model: SynthesizerTrnV2, inputs: dict) -> None:
    args = (inputs["codes"], inputs["text"], [inputs["ref"]])
    a = model.decode(*args, noise_scale=0.5, generator=torch.Generator().manual_seed(7))
    b = model.decode(*args, noise_scale=0.5, generator=torch.Generator().manual_seed(7))
    c = model.decode(*args, noise_scale=0.5, generator=torch.Generator().manual_seed(8))
    silent = model.decode(*args, noise_scale=0)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c, atol=1e-3)
    assert not torch.allclose(a, silent, atol=1e-3)
    assert a.abs().max() <= 1.0


def test_float64_model_agrees_with_float32_goldens(inputs: dict) -> None:
    m64 = SynthesizerTrnV2.from_checkpoint(fixture_path("tiny_e1_s1.pth"), dtype=torch.float64)
    out = m64.decode(inputs["codes"], inputs["text"], [inputs["ref"].double()], noise_scale=0)
    assert out.dtype == torch.float64
    _close(out, load_npy("sovits", "decode_out.npy"), WAVE_ATOL)


@pytest.mark.parametrize(("dtype", "atol"), [(torch.float16, 5e-3), (torch.bfloat16, 3e-2)])
def test_half_precision_decode_is_close_and_codes_exact(inputs: dict, dtype: torch.dtype, atol: float) -> None:
    """Half precision (the GPU setting) stays near the float32 goldens; codes are computed in fp32."""
    half = SynthesizerTrnV2.from_checkpoint(fixture_path("tiny_e1_s1.pth"), dtype=dtype)
    out = half.decode(inputs["codes"], inputs["text"], [inputs["ref"]], noise_scale=0)
    assert out.dtype == dtype
    _close(out, load_npy("sovits", "decode_out.npy"), atol)
    codes = half.extract_latent(_t("sovits", "ssl.npy"))
    assert codes.tolist() == load_npy("sovits", "extract_latent_codes.npy").tolist()


def test_hot_path_creates_no_stray_cpu_tensors(model: SynthesizerTrnV2, inputs: dict) -> None:
    """On the meta device, any tensor created on the CPU and mixed in would raise: a proxy for CUDA."""
    meta = build_random_sovits(model.config).to("meta")
    args = (inputs["codes"].to("meta"), inputs["text"].to("meta"), [inputs["ref"].to("meta")])
    assert meta.decode(*args, noise_scale=0.5, speed=1.3).shape == (1, 1, (int(60 / 1.3) + 1) * 640)
    assert meta.extract_latent(_t("sovits", "ssl.npy").to("meta")).shape == (1, 1, 50)


def test_decode_rejects_empty_and_malformed(model: SynthesizerTrnV2, inputs: dict) -> None:
    with pytest.raises(SynthesisError):
        model.decode(inputs["codes"][:, :, :0], inputs["text"], [inputs["ref"]], noise_scale=0)
    with pytest.raises(ValueError):
        model.decode(inputs["codes"][0], inputs["text"], [inputs["ref"]], noise_scale=0)
    with pytest.raises(ValueError):
        model.decode(inputs["codes"], inputs["text"], [], noise_scale=0)
    with pytest.raises(ValueError):
        model.decode(inputs["codes"], inputs["text"], [inputs["ref"]], speed=0)


# ------------------------------------------------------------------ strict loading


def test_every_checkpoint_key_is_consumed_and_weight_norm_folded(model: SynthesizerTrnV2) -> None:
    ckpt = load_sovits_checkpoint(fixture_path("tiny_e1_s1.pth"))
    dropped = sorted(k for k in ckpt.weights if sovits_module_key(k) is None)
    assert dropped == [
        "quantizer.vq.layers.0._codebook.cluster_size",
        "quantizer.vq.layers.0._codebook.embed_avg",
        "quantizer.vq.layers.0._codebook.inited",
    ]
    assert not any("parametrizations" in k for k in model.state_dict())
    # A folded weight equals g * v / ||v|| of the file (norm over all dims but 0).
    g = ckpt.weights["dec.ups.1.weight_g"].float()
    v = ckpt.weights["dec.ups.1.weight_v"].float()
    want = g * v / v.norm(dim=(1, 2), keepdim=True)
    torch.testing.assert_close(model.dec.ups[1].weight, want, rtol=1e-5, atol=1e-6)


def test_missing_unexpected_and_misshaped_keys_are_refused() -> None:
    ckpt = load_sovits_checkpoint(fixture_path("tiny_e1_s1.pth"))
    config = SovitsConfig.from_config(ckpt.config)
    missing = {k: v for k, v in ckpt.weights.items() if k != "flow.flows.2.enc.cond_layer.weight_g"}
    with pytest.raises(VoiceError, match="missing 1: flow.couplings.1.enc.cond_layer"):
        SynthesizerTrnV2(config).load_weights(missing)
    extra = dict(ckpt.weights, **{"flow.flows.1.logs": torch.zeros(1)})
    with pytest.raises(VoiceError, match="unexpected 1: flow.flows.1.logs"):
        SynthesizerTrnV2(config).load_weights(extra)
    bad = dict(ckpt.weights, **{"enc_p.proj.bias": torch.zeros(65)})
    with pytest.raises(VoiceError, match="shape mismatch 1: enc_p.proj.bias"):
        SynthesizerTrnV2(config).load_weights(bad)


def test_config_errors() -> None:
    config = load_json("expected.json")["sovits_pth"]["config"]
    no_key = {**config, "model": {k: v for k, v in config["model"].items() if k != "upsample_rates"}}
    with pytest.raises(VoiceError, match="upsample_rates"):
        SovitsConfig.from_config(no_key)
    with pytest.raises(UnsupportedError, match="hidden_channels=192"):
        SovitsConfig.from_config({**config, "model": {**config["model"], "hidden_channels": 256}})
    with pytest.raises(UnsupportedError, match="v1"):
        SovitsConfig.from_config({**config, "model": {**config["model"], "version": "v1"}})


# ------------------------------------------------------------------ full-size structure


def test_full_size_structure_matches_official_keys() -> None:
    """An unfolded full-size model has exactly the official v2 keys and shapes (after the key map)."""
    full = load_json("keys_full_v2.json")["sovits"]
    cfg = SovitsConfig.from_config(full["config_default_json"])
    with torch.random.fork_rng(devices=[]):
        state = SynthesizerTrnV2(cfg).state_dict()
    mapped = {}
    for key, shape, *_ in full["keys"]:
        module_key = sovits_module_key(key)
        if module_key is not None:
            mapped[module_key] = tuple(shape)
    assert mapped == {k: tuple(v.shape) for k, v in state.items()}
    assert cfg.samples_per_frame == 640 and math.prod(cfg.upsample_rates) == cfg.hop_length


def test_build_random_sovits_full_size_decodes() -> None:
    full = load_json("keys_full_v2.json")["sovits"]["config_default_json"]
    model = build_random_sovits(full, seed=3)
    again = build_random_sovits(full, seed=3)
    assert torch.equal(model.dec.conv_post.weight, again.dec.conv_post.weight)
    codes = torch.randint(0, 1024, (1, 1, 6), generator=torch.Generator().manual_seed(0))
    phones = torch.tensor([[5, 6, 7, 8]])
    ref = linear_spectrogram(0.1 * torch.randn(32000, generator=torch.Generator().manual_seed(1)))
    out = model.decode(codes, phones, [ref], noise_scale=0)
    assert out.shape == (1, 1, 12 * 640)
    assert torch.isfinite(out).all()


def test_channels_last_rows_equal_plain_convolutions(monkeypatch) -> None:
    """The CPU layout of the decoder's convolutions (cpu_conv.py) computes what the 1-D modules do:
    per layer (strides, dilations, transposed), after a weight edit, and for the whole generator."""
    from torch import nn

    from synth.engines.gpt_sovits.model.sovits import generator as gen_mod
    from synth.engines.gpt_sovits.model.sovits.cpu_conv import conv_rows, from_rows, to_rows

    torch.manual_seed(0)
    x = torch.randn(2, 6, 50)
    layers = [nn.Conv1d(6, 4, 7, dilation=3, padding=9), nn.Conv1d(6, 5, 3, stride=2, padding=1, bias=False),
              nn.ConvTranspose1d(6, 3, 16, 8, padding=4)]
    with torch.no_grad():
        for layer in layers:
            np.testing.assert_allclose(from_rows(conv_rows(layer, to_rows(x))).numpy(), layer(x).numpy(), atol=1e-5)
        layers[0].weight.mul_(2.0)  # an in-place edit invalidates the cached layout
        np.testing.assert_allclose(from_rows(conv_rows(layers[0], to_rows(x))).numpy(), layers[0](x).numpy(), atol=1e-5)
        with pytest.raises(ValueError):
            conv_rows(nn.Conv1d(6, 6, 3, groups=2), to_rows(x))
        g = gen_mod.Generator(8, "1", [3, 7], [[1, 3, 5], [1, 3, 5]], [4, 2], 16, [8, 4], 12)
        z, style = torch.randn(1, 8, 20), torch.randn(1, 12, 1)
        rows = g(z, style)
        monkeypatch.setattr(gen_mod, "CPU_ROWS", False)
        plain = g(z, style)
    assert rows.shape == plain.shape == (1, 1, 160) and rows.is_contiguous()
    np.testing.assert_allclose(rows.numpy(), plain.numpy(), atol=1e-5)


def test_channels_last_rows_with_inference_tensors() -> None:
    """A model loaded under inference_mode (weights without a version counter) decodes too."""
    from torch import nn

    from synth.engines.gpt_sovits.model.sovits.cpu_conv import conv_rows, from_rows, to_rows

    with torch.inference_mode():
        layer = nn.Conv1d(4, 4, 5, padding=2)
        x = torch.randn(1, 4, 30)
        np.testing.assert_allclose(from_rows(conv_rows(layer, to_rows(x))).numpy(), layer(x).numpy(), atol=1e-5)
