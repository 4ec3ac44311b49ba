"""Safe, strict loading of GPT-SoVITS weight files (GPT `.ckpt` and SoVITS `.pth`).

Why this module exists: the official files are torch pickles, and a pickle can run arbitrary code.
We only ever load them with `torch.load(weights_only=True)`; the one foreign class the SoVITS file
needs (the trainer's `utils.HParams` config object) is mapped onto an inert stand-in that only
receives attributes. Anything else in the pickle is refused before it can run.

File formats (verified on the shared fixtures):
- GPT `.ckpt`: zip archive, top level {"weight": OrderedDict['model.' + key -> fp16], "config": dict,
  "info": "GPT-e{epoch}"}.
- SoVITS `.pth`: zip archive, top level {"weight": dict[key -> fp16] (no `enc_q.*`), "config":
  utils.HParams, "info": "{epoch}epoch_{step}iteration"}. Newer trainers overwrite the zip magic
  `PK` with a two-byte version tag (b'00'..b'06'); the bytes after it are the unchanged zip.

Only SoVITS v2 is supported; every other version is refused with UnsupportedError.
"""
from __future__ import annotations

import io
import logging
import pickle
import stat
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ingest.errors import UnsupportedError
from synth.errors import VoiceError

log = logging.getLogger(__name__)

# Two-byte header written by the reference trainer in place of the zip magic -> version name.
_HEADER_VERSIONS: dict[bytes, str] = {
    b"00": "v1",
    b"01": "v2",
    b"02": "v3",
    b"03": "v3-lora",
    b"04": "v4-lora",
    b"05": "v2Pro",
    b"06": "v2ProPlus",
}
_ZIP_MAGIC = b"PK"
_SUPPORTED_SOVITS = "v2"
# v1 has 322 phone symbols, v2 has 732; a plain zip file carries no version tag, so the phone
# embedding size is the only reliable signal (file size heuristics are wrong for small models).
_V1_SYMBOL_COUNT = 322
_TEXT_EMBEDDING_KEY = "enc_p.text_embedding.weight"
_GPT_KEY_PREFIX = "model."
# How many offending key names an error message lists before summarising with a count.
_MAX_NAMES_IN_ERROR = 6


class HParamsStandIn:
    """Inert receiver for the trainer's pickled `utils.HParams` config.

    The weights-only unpickler builds it with `cls.__new__(cls)` and then updates `__dict__` with the
    saved attributes; it has no methods that could run, which is the point.
    """


@dataclass(frozen=True)
class GptCheckpoint:
    """A loaded GPT (text-to-semantic) weight file.

    `weights` keys have the Lightning `model.` prefix removed; `config["model"]` holds the
    hyper-parameters and `config["data"]["max_sec"]` the longest sentence the model was trained on.
    """

    weights: dict[str, torch.Tensor]
    config: dict
    info: str
    path: Path


@dataclass(frozen=True)
class SovitsCheckpoint:
    """A loaded SoVITS (semantic-to-waveform) weight file; `config` is the HParams as nested dicts."""

    weights: dict[str, torch.Tensor]
    config: dict
    info: str
    version: str
    path: Path


