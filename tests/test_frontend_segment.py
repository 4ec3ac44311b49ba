"""Segmentation: length budget, merging, cleaning, unsupported scripts, headings, URL policy."""
from __future__ import annotations

import logging
import random

import pytest

from ingest.frontend import DEFAULT, FrontendConfig
from ingest.segment import (Run, Sentence, char_lang, cut_long, language_runs, merge_short, segment,
                            tag_runs, units)
from synth.engines import engine_info
from synth.errors import VoiceError

GPT_SOVITS, ESPEAK = engine_info("gpt-sovits").frontend, engine_info("espeak").frontend


def test_public_types_stay_compatible():
    s = segment("Hello world. 你好世界。", "en")
    assert all(isinstance(x, Sentence) for x in s)
    assert all(isinstance(r, Run) and r.lang in ("zh", "en") and r.text for x in s for r in x.runs)


def test_runs_are_normalised_text():
    (s,) = segment("I have 3 cats.", "en")
    assert s.text == "I have 3 cats."
    assert [r.text for r in s.runs] == ["I have three cats."]
    assert s.spoken == "I have three cats."


def test_long_chinese_sentence_cut_at_commas_within_budget():
    text = ("这是一个非常非常长的句子，它包含了很多很多的内容，我们需要把它切成比较短的小段落，"
            "这样模型才能读得比较好，不然的话模型可能会漏掉一些字或者重复一些字，这是我们不希望看到的。")
    pieces = segment(text, "zh", config=GPT_SOVITS)
    assert len(pieces) >= 2
    assert all(units(p.text) <= GPT_SOVITS.max_units for p in pieces)
    assert "".join(p.text for p in pieces) == text  # cut, nothing lost or reordered
    assert all(p.text.endswith(("，", "。")) for p in pieces)  # at commas, not mid-clause


def test_long_sentence_without_punctuation_cut_at_words():
    words = "the quick brown fox jumps over the lazy dog again and again".split()
    text = " ".join(words * 4) + "."
    pieces = cut_long(text, 50)
    assert len(pieces) >= 2
    assert all(units(p) <= 50 for p in pieces)
    assert " ".join(pieces).split() == text.split()  # whole words only


def test_chinese_without_punctuation_cut_at_word_boundaries():
    text = "中华人民共和国" * 12
    pieces = cut_long(text, 50)
    assert "".join(pieces) == text
    assert all(units(p) <= 50 for p in pieces)


def test_clause_stops_preferred_over_commas():
    text = "第一部分很长很长很长很长，也很长很长很长；第二部分也很长很长很长，还是很长很长很长很长。"
    pieces = cut_long(text, 30)
    assert pieces[0].endswith("；")


def test_short_pieces_merged_with_neighbour():
    merged = merge_short(["好。", "我知道了，这件事情我们明天再说吧。"], 5, 50)
    assert merged == ["好。我知道了，这件事情我们明天再说吧。"]
    assert merge_short(["Yes.", "No."], 5, 50) == ["Yes. No."]
    # never beyond the budget
    assert merge_short(["好。", "很" * 50], 5, 50) == ["好。", "很" * 50]


def test_engine_configs():
    """Each engine declares its budget; text with no engine yet gets the cautious one."""
    assert DEFAULT.max_units == GPT_SOVITS.max_units < ESPEAK.max_units
    with pytest.raises(VoiceError, match="unknown engine 'nope'"):
        engine_info("nope")
    long_text = "word " * 60 + "end."
    assert len(segment(long_text, "en", config=ESPEAK)) == 1
    assert len(segment(long_text, "en", config=GPT_SOVITS)) >= 3


def test_emoji_and_control_characters_stripped():
    (s,) = segment("Hello\u200b 😀👍🏽 wor\u00adld\x07!", "en")
    assert s.runs[0].text == "Hello world!"


def test_unsupported_scripts_warn_with_place_and_never_crash(caplog):
    with caplog.at_level(logging.WARNING, logger="ingest.segment"):
        out = segment("こんにちは。안녕하세요。朋友们好。", "zh", where="chapter 3")
    assert [r.text for s in out for r in s.runs] == ["朋友们好。"]
    messages = [r.getMessage() for r in caplog.records]
    assert any("chapter 3" in m and "Japanese" in m for m in messages)
    assert any("chapter 3" in m and "Korean" in m for m in messages)


def test_only_kana_gives_no_sentences(caplog):
    with caplog.at_level(logging.WARNING, logger="ingest.segment"):
        assert segment("ひらがなだけ。", "zh", where="ch1") == []


@pytest.mark.parametrize("seed", range(5))
def test_random_unicode_never_crashes(seed):
    r = random.Random(seed)
    alphabet = "abcXYZ 你好中文，。！？…—“”()[]0123456789.,:;%$¥€-+/@#&*😀\u200b\x00ひらカナ한국"
    text = "".join(r.choice(alphabet) for _ in range(400))
    for s in segment(text, r.choice(["zh", "en"]), config=FrontendConfig(max_units=30)):
        assert s.runs and all(r.text for r in s.runs)
        assert not any(c.isdigit() for r in s.runs for c in r.text)


def test_roman_numerals_in_headings_and_after_section_words():
    """A bare numeral is a number only in a heading; in running text only after Chapter, Book,
    Part and the like ('CHAPTER IV' was once spelled 'I V')."""
    assert segment("Chapter IV", "en", heading=True)[0].runs[0].text == "Chapter four"
    assert segment("XII. The End", "en", heading=True)[0].runs[0].text == "twelve. The End"
    assert segment("第III章 开始", "zh", heading=True)[0].runs[0].text == "第三章开始"
    assert segment("I went home.", "en", heading=True)[0].runs[0].text == "I went home."
    assert segment("Chapter IV", "en")[0].runs[0].text == "Chapter four"
    assert segment("He lived in XII houses.", "en")[0].runs[0].text == "He lived in X I I houses."
    assert segment("Part I never saw.", "en")[0].runs[0].text == "Part I never saw."


def test_url_policy():
    text = "Visit https://example.com/a now."
    assert segment(text, "en")[0].runs[0].text == "Visit example dot com slash a now."
    drop = FrontendConfig(urls="drop", emails="drop")
    assert segment(text, "en", config=drop)[0].runs[0].text == "Visit now."
    assert segment("Mail a@b.org now.", "en", config=drop)[0].runs[0].text == "Mail now."


def test_language_runs_attach_numbers_and_punctuation():
    assert language_runs("GPT-4o 的 3.5 倍。", "zh") == [("en", "GPT-4o"), ("zh", "的 3.5 倍。")]
    assert language_runs("iPhone 15 很好", "zh") == [("en", "iPhone 15"), ("zh", "很好")]
    assert language_runs("123", "zh") == [("zh", "123")]
    assert language_runs("ひらがな 你好", "zh") == [("ja", "ひらがな"), ("zh", "你好")]
    assert tag_runs("ひらがな 你好 ok", "zh") == [Run("你好", "zh"), Run("ok", "en")]
    assert [char_lang(c) for c in "中a1ひ"] == ["zh", "en", None, None]
