"""T2S decoding steps of ONE row through ONNX Runtime on a CPU: the same arithmetic, a faster kernel.

A decoding step of one sentence is 97 matrix-vector products over ~300 MB of float32 weights and a
few hundred small operators. Through PyTorch it costs ~19–22 ms on this project's 2-core CPUs (the
oneDNN products 14–17 ms, the small operators the rest); as one ONNX Runtime graph ~15 ms: MLAS
has a matrix-vector kernel that streams its prepacked weights faster, and the graph runs the small
operators without Python or dispatch in between (one sentence, 100 tokens, prefill included:
22.5 → 15.9 ms per token). The numbers are the same to float rounding (logits ~4e-6 apart, tokens
identical in the parity tests). From two rows on oneDNN is as fast, so batches stay on PyTorch.

Only the decoding step runs here (the prefill stays in PyTorch), and the KV cache stays the model's
own `KVCache`: its buffers are bound to the graph without copies (ONNX Runtime reads them through
their pointers), the graph returns each layer's new key and value, and they are written into the
cache after the run as PyTorch's step would have. So the two paths take turns on one cache: a
static batch that shrinks to its last row, continuous decoding's last slot.

The graph is built in memory with the `onnx` helpers when the model is packed for the CPU; its big
matrices are handed to ONNX Runtime as external initializers pointing at the model's own tensors
(ONNX Runtime keeps one prepacked copy of them: +300 MB for a v2 GPT). Both packages come with the
`gpt-sovits` extra; without them (or with `BOOKCAST_T2S_ORT=0`) decoding stays on PyTorch.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from synth.engines.gpt_sovits.model.t2s_cache import KVCache, RaggedCache

log = logging.getLogger(__name__)

ENV_SWITCH = "BOOKCAST_T2S_ORT"  # "0" keeps every decoding step on PyTorch
# The graph takes any number of rows, but only a single row is faster through it: MLAS has a
# matrix-vector kernel for one row, and from two rows on oneDNN's products are as fast or faster
# (decode_batch of 100 tokens, ms per token, PyTorch vs ONNX Runtime: 1 row 22.5 vs 15.9, 2 rows
# 14.2 vs 14.3, 4 rows 11.7 vs 11.5, 8 rows 6.9 vs 7.9).
MAX_ROWS = 1


def available() -> bool:
    """ONNX Runtime and the onnx helpers can be imported, and the switch is not off."""
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return False
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class StepWeights:
    """What one decoding step reads, as the model's own (out, in) weights: nothing is copied."""

    layers: Sequence[dict[str, torch.Tensor]]  # qkv, qkv_b, out, out_b, ffn1, ffn1_b, ffn2, ffn2_b, n1w, n1b, n2w, n2b
    predict: torch.Tensor  # (V, D) the output layer (no bias in GPT-SoVITS)
    heads: int
    eps: float


def step_weights(model: nn.Module) -> StepWeights:
    """Collect the step's tensors from a `Text2SemanticDecoder` (module names as the checkpoints)."""
    layers = []
    for layer in model.h.layers:  # type: ignore[attr-defined]
        attn = layer.self_attn
        layers.append({
            "qkv": attn.in_proj_weight, "qkv_b": attn.in_proj_bias, "out": attn.out_proj.weight,
            "out_b": attn.out_proj.bias, "ffn1": layer.linear1.weight, "ffn1_b": layer.linear1.bias,
            "ffn2": layer.linear2.weight, "ffn2_b": layer.linear2.bias, "n1w": layer.norm1.weight,
            "n1b": layer.norm1.bias, "n2w": layer.norm2.weight, "n2b": layer.norm2.bias,
        })
    first = model.h.layers[0]  # type: ignore[attr-defined]
    if model.ar_predict_layer.bias is not None:  # type: ignore[attr-defined]
        raise ValueError("the output layer has a bias; the step graph has none")
    return StepWeights(layers=layers, predict=model.ar_predict_layer.weight,  # type: ignore[attr-defined]
                       heads=first.self_attn.heads, eps=first.norm1.eps)


