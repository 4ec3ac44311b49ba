"""`bookcast voice check <folder>` validates a GPT-SoVITS voice folder and says what is in it;
`bookcast voice say <folder> "text" -o out.wav` auditions it on any text (front end included)."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    voice = sub.add_parser("voice", help="voice folder tools")
    vsub = voice.add_subparsers(dest="voice_command", required=True)
    check = vsub.add_parser("check", help="validate a GPT-SoVITS voice folder")
    check.add_argument("folder")
    check.set_defaults(func=run_check)
    say = vsub.add_parser("say", help="synthesize text with a voice folder (or 'espeak') into a WAV file")
    say.add_argument("folder", help="voice folder with voice.toml, or 'espeak'")
    say.add_argument("text", help="what to say; Chinese and English may mix")
    say.add_argument("-o", "--out", default="say.wav", help="output WAV (default say.wav)")
    say.add_argument("--seed", type=int, default=0)
    say.set_defaults(func=run_say)


def run_check(args: argparse.Namespace) -> int:
    from synth.voice_check import check_voice

    report = check_voice(Path(args.folder))
    for line in report.lines():
        print(line)
    if not report.ok:  # the CLI prints this as the one `bookcast: error:` line, exit 1
        from ingest.errors import VoiceError

        raise VoiceError("voice not usable: " + "; ".join(f"{f.subject}: {f.detail}" for f in report.errors),
                         report.root)
    return 0


def run_say(args: argparse.Namespace) -> int:
    import io

    import numpy as np
    import soundfile as sf

    from ingest.errors import InputError
    from ingest.frontend import config_for
    from ingest.segment import char_lang, segment
    from mastering.files import write_bytes_atomic
    from synth.registry import make_engine

    kind = "espeak" if args.folder == "espeak" else "gpt-sovits"
    engine = make_engine(kind, None if kind == "espeak" else Path(args.folder))
    default = "zh" if any(char_lang(c) == "zh" for c in args.text) else "en"
    sentences = segment(args.text, default, config=config_for(kind))
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
