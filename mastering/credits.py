"""Opening and closing credits, spoken from the book's metadata.

ACX asks for opening credits (title, author, narrator) and closing credits ending in "The End".
Because the narrator is a synthetic voice, the credits say so — listeners and stores expect the
disclosure. Plain strings in, plain strings out: the flow synthesizes them like any sentence.
"""
from __future__ import annotations


def _is_zh(language: str) -> bool:
    return language.lower().startswith("zh")


def opening_credits(title: str, author: str = "", narrator: str = "", language: str = "en",
                    synthetic: bool = True) -> str:
    """"Title. Written by Author. Narrated by Narrator, a synthetic voice." (or the Chinese)."""
    if _is_zh(language):
        parts = [f"《{title}》"]
        if author:
            parts.append(f"作者：{author}")
        if narrator:
            parts.append(f"朗读：{narrator}" + ("（合成语音）" if synthetic else ""))
        elif synthetic:
            parts.append("由合成语音朗读")
        return "，".join(parts) + "。"
    parts = [f"{title}."]
    if author:
        parts.append(f"Written by {author}.")
    if narrator:
        parts.append(f"Narrated by {narrator}" + (", a synthetic voice." if synthetic else "."))
    elif synthetic:
        parts.append("Narrated by a synthetic voice.")
    return " ".join(parts)


def closing_credits(title: str, author: str = "", narrator: str = "", language: str = "en",
                    synthetic: bool = True) -> str:
    """"This has been Title, written by Author, narrated by Narrator. The End." (or the Chinese)."""
    if _is_zh(language):
        text = f"《{title}》到此结束"
        if author:
            text += f"，作者：{author}"
        if narrator:
            text += f"，朗读：{narrator}" + ("（合成语音）" if synthetic else "")
        return text + "。全书完。"
    text = f"This has been {title}"
    if author:
        text += f", written by {author}"
    if narrator:
        text += f", narrated by {narrator}" + (", a synthetic voice" if synthetic else "")
    elif synthetic:
        text += ", narrated by a synthetic voice"
    return text + ". The End."
