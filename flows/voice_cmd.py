"""`bookcast voice check <folder>` validates a voice folder and says what is in it;
`bookcast voice say <folder|engine> "text" -o out.wav` auditions a voice (or an engine that needs
none, such as espeak) on any text, front end included.

A voice folder belongs to the engine its voice.toml names (`engine = "..."`), GPT-SoVITS when it
names none; what checking it means is the engine's own business (its registry entry).
"""
from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

DEFAULT_VOICE_ENGINE = "gpt-sovits"  # the engine of a voice.toml that names none


def register(sub: argparse._SubParsersAction) -> None:
    voice = sub.add_parser("voice", help="voice folder tools")
    vsub = voice.add_subparsers(dest="voice_command", required=True)
    check = vsub.add_parser("check", help="validate a voice folder (weights, references, settings)")
    check.add_argument("folder")
    check.set_defaults(func=run_check)
    say = vsub.add_parser("say", help="synthesize text with a voice folder (or an engine such as 'espeak') "
                                      "into a WAV file")
    say.add_argument("folder", help="voice folder with voice.toml, or the name of an engine that needs no voice")
    say.add_argument("text", help="what to say; Chinese and English may mix")
    say.add_argument("-o", "--out", default="say.wav", help="output WAV (default say.wav)")
    say.add_argument("--seed", type=int, default=0)
    say.set_defaults(func=run_say)


def voice_engine(target: str) -> tuple[str, Path | None]:
    """(engine name, voice folder or None) for a `voice` command's target."""
    from synth.engines import engine_info, known_engines

    if target in known_engines() and not engine_info(target).needs_voice:
        return target, None
    folder = Path(target)
    try:
        data = tomllib.loads((folder / "voice.toml").read_text(encoding="utf-8"))
        name = data.get("engine", DEFAULT_VOICE_ENGINE) if isinstance(data, dict) else DEFAULT_VOICE_ENGINE
    except (OSError, ValueError):
        name = DEFAULT_VOICE_ENGINE  # the engine's own check says what is wrong with the folder
    return str(name), folder


def run_check(args: argparse.Namespace) -> int:
    from synth.engines import engine_info
    from synth.errors import VoiceError

    name, folder = voice_engine(args.folder)
    info = engine_info(name)
    if folder is None or info.check_voice is None:
        raise VoiceError(f"the {name} engine has no voice folder to check", args.folder)
    report = info.check_voice(folder)
    for line in report.lines():  # type: ignore[attr-defined]
        print(line)
    if not report.ok:  # type: ignore[attr-defined]  # printed by the CLI as the one error line, exit 1
        raise VoiceError("voice not usable: " + "; ".join(f"{f.subject}: {f.detail}"
                                                          for f in report.errors), report.root)  # type: ignore[attr-defined]
    return 0


def run_say(args: argparse.Namespace) -> int:
    import io

    import numpy as np
    import soundfile as sf

    from ingest.errors import InputError
    from ingest.segment import char_lang, segment
    from mastering.files import write_bytes_atomic
    from synth.engines import engine_info, make_engine

    name, folder = voice_engine(args.folder)
    engine = make_engine(name, folder)
    default = "zh" if any(char_lang(c) == "zh" for c in args.text) else "en"
    sentences = segment(args.text, default, config=engine_info(name).frontend)
    if not sentences:
        raise InputError("nothing to say (no readable text)")
    clips = engine.synthesize(sentences, seed=args.seed)
    gap = np.zeros(int(0.3 * engine.sample_rate), np.float32)
    audio = np.concatenate([part for c in clips for part in (c.audio, gap)])
    buf = io.BytesIO()
    sf.write(buf, audio, engine.sample_rate, format="WAV", subtype="FLOAT")
    write_bytes_atomic(Path(args.out), buf.getvalue())
    print(f"{args.out}: {len(audio) / engine.sample_rate:.2f} s at {engine.sample_rate} Hz, "
          f"{len(sentences)} sentence(s), engine {engine.name}")
    return 0