def _torch_load_safe(source: str | Path | io.BytesIO, path: Path) -> Any:
    """`torch.load` restricted to tensors, plain containers and the HParams stand-in.

    Raises VoiceError for anything that is not a readable, safe torch archive; the error says so when
    the pickle asked for code outside the allow-list (which is then never executed).
    """
    try:
        with torch.serialization.safe_globals([(HParamsStandIn, "utils.HParams")]):
            return torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "global" in str(exc).lower() or "unsupported" in str(exc).lower():
            raise VoiceError(
                "refusing to load: the weight file's pickle asks for code outside the safe "
                f"allow-list ({first_line[:160]}); re-export it or check where it came from",
                path,
            ) from exc
        raise VoiceError(f"not a readable torch weight file ({first_line[:160]})", path) from exc
    except (RuntimeError, EOFError, ValueError, zipfile.BadZipFile, KeyError, AttributeError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        first_line = first_line.split(". ")[0]  # torch appends a paragraph of zip-reader advice
        raise VoiceError(
            f"not a readable torch weight file, truncated or corrupt? ({first_line[:160]})", path
        ) from exc


MAX_WEIGHT_FILE_BYTES = 4 << 30  # official v2 files are 80-160 MB; a fine-tune never nears this


def _read_bytes(path: Path) -> bytes:
    """The whole file; VoiceError when it is not a regular file (`/dev/zero`, a FIFO: reading
    either never ends), is larger than any weight file, cannot be read or is too short."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise VoiceError("is not a regular file (a device, a pipe or a folder), so not a weight file", path)
        if info.st_size > MAX_WEIGHT_FILE_BYTES:
            raise VoiceError(f"is {info.st_size / 2**30:.1f} GiB; weight files over "
                             f"{MAX_WEIGHT_FILE_BYTES >> 30} GiB are refused", path)
        with path.open("rb") as fh:
            data = fh.read(info.st_size + 1)  # (a buffer of the stated size, not of the limit)
    except OSError as exc:
        raise VoiceError(f"cannot read weight file ({exc.strerror or exc})", path) from exc
    if len(data) < 4:
        raise VoiceError(f"not a weight file ({len(data)} bytes)", path)
    return data


def _to_plain(value: Any) -> Any:
    """Turn HParams stand-ins (and containers of them) into nested plain dicts/lists."""
    if isinstance(value, HParamsStandIn):
        return {str(k): _to_plain(v) for k, v in vars(value).items()}
    if isinstance(value, Mapping):
        return {str(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_plain(v) for v in value]
    return value


def _split_top_level(obj: Any, path: Path) -> tuple[Mapping[str, Any], Any, str]:
    """Check the {weight, config, info} layout shared by both file kinds."""
    if not isinstance(obj, Mapping):
        raise VoiceError(f"unexpected weight file layout (top level is {type(obj).__name__})", path)
    missing = [k for k in ("weight", "config") if k not in obj]
    if missing:
        raise VoiceError(f"weight file lacks the {', '.join(map(repr, missing))} entries", path)
    weights = obj["weight"]
    if not isinstance(weights, Mapping) or not weights:
        raise VoiceError("weight file has an empty or malformed 'weight' entry", path)
    bad = [str(k) for k, v in weights.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise VoiceError(f"non-tensor weights: {_name_list(bad)}", path)
    return weights, obj["config"], str(obj.get("info", ""))


def _name_list(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_NAMES_IN_ERROR])
    extra = len(names) - _MAX_NAMES_IN_ERROR
    return f"{shown} (+{extra} more)" if extra > 0 else shown


def load_gpt_checkpoint(path: str | Path) -> GptCheckpoint:
    """Load a GPT `.ckpt` weight file safely.

    Raises VoiceError when the file is missing, truncated, not a torch archive, would execute code,
    or lacks the weight/config entries or the `config["model"]` section.
    """
    path = Path(path)
    data = _read_bytes(path)
    if data[:2] != _ZIP_MAGIC:
        raise VoiceError("not a GPT weight file (expected a torch zip archive)", path)
    obj = _torch_load_safe(io.BytesIO(data), path)
    raw_weights, config, info = _split_top_level(obj, path)
    config = _to_plain(config)
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        raise VoiceError("GPT weight file has no config['model'] hyper-parameters", path)
    weights: dict[str, torch.Tensor] = {}
    unprefixed = [k for k in raw_weights if not str(k).startswith(_GPT_KEY_PREFIX)]
    if unprefixed:
        raise VoiceError(f"GPT weights without the 'model.' prefix: {_name_list(unprefixed)}", path)
    for key, tensor in raw_weights.items():
        weights[str(key)[len(_GPT_KEY_PREFIX):]] = tensor
    log.debug("loaded GPT checkpoint %s: %d tensors, info=%s", path, len(weights), info)
    return GptCheckpoint(weights=weights, config=config, info=info, path=path)


def _sovits_payload(path: Path) -> tuple[str | None, bytes]:
    """(version from the header or None for a plain zip, zip bytes with the PK magic restored)."""
    data = _read_bytes(path)
    head = data[:2]
    if head == _ZIP_MAGIC:
        return None, data
    version = _HEADER_VERSIONS.get(head)
    if version is None:
        raise VoiceError(f"not a SoVITS weight file (unknown header {head!r})", path)
    return version, _ZIP_MAGIC + data[2:]


def _version_from_weights(weights: Mapping[str, torch.Tensor], path: Path) -> str:
    emb = weights.get(_TEXT_EMBEDDING_KEY)
    if emb is None or emb.dim() != 2:
        raise VoiceError(f"SoVITS weights lack {_TEXT_EMBEDDING_KEY}", path)
    return "v1" if emb.shape[0] == _V1_SYMBOL_COUNT else "v2"


def _refuse_unsupported(version: str, path: Path) -> None:
    if version != _SUPPORTED_SOVITS:
        raise UnsupportedError(
            f"SoVITS weights are version {version}; bookcast supports only GPT-SoVITS v2 weights",
            path,
        )


def sovits_file_version(path: str | Path) -> str:
    """The SoVITS version of a weight file: "v1", "v2", "v3", "v3-lora", "v4-lora", "v2Pro", ...

    Tagged files are decided by their two-byte header alone; plain zip files (no tag) are loaded
    safely and decided by the phone-embedding size (322 symbols -> v1, else v2).
    Raises VoiceError when the file is unreadable or not a SoVITS weight file.
    """
    path = Path(path)
    version, payload = _sovits_payload(path)
    if version is not None:
        return version
    weights, _, _ = _split_top_level(_torch_load_safe(io.BytesIO(payload), path), path)
    return _version_from_weights(weights, path)


def load_sovits_checkpoint(path: str | Path) -> SovitsCheckpoint:
    """Load a SoVITS v2 `.pth` weight file safely (tagged or plain zip).

    Raises UnsupportedError for v1, v3, v4, v2Pro and v2ProPlus files; VoiceError when the file is
    missing, truncated, not a torch archive, would execute code, or lacks required entries.
    """
    path = Path(path)
    version, payload = _sovits_payload(path)
    if version is not None:
        _refuse_unsupported(version, path)  # before unpickling anything
    raw_weights, config, info = _split_top_level(_torch_load_safe(io.BytesIO(payload), path), path)
    weights = {str(k): v for k, v in raw_weights.items()}
    if version is None or version == "v2":
        detected = _version_from_weights(weights, path)
        _refuse_unsupported(detected, path)
        version = detected
    config = _to_plain(config)
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        raise VoiceError("SoVITS weight file has no config.model hyper-parameters", path)
    log.debug("loaded SoVITS checkpoint %s: %d tensors, %s", path, len(weights), version)
    return SovitsCheckpoint(weights=weights, config=config, info=info, version=version, path=path)


def _match(
    target: Mapping[str, torch.Tensor],
    weights: Mapping[str, torch.Tensor],
    key_map: Callable[[str], str | None] | None,
    ignore: Callable[[str], bool] | None,
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Pair checkpoint tensors with `target`'s entries: (tensors cast to the target's dtype/device
    by module key, problems in words)."""
    new_state: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    mismatched: list[str] = []
    duplicated: list[str] = []
    seen: set[str] = set()
    for ckpt_key, tensor in weights.items():
        module_key = key_map(ckpt_key) if key_map is not None else ckpt_key
        if module_key is None:
            continue
        if module_key not in target:
            unexpected.append(ckpt_key if module_key == ckpt_key else f"{ckpt_key}->{module_key}")
            continue
        if module_key in seen:
            duplicated.append(module_key)
            continue
        seen.add(module_key)
        want = target[module_key]
        if tuple(tensor.shape) != tuple(want.shape):
            mismatched.append(f"{ckpt_key} {tuple(tensor.shape)} vs {tuple(want.shape)}")
            continue
        if want.device.type != "meta":
            new_state[module_key] = tensor.to(device=want.device, dtype=want.dtype)
    missing = [k for k in target if k not in seen and not (ignore is not None and ignore(k))]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)}: {_name_list(missing)}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)}: {_name_list(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatch {len(mismatched)}: {_name_list(mismatched)}")
    if duplicated:
        problems.append(f"mapped twice {len(duplicated)}: {_name_list(duplicated)}")
    return new_state, problems


def check_fits(
    build: Callable[[], torch.nn.Module],
    weights: Mapping[str, torch.Tensor],
    key_map: Callable[[str], str | None] | None = None,
    ignore: Callable[[str], bool] | None = None,
    *,
    source: str | Path | None = None,
) -> None:
    """Check the checkpoint's tensors against the model its config describes, before any memory is
    spent on that model: `build()` runs on PyTorch's meta device (shapes only, no storage), so a
    config that declares absurd sizes costs nothing and fails here with the mismatch named.

    Raises VoiceError like `load_state_strict`.
    """
    with torch.device("meta"):
        module = build()
    _, problems = _match(module.state_dict(), weights, key_map, ignore)
    if problems:
        raise VoiceError(f"weights do not fit {type(module).__name__}: " + "; ".join(problems), source)


def load_state_strict(
    module: torch.nn.Module,
    weights: Mapping[str, torch.Tensor],
    key_map: Callable[[str], str | None] | None = None,
    ignore: Callable[[str], bool] | None = None,
    *,
    source: str | Path | None = None,
) -> None:
    """Copy checkpoint tensors into `module`, checking every key and shape; nothing is silent.

    - `key_map(checkpoint_key)` gives the module key (identity when None); returning None drops that
      checkpoint key deliberately (e.g. training-only tensors).
    - `ignore(module_key)` marks module keys that may be absent from the checkpoint and keep their
      initialised values (e.g. SoVITS `enc_q.*`, which the trainer never saves).
    - Tensors are cast to the dtype (and device) of the module's own parameter/buffer.
    - `source` (the file) is named in the error message.

    Raises VoiceError listing missing, unexpected, duplicated and shape-mismatched keys.
    """
    target = module.state_dict()
    new_state, problems = _match(target, weights, key_map, ignore)
    if problems:
        raise VoiceError(f"weights do not fit {type(module).__name__}: " + "; ".join(problems), source)
    for key, value in target.items():
        new_state.setdefault(key, value)  # only ignored keys reach this: keep their init values
    module.load_state_dict(new_state, strict=True)
