"""`preview_lines`: what `bookcast preview` prints, as text and as JSON lines."""
from __future__ import annotations

import json

import pytest

from flows.steps.preview import preview_lines
from ingest.errors import InputError
from ingest.model import Block, Book, BookMeta, Chapter

BOOK = Book(BookMeta("Test", language="zh-CN"), (
    Chapter("序", (Block("Chapter IV", "heading"), Block("GPT-4o 的 3.5 倍。他说：“你们好啊！”"))),
    Chapter("二", (Block("第二章", "heading"), Block("", "section_break"), Block("我有2个苹果。"))),
), source="book.epub")


def test_text_preview_one_chapter():
    lines = list(preview_lines(BOOK, 1, False))
    assert lines[0] == "== Chapter 1: 序 =="
    assert lines[1] == "[1] Chapter 4"
    assert lines[2] == "    en | Chapter four | CH AE1 P T ER0 F AO1 R"
    assert any(line.startswith("    zh | 的三点五倍。") for line in lines)
    assert not any("Chapter 2" in line for line in lines)


def test_json_preview_whole_book():
    objs = [json.loads(line) for line in preview_lines(BOOK, None, True)]
    assert {o["chapter"] for o in objs} == {1, 2}
    last = objs[-1]
    assert last["text"] == "我有2个苹果。"
    (run,) = last["runs"]
    assert run["lang"] == "zh" and run["text"] == "我有两个苹果。" and run["g2p_text"] == "我有两个苹果."
    assert sum(run["word2ph"]) == len(run["phones"]) and len(run["word2ph"]) == len(run["g2p_text"])
    assert all(set(o) >= {"chapter", "text", "runs"} for o in objs)


def test_chapter_out_of_range():
    with pytest.raises(InputError, match="chapter 3"):
        list(preview_lines(BOOK, 3, False))