@dataclass
class _Builder:
    """Nodes and initializers of one graph; big matrices stay outside (external, bound by name)."""

    nodes: list = field(default_factory=list)
    small: list = field(default_factory=list)
    external: dict[str, torch.Tensor] = field(default_factory=dict)

    def op(self, kind: str, inputs: list[str], outputs: list[str] | None = None, **attrs: object) -> str:
        from onnx import helper
        outputs = outputs or [f"n{len(self.nodes)}"]
        self.nodes.append(helper.make_node(kind, inputs, outputs, **attrs))
        return outputs[0]

    def const(self, name: str, value: np.ndarray | torch.Tensor) -> str:
        from onnx import numpy_helper
        array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
        self.small.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def matrix(self, name: str, weight: torch.Tensor) -> str:
        """A big (out, in) weight, passed to ONNX Runtime from the tensor's own memory."""
        self.external[name] = weight
        return name

    def external_protos(self) -> list:
        from onnx import TensorProto
        protos = []
        for name, weight in self.external.items():
            proto = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=list(weight.shape),
                                data_location=TensorProto.EXTERNAL)
            entry = proto.external_data.add()
            entry.key, entry.value = "location", f"bookcast-memory/{name}"  # never read: given in memory
            protos.append(proto)
        return protos


def step_graph(weights: StepWeights) -> tuple[bytes, dict[str, torch.Tensor]]:
    """The serialized ONNX model of one decoding step for any number of rows B, and the big
    matrices to hand over by name.

    Inputs: `x` (B, D), the new positions' embeddings; `bias` (B·H, 1, C), 0 / -inf over the C cache
    columns bound (the buffers' capacity: columns past the cached length are -inf); `k{i}`, `v{i}`
    (B·H, C, Dh), layer i's cache buffers. Outputs: `hidden` (B, D), the last layer's output, and
    `logits` (B, V), the output layer's; `k_new{i}`, `v_new{i}` (B, D),
    the new position's key and value per layer, for the caller to write into the cache. The new
    position attends to itself outside the buffers (its score joins the softmax as one more column),
    so the buffers are only read."""
    from onnx import TensorProto, helper

    b = _Builder()
    first = weights.layers[0]
    dim = first["out"].shape[0]
    head_dim = dim // weights.heads
    b.const("heads_shape", np.array([-1, 1, head_dim], dtype=np.int64))  # (B, D) -> (B·H, 1, Dh)
    b.const("rows_shape", np.array([-1, dim], dtype=np.int64))  # (B·H, 1, Dh) -> (B, D)
    b.const("scale", np.array(head_dim ** -0.5, dtype=np.float32))
    b.const("last", np.array([-1], dtype=np.int64))
    b.const("zero", np.array([0], dtype=np.int64))
    b.const("end", np.array([np.iinfo(np.int64).max], dtype=np.int64))
    b.const("axis2", np.array([2], dtype=np.int64))
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", dim]),
              helper.make_tensor_value_info("bias", TensorProto.FLOAT, ["BH", 1, "C"])]
    outputs = []
    h = "x"
    for i, w in enumerate(weights.layers):
        inputs += [helper.make_tensor_value_info(f"k{i}", TensorProto.FLOAT, ["BH", "C", head_dim]),
                   helper.make_tensor_value_info(f"v{i}", TensorProto.FLOAT, ["BH", "C", head_dim])]
        qkv = b.op("Gemm", [h, b.matrix(f"qkv{i}", w["qkv"]), b.const(f"qkv_b{i}", w["qkv_b"])], transB=1)  # (B, 3D)
        q, k_new, v_new = f"q{i}", f"k_new{i}", f"v_new{i}"
        b.op("Split", [qkv], [q, k_new, v_new], axis=1, num_outputs=3)  # (B, D) each
        outputs += [helper.make_tensor_value_info(k_new, TensorProto.FLOAT, ["B", dim]),
                    helper.make_tensor_value_info(v_new, TensorProto.FLOAT, ["B", dim])]
        qh = b.op("Mul", [b.op("Reshape", [q, "heads_shape"]), "scale"])  # (B·H, 1, Dh), scaled
        kh = b.op("Reshape", [k_new, "heads_shape"])
        vh = b.op("Reshape", [v_new, "heads_shape"])
        keys_t = b.op("Transpose", [f"k{i}"], perm=[0, 2, 1])  # (B·H, Dh, C): fused into the product
        past = b.op("Add", [b.op("MatMul", [qh, keys_t]), "bias"])  # (B·H, 1, C)
        own = b.op("ReduceSum", [b.op("Mul", [qh, kh]), "last"], keepdims=1)  # (B·H, 1, 1)
        weights_all = b.op("Softmax", [b.op("Concat", [past, own], axis=2)], axis=2)  # (B·H, 1, C + 1)
        w_past = b.op("Slice", [weights_all, "zero", "last", "axis2"])  # (B·H, 1, C)
        w_own = b.op("Slice", [weights_all, "last", "end", "axis2"])  # (B·H, 1, 1)
        mixed = b.op("Add", [b.op("MatMul", [w_past, f"v{i}"]), b.op("Mul", [w_own, vh])])  # (B·H, 1, Dh)
        attended = b.op("Reshape", [mixed, "rows_shape"])  # (B, D)
        res1 = b.op("Add", [b.op("Gemm", [attended, b.matrix(f"out{i}", w["out"]), b.const(f"out_b{i}", w["out_b"])],
                                 transB=1), h])
        h1 = b.op("LayerNormalization", [res1, b.const(f"n1w{i}", w["n1w"]), b.const(f"n1b{i}", w["n1b"])],
                  axis=-1, epsilon=weights.eps)
        inner = b.op("Relu", [b.op("Gemm", [h1, b.matrix(f"ffn1{i}", w["ffn1"]), b.const(f"ffn1_b{i}", w["ffn1_b"])],
                                   transB=1)])
        res2 = b.op("Add", [b.op("Gemm", [inner, b.matrix(f"ffn2{i}", w["ffn2"]),
                                          b.const(f"ffn2_b{i}", w["ffn2_b"])], transB=1), h1])
        h = b.op("LayerNormalization", [res2, b.const(f"n2w{i}", w["n2w"]), b.const(f"n2b{i}", w["n2b"])],
                 axis=-1, epsilon=weights.eps)
    b.op("Identity", [h], ["hidden"])  # (B, D)
    b.op("Gemm", [h, b.matrix("predict", weights.predict)], ["logits"], transB=1)  # (B, V)
    outputs[:0] = [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["B", dim]),
                   helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["B", weights.predict.shape[0]])]
    graph = helper.make_graph(b.nodes, "t2s_step", inputs, outputs, b.small + b.external_protos())
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="bookcast")
    model.ir_version = 9
    return model.SerializeToString(), dict(b.external)


