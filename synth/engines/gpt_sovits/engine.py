"""The GPT-SoVITS v2 engine: a user's voice folder behind the bookcast `Engine` Protocol.

The model code (model/) knows tensors only; this module joins it to voices and text:
it loads a voice ONCE (GPT, SoVITS, BERT, HuBERT on one device; fp16 on CUDA, the voice's
`precision` otherwise: see `model_dtype`, `wave_dtype`), computes the
reference prompt once (semantic tokens, transcript features, averaged style vector `ge`), and then
turns sentences into audio like the reference TTS pipeline with `parallel_infer=True`:
sentence → phones + BERT → length-bucketed batches → batched KV-cache GPT decoding (left padding,
finished rows leave the batch) → one SoVITS decode per sentence at the model rate (32 kHz), with the
voice's speed factor.

Reproducibility: a clip cache keys a sentence by (its text, the voice fingerprint, the seed), so a
sentence's audio must be a function of exactly those, whatever else is in the same call. Every
random draw therefore comes from a generator of that sentence alone, seeded from the voice's seed,
the `synthesize` seed and the sentence's normalised text: one for its GPT row (the batched decoder
gives every row its own stream, which stays with the row while others finish) and one for its
SoVITS noise. So `synthesize([a, b, c])` equals synthesizing each alone, for any sampling settings,
in float32 (batching changes a row's logits by ~1e-6 only). Generators are CPU ones and the noise
is moved to the model's device, so a seed means the same numbers whether the models run on a CPU
or a GPU. In fp16 (or the CPU's opt-in bfloat16) a row's logits can change with its batch at that
precision, so a near-tie may still flip a token there (the noise stays the same).

Zero-shot: point `gpt`/`sovits` of voice.toml at the pretrained base weights; nothing else changes.
Differences from the reference pipeline, on purpose: the reference decodes a whole batch with ONE
SoVITS call over the concatenated tokens of its (length-sorted) sentences when speed is 1, which
lets unrelated sentences bleed into each other; we always decode per sentence (the reference's own
path for speed ≠ 1). No pause is appended after a clip and nothing is converted to int16: pauses
and gain belong to mastering.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from ingest.errors import BookcastError
from ingest.segment import Sentence
from synth.engine import Clip
from synth.engines.gpt_sovits.model.bert import BertFeatures
from synth.engines.gpt_sovits.model.checkpoint import load_gpt_checkpoint
from synth.engines.gpt_sovits.model.sovits import SynthesizerTrnV2
from synth.engines.gpt_sovits.model.ssl import HubertFeatures
from synth.engines.gpt_sovits.model.t2s import (
    SamplingParams,
    Text2SemanticDecoder,
    decode_batch,
    load_t2s,
    pipeline_early_stop_num,
)
from synth.engines.gpt_sovits.model.t2s_continuous import decode_continuous
from synth.engines.gpt_sovits.model.t2s_cpu import bf16_native
from synth.engines.gpt_sovits.model.t2s_static import decode_static
from synth.engines.gpt_sovits.overlap import VocoderQueue
from synth.engines.gpt_sovits.prompt import ReferencePrompt, build_prompt
from synth.engines.gpt_sovits.text import Phonemizer, TextFeatures, bucket_batches, default_g2p, sentence_features
from synth.engines.gpt_sovits.voice import BF16_FALLBACK, SamplingSettings, Voice, load_voice, voice_fingerprint
from synth.errors import SynthesisError
from synth.heap import bound_onednn_cache, release_free_heap

log = logging.getLogger(__name__)

ENGINE_NAME = "gpt-sovits"
# Bump when a code change alters the audio for unchanged inputs: it invalidates cached clips.
ENGINE_REVISION = 2  # 2: per-sentence GPT sampling streams, CPU-drawn noise
# SynthesizerTrn.decode's default, which the reference pipeline uses.
NOISE_SCALE = 0.5


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def model_dtype(device: torch.device, precision: str, half: bool | None = None) -> torch.dtype:
    """The models' dtype for a voice's `precision` setting on `device`; `half` (the constructor's
    override) wins when given. bfloat16 on a CPU that only emulates it would be several times
    slower than float32, so there it falls back to float32, said once in the log."""
    if half is not None:
        return torch.float16 if half else torch.float32
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[precision]
    if dtype == torch.bfloat16 and device.type == "cpu" and not bf16_native():
        log.warning(BF16_FALLBACK)
        return torch.float32
    return dtype


def wave_dtype(dtype: torch.dtype) -> torch.dtype:
    """SoVITS's and the prompt's (HuBERT's) dtype for a voice whose GPT and BERT run in `dtype`.

    bfloat16 is for the matrix products only. On a book's clips, each of its own length, oneDNN
    builds every bfloat16 convolution anew (a 16-s clip 8.1 s against 7.3 in float32; 2.8 only
    when a length repeats) and caches twice the memory per length, and the vocoder's rounding
    would reach the waveform directly; in float32 the prompt's semantic tokens and style are the
    float32 voice's too. float16 (CUDA) is the reference's own half mode: everything in it."""
    return torch.float32 if dtype == torch.bfloat16 else dtype


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from arbitrary parts (stable across runs and machines, unlike hash())."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


class GptSovitsEngine:
    """A loaded GPT-SoVITS v2 voice. Construct once per worker; `synthesize` may be called often."""

    name = ENGINE_NAME

    def __init__(
        self,
        voice: Voice | str | Path,
        *,
        device: str | torch.device | None = None,
        half: bool | None = None,
        settings: SamplingSettings | None = None,
        g2p: Phonemizer | None = None,
    ) -> None:
        """Load every model of the voice and its reference prompt.

        device: default CUDA when available, else CPU. half: fp16 (True) or fp32 (False) models,
        overriding the settings' `precision` (see `model_dtype`). settings: override the voice's
        [settings]. Raises VoiceError / UnsupportedError for a bad voice folder or weight file,
        SynthesisError when the reference transcript has no phones.
        """
        voice = voice if isinstance(voice, Voice) else load_voice(voice)
        device = torch.device(device) if device is not None else default_device()
        settings = settings or voice.settings
        dtype = model_dtype(device, settings.precision, half)
        g2p = g2p or default_g2p()
        if device.type == "cpu":
            bound_onednn_cache()  # before the first primitive; clip lengths never repeat (synth/heap.py)

        gpt_ckpt = load_gpt_checkpoint(voice.gpt)
        t2s = load_t2s(gpt_ckpt, device=device, dtype=dtype)
        early_stop_num = pipeline_early_stop_num(gpt_ckpt.config)
        del gpt_ckpt
        sovits = SynthesizerTrnV2.from_checkpoint(voice.sovits, device=device, dtype=wave_dtype(dtype))
        bert = BertFeatures(voice.bert, device, dtype)
        hubert = HubertFeatures(voice.hubert, device, wave_dtype(dtype))  # only needed for the prompt
        prompt = build_prompt(voice, sovits, hubert, bert, g2p)
        del hubert
        self._init_parts(t2s, sovits, bert, prompt, g2p, settings, early_stop_num, voice)
        log.info("GPT-SoVITS voice %s on %s (%s)", voice.name, device, dtype)

    @classmethod
    def from_parts(
        cls,
        *,
        t2s: Text2SemanticDecoder,
        sovits: SynthesizerTrnV2,
        bert: BertFeatures,
        prompt: ReferencePrompt,
        g2p: Phonemizer,
        settings: SamplingSettings,
        early_stop_num: int = -1,
    ) -> GptSovitsEngine:
        """An engine over models already in memory (benchmarks, experiments); no voice folder, so
        `fingerprint()` names the engine only and must not key a clip cache."""
        engine = cls.__new__(cls)
        engine._init_parts(t2s, sovits, bert, prompt, g2p, settings, early_stop_num, None)
        return engine

    def _init_parts(
        self,
        t2s: Text2SemanticDecoder,
        sovits: SynthesizerTrnV2,
        bert: BertFeatures,
        prompt: ReferencePrompt,
        g2p: Phonemizer,
        settings: SamplingSettings,
        early_stop_num: int,
        voice: Voice | None,
    ) -> None:
        weight = t2s.ar_predict_layer.weight
        self.device, self.dtype = weight.device, weight.dtype
        self.t2s, self.sovits, self.bert, self.prompt, self.g2p = t2s, sovits, bert, prompt, g2p
        self.settings = settings
        self.early_stop_num = early_stop_num  # 50 * max_sec of the GPT config, as the pipeline passes
        self.noise_scale = NOISE_SCALE
        self.sample_rate = sovits.config.sampling_rate
        self.voice = voice
        self.overlap_vocoder: bool | None = None  # None: vocode beside continuous decoding on CUDA only
        self._fingerprint: str | None = None

    # ------------------------------------------------------------------------------ identity

    def fingerprint(self) -> str:
        """Engine, revision, voice contents and effective settings (computed once; hashing is I/O).

        The device and precision are left out on purpose: fp16 on a GPU and fp32 on a CPU render the
        same voice and settings, so a project moved between machines keeps its clip cache.
        """
        if self._fingerprint is None:
            s = self.settings
            voice = voice_fingerprint(self.voice) if self.voice is not None else "in-memory"
            self._fingerprint = (
                f"{ENGINE_NAME}-v2/r{ENGINE_REVISION}/{voice}/"
                f"k{s.top_k}-p{s.top_p}-t{s.temperature}-rp{s.repetition_penalty}-sp{s.speed}-s{s.seed}"
                + ("-cb" if s.continuous else "")  # a capped sentence keeps other tokens (see t2s_continuous)
            )
        return self._fingerprint

    # ------------------------------------------------------------------------------ synthesis

    def sentence_features(self, sentence: Sentence) -> TextFeatures | None:
        """Phones + BERT of one sentence (None when there is nothing to speak)."""
        return sentence_features(sentence, self.g2p, self.bert)

    def synthesize(self, sentences: Sequence[Sentence], seed: int = 0) -> list[Clip]:
        """One clip per sentence, in order; float32 mono in [-1, 1] at `sample_rate`.

        A sentence without word characters gives an empty clip. Raises SynthesisError naming the
        sentence when its text cannot be phonemised or a model fails on it.
        """
        feats: list[TextFeatures | None] = []
        for sentence in sentences:
            try:
                feats.append(self.sentence_features(sentence))
            except (BookcastError, ValueError, RuntimeError) as exc:
                raise SynthesisError(f"cannot phonemise {sentence.text[:60]!r}: {exc}") from exc
        spoken = [i for i, f in enumerate(feats) if f is not None]
        audio: dict[int, np.ndarray] = {}
        if self.settings.continuous and spoken:  # every sentence through batch_size slots kept full
            # Longest first (the classic longest-processing-time rule): the slots end on short
            # sentences, so the batch drains in a few steps instead of idling on the longest ones
            # (shortest first ends on them: 847 vs 729 steps for 48 sentences in 8 slots;
            # bench_continuous.py). Phones are what a sentence's length follows.
            order = sorted(spoken, key=lambda i: -len(feats[i].phones))  # type: ignore[union-attr]
            # Each finished sentence is vocoded while the others decode (on a GPU; overlap.py).
            with VocoderQueue(lambda i, tokens: self._vocode(tokens, feats[i], seed),  # type: ignore[arg-type]
                              self.device, self.overlap_vocoder) as vocoder:
                self._decode_within_memory([feats[i] for i in order], seed,  # type: ignore[misc]
                                           on_done=lambda k, tokens: vocoder.submit(order[k], tokens))
                audio.update(vocoder.results())
            spoken = []
        lengths = [len(feats[i].norm_text) for i in spoken]  # type: ignore[union-attr]
        for batch in bucket_batches(lengths, self.settings.batch_size):
            items = [spoken[b] for b in batch]
            batch_feats = [feats[i] for i in items]
            tokens = self._decode_within_memory(batch_feats, seed)  # type: ignore[arg-type]
            for i, toks in zip(items, tokens, strict=True):
                audio[i] = self._vocode(toks, feats[i], seed)  # type: ignore[arg-type]
        return [
            Clip(audio.get(i, np.zeros(0, dtype=np.float32)), self.sample_rate, s.text)
            for i, s in enumerate(sentences)
        ]

    def _decode_within_memory(self, batch: list[TextFeatures], seed: int,
                              on_done: Callable[[int, torch.Tensor], None] | None = None,
                              slots: int | None = None) -> list[torch.Tensor]:
        """`_semantic_tokens`, in smaller pieces when the device runs out of memory.

        A batch of long sentences (or many slots) can need more than the card has free: another
        process on it, a book with longer sentences than the one the batch size was tuned on. A
        sentence's tokens depend only on itself and its seed (one random stream per row), so a
        smaller batch gives the same tokens: on an out-of-memory error the batch is halved
        (continuous decoding: the sentences not finished yet, in half the slots), down to one
        sentence, which then fails with a SynthesisError that says so."""
        slots = slots or self.settings.batch_size
        done: dict[int, torch.Tensor] = {}

        def record(k: int, tokens: torch.Tensor) -> None:
            done[k] = tokens
            if on_done is not None:
                on_done(k, tokens)

        try:
            return self._semantic_tokens(batch, seed, record if on_done is not None else None, slots)
        except torch.OutOfMemoryError:
            pass  # retried below, outside the handler, so that the failed attempt's tensors are freed
        rest = [k for k in range(len(batch)) if k not in done]
        if not rest:  # it ran out after the last sentence had finished
            return [done[k] for k in range(len(batch))]
        width = min(slots, len(rest)) if on_done is not None else len(batch)  # rows decoding together
        if width <= 1:
            first = batch[rest[0]]
            raise SynthesisError(f"out of memory on {self.device} decoding one sentence of {len(first.phones)} "
                                 f"phones: {first.norm_text[:60]!r}")
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        log.warning("out of memory on %s decoding %d sentences at once; going on with %d at a time "
                    "(a smaller [settings] batch_size avoids the retry)", self.device, width, width // 2)
        if on_done is not None:
            self._decode_within_memory([batch[k] for k in rest], seed, lambda j, t: record(rest[j], t), width // 2)
            return [done[k] for k in range(len(batch))]
        half = len(batch) // 2
        return self._decode_within_memory(batch[:half], seed) + self._decode_within_memory(batch[half:], seed)

    def _semantic_tokens(self, batch: list[TextFeatures], seed: int,
                         on_done: Callable[[int, torch.Tensor], None] | None = None,
                         slots: int | None = None) -> list[torch.Tensor]:
        """GPT decoding of one bucket: prompt transcript + sentence, prompt tokens continued. With
        `on_done` (continuous decoding, `slots` rows at once), each sentence's tokens are handed
        over as it finishes."""
        s = self.settings
        prompt_text = self.prompt.text
        phones, berts = [], []
        for f in batch:
            ids = (prompt_text.phones if prompt_text else ()) + f.phones
            bert = torch.cat([prompt_text.bert, f.bert], dim=1) if prompt_text else f.bert  # (1024, N)
            phones.append(torch.tensor(ids, dtype=torch.long))
            berts.append(bert.to(self.dtype))
        sampling = SamplingParams(
            top_k=s.top_k, top_p=s.top_p, temperature=s.temperature, repetition_penalty=s.repetition_penalty
        )
        seeds = [derive_seed("t2s", s.seed, seed, f.norm_text) for f in batch]  # one stream per row
        try:
            if on_done is not None and self.prompt.semantic is not None:
                results = decode_continuous(
                    self.t2s, phones, berts, self.prompt.semantic, slots=slots or s.batch_size, sampling=sampling,
                    early_stop_num=self.early_stop_num, seed=seeds, on_done=lambda k, r: on_done(k, r.tokens))
                return [r.tokens for r in results]
            if s.cuda_graphs and self.device.type == "cuda" and self.prompt.semantic is not None:
                results = decode_static(self.t2s, phones, berts, self.prompt.semantic, sampling=sampling,
                                        early_stop_num=self.early_stop_num, seed=seeds, graphs=True)
            else:
                results = decode_batch(self.t2s, phones, berts, self.prompt.semantic, sampling=sampling,
                                       early_stop_num=self.early_stop_num, seed=seeds)
            if on_done is not None:  # reference-free: decoded one by one anyway
                for k, r in enumerate(results):
                    on_done(k, r.tokens)
        except torch.OutOfMemoryError:
            raise  # `_decode_within_memory` retries in smaller pieces
        except (ValueError, RuntimeError) as exc:
            raise SynthesisError(f"GPT decoding failed for {batch[0].norm_text[:60]!r}: {exc}") from exc
        return [r.tokens for r in results]

    @torch.no_grad()
    def _vocode(self, tokens: torch.Tensor, feats: TextFeatures, seed: int) -> np.ndarray:
        """SoVITS decode of one sentence with the cached style vector; float32 (n,) in [-1, 1]."""
        codes = tokens.to(self.device).reshape(1, 1, -1)  # (n_q=1, B=1, T)
        phones = torch.tensor(feats.phones, dtype=torch.long, device=self.device)[None]  # (1, N)
        # CPU generator: the same noise on any device (decode_with_style moves it)
        gen = torch.Generator().manual_seed(derive_seed("sovits", self.settings.seed, seed, feats.norm_text))
        try:
            wav = decode_with_style(self.sovits, codes, phones, self.prompt.ge, self.noise_scale, self.settings.speed,
                                    gen)
        except (ValueError, RuntimeError) as exc:
            raise SynthesisError(f"SoVITS decoding failed for {feats.norm_text[:60]!r}: {exc}") from exc
        out = wav[0, 0].float().cpu().numpy()
        peak = float(np.abs(out).max()) if out.size else 0.0
        if peak > 1.0:  # the reference's clipping guard; quieter clips are left alone
            out = out / peak
        if self.device.type == "cpu":  # the vocoder's activations, a new size every clip (synth/heap.py)
            release_free_heap()
        return out.astype(np.float32, copy=False)


@torch.no_grad()
def decode_with_style(
    sovits: SynthesizerTrnV2,
    codes: torch.Tensor,
    phones: torch.Tensor,
    ge: torch.Tensor,
    noise_scale: float,
    speed: float,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """`SynthesizerTrnV2.decode` with a precomputed style vector `ge` (1, gin, 1), so the reference
    spectrograms are encoded once per voice instead of once per sentence. The noise is drawn in
    float32 on the generator's device, then moved and cast. Returns (B, 1, samples)."""
    m_p, logs_p, mask = sovits.prior(codes, phones, ge, speed)  # (B, inter, T')
    z_p = m_p
    if noise_scale != 0:
        source = generator.device if generator is not None else m_p.device
        noise = torch.randn(m_p.shape, generator=generator, device=source, dtype=torch.float32)
        noise = noise.to(device=m_p.device, dtype=m_p.dtype)  # (B, inter, T')
        z_p = m_p + noise * torch.exp(logs_p) * noise_scale
    z = sovits.flow.reverse(z_p, mask, ge)  # (B, inter, T')
    return sovits.dec(z * mask, ge)  # (B, 1, samples)
