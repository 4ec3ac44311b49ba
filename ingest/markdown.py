"""Markdown scripts into the document model.

`#` and `##` headings start chapters (a lone leading `#` over `##` chapters is the book title);
deeper headings are read as headings inside a chapter. YAML front matter gives metadata (the
language, when it is not given, is judged from the text). HTML and comments are never read aloud;
code blocks, GFM tables and display equations are skipped or replaced by a spoken note as the
project's `Reading` says, inline TeX is read when simple, Sphinx/MyST role markup (`:cite:`) is
dropped — each recorded as a `Skip`. A line `[pause 2s]` becomes a timed pause.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import yaml

from ingest.errors import InputError
from ingest.mdmarkup import DISPLAY_MATH, INLINE_MATH, ROLE, role_kept, speak_tex
from ingest.model import Block, Book, BookMeta, Chapter, Skip, is_scene_break, skip_of
from ingest.reading import DEFAULT, Reading, note_text
from ingest.structure import detect_language

log = logging.getLogger(__name__)

_FRONT = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_PAUSE = re.compile(r"^\[pause\s+(\d+(?:\.\d+)?)\s*(ms|s)?\]$", re.IGNORECASE)
# A long novel is ~2 MB of text; anything this big is not a script and would only exhaust memory.
MAX_TEXT_BYTES = 64 << 20
MAX_FRONT_MATTER = 64 << 10
MAX_YAML_DEPTH = 64  # a title, an author and a description fit many times over
# Front-matter keys bookcast reads; each must be one value (a YAML alias bomb here would expand
# exponentially when turned into text).
_META_KEYS = ("title", "author", "language", "lang", "narrator", "date", "year", "description", "summary")


def read_text_file(path: Path, limit: int = MAX_TEXT_BYTES) -> str:
    """Read UTF-8 text (BOM tolerated). Raises InputError when the file is missing, not a regular
    file, unreadable, over `limit` bytes or not valid UTF-8."""
    if not path.exists():
        raise InputError("file not found", path)
    if path.is_dir():
        raise InputError("is a directory, expected a file", path)
    if not path.is_file():
        raise InputError("is not a regular file", path)
    try:
        size = path.stat().st_size
        if size > limit:
            raise InputError(f"is {size / 2**20:.0f} MiB; text files over {limit >> 20} MiB are refused", path)
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror or exc})", path) from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not valid UTF-8 text (byte {exc.start})", path) from exc


def yaml_depth(text: str) -> int:
    """An upper bound on how deeply YAML `text` nests collections, found in one pass: brackets and
    braces outside quotes (flow style), and per line the indentation plus leading `- `/`? ` marks
    (block style). PyYAML's scanner slows quadratically with depth (20,000 brackets: 30 s) and
    its composer recurses, so depth is judged before it runs."""
    deepest = depth = 0
    quote = ""
    for ch in text:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(depth - 1, 0)
    for line in text.splitlines():
        body = line.lstrip(" ")
        indent = len(line) - len(body)
        marks = len(body) - len(body.lstrip("-? "))
        deepest = max(deepest, indent // 2 + marks // 2)
    return deepest


def split_front_matter(text: str, path: Path) -> tuple[dict, str]:
    m = _FRONT.match(text)
    if not m:
        return {}, text
    if len(m.group(1)) > MAX_FRONT_MATTER:
        raise InputError(f"front matter is {len(m.group(1)) >> 10} KiB; metadata over {MAX_FRONT_MATTER >> 10} KiB "
                         f"is refused", path)
    if yaml_depth(m.group(1)) > MAX_YAML_DEPTH:
        raise InputError(f"front matter is nested more than {MAX_YAML_DEPTH} levels deep (lists or mappings "
                         f"inside each other)", path)
    try:
        data = yaml.safe_load(m.group(1)) or {}
    except RecursionError:  # PyYAML composes nested collections recursively
        raise InputError("front matter is nested too deeply (lists or mappings inside each other "
                         "hundreds of levels deep)", path) from None
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" (line {line + 2})" if line is not None else ""
        raise InputError(f"broken YAML front matter{where}: {getattr(exc, 'problem', exc)}", path) from exc
    if not isinstance(data, dict):
        raise InputError("front matter must be a YAML mapping (key: value)", path)
    for key in _META_KEYS:
        if isinstance(data.get(key), (dict, list, set, tuple)):
            raise InputError(f"front matter '{key}' must be a single value, not a list or mapping", path)
    return data, text[m.end():]


def strip_comments(text: str) -> tuple[str, int | None]:
    """Remove `<!-- ... -->` comments in one left-to-right pass.

    A lazy regex (`<!--.*?-->`) rescans the rest of the text from every unclosed `<!--`, so a file
    of many unclosed comments took minutes; here each character is looked at once. An unclosed
    `<!--` hides the rest of the file, as it does in CommonMark's HTML block rules; its offset is
    returned so the reader can say so (else None).
    """
    out, at = [], 0
    while True:
        start = text.find("<!--", at)
        if start < 0:
            out.append(text[at:])
            return "".join(out), None
        out.append(text[at:start])
        end = text.find("-->", start + 4)
        if end < 0:
            return "".join(out), start
        at = end + 3


def _inline_text(token, skips: list[Skip], language: str) -> str:
    """An inline token's text as read: role markup dropped, inline TeX spoken or noted."""
    parts: list[str] = []
    children = token.children or []
    i = 0
    while i < len(children):
        child = children[i]
        if child.type == "text":
            text = child.content
            role = ROLE.search(text)
            nxt = children[i + 1] if i + 1 < len(children) else None
            if role and nxt is not None and nxt.type == "code_inline":
                name = role.group(1) or role.group(2)
                kept = role_kept(name, nxt.content)
                if kept is None:
                    skips.append(skip_of("markup", "skip", f":{name}:`{nxt.content}`"))
                parts.append(_inline_math(text[:role.start()], skips, language) + (kept or ""))
                i += 2
                continue
            parts.append(_inline_math(text, skips, language))
        elif child.type == "code_inline":
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        i += 1
    return "".join(parts)


