"""The embedded default voice: espeak-ng through ctypes, from the `espeakng-loader` wheel.

The wheel ships libespeak-ng and its data, so bookcast speaks with no weights, no GPU and no system
package. espeak-ng keeps global state per process, so one lock serialises every call; `zh` runs use
the Mandarin voice and `en` runs an English voice, concatenated into one clip per sentence.
"""
from __future__ import annotations

import ctypes
import hashlib
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ingest.segment import Sentence
from synth.engine import Clip
from synth.errors import SynthesisError

log = logging.getLogger(__name__)

_AUDIO_OUTPUT_SYNCHRONOUS = 2  # espeak_AUDIO_OUTPUT: synthesise into our callback, no sound device
_CHARS_UTF8 = 1
_PHONEMES = 0x100  # espeakPHONEMES: [[...]] in the text is espeak phoneme input (lexicon words)
_POS_CHARACTER = 1
_PARAM_RATE, _PARAM_PITCH = 1, 3
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


@dataclass(frozen=True)
class EspeakConfig:
    """Voices per language and prosody; `rate` is words per minute (espeak's default is 175)."""

    voices: tuple[tuple[str, str], ...] = (("zh", "cmn"), ("en", "en-us"))
    rate: int = 165
    pitch: int = 50
    gap_between_runs_s: float = 0.03  # a breath between a zh and an en run inside one sentence


_VARIANT = "bookcast"
_VARIANT_TEXT = "language variant\nname bookcast\nflutter 0\nroughness 0\n"


def _data_with_variant(wheel_data: Path) -> Path:
    """A private espeak-ng data folder: links to the wheel's data plus our voice variant.

    espeak-ng's pitch "flutter" runs a phase counter that survives between utterances, so the same
    sentence sounds slightly different depending on what was spoken before. The clip cache and
    identical output on every runner need a clip to depend on its text only, so our variant sets
    `flutter 0`. The folder is built once (symlinks, atomically renamed into place).
    """
    import os
    import tempfile

    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "bookcast"
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError:
        base = Path(tempfile.gettempdir()) / "bookcast-cache"
        base.mkdir(parents=True, exist_ok=True)
    stamp = hashlib.sha256(f"{wheel_data}|{_VARIANT_TEXT}".encode()).hexdigest()[:12]
    root = base / f"espeak-{stamp}"
    if (root / "espeak-ng-data" / "voices" / "!v" / _VARIANT).exists():
        return root
    tmp = Path(tempfile.mkdtemp(dir=base, prefix=".espeak-"))
    data = tmp / "espeak-ng-data"
    data.mkdir()
    for entry in wheel_data.iterdir():
        if entry.name != "voices":
            (data / entry.name).symlink_to(entry)
    (data / "voices").mkdir()
    for entry in (wheel_data / "voices").iterdir():
        if entry.name != "!v":
            (data / "voices" / entry.name).symlink_to(entry)
    variants = data / "voices" / "!v"
    variants.mkdir()
    for entry in (wheel_data / "voices" / "!v").iterdir():
        (variants / entry.name).symlink_to(entry)
    (variants / _VARIANT).write_text(_VARIANT_TEXT)
    try:
        tmp.rename(root)
    except OSError:  # another process won the race: use its folder
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return root


class _Espeak:
    """The process-wide library handle; created once, used under `lock`."""

    lock = threading.Lock()
    _instance: "_Espeak | None" = None

    def __init__(self) -> None:
        import espeakng_loader  # imported lazily: only the default voice needs it

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data = _data_with_variant(Path(espeakng_loader.get_data_path()))
        self.version = self._version()
        rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data).encode(), 0)
        if rate <= 0:
            raise SynthesisError(f"espeak-ng failed to initialise with data at {data}")
        self.sample_rate = int(rate)
        self._chunks: list[np.ndarray] = []
        self._cb = _CALLBACK(self._collect)  # keep a reference: ctypes does not
        self.lib.espeak_SetSynthCallback(self._cb)
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]

    def _version(self) -> str:
        fn = self.lib.espeak_Info
        fn.restype = ctypes.c_char_p
        fn.argtypes = [ctypes.c_void_p]
        return (fn(None) or b"?").decode()

    @classmethod
    def get(cls) -> "_Espeak":
        with cls.lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _collect(self, wav, n: int, _events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    def speak(self, text: str, voice: str, rate: int, pitch: int) -> np.ndarray:
        """Synthesise one run; returns float32 mono at `sample_rate`. Caller holds `lock`."""
        if self.lib.espeak_SetVoiceByName(f"{voice}+{_VARIANT}".encode()) != 0:
            raise SynthesisError(f"espeak-ng has no voice {voice!r}")
        self.lib.espeak_SetParameter(_PARAM_RATE, rate, 0)
        self.lib.espeak_SetParameter(_PARAM_PITCH, pitch, 0)
        self._chunks = []
        self.lib.espeak_ng_SetRandSeed(0x5EED)  # fricative noise: same seed, same clip
        data = text.encode("utf-8") + b"\0"
        err = self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8 | _PHONEMES, None, None)
        self.lib.espeak_Synchronize()
        if err != 0:
            raise SynthesisError(f"espeak-ng failed on {text[:40]!r} (error {err})")
        pcm = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return pcm.astype(np.float32) / 32768.0


