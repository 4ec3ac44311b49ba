"""A GPT-SoVITS voice: a folder with `voice.toml`, the two weight files and reference clips.

Users train a voice with GPT-SoVITS and bring its files; this module is the one place that knows
the folder layout. It parses (`load_voice`), validates everything a user can get wrong
(`check_voice`, shown by `bookcast voice check <dir>`) and names the sound for the clip cache
(`voice_fingerprint`). Loading models is the engine's job.

`voice.toml` (paths are relative to the folder):

    name = "alice"                                  # optional, defaults to the folder name
    gpt = "alice-e15.ckpt"                          # optional when the folder holds one *.ckpt
    sovits = "alice_e8_s200.pth"                    # optional when the folder holds one *.pth
    bert = "../pretrained/chinese-roberta-wwm-ext-large"
    hubert = "../pretrained/chinese-hubert-base"

    [[reference]]                                   # the first one is the prompt
    audio = "ref.wav"
    text = "今天天气真好。"                          # optional: no text → reference-free mode
    language = "zh"

    [[reference]]                                   # further clips only add timbre (averaged ge)
    audio = "ref2.wav"

    [settings]                                      # all optional; defaults below
    top_k = 15
    top_p = 1.0
    temperature = 1.0
    repetition_penalty = 1.35
    speed = 1.0
    seed = 0
    batch_size = 8
    continuous = false                              # true: batch_size slots kept full (see t2s_continuous)
    cuda_graphs = false                             # true: static KV cache + CUDA graphs on a GPU (t2s_static)
    precision = "auto"                              # auto | float32 | float16 | bfloat16 (see PRECISIONS)
"""
from __future__ import annotations

import hashlib
import logging
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from synth.errors import VoiceError

if TYPE_CHECKING:  # a runtime import would be circular (voice_check imports this module)
    from synth.engines.gpt_sovits.voice_check import VoiceReport

log = logging.getLogger(__name__)

VOICE_FILE = "voice.toml"
LANGUAGES = ("zh", "en")
VoiceLang = Literal["zh", "en"]
_TOP_KEYS = {"engine", "name", "gpt", "sovits", "bert", "hubert", "reference", "settings"}
_REFERENCE_KEYS = {"audio", "text", "language"}
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class SamplingSettings:
    """Decoding defaults of a voice; the first four are the GPT-SoVITS inference defaults."""

    top_k: int = 15
    top_p: float = 1.0
    temperature: float = 1.0
    repetition_penalty: float = 1.35
    speed: float = 1.0
    seed: int = 0
    batch_size: int = 8
    # Continuous batching: `batch_size` decoding slots, each refilled with the worker's next sentence
    # as soon as its row stops (model/t2s_continuous.py); workers get 4 × batch_size sentences at a
    # time to keep them full. Off: fixed batches, as the reference pipeline decodes.
    continuous: bool = False
    # Static KV cache with each decoding step replayed as a CUDA graph (model/t2s_static.py): the
    # same tokens, fewer kernel launches. Only on a CUDA device; a CPU decodes as without it.
    cuda_graphs: bool = False
    # The models' number format (PRECISIONS). "auto" is the reference's choice: float16 on CUDA,
    # float32 on a CPU. "bfloat16" is the fast CPU opt-in for the GPT and BERT (1.8× and 2.3× on CPUs
    # with AVX-512 BF16 / AMX; SoVITS stays float32, see engine.wave_dtype): not the reference's numbers,
    # so the tokens differ from float32 ones (bench/README.md).
    # Left out of the voice's fingerprint, as the device is: any precision renders the same voice,
    # and switching it keeps the clip cache.
    precision: str = "auto"


PRECISIONS = ("auto", "float32", "float16", "bfloat16")
# Said by the engine when it falls back, and by `bookcast voice check` before it has to.
BF16_FALLBACK = ('precision = "bfloat16" needs a CPU with AVX-512 BF16 or AMX; this one would emulate it, '
                 "so the voice runs in float32 here")


@dataclass(frozen=True)
class ReferenceClip:
    """A reference recording; `text` empty means no transcript (reference-free prompt)."""

    audio: Path
    text: str = ""
    language: VoiceLang = "zh"


@dataclass(frozen=True)
class Voice:
    """A parsed voice folder; every path is absolute."""

    name: str
    root: Path
    gpt: Path
    sovits: Path
    bert: Path
    hubert: Path
    references: tuple[ReferenceClip, ...]
    settings: SamplingSettings = field(default_factory=SamplingSettings)

    @property
    def prompt(self) -> ReferenceClip:
        """The clip whose transcript and semantic tokens prime the GPT."""
        return self.references[0]

    @property
    def reference_free(self) -> bool:
        return not self.prompt.text.strip()


