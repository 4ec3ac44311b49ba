"""Words in capitals: an acronym said letter by letter (FBI, HTML), or a word set in capitals for
emphasis or style (WHALE, DUODECIMO, IT'S) said as a word. A run mostly in capitals is shouting and
is read in lower case."""
from __future__ import annotations

import re

from ingest.normalize.cmu import LETTER_NAMES, cmu_dict

_ACRONYM = re.compile(r"\b([A-Z]{2,})(s?)\b")
_CAPS_CONTRACTION = re.compile(r"\b([A-Z]+)'([A-Z]{1,2})\b")  # IT'S, DON'T, WE'RE: words, not letters
_CAPS_POSSESSIVE = re.compile(r"(?<=[A-Za-z])'S\b")

# Acronyms said as words, not letters.
WORD_ACRONYMS = frozenset("""NASA NATO UNESCO UNICEF COVID AIDS OPEC FIFA LASER RADAR SCUBA GIF JPEG
PIN RAM ROM SIM ASAP NAFTA ISIS IKEA LEGO OK SARS WHO TED""".split())


def say_capitals(text: str, spell_acronyms: bool = True, keep: frozenset[str] = frozenset()) -> str:
    """Capitals as a narrator says them; `keep` holds words never spelled (a lexicon has them)."""
    if _shouting(text):
        text = text.lower()
    if "'" in text:
        text = _CAPS_CONTRACTION.sub(_caps_contraction, text)
    text = _ACRONYM.sub(lambda m: _spell(m, spell_acronyms, keep), text)
    if "'S" in text:
        text = _CAPS_POSSESSIVE.sub("'s", text)  # EMPEROR'S -> Emperor's, not Emperor'S
    return text


def _spell(m: re.Match, spell: bool, keep: frozenset[str]) -> str:
    word, plural = m.groups()
    if word in keep or word + plural in keep:
        return m.group(0)
    if word in WORD_ACRONYMS or not spell or not spelled_out(word):
        return word.capitalize() + plural
    return " ".join(word) + ("'s" if plural else "")


def spelled_out(word: str) -> bool:
    """Whether an all-capitals word is said letter by letter (FBI, HTML, IDPF) rather than read as
    a word set in capitals for emphasis or style (WHALE, OSCAR WILDE, ARIA, DAISY).

    The CMU dictionary decides words it knows: acronyms there are transcribed as letter names
    (USA, CPU), words as words. An unknown word is spelled when it is short or unpronounceable
    (no vowel, or a consonant cluster English does not have)."""
    if len(word) <= 2:
        return word not in _SHORT_WORDS  # AI, US, TV are letters; NO, OH, SO are words said loudly
    pron = cmu_dict().get(word.lower())
    if pron is not None:
        return _as_letters(word, pron)
    if len(word) > 6:  # SKRIMSHANDER, DUODECIMO: a name or word set in capitals, said as a word
        return not any(c in _VOWELS for c in word)
    return len(word) <= 3 or not _pronounceable(word)


_SHORT_WORDS = frozenset("""NO GO SO DO OH MY BE WE HE ME IF OR AN AT IN ON TO OF IS AM BY UP HI YO OX AH
YE HO LO HA OW EH AY""".split())
_VOWELS = set("AEIOUY")
_CLUSTERS = frozenset("""STR SCR SPR SPL SHR THR CHR SCH PHR NTH NCH RTH RST NDS NTS NGS RLD GHT TCH LTS
RDS RMS RNS LDS MPS NKS RKS""".split())


def _pronounceable(word: str) -> bool:
    if not any(c in _VOWELS for c in word):
        return False
    for run in re.findall(r"[^AEIOUY]{3,}", word):
        if len(run) > 3 or run not in _CLUSTERS:
            return False
    return True


def _as_letters(word: str, pron: tuple[str, ...]) -> bool:
    """True when `pron` (ARPAbet) is the word's letters named one after another."""
    named = [p.rstrip("012") for c in word.lower() for p in LETTER_NAMES.get(c, ("?",))]
    said = [p.rstrip("012") for p in pron]
    if said == named:
        return True
    # Letter names vary a little (G as "G IY" or "JH IY"): same length, same vowels in order.
    vowels = set("AEIOU")
    return len(said) == len(named) and [p for p in said if p[0] in vowels] == [p for p in named if p[0] in vowels]


_S_IS = frozenset("it he she that what there here who where let how".split())  # IT'S; FBI'S is a possessive


def _caps_contraction(m: re.Match) -> str:
    word, head, tail = m.group(0), m.group(1).lower(), m.group(2)
    if tail == "S" and head not in _S_IS:
        return word
    return word.capitalize() if word.lower() in cmu_dict() else word


def _shouting(text: str) -> bool:
    """A run written mostly in capitals is emphasis, not a string of acronyms."""
    words = re.findall(r"[A-Za-z]{2,}", text)
    caps = sum(w.isupper() for w in words)
    return caps >= 3 and caps * 2 > len(words)
