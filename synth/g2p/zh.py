"""Chinese G2P: normalised Chinese text -> v2 phones, two per character, with word2ph.

pypinyin reads each jieba word through its phrase dictionary, which settles most polyphones from
the word itself (银行 hang2, 行走 xing2); single-character words are decided from their neighbours
(还钱 huan2, 很长 chang2, 慢慢地 de5). Tone sandhi then runs per phrase (see `sandhi`). Per-word
results are cached: a book repeats its vocabulary.
"""
from __future__ import annotations

import logging
import re
from functools import lru_cache

import jieba
from pypinyin import Style, lazy_pinyin
from pypinyin.constants import PHRASES_DICT
from pypinyin.seg.mmseg import seg as mmseg

from synth.g2p.pinyin import split_syllable
from synth.g2p.sandhi import apply_sandhi

log = logging.getLogger(__name__)
jieba.setLogLevel(logging.WARNING)

_PUNCT_MAP = {"，": ",", "、": ",", "；": ",", "：": ",", ";": ",", ":": ",", "·": ",", "/": ",",
              "。": ".", "！": "!", "？": "?", "…": "…", "—": "-", "–": "-", "~": "…", "～": "…",
              ",": ",", ".": ".", "!": "!", "?": "?", "-": "-"}
_PUNCT_VALUES = frozenset(",.!?…-")
_HAN = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf\uf900-\ufaff\u3007]")
_SEGMENTS = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf\uf900-\ufaff\u3007]+|[,.!?…\-]")
# Words that pypinyin's phrase dictionary reads wrongly or does not hold.
PHRASE_FIXES: dict[str, tuple[str, ...]] = {
    "很长": ("hen3", "chang2"), "还钱": ("huan2", "qian2"), "还书": ("huan2", "shu1"),
    "数一数": ("shu3", "yi1", "shu3"), "东西": ("dong1", "xi5"), "朝阳": ("zhao1", "yang2"),
    "了解": ("liao3", "jie3"), "为了": ("wei4", "le5"), "觉得": ("jue2", "de5"),
    "长大": ("zhang3", "da4"), "一会儿": ("yi2", "hui4", "er5"), "睡着": ("shui4", "zhao2"),
    "地上": ("di4", "shang5"), "长得": ("zhang3", "de5"), "背着": ("bei1", "zhe5"),
    "便宜": ("pian2", "yi5"), "重庆": ("chong2", "qing4"),
}
# Single-character words whose reading depends on the neighbouring words.
_SINGLE_DEFAULT = {"背": "bei4", "长": "chang2", "得": "de5", "地": "di4", "还": "hai2", "重": "zhong4",
                   "只": "zhi3", "都": "dou1", "着": "zhe5", "了": "le5", "的": "de5", "差": "cha4",
                   "教": "jiao1"}
_INNER_DEFAULT = {"长": "chang2", "重": "zhong4", "得": "de5"}
_HUAN_NEXT = set("钱书债款账给回去清")
_DEI_PREV = {"我", "你", "他", "她", "我们", "你们", "他们", "她们", "咱们", "就", "还", "也", "都", "总", "必须", "非"}


class ChineseG2P:
    """Callable: normalised zh text -> (bert_text, phones, word2ph).

    `bert_text` keeps one character per word2ph entry (Han characters and the v2 punctuation
    , . ! ? … -), which is what the GPT-SoVITS engine feeds to its Chinese BERT."""

    def __init__(self, lexicon: dict[str, tuple[str, ...]] | None = None) -> None:
        self.lexicon = dict(lexicon or {})
        words = sorted(self.lexicon, key=len, reverse=True)
        self._lex_re = re.compile("|".join(map(re.escape, words))) if words else None

    def __call__(self, text: str) -> tuple[str, list[str], list[int]]:
        bert_text = to_bert_text(text)
        phones: list[str] = []
        word2ph: list[int] = []
        for syl in self._syllables(bert_text):
            if syl in _PUNCT_VALUES:
                phones.append(syl)
                word2ph.append(1)
                continue
            try:
                initial, final = split_syllable(syl)
            except ValueError:
                log.debug("no pinyin for %r", syl)
                phones.append("UNK")
                word2ph.append(1)
                continue
            phones += [initial, final]
            word2ph.append(2)
        return bert_text, phones, word2ph

    def pinyin(self, text: str) -> list[str]:
        """Tone-numbered pinyin after sandhi, one per Han character, punctuation as itself."""
        return self._syllables(to_bert_text(text))

    def _syllables(self, bert_text: str) -> list[str]:
        out: list[str] = []
        for m in _SEGMENTS.finditer(bert_text):
            seg = m.group(0)
            if not _HAN.match(seg):
                out.append(seg)
                continue
            phrase, fixed = self._words(seg)
            apply_sandhi(phrase, fixed, _is_word)
            for _word, sylls in phrase:
                out.extend(sylls)
        return out

    def _words(self, seg: str) -> tuple[list[tuple[str, list[str]]], set[int]]:
        pieces: list[tuple[str, bool]] = []
        pos = 0
        if self._lex_re is not None:
            for m in self._lex_re.finditer(seg):
                if m.start() > pos:
                    pieces.extend((w, False) for w in _cut(seg[pos:m.start()]))
                pieces.append((m.group(0), True))
                pos = m.end()
        pieces.extend((w, False) for w in _cut(seg[pos:]))
        phrase: list[tuple[str, list[str]]] = []
        fixed: set[int] = set()
        for i, (word, is_lex) in enumerate(pieces):
            if is_lex:
                fixed.add(i)
                phrase.append((word, list(self.lexicon[word])))
            else:
                phrase.append((word, list(word_pinyin(word))))
        _context_readings(phrase, fixed)
        return phrase, fixed


