"""The studio's web server: a small Starlette app over one `Studio`, bound to 127.0.0.1.

The page is plain HTML/JS/CSS shipped in the package (no build step, no download: it works offline)
and plays audio with the browser's own element. Every request that names something — a chapter, a
sentence, a clip, a file — is checked against what the book and the manifest hold; anything else is
refused with a one-line message the page shows, and nothing changes.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from flows.studio.service import Studio, StudioError
from ingest.errors import BookcastError

log = logging.getLogger(__name__)

PAGE = Path(__file__).parent / "page"
_ASSETS = {"studio.js": "text/javascript", "studio.css": "text/css"}
_KEY = re.compile(r"[0-9a-f]{64}")


def create_app(studio: Studio) -> Starlette:
    def fail(message: str, status: int = 400) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def guarded(handler):
        """Run a handler (in Starlette's thread pool: synthesis blocks), turning refusals into
        messages for the page."""
        def endpoint(request: Request):
            try:
                return handler(request)
            except StudioError as exc:
                return fail(str(exc))
            except BookcastError as exc:  # bad input, a busy folder, a missing voice
                return fail(str(exc), 409)
            except (ValueError, KeyError, TypeError) as exc:
                return fail(f"bad request: {exc}")

        async def run(request: Request):
            from starlette.concurrency import run_in_threadpool

            try:
                body = await request.json() if request.method == "POST" else None
            except ValueError:
                return fail("the request is not JSON")
            request.state.body = body if isinstance(body, dict) else {}
            return await run_in_threadpool(endpoint, request)

        return run

    def number(value: object, name: str) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
            raise StudioError(f"{name} must be a whole number, not {value!r}")
        return int(value)

    def index(request: Request) -> Response:
        return FileResponse(PAGE / "index.html", media_type="text/html")

    def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _ASSETS:
            return fail("no such file", 404)
        return FileResponse(PAGE / name, media_type=_ASSETS[name])

    def book(request: Request) -> Response:
        meta = studio.book.meta
        return JSONResponse({"title": meta.title, "author": meta.author, "out": str(studio.out),
                             "preset": studio.preset_name, "chapters": studio.chapters()})

    def chapter(request: Request) -> Response:
        return JSONResponse(studio.chapter(number(request.path_params["index"], "chapter")))

    def clip(request: Request) -> Response:
        key = request.path_params["key"]
        data = studio.cache.flac(key) if _KEY.fullmatch(key) else None
        if data is None:
            return fail("no such clip", 404)
        return Response(data, media_type="audio/flac", headers={"Cache-Control": "max-age=86400, immutable"})

    def audio(request: Request) -> Response:
        name = request.path_params["name"]
        files = {f for c in studio.chapters_files() for f in c}
        if name not in files:  # only files the manifest delivered: no path tricks
            return fail("no such file", 404)
        return FileResponse(studio.out / name, media_type="audio/mpeg")

    def picture(request: Request) -> Response:
        return JSONResponse(studio.picture(number(request.path_params["index"], "chapter")))

    def body(request: Request) -> dict:
        return request.state.body

    def retake(request: Request) -> Response:
        b = body(request)
        return JSONResponse(studio.retake(number(b.get("chapter"), "chapter"), number(b.get("line"), "line")))

    def choose(request: Request) -> Response:
        b = body(request)
        take = b.get("take")
        return JSONResponse(studio.choose(number(b.get("chapter"), "chapter"), number(b.get("line"), "line"),
                                          None if take is None else number(take, "take")))

    def edit(request: Request) -> Response:
        b = body(request)
        text = b.get("text")
        if text is not None and not isinstance(text, str):
            raise StudioError("text must be text")
        return JSONResponse(studio.edit(number(b.get("chapter"), "chapter"), number(b.get("line"), "line"), text))

    def pause(request: Request) -> Response:
        b = body(request)
        seconds = b.get("seconds")
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float))):
            raise StudioError(f"a pause is a number of seconds, not {seconds!r}")
        return JSONResponse(studio.pause(number(b.get("chapter"), "chapter"), number(b.get("line"), "line"),
                                         None if seconds is None else float(seconds)))

    def pronounce(request: Request) -> Response:
        b = body(request)
        word, said = str(b.get("word", "")).strip(), str(b.get("pronunciation", "")).strip()
        if not word:
            raise StudioError("which word?")
        if not b.get("apply"):
            return JSONResponse({"word": word, "sentences": studio.containing(word)})
        return JSONResponse(studio.pronounce(word, said))

    def reexport(request: Request) -> Response:
        return JSONResponse(studio.reexport())

    routes = [
        Route("/", index),
        Route("/static/{name}", asset),
        Route("/api/book", guarded(book)),
        Route("/api/chapter/{index}", guarded(chapter)),
        Route("/api/picture/{index}", guarded(picture)),
        Route("/api/clip/{key}", guarded(clip)),
        Route("/api/audio/{name}", guarded(audio)),
        *(Route(f"/api/{name}", guarded(fn), methods=["POST"]) for name, fn in (
            ("retake", retake), ("choose", choose), ("edit", edit), ("pause", pause),
            ("pronounce", pronounce), ("reexport", reexport))),
    ]
    return Starlette(routes=routes)
