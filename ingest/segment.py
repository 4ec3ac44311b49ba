"""Paragraphs into sentences, sentences into normalised language runs.

A run is a stretch of one language inside a sentence ("我们用 PyTorch 训练模型" is zh, en, zh), so
one voice can switch languages mid-sentence. Script decides the language: Han is `zh`, Latin is
`en`; digits, symbols and punctuation join the run they belong to ("GPT-4o 的 3.5 倍": the 4 is
part of an English word, the 3.5 is counted in Chinese). Each run's text is then normalised in its
language, so a run's text is exactly what an engine speaks.

Sentences are also the unit of synthesis, so they are cut to an engine's budget (clause stops,
then commas, then word boundaries, and as a last resort anywhere: a 50,000-digit number or a long
token with no spaces comes out in budget-sized slices) and very short ones are merged with a
neighbour; see `ingest.frontend.FrontendConfig`. Every step is linear in the text, so hostile input
(long digit runs, text without any punctuation) costs no more than a book of the same length.

Japanese and Korean are not supported, and only their own scripts are detected: kana and hangul
are skipped with a warning. Kanji cannot be told from Chinese by script, so the kanji of a Japanese
text are read as Chinese (and the kana between them dropped); such a book needs a Japanese voice
and front end, not this one.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Literal

from ingest.frontend import DEFAULT, FrontendConfig
from ingest.lengths import _HAN, _is_han, _join_all, cut_long, merge_short, units  # noqa: F401  (re-exported)
from ingest.foreign import TAGGED, unmark
from ingest.normalize import EMAIL, URL, clean_text, normalize_run, roman_to_int, say_address, script_of

log = logging.getLogger(__name__)

Lang = Literal["zh", "en"]
SUPPORTED: frozenset[str] = frozenset({"zh", "en"})
_LANG_NAMES = {"ja": "Japanese (kana)", "ko": "Korean (hangul)"}


@dataclass(frozen=True)
class Run:
    """One language stretch; `text` is normalised: what the engine says, no digits left."""

    text: str
    lang: Lang


@dataclass(frozen=True)
class Sentence:
    """One synthesis unit: `text` is the (cleaned) source text, `runs` what is spoken."""

    text: str
    runs: tuple[Run, ...]

    @property
    def spoken(self) -> str:
        """The normalised text of all runs, joined for display."""
        return _join_all([r.text for r in self.runs])


# ---------------------------------------------------------------- sentence splitting

_CLOSERS = "”’」』）)\\]》】\"'"
_TERM = re.compile(r"(?:[。！？]++[!?！？]*+|[!?]++|……|…++|\.{3,}+|；|\.)[" + _CLOSERS + "]*+")
_NEVER_SPLIT_AFTER = frozenset("""mr mrs ms dr prof st vs e.g i.e mt ave gov gen capt lt sgt col rev hon
approx cf u.s u.k u.n ph.d""".split())
_SPLIT_UNLESS_NUMBER = frozenset("""no nos fig figs vol ch pp p l ll jan feb mar apr jun jul aug sep sept oct nov
dec ft in yd yds lb lbs oz st cwt doz""".split())
_SPLIT_IF_CAPITAL = frozenset("etc a.m p.m inc ltd co corp jr sr".split())
_SECTION_ABBR = frozenset("vol vols ch chap pt bk sec art".split())  # 'Vol. II of the Library'
_TIME_ZONE = re.compile(r"\s*(?:[PMCE][SD]?T|UTC|GMT|BST|CES?T|JST|IST|AES?T)\b")
_CHAPTER_VERSE_NEXT = re.compile(r"\s{1,3}\d{1,3}:\d{1,3}\b")
_ABBREVIATED_BOOK = re.compile(r"\b[A-Z][a-z]{1,4}$")
_SHILLINGS_BEFORE = re.compile(r"(?<![\w])1?\ds$")
_PENCE_NEXT = re.compile(r"\s*(?:1[01]|[1-9])½?d\b")
_ROMAN_NEXT = re.compile(r"\s*[IVXLC]+\b")
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)$")
_INITIALS = re.compile(r"^(?:[A-Z]\.){1,3}[A-Z]$")


def split_sentences(paragraph: str) -> list[str]:
    """Split at Chinese and English sentence stops, keeping the stop and any closing quote.

    Handles abbreviations (Mr., e.g., U.S.), initials (J. R. R.), decimals (3.5) and ellipses
    (split only when a new sentence visibly starts)."""
    text = clean_text(paragraph)
    if not text:
        return []
    out, start = [], 0
    for m in _TERM.finditer(text):
        if _is_boundary(text, m):
            piece = text[start:m.end()].strip()
            if piece:
                out.append(piece)
            start = m.end()
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return out


def _is_boundary(text: str, m: re.Match) -> bool:
    stop = m.group(0).rstrip(_CLOSERS)
    rest = text[m.end():m.end() + 8]  # enough to see past one space; never a copy of the whole rest
    nxt = rest.lstrip()[:1]
    if not nxt:
        return True
    spaced = rest[:1].isspace()
    if stop[0] in "。！？；":
        return True
    if stop[0] in "!?":
        return spaced or _is_han(nxt)
    if stop[0] == "…" or stop.startswith(".."):
        if rest.lstrip()[:2] in ("I ", "I'"):
            return False  # 'Well... I think so.'
        return nxt.isupper() or _is_han(nxt) or nxt in "“\"'‘「"
    # a single period
    if not (spaced or _is_han(nxt) or nxt in "“\"‘「"):
        return False
    if _CHAPTER_VERSE_NEXT.match(text, m.end()) and _ABBREVIATED_BOOK.search(text, max(0, m.start() - 8), m.start()):
        return False  # '1 Cor. 13:4', 'Ps. 23:1': chapter and verse after an abbreviated book
    if _PENCE_NEXT.match(rest) and _SHILLINGS_BEFORE.search(text[max(0, m.start() - 3):m.start()]):
        return False  # '2s. 6d.': two shillings and sixpence
    word = _WORD_BEFORE.search(text[max(0, m.start() - 40):m.start()])
    if word:
        w = word.group(1).lower().rstrip(".")
        if w in _NEVER_SPLIT_AFTER or (len(w) == 1 and word.group(1).isupper() and w != "i"):
            return False
        if word.group(1) == "I" and text[max(0, m.start() - 3):m.start() - 1].endswith((":—", ":", "—")) \
                and " II." in text[m.end():m.end() + 300]:
            return False  # 'the following chapters:—I. The SPERM WHALE; II. ...': a list's first item
        if _INITIALS.match(word.group(1)):  # 'T.S. Eliot', 'J.R.R. Tolkien': initials before a name
            return False
        if w in _SPLIT_UNLESS_NUMBER and nxt.isdigit():
            return False
        if w in _SECTION_ABBR and _ROMAN_NEXT.match(rest):
            return False
        if w in _SPLIT_IF_CAPITAL and not nxt.isupper():
            return False
        if w in ("a.m", "p.m") and _TIME_ZONE.match(rest):
            return False  # '9:00 a.m. PT'
    return not nxt.islower()


_NUM_UNITS = ("km/h|m/s|km²|m²|cm²|m³|mAh|GHz|MHz|kHz|Hz|dB|km|cm|mm|nm|μm|kg|mg|ml|mL|kW|ms|μs|m|g|L|%|‰|℃"
              "|°C|°F|°")
_ATOM = re.compile(
    r"(?P<url>" + URL.pattern + r")|(?P<email>" + EMAIL.pattern + r")"
    r"|(?P<tagged>" + TAGGED.pattern + r")"
    r"|(?P<num>(?:US\$|HK\$|[$¥€£])?[-+]?\d(?:[\d,.:/\-]*\d)?(?:(?:[kKMB]|bn)(?![A-Za-z])"
    r"|\s?(?:" + _NUM_UNITS + r")(?![A-Za-z]))?)"
    r"|(?P<latin>[A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F]"
    r"(?:[A-Za-z0-9\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F]|['’\-.&](?=[A-Za-z0-9\u00C0-\u024F]))*)"
    r"|(?P<zh>[" + _HAN + r"]+)"
    r"|(?P<ja>[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9d]+)"
    r"|(?P<ko>[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]+)"
    r"|(?P<space>\s+)|(?P<other>.)", re.S)
# A number right before one of these is counted in Chinese even after an English word.
# Units a Chinese speaker says in English letters after a number read in Chinese (二十四GB).
_LATIN_UNITS = frozenset("GB MB KB TB PB fps FPS dpi px".split())
_ZH_COUNTERS = set("个位只本条张件次天年岁月日号点分秒倍元块角斤吨米克升度层楼章节页%名种台辆家人所项")


def tag_runs(sentence: str, default: Lang = "en") -> list[Run]:
    """The sentence's language runs with their source (not normalised) text; Japanese kana and
    Korean hangul are left out."""
    return [Run(text, lang) for lang, text in language_runs(sentence, default)  # type: ignore[arg-type]
            if lang in SUPPORTED]


def char_lang(ch: str) -> Lang | None:
    """Language of one character by script, or None for neutral characters and other scripts."""
    lang = script_of(ch)
    return lang if lang in SUPPORTED else None  # type: ignore[return-value]


def language_runs(sentence: str, default: Lang = "en", config: FrontendConfig = DEFAULT) -> list[tuple[str, str]]:
    """Cut a sentence into (language, raw text) runs; languages may include 'ja'/'ko', which the
    caller reports and drops. URLs and e-mails are already spelled out (or dropped) here."""
    atoms: list[list] = []  # [kind, text, lang]
    for m in _ATOM.finditer(sentence):
        kind = m.lastgroup
        text = m.group(0)
        if kind == "tagged":
            tagged = TAGGED.match(text)
            atoms.append(["tagged", tagged.group(2), tagged.group(1)])  # type: ignore[union-attr]
            continue
        if kind in ("url", "email"):
            if (config.urls if kind == "url" else config.emails) == "drop":
                continue
            atoms.append(["latin", say_address(text), "en"])
        elif kind in ("latin", "zh", "ja", "ko"):
            atoms.append([kind, text, "en" if kind == "latin" else kind])
        else:
            atoms.append([kind, text, None])
    for i, atom in enumerate(atoms):
        if atom[0] == "num":
            atom[2] = _number_lang(atoms, i)
    first = next((a[2] for a in atoms if a[2]), default)
    runs: list[list[str]] = []
    current = first
    for _kind, text, lang in atoms:
        lang = lang or current
        if runs and runs[-1][0] == lang:
            runs[-1][1] += text
        else:
            runs.append([lang, text])
        current = lang
    return [(lang, text.strip()) for lang, text in runs if text.strip()]


def _number_lang(atoms: list[list], i: int) -> str | None:
    before = atoms[i - 1] if i > 0 else None
    after = atoms[i + 1] if i + 1 < len(atoms) else None
    if (after and after[0] == "latin" and after[1] in _LATIN_UNITS and not (before and before[0] == "latin")
            and any(a[0] == "zh" for a in atoms[max(0, i - 3):i])):
        return "zh"  # 显存约为24GB: 二十四 GB, as a Chinese speaker says it
    if (before and before[0] == "latin") or (after and after[0] == "latin"):
        return "en"
    prv = next((a for a in reversed(atoms[:i]) if a[0] != "space"), None)
    nxt = next((a for a in atoms[i + 1:] if a[0] != "space"), None)
    if nxt and nxt[0] == "zh" and nxt[1][0] in _ZH_COUNTERS:
        return "zh"
    if prv and prv[2] == "en":
        return "en"
    if (prv and prv[0] == "zh") or (nxt and nxt[0] == "zh"):
        return "zh"
    return None


# ---------------------------------------------------------------- the front door

_HEADING_WORD = re.compile(r"^(Chapter|CHAPTER|Part|PART|Book|BOOK|Volume|VOLUME|Act|ACT|Scene|SCENE|Section"
                           r"|SECTION|Appendix|Lesson|Canto|Letter)\s+([IVXLCDM]+)\b")
_HEADING_BARE = re.compile(r"^([IVXLCDM]+)(?=[.:、]|\s*$)")
_HEADING_ZH = re.compile(r"第([IVXLCDM]+)([章节部卷回篇幕])")
# A paragraph numbered like a list ('II. A Loose-Fish is fair game'): the numeral is a number unless
# it is an initial ('V. S. Naipaul'); a lone V, X, C or L never is ('V. Ovid' is vide, 'see').
_LIST_ROMAN = re.compile(r"^(I|[IVXLC]{2,7})\.(?=\s*$|\s+(?![A-Z]\.)[A-Z0-9\"“‘(])")


def romans_in_heading(text: str) -> str:
    """'Chapter IV' -> 'Chapter 4', 'XII. The End' -> '12. The End', '第III章' -> '第3章'."""
    def arabic(m: re.Match, group: int, fmt: str) -> str:
        n = roman_to_int(m.group(group))
        return m.group(0) if n is None else fmt.format(*m.groups()[:group - 1], n, *m.groups()[group:])
    text = _HEADING_WORD.sub(lambda m: arabic(m, 2, "{} {}"), text)
    text = _HEADING_BARE.sub(lambda m: arabic(m, 1, "{}"), text)
    return _HEADING_ZH.sub(lambda m: arabic(m, 1, "第{}{}"), text)


def roman_list_number(text: str) -> str:
    """'II. A Loose-Fish is fair game' -> '2. A Loose-Fish is fair game' (read 'two.')."""
    m = _LIST_ROMAN.match(text)
    n = roman_to_int(m.group(1)) if m else None
    return text if n is None else f"{n}{text[m.end(1):]}"


# Numbers and symbols are spoken longer than their units say ('&&&&' counts nothing, '7777' is
# 'seven seven seven seven'); a piece whose spoken form overshoots the budget by more than this
# factor is cut again. Ordinary sentences with a few numbers stay under it (about 1.4 at worst).
_SPOKEN_SLACK = 1.5


def _latin(text: str) -> bool:
    return any(c.isalpha() for c in text) and all(ord(c) < 0x250 for c in text if c.isalpha())


def tidy_foreign(text: str) -> str:
    """A passage in another language, said as written: spacing tidied, digits left to the voice."""
    return " ".join(text.split()).strip(" ,;:")


def _speakable(piece: str, budget: float, default: Lang, config: FrontendConfig,
               skipped: dict[str, str]) -> list[Sentence]:
    """The piece as a Sentence, or as several when what is spoken is far over the budget: cut the
    source again with a budget shrunk in proportion (at least halved, never below 2)."""
    runs: list[Run] = []
    for lang, raw in language_runs(piece, default, config):
        if lang not in SUPPORTED:
            if lang in _LANG_NAMES or not (config.foreign_languages or _latin(raw)):
                skipped.setdefault(lang, raw)
                continue
            if config.foreign_languages:  # the engine has a voice for it: said as written
                spoken = tidy_foreign(raw)
                if runs and runs[-1].lang == lang:
                    runs[-1] = Run(_join_all([runs[-1].text, spoken]), lang)  # type: ignore[arg-type]
                elif spoken:
                    runs.append(Run(spoken, lang))  # type: ignore[arg-type]
                continue
            lang = "en"  # Latin script, an engine without the language: read in the book voice
        spoken = normalize_run(raw, lang, spell_acronyms=config.spell_acronyms, keep=config.keep_words)
        if not any(c.isalpha() for c in spoken):
            continue
        if runs and runs[-1].lang == lang:
            runs[-1] = Run(_join_all([runs[-1].text, spoken]), lang)  # type: ignore[arg-type]
        else:
            runs.append(Run(spoken, lang))  # type: ignore[arg-type]
    if not runs:
        return []
    said = sum(units(r.text) for r in runs)
    if said <= _SPOKEN_SLACK * config.max_units or budget <= 2:
        return [Sentence(unmark(piece), tuple(runs))]
    budget = max(2.0, min(budget / 2, budget * config.max_units / said))
    return [s for sub in cut_long(piece, budget) for s in _speakable(sub, budget, default, config, skipped)]


def segment(paragraph: str, default: Lang = "en", where: str = "", heading: bool = False,
            config: FrontendConfig = DEFAULT) -> list[Sentence]:
    """Split a paragraph into synthesis-sized sentences of normalised language runs.

    `where` names the place (chapter) for warnings: Japanese kana and Korean hangul are not
    supported; they are skipped with one warning per paragraph and never raise. Never raises
    on any text input. Every sentence is within `config.max_units` as written, and what it says
    within 1.5 times that (numbers and symbols read longer than they are written).
    """
    text = clean_text(paragraph)
    text = romans_in_heading(text) if heading else roman_list_number(text)
    pieces: list[str] = []
    for sentence in split_sentences(text):
        pieces.extend(cut_long(sentence, config.max_units))
    if config.merge_short:
        pieces = merge_short(pieces, config.min_units, config.max_units)
    out: list[Sentence] = []
    skipped: dict[str, str] = {}
    for piece in pieces:
        out.extend(_speakable(piece, float(config.max_units), default, config, skipped))
    for lang, sample in skipped.items():
        log.warning("%s: %s text is not supported and was skipped: %r", where or "text",
                    _LANG_NAMES.get(lang, lang), sample[:40])
    return out
