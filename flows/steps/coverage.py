"""What share of a book's words will be spoken, replaced by a note or skipped — per chapter and
why — so a producer sees at a glance what a book will sound like before spending GPU hours
(`bookcast preview --coverage`), and what `preview` lists as not read."""
from __future__ import annotations

from collections import Counter

from ingest.model import Book, Chapter, Skip, count_words

_WHAT = {"code": "code listing", "table": "table", "math": "equation", "figure": "figure",
         "line-number": "line number of a poem", "footnote": "footnote or endnote", "page-number": "page-number marker",
         "markup": "citation or cross-reference markup", "copyright": "copyright or imprint page",
         "back-matter": "back matter (bibliography, index, notes)", "toc": "table of contents",
         "front-matter": "cover or title page", "empty-chapter": "a chapter with nothing to read"}
_SETTING = {"code": "code", "table": "tables", "math": "math", "figure": "figures", "line-number": "line_numbers",
            "copyright": "copyright", "back-matter": "back_matter"}


def reason(skip: Skip) -> str:
    """Why, in words: what it is, what happens to it, and the [reading] setting that decides."""
    done = "replaced by a short spoken note" if skip.action == "note" else "not read"
    setting = _SETTING.get(skip.what)
    hint = f' ([reading] {setting} = "{skip.action}")' if setting else ""
    return f"{_WHAT.get(skip.what, skip.what)}: {done}{hint}"


def chapter_coverage(index: int, chapter: Chapter) -> dict:
    """Source words of the chapter: spoken, replaced by a note, skipped by reason."""
    spoken = sum(count_words(b.text) for b in chapter.blocks if not b.note)
    replaced: Counter = Counter()
    skipped: Counter = Counter()
    for skip in chapter.skipped:
        (replaced if skip.action == "note" else skipped)[skip.what] += skip.words
    words = spoken + sum(replaced.values()) + sum(skipped.values())
    return {"chapter": index, "title": chapter.title, "words": words, "spoken": spoken,
            "replaced": dict(replaced), "skipped": dict(skipped)}


def book_coverage(book: Book) -> dict:
    chapters = [chapter_coverage(i, c) for i, c in enumerate(book.chapters, 1)]
    left_out = [{"title": title, "what": s.what, "words": s.words, "reason": reason(s)} for title, s in book.left_out]
    total = sum(c["words"] for c in chapters) + sum(d["words"] for d in left_out)
    return {"chapters": chapters, "left_out": left_out, "words": total,
            "spoken": sum(c["spoken"] for c in chapters)}


def coverage_lines(book: Book) -> list[str]:
    """The coverage report as text, one line per chapter."""
    report = book_coverage(book)

    def pct(n: int, of: int) -> str:
        return f"{100.0 * n / of:.1f}%" if of else "0.0%"

    def parts(counts: dict, of: int) -> str:
        return ", ".join(f"{what} {pct(n, of)}" for what, n in sorted(counts.items(), key=lambda kv: -kv[1]))

    lines = ["coverage: share of each chapter's source words spoken, replaced by a spoken note, or skipped"]
    width = max(2, len(str(len(report["chapters"]))))
    for c in report["chapters"]:
        of = c["words"]
        line = f"{c['chapter']:>{width}}  {c['title'][:40]:<40} {of:>8,} words  {pct(c['spoken'], of):>6} spoken"
        if c["replaced"]:
            line += f"; {pct(sum(c['replaced'].values()), of)} replaced ({parts(c['replaced'], of)})"
        if c["skipped"]:
            line += f"; {pct(sum(c['skipped'].values()), of)} skipped ({parts(c['skipped'], of)})"
        lines.append(line)
    for d in report["left_out"]:
        lines.append(f"{'-':>{width}}  {d['title'][:40]:<40} {d['words']:>8,} words  left out: {d['reason']}")
    lines.append(f"book: {report['words']:,} source words, {pct(report['spoken'], report['words'])} spoken")
    return lines
