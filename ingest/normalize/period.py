"""Numbers and words as period books write them: pounds, shillings and pence (£5 10s. 6d.),
American ordinals of the 1800s (the 22d of February), years with an era (A.D. 1066, 44 B.C.),
chapter and verse (Ezekiel 2:1), blanked oaths (d——d) and letter abbreviations (&c., Esq., inst.).

Project Gutenberg is mostly such books. Read by the modern rules, '£5 10s.' came out "five pounds
tens." and '2s. 6d.' "twos. six d."; a narrator says "five pounds ten shillings" and "two shillings
and sixpence".
"""
from __future__ import annotations

import re

from ingest.normalize.numbers import en_number, en_ordinal, en_year, roman_to_int

# '£5 10s. 6d.', '10s. 6d.', '2s.', '6d.': shillings under 20, pence under 12, the full stop kept
# in the match only where the abbreviation had one.
_POUNDS = r"(?:£\s?(\d{1,7})(?:,\d{3})*\s*)"
_SHILLINGS = r"(?:\b(1?\d)s\.?)"
_PENCE = r"(?:\b(1[01]|[1-9])(?:½)?d\.?)"
_LSD = re.compile(_POUNDS + r"\s*" + _SHILLINGS + r"(?:\s*" + _PENCE + r")?(?![A-Za-z])"
                  r"|" + _SHILLINGS + r"\s*" + _PENCE + r"(?![A-Za-z])")
_LONE_PENCE = re.compile(r"(?<!the )(?<!\w)\b(1[01]|[1-9])d\.(?=\s|$)")
_LONE_SHILLINGS = re.compile(r"(?<![\w£])\b(1?\d)s\.(?=\s+[a-z]|$)")
# 'the 22d of February', 'the 3d regiment': 2d and 3d were second and third.
_OLD_ORDINAL = re.compile(r"(?<=\bthe )(\d*[23])d\b")
# 'A.D. 1066', '1066 A.D.', 'AD 800', '44 BC', '300 BCE': a year, said as years are.
_ERA_BEFORE = re.compile(r"\b(A\.?\s?D\.?|C\.?\s?E\.?)\s?(\d{3,4})\b")
_ERA_AFTER = re.compile(r"\b(\d{3,4})\s?(A\.?\s?D\.?|B\.?\s?C\.?(?:\s?E\.?)?|C\.?\s?E\.?)(?![A-Za-z])")


# Oaths the printer blanked ('D—n it!', 'you d——d fool'): read as narrators of these books read
# them, not as 'D, n'. A name blanked to its initial ('Mr. B——') keeps the initial.
_CENSORED = {"dn": "damn", "dd": "damned", "dl": "devil", "gd": "God", "hl": "hell", "by": "bloody",
             "dnd": "damned", "dmn": "damn", "dmd": "damned"}
_BLANKED_WORD = re.compile(r"\b([A-Za-z]{1,2})[—–]+([a-z]{1,2})\b")
_BLANKED_NAME = re.compile(r"\b([A-Z])(?:—{2,}|—-+|⸺|⸻)(?![A-Za-z])")  # one dash is a pause: 'says I—'right
# Letter and commerce abbreviations of the period.
_PERIOD_ABBR = [(re.compile(p), r) for p, r in (
    (r"&c\.?", "et cetera"), (r"\b[Cc]f\.", "compare"), (r"\bEsq\.", "Esquire"), (r"\bviz\.", "namely"),
    (r"\binst\.", "instant"), (r"\bult\.", "ultimo"), (r"\bdoz\.", "dozen"), (r"\bcwt\.", "hundredweight"),
    (r"\bll\.(?=\s?\d)", "lines"), (r"\bl\.(?=\s?\d)", "line"), (r"(?<=& )Co\.", "Company"),
    (r"(?<=and )Co\.", "Company"))]


def period_words(text: str) -> str:
    """Chapter and verse, blanked oaths and names, and the abbreviations above, in words (before
    the general abbreviations: 'Gen. 1:1' is Genesis, not General)."""
    if ":" in text:
        text = _VERSE.sub(_verse, text)
    if ", " in text or ". " in text:
        text = _CITED_ROMAN.sub(_cited_roman, text)
    if "." in text:
        text = _LISTED_ROMAN.sub(_listed_roman, text)
    if any(c in text for c in "—–⸺⸻"):
        text = _BLANKED_WORD.sub(_unblank, text)
        text = _BLANKED_NAME.sub(r"\1", text)
    if "." in text:
        for pattern, words in _PERIOD_ABBR:
            text = pattern.sub(words, text)
    return text


