"""English run normalisation: numbers, money, dates, times, units, abbreviations and acronyms into
the words a narrator says, so the G2P only ever sees letters and a few punctuation marks."""
from __future__ import annotations

import re

from ingest.normalize.caps import say_capitals
from ingest.normalize.numbers import (
    ANY_NUM,
    MAX_WHOLE_DIGITS,
    NUM,
    en_digits,
    en_number,
    en_ordinal,
    en_year,
    roman_to_int,
)
from ingest.normalize.period import period_numbers, period_words

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")
_MONTH_ABBR = {m[:3]: m for m in _MONTHS} | {"Sept": "September"}

_ABBREVIATIONS = [  # (pattern, replacement); case-sensitive, applied in order
    (r"\bMr\.", "Mister"), (r"\bMrs\.", "Missus"), (r"\bMs\.", "Miz"), (r"\bDr\.", "Doctor"),
    (r"\bProf\.", "Professor"), (r"\bSt\.(?= [A-Z])", "Saint"), (r"\bSt\.", "Street"),
    (r"\bJr\.", "Junior"), (r"\bSr\.", "Senior"), (r"\bvs\.?(?=\s)", "versus"),
    (r"\betc\.", "et cetera"), (r"\b[eE]\.[gG]\.", "for example"), (r"\b[iI]\.[eE]\.", "that is"),
    (r"\bapprox\.", "approximately"), (r"\bNo\.(?=\s?\d)", "number"), (r"\bNos\.(?=\s?\d)", "numbers"),
    (r"\bFig\.", "figure"),
    (r"\bVol\.", "volume"), (r"\bVols\.", "volumes"), (r"\bCh\.", "chapter"), (r"\bChap\.", "chapter"),
    (r"\bpp\.(?=\s?\d)", "pages"),
    (r"\bp\.(?=\s?\d)", "page"), (r"\bMt\.", "Mount"), (r"\bAve\.", "Avenue"),
    (r"\bInc\.", "Incorporated"), (r"\bLtd\.", "Limited"), (r"\bCorp\.", "Corporation"),
    (r"\bDept\.", "Department"), (r"\bGov\.", "Governor"), (r"\bGen\.", "General"),
    (r"\bCapt\.", "Captain"), (r"\bLt\.", "Lieutenant"), (r"\bSgt\.", "Sergeant"),
    (r"\bU\.S\.A\.", "U S A"), (r"\bU\.S\.", "U S"), (r"\bU\.K\.", "U K"), (r"\bU\.N\.", "U N"),
    (r"\ba\.m\.", "A M"), (r"\bp\.m\.", "P M"), (r"\bA\.D\.", "A D"), (r"\bB\.C\.", "B C"),
]
_ABBR = [(re.compile(p), r) for p, r in _ABBREVIATIONS]
_MONTH_DOT = re.compile(r"\b(" + "|".join(k for k in _MONTH_ABBR if k != "May")
                        + r")\.?(?=\s\d{1,2}(?:st|nd|rd|th)?\b)")

_UNITS = {  # symbol: (singular, plural)
    "km/h": ("kilometer per hour", "kilometers per hour"), "mph": ("mile per hour", "miles per hour"),
    "km²": ("square kilometer", "square kilometers"), "m²": ("square meter", "square meters"),
    "km": ("kilometer", "kilometers"), "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"), "nm": ("nanometer", "nanometers"), "m": ("meter", "meters"),
    "kg": ("kilogram", "kilograms"), "mg": ("milligram", "milligrams"), "g": ("gram", "grams"),
    "lb": ("pound", "pounds"), "lbs": ("pound", "pounds"), "oz": ("ounce", "ounces"),
    "ft": ("foot", "feet"), "mi": ("mile", "miles"), "ml": ("milliliter", "milliliters"),
    "mL": ("milliliter", "milliliters"), "L": ("liter", "liters"), "GB": ("gigabyte", "gigabytes"),
    "MB": ("megabyte", "megabytes"), "KB": ("kilobyte", "kilobytes"), "TB": ("terabyte", "terabytes"),
    "GHz": ("gigahertz", "gigahertz"), "MHz": ("megahertz", "megahertz"), "kHz": ("kilohertz", "kilohertz"),
    "Hz": ("hertz", "hertz"), "dB": ("decibel", "decibels"), "μs": ("microsecond", "microseconds"),
    "kW": ("kilowatt", "kilowatts"), "kWh": ("kilowatt hour", "kilowatt hours"),
    "ms": ("millisecond", "milliseconds"), "sec": ("second", "seconds"), "secs": ("second", "seconds"),
    "min": ("minute", "minutes"), "mins": ("minute", "minutes"), "hr": ("hour", "hours"),
    "hrs": ("hour", "hours"), "℃": ("degree Celsius", "degrees Celsius"), "°C": ("degree Celsius", "degrees Celsius"),
    "°F": ("degree Fahrenheit", "degrees Fahrenheit"), "°": ("degree", "degrees"),
}
_UNIT_RE = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
_CURRENCY = {"$": ("dollar", "dollars", "cent", "cents"), "US$": ("dollar", "dollars", "cent", "cents"),
             "£": ("pound", "pounds", "penny", "pence"), "€": ("euro", "euros", "cent", "cents"),
             "¥": ("yuan", "yuan", "fen", "fen")}

