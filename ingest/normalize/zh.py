"""Chinese run normalisation: every digit, symbol and unit becomes the Chinese a narrator would say.

Order matters: the specific patterns (dates, times, phone numbers, money, percentages, units) run
before the generic number rule, which would otherwise read '2024-03-05' as three numbers.
"""
from __future__ import annotations

import re
from decimal import Decimal

from ingest.normalize.numbers import ANY_NUM, NUM, zh_digits, zh_number

_NUM = NUM  # linear over long digit strings; see numbers.NUM
# Measure words after which 2 is read 两 (两个, 两本) rather than 二.
_LIANG_BEFORE = set("个位只本条张件次天年岁种台辆把块名头匹双对家层门部份架艘座项场篇首封杯瓶碗口棵株根支枝"
                    "点小周月分秒倍斤吨米克升")

_UNITS = {  # longest first in the regex below
    "km/h": "千米每小时", "m/s": "米每秒", "km²": "平方公里", "m²": "平方米", "cm²": "平方厘米",
    "m³": "立方米", "km": "公里", "cm": "厘米", "mm": "毫米", "nm": "纳米", "μm": "微米",
    "kg": "千克", "mg": "毫克", "ml": "毫升", "mL": "毫升", "m": "米", "g": "克", "L": "升",
    "kW": "千瓦", "mAh": "毫安时", "ms": "毫秒", "μs": "微秒",
    "GHz": "吉赫兹", "MHz": "兆赫兹", "kHz": "千赫兹", "Hz": "赫兹", "dB": "分贝",
    "℃": "摄氏度", "°C": "摄氏度", "°F": "华氏度", "°": "度", "‰": "‰",
}
_UNIT_RE = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))

_DATE = re.compile(r"(\d{4})\s*[年/.\-]\s*(\d{1,2})\s*[月/.\-]\s*(\d{1,2})\s*[日号]?")
_YEAR_MONTH = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月")
_YEAR = re.compile(r"(?<!\d)(\d{4}|\d{2})(?=\s*(?:年代|年|届))")
_YEAR_RANGE = re.compile(r"(?<!\d)(\d{4})\s*[-~～—–至到]\s*(\d{4})(?=\s*年)")
_TIME = re.compile(r"(?<!\d)([01]?\d|2[0-4])[:：]([0-5]\d)(?:[:：]([0-5]\d))?(?!\d)")
_RATIO = re.compile(r"(?<![\d:])(\d++)[:：](\d++)(?![\d:])")
_MOBILE = re.compile(r"(?<![\d.])(?:\+86[\s-]?)?(1[3-9]\d)[\s-]?(\d{4})[\s-]?(\d{4})(?!\d|\.\d)")
_LANDLINE = re.compile(r"(?<![\d.])(0\d{2,3}|400|800)-(\d{3,4})-?(\d{3,4})(?!\d|\.\d)")
_MONEY_PRE = re.compile(r"(US\$|\$|¥|€|£|HK\$)\s?(" + _NUM + r")\s*(万亿|亿|万|千)?")
_MONEY_NAMES = {"US$": "美元", "$": "美元", "¥": "元", "€": "欧元", "£": "英镑", "HK$": "港元"}
_PERCENT = re.compile(r"((?<![\d.])[-+]?" + _NUM + r")\s?[%％]")
_PERCENT_RANGE = re.compile(r"(" + _NUM + r")\s?%?\s?[-~～—–至到]\s?(" + _NUM + r")\s?[%％]")
_PERMILLE = re.compile(r"([-+]?" + _NUM + r")\s?‰")
_TEMP = re.compile(r"(-?" + _NUM + r")\s?(℃|°C|°F)")
_UNIT = re.compile(r"(" + _NUM + r")\s?(" + _UNIT_RE + r")(?![A-Za-z])")
_FRACTION = re.compile(r"(?<![\d/])(\d++)/(\d++)(?![\d/])")
_RANGE = re.compile(r"(" + _NUM + r")\s?[-~～—–]\s?(" + _NUM + r")")
_NEG = re.compile(r"(?<![\dA-Za-z])-(?=\d)")
_ABOUT = re.compile(r"(?<![\d%％])(约?)\s?[~～](?=\s?\d)")  # ~140 (约) — between numbers it is a range
_NUMBER = re.compile(ANY_NUM)
_SCALED = re.compile(r"(?<![\d.])(\d++(?:\.\d++)?)(k|K|M|B|bn)(?![A-Za-z])")
_SCALE = {"k": 3, "K": 3, "M": 6, "B": 9, "bn": 9}  # powers of ten
_DIGIT_STRING = re.compile(r"(?<![\d.,])0\d++(?![\d.,])|(?<![\d.,])\d{12,}+(?![\d.,])")

_SYMBOLS = {"+": "加", "=": "等于", "×": "乘", "÷": "除以", "<": "小于", ">": "大于",
            "≤": "小于等于", "≥": "大于等于", "&": "和", "@": "艾特", "#": "井号", "/": "，"}
_DROP = str.maketrans("", "", "“”\"‘’'「」『』《》〈〉*_`^|\\")
_TO_COMMA = re.compile(r"[（）()\[\]【】{}<>]")
_PUNCT_RUN = re.compile(r"([，。！？、；：,.!?;:])[，。！？、；：,.!?;:\s]+")
_SPACE = re.compile(r"\s+")


