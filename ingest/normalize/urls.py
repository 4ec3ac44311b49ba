"""Web addresses and e-mail addresses, read the way people say them aloud, or dropped.

Narrators say "example dot com slash about", never the scheme; long query strings are noise, so
everything after '?' or '#' is left out.
"""
from __future__ import annotations

import re

from ingest.normalize.numbers import en_digits

URL = re.compile(r"(?:https?://|www\.)[A-Za-z0-9\-._~:/?#@!$&*+,;=%]*[A-Za-z0-9\-_~/#=%]")
# Possessive parts and a start only at the beginning of a name: '%%%…' or 'a@a@…' tried at every
# position would otherwise rescan the rest each time (quadratic; `segment` tries it everywhere).
EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]++@[A-Za-z0-9-]++(?:\.[A-Za-z0-9-]++)*\.[A-Za-z]{2,}")

_SAY = {".": " dot ", "/": " slash ", "-": " dash ", "_": " underscore ", "@": " at ", ":": " colon ",
        "~": " tilde ", "+": " plus ", "=": " equals ", "&": " and "}
_PART = re.compile(r"[A-Za-z]+|\d+|.")


def say_address(address: str) -> str:
    """'https://www.example.com/about' -> 'w w w dot example dot com slash about'."""
    address = re.sub(r"^https?://", "", address)
    address = re.split(r"[?#]", address, maxsplit=1)[0].rstrip("/")
    words = []
    for part in _PART.findall(address):
        if part.isdigit():
            words.append(en_digits(part))
        elif part.isalpha():
            words.append(" ".join(part) if part.lower() == "www" else part)
        else:
            words.append(_SAY.get(part, " "))
    return re.sub(r"\s+", " ", " ".join(words)).strip()