# Patterns are linear in the text (see numbers.NUM): possessive digit runs, guarded starts.
_MONEY = re.compile(r"(US\$|\$|£|€|¥)\s?(\d++(?:,\d{3})*)(?:\.(\d++))?(?!\d)"
                    r"(?:\s?(thousand|million|billion|trillion|[kKmMbB]n?)\b)?")
_PERCENT = re.compile(r"(?<![\d.])(-?" + NUM + r")\s?%")
_PERCENT_RANGE = re.compile(r"(" + NUM + r")\s?%?\s?[-–~]\s?(" + NUM + r")\s?%")
_US_DATE = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b")
_MIXED_FRACTION = re.compile(r"\b(\d++)\s(\d)/(\d{1,2})\b")
_INITIALISM = re.compile(r"\b((?:[A-Z]\.){2,})")
_TIME = re.compile(r"\b([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?(?:\s?(am|pm|AM|PM|A M|P M)\b)?")
_RATIO = re.compile(r"(?<![\d:])(\d++):(\d++)(?![\d:])")
_DURATION = re.compile(r"(?<![\d:])(2[4-9]|[3-9]\d|\d{3}):([0-5]\d)(?![\d:])")  # ran it in 25:30
_REGNAL = re.compile(r"\b(King|Queen|Pope|Emperor|Tsar|Henry|Louis|Elizabeth|George|Edward|Charles|William"
                     r"|Richard|James|Mary|John|Paul|Pius|Leo|Philip|Frederick|Alexander|Peter|Catherine"
                     r"|Napoleon|Ramesses|Ptolemy|Benedict|Gregory|Innocent|Clement|Ivan)\s([IVX]{1,6})\b")
_WORLD_WAR = re.compile(r"\b(World War)\s(I{1,2})\b")
# 'BOOK II.', 'CHAPTER XLII', 'see Chapter iv' in running text (headings have their own pass): the
# number a narrator says. Numerals with D or M are left alone (CD, MIX, DIV are words), a lone C or L
# is a letter label, and a lone 'I' followed by a lower-case word is the pronoun ('Part I never saw').
_SECTION_ROMAN = re.compile(r"\b(Chapter|CHAPTER|chapter|Book|BOOK|book|Part|PART|Volume|VOLUME|volume|Act|ACT"
                            r"|Scene|SCENE|Section|SECTION|section|Canto|CANTO|Appendix|APPENDIX|Psalm|PSALM)"
                            r"\s([IVXLC]{1,8}|[ivxlc]{2,8})\b(?!['’-])")
