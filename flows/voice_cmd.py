"""`bookcast voice check <folder>`: validate a GPT-SoVITS voice folder and say what is in it."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    voice = sub.add_parser("voice", help="voice folder tools")
    vsub = voice.add_subparsers(dest="voice_command", required=True)
    check = vsub.add_parser("check", help="validate a GPT-SoVITS voice folder")
    check.add_argument("folder")
    check.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    from synth.voice_check import check_voice

    report = check_voice(Path(args.folder))
    for line in report.lines():
        print(line)
    return 0 if report.ok else 1