def to_bert_text(text: str) -> str:
    """Keep Han characters and map punctuation to the v2 set; repeated marks collapse to one."""
    out: list[str] = []
    for ch in text:
        if _HAN.match(ch):
            out.append(ch)
        else:
            p = _PUNCT_MAP.get(ch)
            if p and not (out and out[-1] in _PUNCT_MAP.values()):
                out.append(p)
    return "".join(out)


def _is_word(text: str) -> bool:
    return bool(jieba.dt.FREQ.get(text))


@lru_cache(maxsize=200_000)
def _cut_cached(text: str) -> tuple[str, ...]:
    return tuple(jieba.lcut(text))


def _cut(text: str) -> tuple[str, ...]:
    if not text:
        return ()
    return _cut_cached(text) if len(text) <= 12 else tuple(jieba.lcut(text))


@lru_cache(maxsize=200_000)
def word_pinyin(word: str) -> tuple[str, ...]:
    """Citation pinyin of one jieba word, one tone-numbered syllable per character."""
    if word in PHRASE_FIXES:
        return PHRASE_FIXES[word]
    sylls = lazy_pinyin(word, style=Style.TONE3, neutral_tone_with_five=True, errors=lambda s: ["?"] * len(s))
    if len(sylls) != len(word):
        sylls = [lazy_pinyin(ch, style=Style.TONE3, neutral_tone_with_five=True,
                             errors=lambda s: ["?"])[0] for ch in word]
    if len(word) > 1 and word not in PHRASES_DICT and any(ch in _INNER_DEFAULT for ch in word):
        # pypinyin read the pieces of this word separately; a polyphone left alone as a piece
        # gets its usual reading (很长 chang2), one inside a known phrase keeps the phrase's.
        pos = 0
        for piece in mmseg.cut(word):
            if len(piece) == 1 and piece in _INNER_DEFAULT and (pos or piece != "得"):
                sylls[pos] = _INNER_DEFAULT[piece]
            pos += len(piece)
    return tuple(sylls)


def _context_readings(phrase: list[tuple[str, list[str]]], fixed: set[int]) -> None:
    """Readings of single-character polyphones from the words around them."""
    text = "".join(w for w, _ in phrase)
    if "长得" in text:  # 长得很高: 'grows', whatever jieba glued 长 to (他长|得)
        pos = 0
        for i, (word, sylls) in enumerate(phrase):
            for k, ch in enumerate(word):
                if ch == "长" and text[pos + k + 1:pos + k + 2] == "得" and text[pos + k + 2:pos + k + 3] != "多" \
                        and i not in fixed:
                    sylls[k] = "zhang3"
            pos += len(word)
    for i, (word, sylls) in enumerate(phrase):
        if i in fixed or len(word) != 1 or word not in _SINGLE_DEFAULT:
            continue
        prev = phrase[i - 1][0] if i else ""
        nxt = phrase[i + 1][0] if i + 1 < len(phrase) else ""
        reading = _SINGLE_DEFAULT[word]
        if word == "还" and nxt[:1] in _HUAN_NEXT and len(nxt) == 1:
            reading = "huan2"
        elif word == "得" and prev in _DEI_PREV and nxt:
            reading = "dei3"
        elif word == "地" and len(prev) >= 2 and (prev[-1] == prev[-2] or prev[-1] in "然地"):
            reading = "de5"
        elif word == "着" and nxt and nxt[0] in "急凉火迷":
            reading = "zhao2"
        elif word == "背" and nxt[:1] in "着起上走" and prev not in ("", "后", "向"):
            reading = "bei1"  # 背着书包: carry on the back
        elif word == "长" and nxt[:1] in "大成辈官得出":
            reading = "zhang3"
        sylls[0] = reading