_NAMESPACED = re.compile(r"\b([a-z]{1,6}):(?=[a-z])")  # epub:type, xml:lang: said as written, "colon"
_PLURAL_S = re.compile(r"(?<=[A-Za-z])\((s|es)\)")  # 'word(s)' is read 'words'
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_MONTH_DAY = re.compile(r"\b(" + "|".join(_MONTHS) + r")\s(\d{1,2})(?:st|nd|rd|th)?\b(,?\s(\d{4})\b)?")
_DAY_MONTH = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)?\s(" + "|".join(_MONTHS) + r")\b")
_ORDINAL = re.compile(rf"\b(\d{{1,{MAX_WHOLE_DIGITS}}})(st|nd|rd|th)\b")
_PHONE = re.compile(r"(?<![\d.])(\+\d{1,3}[\s-]?)?\(?(\d{3})\)?[\s.-](\d{3})[\s.-](\d{4})(?!\d|\.\d)")
_YEARS_PLURAL = re.compile(r"\b(1[1-9]\d0|20[0-9]0)s\b")
_YEAR = re.compile(r"(?<![\d.,$£€¥-])(1[1-9]\d\d|20\d\d)(?!\d|[.,]\d|\s?%|\s?(?:" + _UNIT_RE + r")\b)")
# "96 ft. in less": the abbreviation's full stop goes with it when the sentence runs on.
_UNIT = re.compile(r"((?<![\d.])-?" + NUM + r")\s?(" + _UNIT_RE + r")(?![A-Za-z])(?:\.(?=\s[a-z]))?")
_FRACTION = re.compile(r"(?<![\d/])(\d{1,2})/(\d{1,2})(?![\d/])")
_RANGE = re.compile(r"(?<![\d.])(" + NUM + r")\s?[-–—~]\s?(" + NUM + r")(?!\d|\.\d)")
# '35–40 GB' before the unit rule reads '40 GB' on its own and leaves '35–' to become a pause.
_UNIT_RANGE = re.compile(r"(?<![\d.])(" + NUM + r")\s?[-–—~]\s?(" + NUM + r")\s?(" + _UNIT_RE + r")(?![A-Za-z])")
_ABOUT = re.compile(r"(?<![\w.%])~\s?(?=\d)")  # ~140 GB: about
_PER_SECOND = re.compile(r"\b(tok|tokens|req|requests|it|frames|samples|ops|queries)/s(?:ec)?\b")
_NEG = re.compile(r"(?<![\w])-(?=\d)")
_NUMBER = re.compile(ANY_NUM)
_LETTER_DIGIT = re.compile(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])(?!(?:st|nd|rd|th|s)\b)"
                           r"(?!(?:km|cm|mm|nm|kg|mg|ml|mL|kW|kWh|mph|lbs?|oz|ft|GB|MB|KB|TB|GHz|MHz|kHz|Hz|dB|ms"
                           r"|[mgLkKMB])\b)")
_INITIAL = re.compile(r"\b([A-Z])\.(?=\s[A-Z])")
# 1.2k, 3M, 7B (after money, which reads "$2k" itself): the scale said as a word.
_SCALED = re.compile(r"(?<![\d.$£€¥])(\d++(?:\.\d++)?)(k|K|M|B|bn)\b")
_SCALE_WORDS = {"k": "thousand", "K": "thousand", "M": "million", "B": "billion", "bn": "billion"}
# Model numbers: RTX 3090, GTX-1080, A100, H200 — read like a name (pairs, as years are), not as
# a quantity ("three thousand and ninety").
_MODEL = re.compile(r"\b([A-Z]{2,6}[ -]?|[A-Z])(\d{3,5})\b(?![.,]\d|\s?%)")
# 3e-4, 1.5E+6: how a lecturer says a learning rate ('three e minus four').
_SCIENTIFIC = re.compile(r"(?<![\w.])(\d{1,3}(?:\.\d{1,6})?)[eE]([-+−]?)(\d{1,3})(?!\w|\.\d)")
# Versions: v2.1, 2.0.1 (two or more dots) — every part a number, joined by "point".
_VERSION = re.compile(r"\b[vV](\d+(?:\.\d+)*)\b|(?<![\d.])(\d+(?:\.\d+){2,})(?!\d|\.\d)")
_HYPHEN_WORDS = re.compile(r"(?<=[A-Za-z])[-/](?=[A-Za-z])")
_SYMBOLS = {"&": " and ", "+": " plus ", "=": " equals ", "@": " at ", "#": " number ",
            "×": " times ", "÷": " divided by ", "<": " less than ", ">": " greater than "}
_DROP = str.maketrans("", "", "“”\"‘«»「」『』《》*_`^|\\")
_TO_COMMA = re.compile(r"(?:(?<!\s)\s++)?[()\[\]{}（）【】—–]+\s*+")
_ZH_PUNCT = str.maketrans({"，": ",", "。": ".", "！": "!", "？": "?", "；": ";", "：": ":", "、": ",", "’": "'"})
_PUNCT_RUN_EN = re.compile(r"[,.!?;:](?:\s*[,.!?;:])+")
_GLUED_AFTER_PUNCT = re.compile(r"([,;:])(?=[A-Za-z])")  # "Hofgarten,ten": text nodes joined
_SPACE_BEFORE_PUNCT = re.compile(r"(?<!\s)\s++([,.!?;:])")

_SMALL_FRACTIONS = {(1, 2): "one half", (1, 4): "one quarter", (3, 4): "three quarters"}


def _money(m: re.Match) -> str:
    sym, whole, cents, scale = m.groups()
    one, many, cent1, cents_n = _CURRENCY[sym]
    scale_word = {"k": "thousand", "m": "million", "b": "billion", "bn": "billion"}.get(
        (scale or "").lower(), scale or "")
    if scale_word:
        amount = en_number(whole + ("." + cents if cents else ""))
        return f"{amount} {scale_word} {many}"
    if cents and len(cents) != 2:
        return f"{en_number(whole + '.' + cents)} {many}"
    out = f"{en_number(whole)} {one if whole.replace(',', '').lstrip('0') == '1' else many}"
    if cents and int(cents):
        c = int(cents)
        out += f" and {en_number(str(c))} {cent1 if c == 1 else cents_n}"
    return out


