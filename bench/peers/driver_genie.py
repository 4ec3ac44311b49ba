"""bench_peers driver for genie-tts 2.0.2 (GPT-SoVITS v2 as ONNX graphs on ONNX Runtime; see common.py).

Runs in `bench/.peers/genie/venv`, on the graphs that `bench/peers/setup/genie.sh` made from the
shared weights with genie's own converter (`genie_tts.convert_to_onnx`, into `bench/.peers/genie/onnx`).

What is timed, and how it differs from the protocol:

- `t2s` calls genie's own decoding loop, `genie_tts.Core.Inference.tts_client.t2s_cpu` (encoder graph,
  first-stage decoder graph, then one stage-decoder graph run per token), below its G2P/BERT front end.
  Its batch size is 1 (every graph has batch dimension 1), so the rows of a request are decoded ONE
  AFTER ANOTHER inside the timed call: no batching.
- Sampling is baked into genie's decoder graphs at conversion time and cannot be set: repetition
  penalty 1.35 over every token so far (prompt included), temperature 1, top_k 15 (NOT 5), no top_p
  (= 1), and the draw is argmax(probs / N(0,1) noise) rather than a multinomial draw. The cost per
  step does not depend on these values.
- genie's loop has no step-cap argument (it stops on EOS or after 500 stage steps), so the stage
  decoder is handed to it behind a thin wrapper that raises the graph's own stop flag once `tokens`
  tokens have been sampled (the first comes from the first-stage graph). A row therefore samples
  exactly `tokens` tokens for 2 <= tokens <= 501; the driver reports the count it measured on the
  decoder's output. (t2s_cpu itself hands back only the last tokens-2 of them, the last one zeroed as
  if it were EOS; that slicing costs nothing and is not what is reported.)
- The prompt's semantic tokens come from HuBERT features inside genie's encoder graph (ssl_proj +
  codebook argmax). The benchmark supplies the prompt tokens, so the encoder is run on zero features
  of the matching length (same work) and its `prompts` output is replaced by `inputs.prompt`.
- `sovits` runs genie's vocoder graph as its `tts` does: text phones, codes and the reference clip
  at 32 kHz (loaded by genie's own `load_audio`, which appends 0.3 s of silence); the reference
  spectrogram and style are computed INSIDE that graph, so they are part of every timed call.

Sessions: genie's own loader (`load_session_with_fp16_conversion`: fp16 weights widened to fp32 in
memory), CPU provider, graph optimisation ORT_ENABLE_ALL as genie sets it, plus intra-op threads =
--threads (genie leaves ORT's default, one per core). Nothing is downloaded: importing genie_tts is
pointed at an empty GenieData folder so that it neither prompts on stdin nor fetches HuBERT.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
from common import Inputs, serve  # noqa: E402

GENIE_DIR = HERE.parent / ".peers" / "genie"
ONNX_DIR = GENIE_DIR / "onnx"
RATE = 32000
MAX_TOKENS = 501  # first-stage token + genie's 500 stage steps


def _prepare_import(work: Path) -> None:
    """Make `import genie_tts` offline and silent: it asks on stdin to download GenieData when the
    folder is missing, and checks that HuBERT / speaker-encoder paths exist (neither is used here)."""
    data = GENIE_DIR / "GenieData"
    data.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("GENIE_DATA_DIR", str(data))
    os.environ.setdefault("HUBERT_MODEL_DIR", str(work / "chinese-hubert-base"))
    os.environ.setdefault("SV_MODEL", str(data))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


class _PromptEncoder:
    """genie's encoder graph with its `prompts` output replaced by the benchmark's prompt tokens."""

    def __init__(self, session: Any, prompt: np.ndarray) -> None:
        self.session = session
        self.prompt = prompt[None].astype(np.int64)

    def run(self, names: Any, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        x, _ = self.session.run(names, feed)
        return [x, self.prompt]


class _CappedStageDecoder:
    """genie's stage-decoder graph, stopping the loop once `total` tokens were sampled in all.

    `prompt_len` tokens precede the generated ones in the graph's `y` output; `last_generated` keeps
    the generated count of the latest step, which is what the driver reports."""

    def __init__(self, session: Any, prompt_len: int, total: int) -> None:
        self.session = session
        self.prompt_len = prompt_len
        self.total = total
        self.last_generated = 0

    def get_inputs(self) -> Any:
        return self.session.get_inputs()

    def run(self, names: Any, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        out = self.session.run(names, feed)
        self.last_generated = out[0].shape[1] - self.prompt_len
        if self.last_generated >= self.total:
            out[2] = np.array(True)
        return out


class State:
    """Open ONNX Runtime sessions and the inputs precomputed once (not part of any timed call)."""

    def __init__(self, inputs: Inputs, threads: int) -> None:
        import onnxruntime as ort
        from genie_tts.Audio.Audio import load_audio
        from genie_tts.Core.Inference import tts_client
        from genie_tts.ModelManager import GSVModelFile, load_session_with_fp16_conversion

        missing = [p for p in ("t2s_encoder_fp32.onnx", "t2s_shared_fp16.bin", "vits_fp16.bin")
                   if not (ONNX_DIR / p).exists()]
        if missing:
            raise RuntimeError(f"genie: converted graphs missing in {ONNX_DIR} ({missing}); run setup/genie.sh")

        def options() -> Any:
            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            opts.intra_op_num_threads = threads
            return opts

        providers = ["CPUExecutionProvider"]

        def fp16(graph: str, weights: str) -> Any:
            return load_session_with_fp16_conversion(str(ONNX_DIR / graph), str(ONNX_DIR / weights), providers, options())

        self.inputs = inputs
        self.client = tts_client
        self.encoder = _PromptEncoder(
            ort.InferenceSession(str(ONNX_DIR / GSVModelFile.T2S_ENCODER_FP32), sess_options=options(),
                                 providers=providers), inputs.prompt)
        self.first = fp16(GSVModelFile.T2S_FIRST_STAGE_DECODER_FP32, GSVModelFile.T2S_DECODER_WEIGHT_FP16)
        self.stage = fp16(GSVModelFile.T2S_STAGE_DECODER_FP32, GSVModelFile.T2S_DECODER_WEIGHT_FP16)
        self.vits = fp16(GSVModelFile.VITS_FP32, GSVModelFile.VITS_WEIGHT_FP16)
        # v2's ssl_proj is a stride-2 conv: 2 HuBERT frames per prompt token.
        self.ssl = np.zeros((1, 768, 2 * len(inputs.prompt)), dtype=np.float32)
        audio = load_audio(str(inputs.ref_wav_path), target_sampling_rate=RATE)
        if audio is None:
            raise RuntimeError(f"genie: load_audio could not read {inputs.ref_wav_path}")
        self.ref_audio = audio[None].astype(np.float32)


def load(inputs: Inputs, args: Any) -> State:
    _prepare_import(inputs.work)
    return State(inputs, args.threads)


def t2s(state: State, items: list[int], tokens: int, mode: str) -> list[int]:
    """Decode the items one at a time with genie's t2s_cpu, each to `tokens` sampled tokens."""
    if mode != "static":
        raise ValueError(f"genie supports only static mode, not {mode!r}")
    n_ref = len(state.inputs.ref_phones)
    got: list[int] = []
    for i in items:
        phones = state.inputs.full_phones(i)[None].astype(np.int64)
        bert = np.ascontiguousarray(state.inputs.full_bert(i).T, dtype=np.float32)  # genie wants (N, 1024)
        stage = _CappedStageDecoder(state.stage, len(state.inputs.prompt), min(tokens, MAX_TOKENS))
        state.client.t2s_cpu(
            ref_seq=phones[:, :n_ref], ref_bert=bert[:n_ref],
            text_seq=phones[:, n_ref:], text_bert=bert[n_ref:],
            ssl_content=state.ssl, encoder=state.encoder,
            first_stage_decoder=state.first, stage_decoder=stage,
        )
        got.append(stage.last_generated)
    return got


def sovits(state: State, item: int, tokens: int) -> tuple[int, int]:
    """genie's vocoder graph (reference spectrogram + style + decode) on the first `tokens` codes."""
    audio = state.vits.run(None, {
        "text_seq": state.inputs.phones[item][None].astype(np.int64),
        "pred_semantic": state.inputs.codes[:tokens].reshape(1, 1, -1).astype(np.int64),
        "ref_audio": state.ref_audio,
    })[0]
    return int(audio.shape[-1]), RATE


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("genie-tts")
    except PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    serve("genie", load, t2s, sovits, modes=("static",), version=_version())