def _inline_math(text: str, skips: list[Skip], language: str) -> str:
    if "$" not in text:
        return text

    def spoken(m: re.Match) -> str:
        said = speak_tex(m.group(1))
        if said is not None:
            return said
        skips.append(skip_of("math", "note", m.group(0)))
        return note_text("math-inline", language)

    return INLINE_MATH.sub(spoken, text)


def read_markdown(path: str | Path, reading: Reading = DEFAULT) -> Book:
    """Read a Markdown script or book (`reading`: what to do with code, tables and equations).
    Raises InputError naming the file."""
    from markdown_it import MarkdownIt

    path = Path(path)
    text = read_text_file(path)
    front, body = split_front_matter(text, path)
    raw, (body, unclosed) = body, strip_comments(body)
    notices = []
    if unclosed is not None:
        line = text.count("\n", 0, len(text) - len(raw) + unclosed) + 1
        notices.append(f"the HTML comment opened on line {line} is never closed; nothing after it is read")
    language = str(front.get("language") or front.get("lang") or "")
    if not language:
        language = detect_language(body) or "en"
        if language != "en":
            notices.append(f"no language in the front matter; read as {language} from the text")
    tokens = MarkdownIt("commonmark").enable("table").parse(body)

    items: list[tuple[str, int, str, object]] = []  # (kind, heading level or 0, text, Skip or note kind)
    level = 0
    table_start = -1
    for i, tok in enumerate(tokens):
        if tok.type == "table_open":
            table_start = i
        elif tok.type == "table_close":
            cells = " ".join(t.content for t in tokens[table_start:i] if t.type == "inline")
            _not_prose(items, "table", reading.tables, cells, language)
            table_start = -1
        elif table_start >= 0:
            continue
        elif tok.type == "heading_open":
            level = int(tok.tag[1])
        elif tok.type == "inline":
            parent = tokens[i - 1].type if i else ""
            if parent != "heading_open" and DISPLAY_MATH.match(tok.content):
                _not_prose(items, "math", reading.math if reading.math != "read" else "note", tok.content, language)
                continue
            skips: list[Skip] = []
            text = " ".join(_inline_text(tok, skips, language).split())
            items.extend(("skip", 0, "", s) for s in skips)
            if text and parent == "heading_open":
                items.append(("heading", level, text, None))
            elif text and is_scene_break(text):
                items.append(("section_break", 0, "", None))
            elif text:
                items.append(("paragraph", 0, text, None))
        elif tok.type == "hr":
            items.append(("section_break", 0, "", None))
        elif tok.type in ("fence", "code_block"):
            _not_prose(items, "code", reading.code, tok.content, language)
        # html_block tokens are markup, never read

    h1 = [t for k, lvl, t, _ in items if k == "heading" and lvl == 1]
    title = str(front.get("title") or "")
    chapter_levels = {1, 2}
    if len(h1) == 1 and (not title or title == h1[0]) and items[0][:2] == ("heading", 1) and any(
            k == "heading" and lvl == 2 for k, lvl, _, _ in items):
        title = title or h1[0]
        items = items[1:]
        chapter_levels = {2}
    chapters = _group(items, chapter_levels, title or path.stem)
    if not any(b.text and not b.note for c in chapters for b in c.blocks):
        raise InputError("contains no readable text", path)
    meta = BookMeta(
        title=title or (h1[0] if h1 else path.stem),
        author=str(front.get("author") or ""),
        language=language,
        narrator=str(front.get("narrator") or ""),
        year=str(front.get("date") or front.get("year") or "")[:4],
        description=str(front.get("description") or front.get("summary") or ""),
    )
    return Book(meta=meta, chapters=tuple(chapters), source=str(path), notices=tuple(notices))


def _not_prose(items: list, kind: str, action: str, source: str, language: str) -> None:
    """A code block, table or display equation: read (as a paragraph), skipped or noted."""
    if action == "read":
        text = " ".join(source.split())
        if text:
            items.append(("paragraph", 0, text, None))
        return
    items.append(("skip", 0, "", skip_of(kind, action, source)))
    if action == "note":
        items.append(("paragraph", 0, note_text(kind, language), kind))


def _group(items: list[tuple[str, int, str, object]], chapter_levels: set[int], default_title: str) -> list[Chapter]:
    chapters: list[tuple[str, list[Block], list[Skip]]] = []
    for kind, lvl, text, extra in items:
        if kind == "heading" and lvl in chapter_levels:
            chapters.append((text, [Block(text, "heading")], []))
            continue
        if not chapters:
            chapters.append((default_title, [], []))
        if kind == "skip":
            chapters[-1][2].append(extra)  # type: ignore[arg-type]
            continue
        pause = _PAUSE.match(text) if kind == "paragraph" else None
        if pause:
            seconds = float(pause.group(1)) / (1000 if (pause.group(2) or "s").lower() == "ms" else 1)
            chapters[-1][1].append(Block("", "section_break", pause_s=seconds))
        else:
            chapters[-1][1].append(Block(text, kind, note=extra or ""))  # type: ignore[arg-type]
    return [Chapter(t, tuple(b), "", tuple(s)) for t, b, s in chapters if any(x.text for x in b)]