def _time(m: re.Match) -> str:
    hour, minute, second, half = m.groups()
    h = en_number(str(int(hour)))
    if minute == "00":
        out = h if half else f"{h} o'clock"
    elif minute.startswith("0"):
        out = f"{h} oh {en_digits(minute[1])}"
    else:
        out = f"{h} {en_number(minute)}"
    if second:
        out += f" and {en_number(str(int(second)))} seconds"
    if half:
        out += " " + " ".join(half.replace(" ", "").upper())
    return out


def _unit(m: re.Match) -> str:
    value, unit = m.groups()
    one, many = _UNITS[unit]
    return f"{en_number(value)} {one if value == '1' else many}"


def _fraction(m: re.Match) -> str:
    return _fraction_words(m.group(1), m.group(2))


def _fraction_words(num: str, den: str) -> str:
    a, b = int(num), int(den)
    if (a, b) in _SMALL_FRACTIONS:
        return _SMALL_FRACTIONS[(a, b)]
    if b == 0 or b > 20 or a > b * 3:
        return f"{en_number(num)} slash {en_number(den)}"
    denom = "half" if b == 2 else en_ordinal(b)
    return f"{en_number(str(a))} {denom}{'' if a == 1 else 's'}"


def _us_date(m: re.Match) -> str:
    """12/25/1990 (month first, as in US books) or 25/12/1990 when the first number cannot be a month."""
    a, b, year = int(m.group(1)), int(m.group(2)), int(m.group(3))
    month, day = (a, b) if a <= 12 else (b, a)
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return m.group(0)
    return f"{_MONTHS[month - 1]} {en_ordinal(day)}, {en_year(year)}"


def _regnal(m: re.Match) -> str:
    n = roman_to_int(m.group(2))
    return m.group(0) if n is None else f"{m.group(1)} the {en_ordinal(n)}"


def _section_roman(m: re.Match) -> str:
    numeral = m.group(2)
    if numeral in ("C", "L"):  # 'Appendix C', 'Section L': a letter, not 100 or 50
        return m.group(0)
    if numeral == "I" and re.match(r"\s+[a-z]", m.string[m.end():]):
        return m.group(0)
    n = roman_to_int(numeral.upper())
    return m.group(0) if n is None else f"{m.group(1)} {en_number(str(n))}"


def _plural_year(m: re.Match) -> str:
    words = en_year(int(m.group(1)))
    return words[:-1] + "ies" if words.endswith("y") else words + "s"


def _model(m: re.Match) -> str:
    digits = m.group(2)
    said = (en_number(digits) if len(digits) == 3 else en_year(int(digits)) if len(digits) == 4
            else en_digits(digits))
    return f"{m.group(1).rstrip(' -')} {said}"


def _version(m: re.Match) -> str:
    if m.group(1) is not None:
        return "version " + " point ".join(en_number(str(int(p))) for p in m.group(1).split("."))
    return " point ".join(en_number(str(int(p))) for p in m.group(2).split("."))


