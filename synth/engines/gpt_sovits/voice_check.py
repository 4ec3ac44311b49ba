"""`bookcast voice check <dir>`: validate every file of a voice folder and say what was found.

A user brings files from a training run on another machine; the usual mistakes are a wrong path, a
v3/v4 weight file, a reference clip that is too short, too long or silent, or the wrong pretrained
folder. The check collects every problem instead of stopping at the first, loads each model once
(strictly, safely) and reports versions, sizes, parameter counts and the sample rate.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ingest.errors import BookcastError
from synth.errors import VoiceError
from synth.engines.gpt_sovits.voice import BF16_FALLBACK, VOICE_FILE, Voice, missing_files, parse_voice

log = logging.getLogger(__name__)

Severity = Literal["ok", "warning", "error"]
# A clip quieter than this (RMS, dBFS) is treated as silent: HuBERT/ge would encode noise floor.
SILENCE_RMS_DBFS = -60.0
CLIPPING_PEAK = 0.999
V2_PHONE_SYMBOLS = 732


@dataclass(frozen=True)
class Finding:
    severity: Severity
    subject: str
    detail: str


def _bf16_native() -> bool:
    from synth.engines.gpt_sovits.model.t2s_cpu import bf16_native  # torch: only when the question is asked

    return bf16_native()


@dataclass(frozen=True)
class VoiceReport:
    """Everything `check_voice` found, in check order; `ok` is False when any finding is an error."""

    root: Path
    name: str
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    def lines(self) -> list[str]:
        """Human-readable lines, one per finding, then a verdict."""
        out = [f"voice {self.name} ({self.root})"]
        width = max((len(f.subject) for f in self.findings), default=0)
        for f in self.findings:
            out.append(f"  {f.severity:<7} {f.subject:<{width}}  {f.detail}")
        n_err = len(self.errors)
        n_warn = sum(f.severity == "warning" for f in self.findings)
        verdict = "OK" if self.ok else "NOT USABLE"
        out.append(f"{verdict}: {n_err} error(s), {n_warn} warning(s)")
        return out


def _mib(path: Path) -> str:
    return f"{path.stat().st_size / 2**20:.1f} MiB"


def _millions(n: int) -> str:
    return f"{n / 1e6:.1f} M params"


def _check_gpt(voice: Voice) -> list[Finding]:
    from synth.engines.gpt_sovits.model.checkpoint import load_gpt_checkpoint
    from synth.engines.gpt_sovits.model.t2s_model import load_t2s

    ckpt = load_gpt_checkpoint(voice.gpt)
    model = load_t2s(ckpt)  # strict: every key and shape
    cfg = model.cfg
    params = sum(t.numel() for t in ckpt.weights.values())
    max_sec = ckpt.config.get("data", {}).get("max_sec", "?")
    detail = (
        f"{voice.gpt.name}: {ckpt.info or 'no info'}, {_millions(params)}, {cfg.num_layers} layers × "
        f"{cfg.hidden_dim}, {cfg.num_heads} heads, {cfg.phoneme_vocab_size} phones, max {max_sec} s, "
        f"{_mib(voice.gpt)}"
    )
    out = [Finding("ok", "GPT weights", detail)]
    if cfg.phoneme_vocab_size != V2_PHONE_SYMBOLS:
        out.append(Finding("error", "GPT weights", f"phone vocabulary is {cfg.phoneme_vocab_size}, v2 needs {V2_PHONE_SYMBOLS}"))
    return out


def _check_sovits(voice: Voice) -> list[Finding]:
    from synth.engines.gpt_sovits.model.checkpoint import load_sovits_checkpoint
    from synth.engines.gpt_sovits.model.sovits import SovitsConfig, SynthesizerTrnV2

    ckpt = load_sovits_checkpoint(voice.sovits)
    cfg = SovitsConfig.from_config(ckpt.config, source=ckpt.path)
    SynthesizerTrnV2(cfg).load_weights(ckpt.weights, source=ckpt.path)  # strict: every key and shape
    params = sum(t.numel() for t in ckpt.weights.values())
    detail = (
        f"{voice.sovits.name}: {ckpt.version}, {ckpt.info or 'no info'}, {_millions(params)}, "
        f"{cfg.sampling_rate} Hz, hop {cfg.hop_length}, {cfg.n_symbols} phones, {_mib(voice.sovits)}"
    )
    return [Finding("ok", "SoVITS weights", detail)]


def _check_bert(voice: Voice) -> list[Finding]:
    from synth.engines.gpt_sovits.model.bert import BertFeatures

    bert = BertFeatures(voice.bert)
    cfg = bert.model.config
    detail = f"{voice.bert.name}: {cfg.num_hidden_layers} layers × {cfg.hidden_size}, {_millions(bert.parameters)}"
    return [Finding("ok", "BERT", detail)]


def _check_hubert(voice: Voice) -> list[Finding]:
    from synth.engines.gpt_sovits.model.ssl import HubertFeatures

    hubert = HubertFeatures(voice.hubert)
    cfg = hubert.model.config
    detail = f"{voice.hubert.name}: {cfg.num_hidden_layers} layers × {cfg.hidden_size}, {_millions(hubert.parameters)}"
    return [Finding("ok", "HuBERT", detail)]


def check_reference_audio(path: Path) -> tuple[str, list[str]]:
    """(description, problems) of one reference clip: duration on the 16 kHz signal (3–10 s), not
    silent. Raises VoiceError when the file cannot be read."""
    from synth.engines.gpt_sovits.model.ssl import (
        HUBERT_SAMPLE_RATE,
        check_reference_length,
        read_audio,
        reference_16k,
    )

    audio, rate = read_audio(path)
    wav16k = reference_16k(audio, rate)
    peak = float(np.abs(audio).max())
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    rms_db = 20 * np.log10(max(rms, 1e-12))
    desc = (
        f"{wav16k.shape[0] / HUBERT_SAMPLE_RATE:.2f} s, {rate} Hz, {audio.shape[0]} ch, "
        f"peak {20 * np.log10(max(peak, 1e-12)):.1f} dBFS, RMS {rms_db:.1f} dBFS"
    )
    problems = []
    try:
        check_reference_length(wav16k, path)
    except VoiceError as exc:
        problems.append(str(exc).removeprefix(f"{path}: "))
    if rms_db < SILENCE_RMS_DBFS:
        problems.append(f"reference clip is silent (RMS {rms_db:.1f} dBFS)")
    return desc, problems


def _check_references(voice: Voice, missing: set[Path]) -> list[Finding]:
    out = []
    for i, clip in enumerate(voice.references, 1):
        subject = f"reference {i}"
        if clip.audio in missing:
            continue
        try:
            desc, problems = check_reference_audio(clip.audio)
        except VoiceError as exc:
            out.append(Finding("error", subject, str(exc)))
            continue
        role = "prompt" if i == 1 else "timbre only"
        text = f'"{clip.text[:30]}{"…" if len(clip.text) > 30 else ""}"' if clip.text else "no transcript"
        if problems:
            out.append(Finding("error", subject, f"{clip.audio.name}: {'; '.join(problems)} ({desc})"))
        else:
            out.append(Finding("ok", subject, f"{clip.audio.name}: {desc}; {role}, {clip.language}, {text}"))
        if i == 1 and not clip.text:
            out.append(Finding("warning", subject, "no transcript: the voice runs in reference-free mode"))
        if i > 1 and clip.text:
            out.append(Finding("warning", subject, "transcript ignored: only the first clip primes the GPT"))
    return out


def _check_transcript(voice: Voice) -> list[Finding]:
    """The prompt transcript must phonemise (same front end and G2P as the book text)."""
    from synth.engines.gpt_sovits.text import default_g2p, transcript_runs

    clip = voice.prompt
    if not clip.text:
        return []
    g2p = default_g2p()
    runs = transcript_runs(clip.text, clip.language)
    counts = [len(g2p(r.text, r.lang)[0]) for r in runs]
    if not sum(counts):
        return [Finding("error", "transcript", f"nothing speakable in {clip.text[:40]!r}")]
    langs = "+".join(dict.fromkeys(r.lang for r in runs))
    return [Finding("ok", "transcript", f"{sum(counts)} phones ({langs})")]


def check_voice(directory: str | Path) -> VoiceReport:
    """Validate a voice folder completely; never raises for problems in the voice, it reports them.

    Each check is isolated: a broken GPT file does not hide a too-short reference clip.
    """
    root = Path(directory).expanduser().resolve()
    try:
        voice = parse_voice(root)
    except VoiceError as exc:
        return VoiceReport(root, root.name, (Finding("error", VOICE_FILE, str(exc)),))
    st = voice.settings
    settings = (
        f"top_k {st.top_k}, top_p {st.top_p:g}, temperature {st.temperature:g}, repetition_penalty "
        f"{st.repetition_penalty:g}, speed {st.speed:g}, seed {st.seed}, batch {st.batch_size}"
    )
    if st.precision != "auto":
        settings += f", precision {st.precision}"
    findings = [Finding("ok", VOICE_FILE, f"{len(voice.references)} reference clip(s); {settings}")]
    if st.precision == "bfloat16" and not _bf16_native():
        findings.append(Finding("warning", VOICE_FILE, BF16_FALLBACK))
    unusable = missing_files(voice)
    missing = {p for p, _, _ in unusable}
    findings += [Finding("error", what, f"{problem}: {p}") for p, what, problem in unusable]
    steps: list[tuple[str, Path, Callable[[Voice], list[Finding]]]] = [
        ("GPT weights", voice.gpt, _check_gpt),
        ("SoVITS weights", voice.sovits, _check_sovits),
        ("BERT", voice.bert, _check_bert),
        ("HuBERT", voice.hubert, _check_hubert),
    ]
    for subject, path, step in steps:
        if path in missing:
            continue
        try:
            findings += step(voice)
        except BookcastError as exc:  # VoiceError / UnsupportedError: one line naming the file
            findings.append(Finding("error", subject, str(exc)))
    findings += _check_references(voice, missing)
    try:
        findings += _check_transcript(voice)
    except (BookcastError, ValueError) as exc:
        findings.append(Finding("error", "transcript", f"cannot phonemise the transcript ({exc})"))
    return VoiceReport(root, voice.name, tuple(findings))