def _scaled(m: re.Match) -> str:
    """70B is 七百亿 and 50k 五万: the value said in Chinese units, not 七十+十亿 word by word."""
    value = Decimal(m.group(1)).scaleb(_SCALE[m.group(2)])
    return zh_number(format(value.normalize(), "f"))


def _money(m: re.Match) -> str:
    value = m.group(2)
    if "." in value:
        value = value.rstrip("0").rstrip(".")  # ¥59.80 is 五十九点八元
    amount = zh_number(value)
    return amount + (m.group(3) or "") + _MONEY_NAMES[m.group(1)]


def _time(m: re.Match) -> str:
    hour, minute, second = int(m.group(1)), m.group(2), m.group(3)
    out = ("两" if hour == 2 else zh_number(str(hour))) + "点"
    if minute != "00" or second:
        out += ("零" + zh_digits(minute[1]) if minute[0] == "0" and minute != "00" else
                zh_number(str(int(minute)))) + "分"
    if second:
        out += zh_number(str(int(second))) + "秒"
    return out


def _number(m: re.Match) -> str:
    text = m.group(0)
    if text == "2" and m.end() < len(m.string) and m.string[m.end()] in _LIANG_BEFORE:
        prev = m.string[m.start() - 1] if m.start() else ""
        if prev != "第" and prev != ".":
            return "两"
    return zh_number(text)


def _temp(m: re.Match) -> str:
    value = m.group(1)
    if m.group(2) == "°F":
        return "华氏" + zh_number(value) + "度"
    if value.startswith("-"):
        return "零下" + zh_number(value[1:]) + "摄氏度"
    return zh_number(value) + "摄氏度"


def _unit(m: re.Match) -> str:
    unit = _UNITS[m.group(2)]
    value = m.group(1)
    head = "两" if value == "2" and unit[0] not in "度" else zh_number(value)
    return head + unit


def normalize_zh(text: str) -> str:
    """Read digits, symbols and units in Chinese; Chinese punctuation is kept, quotes go."""
    text = text.replace("---", "—").replace("--", "–")  # typewriter dashes: 1904--1985 is a range
    if any(c.isdigit() for c in text):
        text = _SCALED.sub(_scaled, text)
        text = _DATE.sub(lambda m: f"{zh_digits(m.group(1))}年{zh_number(str(int(m.group(2))))}月"
                                   f"{zh_number(str(int(m.group(3))))}日", text)
        text = _YEAR_MONTH.sub(lambda m: f"{zh_digits(m.group(1))}年{zh_number(m.group(2))}月", text)
        text = _YEAR_RANGE.sub(lambda m: f"{zh_digits(m.group(1))}到{zh_digits(m.group(2))}", text)
        text = _YEAR.sub(lambda m: zh_digits(m.group(1)), text)
        text = _TIME.sub(_time, text)
        text = _RATIO.sub(lambda m: zh_number(m.group(1)) + "比" + zh_number(m.group(2)), text)
        text = _MOBILE.sub(lambda m: "，".join(zh_digits(g, phone=True) for g in m.groups()), text)
        text = _LANDLINE.sub(lambda m: "，".join(zh_digits(g, phone=True) for g in m.groups()), text)
        text = _MONEY_PRE.sub(_money, text)
        text = _PERCENT_RANGE.sub(lambda m: f"百分之{zh_number(m.group(1))}到百分之{zh_number(m.group(2))}", text)
        text = _PERCENT.sub(lambda m: "百分之" + zh_number(m.group(1)), text)
        text = _PERMILLE.sub(lambda m: "千分之" + zh_number(m.group(1)), text)
        text = _TEMP.sub(_temp, text)
        text = _UNIT.sub(_unit, text)
        text = _FRACTION.sub(lambda m: zh_number(m.group(2)) + "分之" + zh_number(m.group(1)), text)
        text = _RANGE.sub(lambda m: zh_number(m.group(1)) + "到" + zh_number(m.group(2)), text)
        text = _DIGIT_STRING.sub(lambda m: zh_digits(m.group(0)), text)
        text = _ABOUT.sub("约", text)  # 大约~140 stays 大约
        text = _NEG.sub("负", text)
        text = _NUMBER.sub(_number, text)
    return tidy_zh(text)


def tidy_zh(text: str) -> str:
    """Symbols to words, brackets to pauses, quotes dropped, spaces and repeated stops collapsed."""
    if any(c in _SYMBOLS for c in text):
        text = "".join(_SYMBOLS.get(c, c) for c in text)
    text = text.translate(_DROP)
    text = _TO_COMMA.sub("，", text)
    text = _SPACE.sub("", text)
    text = _PUNCT_RUN.sub(_strongest, text)
    return text.lstrip("，、；：,;:。.!！?？ ")


_STRENGTH = {"。": 3, "！": 3, "？": 3, ".": 3, "!": 3, "?": 3, "；": 2, "：": 2, ";": 2, ":": 2}


def _strongest(m: re.Match) -> str:
    """A run of marks ('，。') keeps its strongest one: a sentence stop beats a comma."""
    marks = [c for c in m.group(0) if not c.isspace()]
    return max(marks, key=lambda c: _STRENGTH.get(c, 1))
