"""The `bookcast` command line. Logging and Prefect settings are configured here, at the entry.

Each subcommand lives in its own `flows/*_cmd.py` module exposing `register(subparsers)`, which adds
its parser and sets `func=run` (a callable taking the parsed args and returning an exit status).
Every user-facing failure is one line `bookcast: error: <file>: <problem>` and exit status 1; a run
where some chapters failed prints the summary, names the failed chapters and exits 2.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ingest.errors import BookcastError, Interrupted

COMMAND_MODULES = ("flows.make_cmd", "flows.preview_cmd", "flows.voice_cmd", "flows.cache_cmd",
                   "flows.podcast_cmd", "flows.qc_cmd", "flows.studio_cmd")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bookcast", description="Books and scripts into mastered audio.")
    p.add_argument("-v", "--verbose", action="store_true", help="show Prefect and library logs")
    sub = p.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from flows import runtime
    from flows.steps.memory import tame_malloc

    runtime.console_logging(args.verbose)
    runtime.configure(verbose=args.verbose)
    tame_malloc()
    try:
        return int(args.func(args))
    except Interrupted:  # the signal handler has said so, in one line
        return 130
    except BookcastError as exc:
        print(f"bookcast: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `bookcast preview ... | head`: the reader has gone, which is fine
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("bookcast: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not bad input: still one line, the traceback with -v
        if args.verbose:
            logging.getLogger("bookcast").exception("internal error")
        print(f"bookcast: error: internal error: {type(exc).__name__}: {exc} (run with -v for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
