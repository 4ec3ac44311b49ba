"""English homographs (present, live, learned, bow): which reading a sentence needs.

g2p_en's table gives two readings per word and the part of speech of the first, but choosing needs
its nltk tagger, which needs a download; here the neighbouring words decide. On 128 of Moby-Dick's
homographs labelled by hand (tests/frontend_corpus/homographs.tsv) the first version read 105
right, these rules 125: a determiner outranks the word after, adverbs
between a modal and its verb are skipped ('would then live'), adjectives in -ed and -ate rarely
used as verbs need strong evidence, and a ship's bow is B AW1. The table itself has readings
swapped or mistyped for some words (object, segment, learned, interchange); those are corrected.
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

Readings = tuple[tuple[str, ...], tuple[str, ...]]  # (verb reading, other reading)

_MODALS = frozenset("""to will would can could shall should may might must do does did don't didn't
won't can't cannot let's please""".split())
_VERB_BEFORE = _MODALS | frozenset("i we you they he she it not never thou ye who".split())
_DETERMINERS = frozenset("""the a an this these those his her my your our their its some any no every
each of whose such thy thine""".split())
_INTENSIFIERS = frozenset("most more so very too how as less least quite rather".split())
_ADVERBS = frozenset("then also still only never not always soon just now often ever yet even once but too".split())
_OBJECT_AFTER = frozenset("the a an his her my your our their this that these those it them him me us".split())
_BE = frozenset("be been being is are was were am 's".split())
# The verb reading is rare: only a modal, 'to' or a pronoun before it selects it.
_WEAK_VERBS = frozenset("""close intimate separate deliberate moderate alternate appropriate subordinate
aggregate wind winds wound estimate approximate articulate elaborate degenerate desolate""".split())
_ED_ADJECTIVES = frozenset("blessed cursed learned crooked ragged jagged dogged crabbed".split())
_BOW_OH = frozenset("""arrow arrows ribbon ribbons tie tied ties violin violins fiddle archer archers archery
cello rainbow""".split())

_FIXES = {  # g2p_en's readings swapped (the noun's given as the verb's) or mistyped
    "learned": ("L ER1 N D", "L ER1 N IH0 D"), "blessed": ("B L EH1 S T", "B L EH1 S IH0 D"),
    "dogged": ("D AO1 G D", "D AO1 G IH0 D"), "object": ("AH0 B JH EH1 K T", "AA1 B JH EH0 K T"),
    "segment": ("S EH2 G M EH1 N T", "S EH1 G M AH0 N T"),
    "fragment": ("F R AE0 G M EH1 N T", "F R AE1 G M AH0 N T"), "rebel": ("R IH0 B EH1 L", "R EH1 B AH0 L"),
    "torment": ("T AO0 R M EH1 N T", "T AO1 R M EH2 N T"), "exploit": ("EH2 K S P L OY1 T", "EH1 K S P L OY2 T"),
    "exploits": ("EH2 K S P L OY1 T S", "EH1 K S P L OY2 T S"), "imprint": ("IH2 M P R IH1 N T", "IH1 M P R IH0 N T"),
    "misconduct": ("M IH2 S K AA0 N D AH1 K T", "M IH2 S K AA1 N D AH0 K T"),
    "subcontract": ("S AH2 B K AA0 N T R AE1 K T", "S AH0 B K AA1 N T R AE2 K T"),
    "quadruple": ("K W AA0 D R UW1 P AH0 L", "K W AA1 D R UW0 P AH0 L"),
    "counterbalance": ("K AW2 N T ER0 B AE1 L AH0 N S", "K AW1 N T ER0 B AE2 L AH0 N S"),
    "processes": ("P R AO2 S EH1 S AH0 Z", "P R AA1 S EH0 S AH0 Z"),
    "interchange": ("IH2 N T ER0 CH EY1 N JH", "IH1 N T ER0 CH EY2 N JH"),
    # missing from the table
    "live": ("L IH1 V", "L AY1 V"), "lives": ("L IH1 V Z", "L AY1 V Z"), "lead": ("L IY1 D", "L EH1 D"),
    "wind": ("W AY1 N D", "W IH1 N D"), "tear": ("T EH1 R", "T IH1 R"), "tears": ("T EH1 R Z", "T IH1 R Z"),
    "bow": ("B AW1", "B OW1"), "bows": ("B AW1 Z", "B OW1 Z"), "wound": ("W AW1 N D", "W UW1 N D"),
}


@lru_cache(maxsize=1)
def homographs() -> dict[str, Readings]:
    """word -> (verb reading, other reading), from g2p_en's data file plus the fixes above."""
    out: dict[str, Readings] = {}
    spec = importlib.util.find_spec("g2p_en")
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "homographs.en"
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("#") or line.count("|") != 3:
                continue
            head, p1, p2, pos = (part.strip() for part in line.split("|"))
            first, second = tuple(p1.split()), tuple(p2.split())
            out[head.lower()] = (first, second) if pos.startswith("V") else (second, first)
    for word, (verb, other) in _FIXES.items():
        out[word] = (tuple(verb.split()), tuple(other.split()))
    return out


def reading(low: str, tokens: list[str], i: int) -> tuple[str, ...] | None:
    """The homograph `low` (tokens[i], lower-cased) as this sentence reads it; None if not one."""
    pair = homographs().get(low)
    if pair is None:
        return None
    verb, other = pair
    words = [t.lower() for t in tokens]
    prev = words[i - 1] if i else ""
    nxt = words[i + 1] if i + 1 < len(words) else ""
    if low == "read":  # 'will read' / 'to read' now; otherwise the past, as narration mostly is
        return ("R", "IY1", "D") if _before_adverbs(words, i) in _MODALS else ("R", "EH1", "D")
    if low in ("used", "unused"):  # 'used to the sea' (Y UW1 S T) but 'was used to make' (Z D)
        return other if nxt == "to" and prev not in _BE else verb
    if low in ("bow", "bows"):
        near = set(words[max(0, i - 3):i + 4])
        return other if near & _BOW_OH else verb
    if low == "content" and prev in _BE:  # 'be content to': the adjective sounds like the verb
        return verb
    determined = prev in _DETERMINERS or prev.endswith("'s")
    if low in _ED_ADJECTIVES:  # 'the learned doctor', 'these blessed calms'; else a verb
        return other if determined or prev in _INTENSIFIERS else verb
    return verb if _verb_here(low, words, i, determined) else other


def _before_adverbs(words: list[str], i: int) -> str:
    """The word before tokens[i], skipping up to two adverbs ('would then live', 'should not only
    interchange')."""
    j = i - 1
    while j >= 0 and i - j <= 2 and words[j] in _ADVERBS:
        j -= 1
    return words[j] if j >= 0 else ""


def _verb_here(low: str, words: list[str], i: int, determined: bool) -> bool:
    if determined:
        return False
    if _before_adverbs(words, i) in _VERB_BEFORE:
        return True
    if low in _WEAK_VERBS:
        return False
    prev = words[i - 1] if i else ""
    nxt = words[i + 1] if i + 1 < len(words) else ""
    return prev.endswith("ly") or nxt in _OBJECT_AFTER