def _unblank(m: re.Match) -> str:
    word = _CENSORED.get((m.group(1) + m.group(2)).lower())
    if word is None:
        return m.group(0)
    return word.capitalize() if m.group(1)[0].isupper() else word


# 'Ezekiel 2:1', '1 Cor. 13:4-7': chapter and verse, not a ratio ("two to one").
_BOOKS = ("Genesis|Gen|Exodus|Exod?|Leviticus|Lev|Numbers|Num|Deuteronomy|Deut|Joshua|Josh|Judges|Ruth|Samuel|Sam|"
          "Kings|Chronicles|Chron|Ezra|Nehemiah|Neh|Esther|Job|Psalms?|Ps|Proverbs|Prov|Ecclesiastes|Eccl?|"
          "Isaiah|Isa|Jeremiah|Jer|Lamentations|Lam|Ezekiel|Ezek|Daniel|Dan|Hosea|Joel|Amos|Obadiah|Jonah|"
          "Micah|Nahum|Habakkuk|Zephaniah|Haggai|Zechariah|Zech|Malachi|Mal|Matthew|Matt?|Mark|Luke|John|"
          "Acts|Romans|Rom|Corinthians|Cor|Galatians|Gal|Ephesians|Eph|Philippians|Phil|Colossians|Col|"
          "Thessalonians|Thess|Timothy|Tim|Titus|Philemon|Hebrews|Heb|James|Peter|Pet|Jude|Revelations?|Rev")
_VERSE = re.compile(r"\b(?:([123]|I{1,3})\s)?(" + _BOOKS + r")(\.?)\s(\d{1,3}):(\d{1,3})(?:\s?[-–](\d{1,3}))?\b")
_ORDINAL_WORDS = {"1": "First", "I": "First", "2": "Second", "II": "Second", "3": "Third", "III": "Third"}
_BOOK_NAMES = {"Gen": "Genesis", "Exo": "Exodus", "Exod": "Exodus", "Lev": "Leviticus", "Num": "Numbers",
               "Deut": "Deuteronomy", "Josh": "Joshua", "Sam": "Samuel", "Chron": "Chronicles", "Neh": "Nehemiah",
               "Ps": "Psalm", "Psalms": "Psalm", "Prov": "Proverbs", "Eccl": "Ecclesiastes", "Ecc": "Ecclesiastes",
               "Isa": "Isaiah", "Jer": "Jeremiah", "Lam": "Lamentations", "Ezek": "Ezekiel", "Dan": "Daniel",
               "Zech": "Zechariah", "Mal": "Malachi", "Mat": "Matthew", "Matt": "Matthew", "Rom": "Romans",
               "Cor": "Corinthians", "Gal": "Galatians", "Eph": "Ephesians", "Phil": "Philippians",
               "Col": "Colossians", "Thess": "Thessalonians", "Tim": "Timothy", "Heb": "Hebrews", "Pet": "Peter",
               "Rev": "Revelation", "Revelations": "Revelation"}


def _verse(m: re.Match) -> str:
    nth, book, _dot, chapter, verse, last = m.groups()
    book = _BOOK_NAMES.get(book, book)
    head = f"{_ORDINAL_WORDS[nth]} {book}" if nth else book
    said = f"{head} chapter {en_number(chapter)}, verse"
    return f"{said}s {en_number(verse)} to {en_number(last)}" if last else f"{said} {en_number(verse)}"


# Scholarly citations: 'Inferno, iii. 55-7' is canto three, lines fifty-five to fifty-seven, and
# '1914-18' runs to 1918: a range whose end drops the digits it shares with its start.
_SHORT_RANGE = re.compile(r"(?<![\d.,/-])(\d{3,4})([-–])(\d{1,2})(?![\d]|[.,/:-]\d)")
_CITED_ROMAN = re.compile(r"(?<=, )([ivxl]{2,6}|[IVXL]{2,6})(?=[.,]{1,2}(?:\s|$))"
                          r"|(?<=\. )([ivxl]{2,6})(?=[.,]{1,2}(?:\s|$))")


# An enumeration inside a sentence ('chapters:—I. The SPERM WHALE; II. the RIGHT WHALE; III. ...')
# or a numeral standing alone ('III.'): numbers.
_LISTED_ROMAN = re.compile(r"(?:(?<=[;:—] )|(?<=[;:—]))([IVX]{1,5})\.(?=\s)|^\s*([IVXLC]{2,7})\.\s*$")


