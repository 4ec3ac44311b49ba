"""Markdown that is not prose: inline TeX, Sphinx/MyST role markup, and the spoken forms the reader
uses for them. Simple inline formulas are read ($200\\times200$ → "200 × 200", which the
normaliser says as words); anything else becomes a short note ("a formula") rather than a string of
backslashes and dollars read as money.
"""
from __future__ import annotations

import re

# Pandoc's rule for inline TeX: no space just inside the dollars, no digit right after the closing
# one — so "$5 and $10" stays money.
INLINE_MATH = re.compile(r"(?<![\\$\w])\$(?![\s$])([^$\n]{1,300}?)(?<![\s\\])\$(?![\d$])")
DISPLAY_MATH = re.compile(r"^\s*\$\$.*\$\$\s*$|^\s*\\\[.*\\\]\s*$", re.S)
ROLE = re.compile(r"(?::(\w+):|\{(\w+)\})$")  # text ending in :cite: or {cite}, before `target`
_DROPPED_ROLES = {"cite", "citet", "citep", "label", "numref", "eqref", "ref", "doc", "footcite", "index",
                  "term", "download", "numref", "cite:p", "cite:t"}

_TEX = {r"\times": "×", r"\cdot": "·", r"\div": "÷", r"\pm": "±", r"\le": "≤", r"\leq": "≤", r"\ge": "≥",
        r"\geq": "≥", r"\neq": "≠", r"\ne": "≠", r"\approx": "≈", r"\%": "%", r"\,": " ", r"\;": " ", r"\ ": " ",
        r"\to": " to ", r"\infty": "infinity", r"\pi": "pi", r"\alpha": "alpha", r"\beta": "beta",
        r"\gamma": "gamma", r"\delta": "delta", r"\theta": "theta", r"\lambda": "lambda", r"\mu": "mu",
        r"\sigma": "sigma", r"\epsilon": "epsilon", r"\omega": "omega", r"\ldots": "…", r"\dots": "…"}
_TEX_RE = re.compile("|".join(re.escape(k) + (r"(?![A-Za-z])" if k[-1].isalpha() else "")
                              for k in sorted(_TEX, key=len, reverse=True)))
_POWER = re.compile(r"\^\{?([23])\}?")


def speak_tex(tex: str) -> str | None:
    """Simple inline TeX as text the normaliser can say, or None when it is not simple (fractions,
    sub/superscripts beyond squares and cubes, anything with a command left over)."""
    text = _TEX_RE.sub(lambda m: _TEX[m.group(0)], tex)
    text = _POWER.sub(lambda m: " squared" if m.group(1) == "2" else " cubed", text)
    text = text.replace("{", "").replace("}", "")
    if re.search(r"[\\^_]", text):
        return None
    return " ".join(text.split())


def role_kept(role: str, target: str) -> str | None:
    """What a role's target says aloud: `:ref:\\`Title <target>\\`` → "Title"; a citation, label or
    cross-reference number → None (dropped)."""
    if role == "ref" and "<" in target:
        return target.split("<", 1)[0].strip() or None
    if role in _DROPPED_ROLES:
        return None
    return target