def take_prosody(rate: int, pitch: int, seed: int) -> tuple[int, int]:
    """espeak's reading of take `seed`: seed 0 is the configured voice exactly; any other seed a
    fixed, slightly different pace (±8 %) and pitch (±8 of 100) — espeak is deterministic, so this is
    what a re-take in proofing can change, and the same seed always gives the same take."""
    if seed == 0:
        return rate, pitch
    draw = np.random.default_rng(seed & 0xFFFFFFFF).uniform(-1.0, 1.0, 2)
    return max(80, round(rate * (1.0 + 0.08 * draw[0]))), min(99, max(0, round(pitch + 8 * draw[1])))


class EspeakEngine:
    """Engine Protocol implementation for espeak-ng; the same text and seed always give the same
    audio (`take_prosody`: what a seed changes)."""

    name = "espeak"

    def __init__(self, config: EspeakConfig = EspeakConfig(), lexicon=None) -> None:
        self.config = config
        self._lib = _Espeak.get()
        self.sample_rate = self._lib.sample_rate
        self._voices = dict(config.voices)
        # The project lexicon's English entries (ARPAbet), said as espeak phonemes.
        self._said = {w.lower(): "[[" + arpabet_to_espeak(p) + "]]" for w, p in (lexicon.en if lexicon else {}).items()}
        self._words = (re.compile(r"(?<![\w'])(" + "|".join(re.escape(w) for w in sorted(self._said, key=len, reverse=True))
                                  + r")(?![\w'])", re.IGNORECASE) if self._said else None)

    def fingerprint(self) -> str:
        key = f"espeak|{self._lib.version}|{self.config!r}|{_VARIANT_TEXT}"
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def synthesize(self, sentences: Sequence[Sentence], seed: int = 0) -> list[Clip]:
        rate, pitch = take_prosody(self.config.rate, self.config.pitch, seed)
        return [self._sentence(s, rate, pitch) for s in sentences]

    def _sentence(self, sentence: Sentence, rate: int, pitch: int) -> Clip:
        gap = np.zeros(int(self.config.gap_between_runs_s * self.sample_rate), np.float32)
        parts: list[np.ndarray] = []
        with _Espeak.lock:
            for run in sentence.runs:
                voice = self._voices.get(run.lang) or voice_for(run.lang)
                if voice is None and run.lang not in ("zh", "en") and all(ord(c) < 0x250 for c in run.text):
                    voice = self._voices.get("en")  # no espeak voice (Sanskrit): the book voice reads it
                if voice is None:
                    log.warning("espeak: no voice for language %s; skipping %r", run.lang, run.text[:30])
                    continue
                text = run.text
                if self._words is not None and run.lang == "en":
                    text = self._words.sub(lambda m: self._said[m.group(1).lower()], text)
                audio = self._lib.speak(text, voice, rate, pitch)
                if parts and audio.size:
                    parts.append(gap)
                parts.append(audio)
        audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        return Clip(audio=audio, sample_rate=self.sample_rate, text=sentence.text)


# ARPAbet (the lexicon's English notation) → espeak-ng's English phoneme mnemonics.
_ARPA = {"AA": "A:", "AE": "a", "AH": "V", "AO": "O:", "AW": "aU", "AY": "aI", "EH": "E", "ER": "3:", "EY": "eI",
         "IH": "I", "IY": "i:", "OW": "oU", "OY": "OI", "UH": "U", "UW": "u:", "B": "b", "CH": "tS", "D": "d",
         "DH": "D", "F": "f", "G": "g", "HH": "h", "JH": "dZ", "K": "k", "L": "l", "M": "m", "N": "n", "NG": "N",
         "P": "p", "R": "r", "S": "s", "SH": "S", "T": "t", "TH": "T", "V": "v", "W": "w", "Y": "j", "Z": "z",
         "ZH": "Z"}


def arpabet_to_espeak(phones: Sequence[str]) -> str:
    """ARPAbet with stress digits → espeak phonemes: primary stress ' and secondary , before the
    vowel, unstressed AH as schwa."""
    out = []
    for phone in phones:
        base, stress = phone.rstrip("012"), phone[len(phone.rstrip("012")):]
        if base == "AH" and stress == "0":
            out.append("@")
            continue
        if base == "ER" and stress == "0":
            out.append("3")
            continue
        mark = "'" if stress == "1" else "," if stress == "2" else ""
        out.append(mark + _ARPA.get(base, ""))
    return "".join(out)


def voice_for(lang: str) -> str | None:
    """espeak's own voice for a language code (de, la, grc, fr-be ...), or for its primary subtag."""
    from synth.engines.espeak import available_voices

    known = available_voices()
    for code in (lang.lower(), lang.lower().split("-")[0]):
        if code in known:
            return code
    return None
