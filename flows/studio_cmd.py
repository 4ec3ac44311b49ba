"""`bookcast studio <project-or-book> [--out DIR] [--port N]`: proof a produced book in the browser."""
from __future__ import annotations

import argparse
import socket
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("studio", help="proof and fix a produced book in your browser (listen, re-take, edit, "
                                      "pronounce, pause, re-export)")
    p.add_argument("project", help="project folder or book file that `bookcast make` has produced")
    p.add_argument("--out", help="output folder of that run (default as for make)")
    p.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765; 0: any free one)")
    p.set_defaults(func=run)


def free_port(port: int) -> int:
    """`port` when it is free on 127.0.0.1 (0: any free port). Raises BookcastError when taken."""
    from ingest.errors import BookcastError

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise BookcastError(f"port {port} is in use; choose another with --port") from None
        return s.getsockname()[1]


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from flows import runtime
    from flows.studio.server import create_app
    from flows.studio.service import Studio

    if not 0 <= args.port <= 65535:
        from ingest.errors import BookcastError

        raise BookcastError(f"--port {args.port} is not a port number")
    port = free_port(args.port)
    runtime.start_reaper()  # the synthesis worker goes with us, however we end
    studio = Studio(args.project, args.out)
    try:
        config = uvicorn.Config(create_app(studio), host="127.0.0.1", port=port, log_level="warning",
                                access_log=False, lifespan="off")
        print(f"bookcast studio: {studio.book.meta.title} — http://127.0.0.1:{port}/ (Ctrl-C to stop)",
              file=sys.stderr, flush=True)
        uvicorn.Server(config).run()
    finally:
        studio.close()
    return 0
