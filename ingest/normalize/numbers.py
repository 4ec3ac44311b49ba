"""Numbers into words, once per distinct value (books repeat the same numbers; num2words and cn2an
are slow enough to matter over a million characters, so every reader is cached)."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from functools import lru_cache

import cn2an
from num2words import num2words

# A written number ('7', '1,234', '3.14') inside a pattern that looks for numbers in context ('5%',
# '3-5 km'). Such a pattern is tried at every position of the text, so over a long digit string a
# plain \d+ would rescan the rest of the run from each digit: quadratic, seconds for 10,000 digits.
# Here a number starts only at the start of a digit run, its digits are possessive (nothing that
# follows a number starts with a digit) and it has at most six thousands groups (10^21), so every
# start costs a bounded look past its own run and a scan stays linear in the text.
NUM = r"(?<!\d)\d++(?:,\d{3}){0,6}(?:\.\d++)?"
# The last rule, 'read whatever digits are left': starts at any digit, so none is left unread.
ANY_NUM = r"\d++(?:,\d{3})*+(?:\.\d++)?"
# Longer runs than this are read digit by digit: nobody says a 20-digit number as one
# (and num2words / cn2an get slow or refuse on huge ones).
MAX_WHOLE_DIGITS = 15

_ZH_DIGITS = "零一二三四五六七八九"
_EN_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def zh_digits(digits: str, phone: bool = False) -> str:
    """Digit by digit ('2024' -> 二零二四); in phone numbers 1 is read 幺, as people say it."""
    out = "".join(_ZH_DIGITS[int(d)] for d in digits if d.isdigit())
    return out.replace("一", "幺") if phone else out


@lru_cache(maxsize=65536)
def zh_number(text: str) -> str:
    """'1,234.5' -> 一千二百三十四点五; leading 二 of 千/万/亿 read 两 as speakers do."""
    text = text.replace(",", "")
    neg = text.startswith("-")
    text = text.lstrip("+-")
    whole, _, frac = text.partition(".")
    if not whole:
        whole = "0"
    if len(whole) > MAX_WHOLE_DIGITS or (len(whole) > 1 and whole.startswith("0")):
        out = zh_digits(whole)
    else:
        out = cn2an.an2cn(whole)
        if len(out) > 1 and out[0] == "二" and out[1] in "千万亿":
            out = "两" + out[1:]
    if frac:
        out += "点" + zh_digits(frac)
    return ("负" if neg else "") + out


def en_digits(digits: str) -> str:
    return " ".join(_EN_DIGITS[int(d)] for d in digits if d.isdigit())


@lru_cache(maxsize=65536)
def en_number(text: str) -> str:
    """'1,234.5' -> 'one thousand, two hundred and thirty-four point five' (no commas kept)."""
    text = text.replace(",", "")
    neg = text.startswith("-")
    text = text.lstrip("+-")
    if not text or text == ".":
        return ""
    whole, _, frac = text.partition(".")
    if len(whole) > MAX_WHOLE_DIGITS or (len(whole) > 1 and whole.startswith("0")):
        out = en_digits(whole)
    else:
        out = num2words(int(whole or "0"))
    if frac:
        out += " point " + en_digits(frac)
    out = out.replace(",", "")
    return ("minus " if neg else "") + out


@lru_cache(maxsize=4096)
def en_ordinal(n: int) -> str:
    return num2words(n, to="ordinal").replace(",", "")


@lru_cache(maxsize=4096)
def en_year(n: int) -> str:
    """1998 -> 'nineteen ninety-eight', 2005 -> 'two thousand five', 2024 -> 'twenty twenty-four'."""
    if 2000 <= n <= 2009:
        return "two thousand" + ("" if n == 2000 else " " + num2words(n - 2000))
    if 1000 <= n <= 9999 and n % 100 == 0 and n % 1000 != 0:
        return num2words(n // 100) + " hundred"
    if 1000 <= n <= 9999 and n % 100 < 10 and n % 1000 != 0:
        return num2words(n // 100) + " oh " + num2words(n % 100)
    try:
        return num2words(n, to="year").replace(",", "")
    except (InvalidOperation, ValueError, OverflowError):
        return en_number(str(n))


def is_decimal(text: str) -> bool:
    try:
        Decimal(text.replace(",", ""))
    except InvalidOperation:
        return False
    return True


_ROMAN = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}


def roman_to_int(text: str) -> int | None:
    """'XIV' -> 14; None when the letters are not a well-formed Roman numeral."""
    if not text or any(c not in _ROMAN for c in text):
        return None
    total = 0
    for i, c in enumerate(text):
        v = _ROMAN[c]
        total += -v if i + 1 < len(text) and _ROMAN[text[i + 1]] > v else v
    return total if int_to_roman(total) == text else None


def int_to_roman(n: int) -> str:
    out = []
    for v, s in ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
                 (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")):
        while n >= v:
            out.append(s)
            n -= v
    return "".join(out)