def normalize_en(text: str, spell_acronyms: bool = True, keep: frozenset[str] = frozenset()) -> str:
    """Expand numbers, money, dates, times, units, abbreviations; spell ALL-CAPS acronyms."""
    text = text.translate(_ZH_PUNCT).replace("...", "…")
    text = text.replace("---", "—").replace("--", "–")  # typewriter dashes: 1904--1985 is a range
    final_stop = text.rstrip().endswith(".")
    text = period_words(text)
    if "." in text:
        for pattern, repl in _ABBR:
            text = pattern.sub(repl, text)
        text = _INITIALISM.sub(lambda m: " ".join(m.group(1).replace(".", "")), text)
    if final_stop and not text.rstrip().endswith("."):
        text = text.rstrip() + "."  # 'on Main St.' and '&c.' end the sentence too
    if "(" in text:
        text = _PLURAL_S.sub(r"\1", text)
    if ":" in text:
        text = _NAMESPACED.sub(r"\1 colon ", text)
    text = _SECTION_ROMAN.sub(_section_roman, text)
    if "I" in text or "V" in text or "X" in text:
        text = _WORLD_WAR.sub(lambda m: f"{m.group(1)} {'One' if m.group(2) == 'I' else 'Two'}", text)
        text = _REGNAL.sub(_regnal, text)
    text = _MONTH_DOT.sub(lambda m: _MONTH_ABBR[m.group(1)], text)
    if "." in text:
        text = _INITIAL.sub(r"\1", text)  # 'J. Smith': no full stop inside a name
    if any(c.isdigit() for c in text):
        text = period_numbers(text)
        text = _ABOUT.sub("about ", text)
        text = _SCIENTIFIC.sub(_scientific, text)
        text = _VERSION.sub(_version, text)
        text = _MODEL.sub(_model, text)
        text = _LETTER_DIGIT.sub(" ", text)
        text = _US_DATE.sub(_us_date, text)
        text = _ISO_DATE.sub(lambda m: f"{_MONTHS[int(m.group(2)) - 1]} {en_ordinal(int(m.group(3)))}, "
                                        f"{en_year(int(m.group(1)))}" if 1 <= int(m.group(2)) <= 12
                             else m.group(0), text)
        text = _MONTH_DAY.sub(lambda m: f"{m.group(1)} {en_ordinal(int(m.group(2)))}"
                                        + (f", {en_year(int(m.group(4)))}" if m.group(4) else ""), text)
        text = _DAY_MONTH.sub(lambda m: f"{'' if _after_the(m) else 'the '}{en_ordinal(int(m.group(1)))} of "
                                        f"{m.group(2)}", text)
        text = _TIME.sub(_time, text)
        text = _DURATION.sub(lambda m: f"{en_number(m.group(1))} {en_number(m.group(2))}", text)
        text = _RATIO.sub(lambda m: f"{en_number(m.group(1))} to {en_number(m.group(2))}", text)
        text = _PHONE.sub(lambda m: ", ".join(en_digits(g) for g in m.groups() if g), text)
        text = _MONEY.sub(_money, text)
        text = _SCALED.sub(lambda m: f"{en_number(m.group(1))} {_SCALE_WORDS[m.group(2)]}", text)
        text = _PERCENT_RANGE.sub(lambda m: f"{en_number(m.group(1))} to {en_number(m.group(2))} percent", text)
        text = _PERCENT.sub(lambda m: en_number(m.group(1)) + " percent", text)
        text = _UNIT_RANGE.sub(lambda m: f"{en_number(m.group(1))} to {en_number(m.group(2))} "
                                         f"{_UNITS[m.group(3)][1]}", text)
        text = _UNIT.sub(_unit, text)
        text = _ORDINAL.sub(lambda m: en_ordinal(int(m.group(1))), text)
        text = _YEARS_PLURAL.sub(_plural_year, text)
        text = _RANGE.sub(lambda m: f"{_year_or_number(m.group(1))} to {_year_or_number(m.group(2))}", text)
        text = _YEAR.sub(lambda m: en_year(int(m.group(1))), text)
        text = text.replace("24/7", "twenty four seven")
        text = _MIXED_FRACTION.sub(lambda m: f"{en_number(m.group(1))} and {_fraction_words(m.group(2), m.group(3))}",
                                   text)
        text = _FRACTION.sub(_fraction, text)
        text = _NEG.sub("minus ", text)
        text = _NUMBER.sub(lambda m: en_number(m.group(0)), text)
    if "/s" in text:
        text = _PER_SECOND.sub(lambda m: ("tokens" if m.group(1) == "tok" else m.group(1)) + " per second", text)
    if any(c in _SYMBOLS for c in text):
        text = "".join(_SYMBOLS.get(c, c) for c in text)
    text = _HYPHEN_WORDS.sub(" ", text)
    text = say_capitals(text, spell_acronyms, keep)
    return tidy_en(text)


def _scientific(m: re.Match) -> str:
    sign = "minus " if m.group(2) in ("-", "−") else ""
    return f"{en_number(m.group(1))} e {sign}{en_number(m.group(3))}"


def _after_the(m: re.Match) -> bool:
    return m.string[max(0, m.start() - 4):m.start()].lower() == "the "


def _year_or_number(text: str) -> str:
    return en_year(int(text)) if re.fullmatch(r"1[1-9]\d\d|20\d\d", text) else en_number(text)


def tidy_en(text: str) -> str:
    text = text.translate(_DROP)
    text = _TO_COMMA.sub(", ", text)
    text = re.sub(r"\s+", " ", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = _GLUED_AFTER_PUNCT.sub(r"\1 ", text)
    text = _PUNCT_RUN_EN.sub(_strongest, text)
    return text.lstrip(" ,;:.!?").rstrip()


def _strongest(m: re.Match) -> str:
    marks = [c for c in m.group(0) if not c.isspace()]
    return max(marks, key=lambda c: 2 if c in ".!?" else 1 if c in ";:" else 0)