class OrtStepFailed(RuntimeError):
    """A run of the step failed inside ONNX Runtime, before the cache was touched: the caller can
    take the PyTorch step for the same position."""


class OrtStep:
    """One decoding step of a model as an ONNX Runtime session, run on the model's `KVCache`.

    Built once per model (`build_step`); calling it does what `Text2SemanticDecoder.run` does for
    one new position per row: attend over the cache's columns (with the row's 0 / -inf bias, if
    any), write the new keys and values into the cache, advance it, and return the last layer's
    output (B, D) and the logits (B, V).

    The output layer runs inside the graph too: a PyTorch product between two runs would wake
    PyTorch's OpenMP threads, and they and ONNX Runtime's threads then spin against each other on
    a small CPU (a batch-1 step 16 → 22 ms, the 2 MB output product 0.15 → 3 ms, measured)."""

    def __init__(self, weights: StepWeights, threads: int, spin: bool = True) -> None:
        import onnxruntime as ort

        blob, external = step_graph(weights)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Spinning between the step's ~600 small kernels is what makes them cheap (waking a
        # sleeping thread per kernel costs ~20 % of a step); the threads go idle soon after a run.
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        names = list(external)
        values = [ort.OrtValue.ortvalue_from_numpy(external[n].detach().numpy()) for n in names]
        options.add_external_initializers(names, values)
        self._memory = (values, external)  # ONNX Runtime reads these until it has packed them: keep alive
        self.session = ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])
        self.layers = len(weights.layers)
        self.heads = weights.heads
        self.dim = weights.layers[0]["out"].shape[0]
        self.vocab = weights.predict.shape[0]
        self._io: _Bound | None = None
        self._lock = threading.Lock()

    def fits(self, x: torch.Tensor, cache: KVCache) -> bool:
        """This step should run: ONE row (`MAX_ROWS`), a CPU float32 position, and a plain `KVCache`
        (or a one-row `RaggedCache`: the same thing) whose layers hold contiguous float32 buffers of
        one capacity (the prefill has run)."""
        if type(cache) not in (KVCache, RaggedCache) or x.device.type != "cpu" or x.dtype != torch.float32 \
                or x.shape[1] != 1 or x.shape[0] > MAX_ROWS:
            return False
        buffers = cache.keys + cache.values
        if any(t is None for t in buffers):
            return False
        first = buffers[0]
        assert first is not None
        return all(t is not None and t.dtype == torch.float32 and t.is_contiguous() and t.shape == first.shape
                   for t in buffers) and first.shape[0] == x.shape[0] and first.shape[2] >= cache.length

    def __call__(self, x: torch.Tensor, cache: KVCache, bias: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, 1, D); bias (B, 1, 1, S) of 0 / -inf with S = cached + 1 (the new position is
        always visible), or None (every column visible) -> (hidden (B, D), logits (B, V)). Check `fits`
        first.
        One call at a time per model (the I/O buffers are the step's own)."""
        keys, values = cache.keys, cache.values
        bsz, length = x.shape[0], cache.length
        capacity, head_dim = keys[0].shape[2], keys[0].shape[3]
        with self._lock:
            io = self._bound(bsz, capacity, head_dim, keys, values)
            io.rows.copy_(x.view(bsz, self.dim))
            io.past.fill_(float("-inf"))  # columns past the cached length: unseen
            seen = io.past.view(bsz, self.heads, capacity)[:, :, :length]
            if bias is None:
                seen.zero_()
            else:
                seen.copy_(bias[:, 0, :, :length].expand(bsz, self.heads, length))
            try:
                self.session.run_with_iobinding(io.binding)
            except Exception as exc:  # ONNX Runtime's own exception types; the cache is untouched
                raise OrtStepFailed(f"ONNX Runtime decoding step failed: {exc}") from exc
            if length + 1 <= capacity:  # the common case: one column written per layer, one call
                torch._foreach_copy_([buf.select(2, length) for buf in (*keys, *values)],
                                     [io.new[i, kv].view(bsz, self.heads, head_dim)
                                      for kv in (0, 1) for i in range(self.layers)])
            else:  # full: the cache grows as PyTorch's step would grow it
                for i in range(self.layers):
                    cache.write(i, io.new[i, 0].view(bsz, self.heads, 1, head_dim),
                                io.new[i, 1].view(bsz, self.heads, 1, head_dim))
            cache.advance(1)
            return io.hidden.clone(), io.logits.clone()

    def _bound(self, bsz: int, capacity: int, head_dim: int, keys: list, values: list) -> _Bound:
        """The binding for these rows and cache buffers: re-made only when the cache's buffers
        moved (growth, rows dropped) — binding ~50 names costs about a tenth of a millisecond."""
        key = (bsz, capacity, *(t.data_ptr() for t in (*keys, *values)))
        if self._io is not None and self._io.key == key:
            return self._io
        io = _Bound(key=key, binding=self.session.io_binding(), rows=torch.empty(bsz, self.dim),
                    past=torch.empty(bsz * self.heads, 1, capacity), hidden=torch.empty(bsz, self.dim),
                    logits=torch.empty(bsz, self.vocab),
                    new=torch.empty(self.layers, 2, bsz, self.dim))
        _bind(io.binding.bind_input, "x", io.rows)
        _bind(io.binding.bind_input, "bias", io.past)
        cache_shape = [bsz * self.heads, capacity, head_dim]
        for i in range(self.layers):
            _bind(io.binding.bind_input, f"k{i}", keys[i], cache_shape)
            _bind(io.binding.bind_input, f"v{i}", values[i], cache_shape)
            _bind(io.binding.bind_output, f"k_new{i}", io.new[i, 0])
            _bind(io.binding.bind_output, f"v_new{i}", io.new[i, 1])
        _bind(io.binding.bind_output, "hidden", io.hidden)
        _bind(io.binding.bind_output, "logits", io.logits)
        self._io = io
        return io


@dataclass
class _Bound:
    """An I/O binding and the tensors whose memory it points at (kept alive with it). The key
    names the cache buffers bound: when the cache reallocates, the old pointers are never run."""

    key: tuple[int, ...]
    binding: object
    rows: torch.Tensor  # (B, D) the new positions' embeddings
    past: torch.Tensor  # (B·H, 1, C) 0 / -inf bias over the cache columns
    hidden: torch.Tensor  # (B, D) the last layer's output
    logits: torch.Tensor  # (B, V)
    new: torch.Tensor  # (layers, 2, B, D) the new keys and values


def _bind(bind: object, name: str, tensor: torch.Tensor, shape: list[int] | None = None) -> None:
    """Bind a contiguous CPU float32 tensor's memory (no copy) under `name`."""
    bind(name, "cpu", 0, np.float32, shape or list(tensor.shape), tensor.data_ptr())  # type: ignore[operator]


def build_step(model: nn.Module, threads: int | None = None) -> OrtStep | None:
    """The ONNX Runtime step for a CPU float32 model, or None where it cannot be used (not
    installed, switched off, another device or dtype, or a build failure, which is logged)."""
    weight = model.h.layers[0].linear1.weight  # type: ignore[attr-defined]
    if weight.device.type != "cpu" or weight.dtype != torch.float32 or not available():
        return None
    try:
        return OrtStep(step_weights(model), threads or torch.get_num_threads())
    except Exception as exc:  # noqa: BLE001 - any ONNX Runtime failure leaves the PyTorch path, said once
        log.warning("ONNX Runtime decoding step unavailable, decoding on PyTorch: %s", exc)
        return None