# ---------------------------------------------------------------------------------------- parsing


def _require_type(value: Any, kind: type | tuple[type, ...], what: str, toml_path: Path) -> Any:
    """`value` when it is of `kind` (a bool is a number only where a bool is asked for)."""
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise VoiceError(f"{what} must be a {names}, got {value!r}", toml_path)
    return value


def _parse_settings(raw: Any, toml_path: Path) -> SamplingSettings:
    if raw is None:
        return SamplingSettings()
    if not isinstance(raw, dict):
        raise VoiceError("[settings] must be a table", toml_path)
    known = {f.name: f for f in fields(SamplingSettings)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise VoiceError(f"unknown [settings] keys: {', '.join(unknown)}", toml_path)
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if known[name].type == "bool":
            values[name] = _require_type(value, bool, f"settings.{name}", toml_path)
        elif known[name].type == "str":
            values[name] = _require_type(value, str, f"settings.{name}", toml_path)
        elif known[name].type == "int":
            values[name] = _require_type(value, int, f"settings.{name}", toml_path)
        else:
            values[name] = float(_require_type(value, (int, float), f"settings.{name}", toml_path))
    s = SamplingSettings(**values)
    checks = [
        (s.top_k >= 1, "top_k must be >= 1"),
        (0.0 < s.top_p <= 1.0, "top_p must be in (0, 1]"),
        (s.temperature > 0.0, "temperature must be > 0"),
        (s.repetition_penalty > 0.0, "repetition_penalty must be > 0"),
        (0.25 <= s.speed <= 4.0, "speed must be in [0.25, 4]"),
        (s.seed >= 0, "seed must be >= 0"),
        (1 <= s.batch_size <= 256, "batch_size must be in [1, 256]"),
        (s.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}, got {s.precision!r}"),
    ]
    for ok, message in checks:
        if not ok:
            raise VoiceError(f"settings: {message}", toml_path)
    return s


def _resolve(root: Path, value: Any, key: str, toml_path: Path) -> Path:
    text = _require_type(value, str, key, toml_path).strip()
    if not text:
        raise VoiceError(f"{key} is empty", toml_path)
    path = Path(text).expanduser()
    return (path if path.is_absolute() else root / path).resolve()


def _find_weight(root: Path, raw: dict, key: str, suffix: str, toml_path: Path) -> Path:
    """The path given for `key`, or the folder's only `*suffix` file when the key is absent."""
    if key in raw:
        return _resolve(root, raw[key], key, toml_path)
    found = sorted(p for p in root.glob(f"*{suffix}") if p.is_file())
    if len(found) == 1:
        return found[0].resolve()
    what = "no" if not found else f"{len(found)}"
    raise VoiceError(f"'{key}' is not set and the folder has {what} *{suffix} files; name one", toml_path)


def _parse_references(root: Path, raw: Any, toml_path: Path) -> tuple[ReferenceClip, ...]:
    if raw is None:
        raise VoiceError("no [[reference]] clip; add at least one with audio, text and language", toml_path)
    if not isinstance(raw, list) or not raw:
        raise VoiceError("[[reference]] must be a list of tables", toml_path)
    clips = []
    for i, item in enumerate(raw, 1):
        if not isinstance(item, dict):
            raise VoiceError(f"reference {i} must be a table", toml_path)
        unknown = sorted(set(item) - _REFERENCE_KEYS)
        if unknown:
            raise VoiceError(f"reference {i}: unknown keys {', '.join(unknown)}", toml_path)
        if "audio" not in item:
            raise VoiceError(f"reference {i} has no audio", toml_path)
        text = _require_type(item.get("text", ""), str, f"reference {i} text", toml_path).strip()
        lang = _require_type(item.get("language", "zh"), str, f"reference {i} language", toml_path)
        if lang not in LANGUAGES:
            raise VoiceError(
                f"reference {i}: language {lang!r} is not supported (use one of {', '.join(LANGUAGES)})",
                toml_path,
            )
        clips.append(ReferenceClip(_resolve(root, item["audio"], f"reference {i} audio", toml_path), text, lang))
    return tuple(clips)


def parse_voice(directory: str | Path) -> Voice:
    """Parse `voice.toml` without touching the files it names.

    Raises VoiceError when the folder or `voice.toml` is missing, not valid TOML, or has missing,
    unknown or ill-typed entries.
    """
    root = Path(directory).expanduser().resolve()
    toml_path = root / VOICE_FILE
    if not root.is_dir():
        raise VoiceError("voice folder not found", root)
    try:
        raw = tomllib.loads(toml_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise VoiceError(f"no {VOICE_FILE} in the voice folder", root) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise VoiceError(f"cannot read {VOICE_FILE} ({exc})", toml_path) from exc
    except tomllib.TOMLDecodeError as exc:
        raise VoiceError(f"invalid TOML ({exc})", toml_path) from exc
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise VoiceError(f"unknown keys: {', '.join(unknown)}", toml_path)
    for key in ("bert", "hubert"):
        if key not in raw:
            raise VoiceError(f"'{key}' (folder of the pretrained model) is not set", toml_path)
    name = _require_type(raw.get("name", root.name), str, "name", toml_path).strip() or root.name
    return Voice(
        name=name,
        root=root,
        gpt=_find_weight(root, raw, "gpt", ".ckpt", toml_path),
        sovits=_find_weight(root, raw, "sovits", ".pth", toml_path),
        bert=_resolve(root, raw["bert"], "bert", toml_path),
        hubert=_resolve(root, raw["hubert"], "hubert", toml_path),
        references=_parse_references(root, raw.get("reference"), toml_path),
        settings=_parse_settings(raw.get("settings"), toml_path),
    )


def missing_files(voice: Voice) -> list[tuple[Path, str, str]]:
    """(path, what, problem) for every file or folder the voice names that is missing or of the wrong
    kind: weights and clips must be regular files (`/dev/zero` or a pipe would be read for ever
    when the voice is fingerprinted), the BERT/HuBERT models folders."""
    files = [(voice.gpt, "GPT weights"), (voice.sovits, "SoVITS weights")]
    files += [(c.audio, f"reference clip {i}") for i, c in enumerate(voice.references, 1)]
    folders = [(voice.bert, "BERT folder"), (voice.hubert, "HuBERT folder")]
    out = []
    for wanted, right_kind, problem in ((files, Path.is_file, "is not a regular file"),
                                        (folders, Path.is_dir, "is not a folder")):
        for path, what in wanted:
            if not path.exists():
                out.append((path, what, "not found"))
            elif not right_kind(path):
                out.append((path, what, problem))
    return out


def load_voice(directory: str | Path) -> Voice:
    """Parse a voice folder and make sure every file it names exists.

    Raises VoiceError naming the first missing file (run `check_voice` for the full list).
    """
    voice = parse_voice(directory)
    missing = missing_files(voice)
    if missing:
        path, what, problem = missing[0]
        raise VoiceError(f"{what} {problem} (named in {VOICE_FILE})", path)
    return voice


# ------------------------------------------------------------------------------------ fingerprint

_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def _file_digest(path: Path) -> str:
    """sha256 of a file's contents, memoised per (path, size, mtime) because weights are large."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    cached = _HASH_CACHE.get(key)
    if cached is None:
        h = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(_HASH_CHUNK):
                h.update(chunk)
        cached = _HASH_CACHE[key] = h.hexdigest()
    return cached


def _tree_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and not any(s.startswith(".") for s in p.relative_to(path).parts))


def voice_fingerprint(voice: Voice) -> str:
    """sha256 over the contents of every file the voice uses plus its transcripts and settings.

    Paths do not enter the hash (a moved voice keeps its cache); contents do (a retrained voice
    with the same file names does not). Raises VoiceError when a file cannot be read.
    """
    h = hashlib.sha256(b"bookcast-voice-1\n")
    parts: list[tuple[str, Path]] = [("gpt", voice.gpt), ("sovits", voice.sovits)]
    parts += [("bert", voice.bert), ("hubert", voice.hubert)]
    try:
        for label, base in parts:
            for f in _tree_files(base):
                rel = f.relative_to(base).as_posix() if base.is_dir() else ""
                h.update(f"{label}:{rel}:{_file_digest(f)}\n".encode())
        for i, clip in enumerate(voice.references):
            h.update(f"ref{i}:{_file_digest(clip.audio)}:{clip.language}:{clip.text}\n".encode())
    except OSError as exc:
        raise VoiceError(f"cannot read a voice file for fingerprinting ({exc})", voice.root) from exc
    rendering = {k: v for k, v in asdict(voice.settings).items() if k != "precision"}  # see SamplingSettings
    h.update(repr(sorted(rendering.items())).encode())
    return h.hexdigest()


def check_voice(directory: str | Path) -> VoiceReport:
    """Validate every file of a voice folder; see `synth.engines.gpt_sovits.voice_check.check_voice`."""
    from synth.engines.gpt_sovits.voice_check import check_voice as _check

    return _check(directory)