def _listed_roman(m: re.Match) -> str:
    numeral = m.group(1) or m.group(2)
    n = roman_to_int(numeral)
    if n is None or (len(numeral) == 1 and " II." not in m.string):  # a lone 'I.' only in a list
        return m.group(0)
    return m.group(0).replace(numeral, en_number(str(n)), 1)


# '5 ft. 10 in.', "5' 10\"": feet and inches ('in' alone is a preposition, so only here).
_FEET_INCHES = re.compile(r"\b(\d{1,2})\s?(?:ft\.?|feet|foot|['′’])\s?(\d{1,2})\s?"
                          r"(?:in\.?(?=\W|$)|inches|[\"″”])")
# '11.30 p.m.': the British time, with a point.
_DOTTED_TIME = re.compile(r"\b([01]?\d|2[0-3])\.([0-5]\d)\s?(?=a\.\s?m\.|p\.\s?m\.|[ap]m\b|[AP]\.?\s?M\b)")


def _short_range(m: re.Match) -> str:
    start, sep, end = m.groups()
    if int(start[-len(end):]) >= int(end):
        return m.group(0)
    if sep == "-" and len(start) == 4 and int(start) >= 1950 and int(end) <= 12:
        return m.group(0)  # 2001-05 is more likely May 2001 than a range
    return f"{start}{sep}{start[:-len(end)]}{end}"


def _cited_roman(m: re.Match) -> str:
    numeral = m.group(1) or m.group(2)
    n = roman_to_int(numeral.upper())
    return m.group(0) if n is None else en_number(str(n))


def _shillings(n: int) -> str:
    return f"{en_number(str(n))} shilling{'' if n == 1 else 's'}"


def _pence(n: int) -> str:
    return "a penny" if n == 1 else f"{en_number(str(n))} pence"


def _lsd(m: re.Match) -> str:
    pounds, shillings, pence, shillings2, pence2 = m.groups()
    parts = []
    if pounds:
        n = int(pounds.replace(",", ""))
        parts.append(f"{en_number(pounds)} pound{'' if n == 1 else 's'}")
    s, d = (shillings, pence) if pounds else (shillings2, pence2)
    if s and int(s):
        parts.append(_shillings(int(s)))
    spoken = " ".join(parts)
    if d:
        spoken += f" and {_pence(int(d))}" if spoken else _pence(int(d))
    end = m.group(0)
    return spoken + ("." if end.endswith(".") and _sentence_ends(m) else "")


def _sentence_ends(m: re.Match) -> bool:
    rest = m.string[m.end():]
    return not rest.strip() or bool(re.match(r"\s+[A-Z]", rest))


def _era(year: str) -> str:
    """1066 'ten sixty-six', 753 'seven fifty-three', 800 'eight hundred', 305 'three oh five'."""
    n = int(year)
    if len(year) == 4:
        return en_year(n)
    hundreds, rest = divmod(n, 100)
    head = en_number(str(hundreds))
    if rest == 0:
        return f"{head} hundred"
    return f"{head} oh {en_number(str(rest))}" if rest < 10 else f"{head} {en_number(str(rest))}"


def period_numbers(text: str) -> str:
    """Rewrite the period conventions above into words; other numbers are left alone."""
    text = _FEET_INCHES.sub(lambda m: f"{en_number(m.group(1))} feet {en_number(m.group(2))} "
                                      f"inch{'' if m.group(2) == '1' else 'es'}", text)
    text = _DOTTED_TIME.sub(r"\1:\2 ", text)
    if "-" in text or "–" in text:
        text = _SHORT_RANGE.sub(_short_range, text)
    if "s." in text or "d." in text or "£" in text:
        text = _LSD.sub(_lsd, text)
        text = _LONE_SHILLINGS.sub(lambda m: _shillings(int(m.group(1))) + ("." if _sentence_ends(m) else ""),
                                   text)
        text = _LONE_PENCE.sub(lambda m: _pence(int(m.group(1))) + ("." if _sentence_ends(m) else ""), text)
    if "d" in text:
        text = _OLD_ORDINAL.sub(lambda m: en_ordinal(int(m.group(1))), text)
    if "A" in text or "B" in text or "C" in text:
        text = _ERA_BEFORE.sub(lambda m: f"{m.group(1)} {_era(m.group(2))}", text)
        text = _ERA_AFTER.sub(lambda m: f"{_era(m.group(1))} {m.group(2)}", text)
    return text
