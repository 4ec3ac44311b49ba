"""Front-end throughput: split + normalise + G2P, in characters per second.

Generates (seeded) a Chinese, an English and a mixed text of >= 200k characters each, in paragraphs
like a book's: words drawn from jieba's 30k most frequent words and 20k CMU dictionary words, with
numbers, dates, money, acronyms and a few hundred invented words that only the neural English model
can read. (Random word salad is kinder to no cache than a real book, so this is pessimistic.)
Prints chars/s per text and the projected time for a 1.2M-character book (target: under 60 s on a
2-core machine).

    python bench/bench_frontend.py [--chars 200000]
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.segment import segment  # noqa: E402
from synth.g2p import G2P  # noqa: E402

ZH_WORDS = """我们 他们 今天 明天 时候 事情 朋友 老师 学生 银行 行长 重要 重新 长大 头发 一起 一样 一个 不要
不对 东西 知道 觉得 喜欢 还是 已经 因为 所以 但是 如果 虽然 可能 应该 需要 发展 经济 社会 国家 世界 历史 文化
科学 技术 研究 问题 方法 结果 时间 地方 城市 农村 政府 公司 市场 工作 生活 家庭 孩子 女儿 儿子 父亲 母亲 小孩儿
一会儿 看一看 好不好 展览馆 小老虎 雨伞 老李 音乐 快乐 觉得 睡觉 了解 为了 成为 首都 都是 慢慢地 走 说 看 想 来
去 很 也 都 就 在 是 有 的 了 着 过 吧 呢 吗 啊 山 水 风 雨 天 地 人 心 手 眼睛 耳朵 春天 夏天 秋天 冬天""".split()
EN_WORDS = """the a of and to in is was he she it they we you that this with for on at by from as but not
have had has been were are will would could should read record present object live lead wind close use
people time year way day man woman child world life hand part place case week company system program question
government number night point home water room mother area money story fact month lot right study book eye job
word business issue side kind head house service friend father power hour game line end member law car city
community name president team minute idea kid body information back parent face others level office door
health person art war history party result change morning reason research girl guy moment air teacher force
education beautiful quickly remember thought through although because however nothing something everything""".split()
def _jieba_vocabulary(n: int = 30_000) -> list[str]:
    """The n most frequent words of jieba's dictionary: a book-sized Chinese vocabulary."""
    import jieba
    path = Path(jieba.__file__).parent / "dict.txt"
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        word, freq, *_ = line.split(" ")
        entries.append((int(freq), word))
    entries.sort(reverse=True)
    return [w for _, w in entries[:n]]


def _cmu_vocabulary(n: int = 20_000) -> list[str]:
    from synth.g2p.cmu import cmu_dict
    words = sorted(w for w in cmu_dict() if w.isalpha())
    return random.Random(1).sample(words, n)


ZH_VOCAB = ZH_WORDS + _jieba_vocabulary()
EN_VOCAB = EN_WORDS * 40 + _cmu_vocabulary()
OOV = ["".join(random.Random(i).choice("bcdfghklmnprstvz") + random.Random(i + 7).choice("aeiou")
               for _ in range(3)) for i in range(300)]


def zh_sentence(r: random.Random) -> str:
    words = [r.choice(ZH_VOCAB) for _ in range(r.randint(6, 18))]
    extra = r.choice(["", f"{r.randint(2, 999)}个", f"{r.randint(1990, 2030)}年{r.randint(1, 12)}月{r.randint(1, 28)}日",
                      f"{r.randint(1, 99)}.{r.randint(0, 9)}%", f"{r.randint(1, 23)}:{r.randint(10, 59)}",
                      f"¥{r.randint(1, 99999)}", "第" + str(r.randint(1, 50)) + "章"])
    words.insert(r.randint(0, len(words)), extra)
    cut = r.randint(2, max(2, len(words) - 2))
    return "".join(words[:cut]) + "，" + "".join(words[cut:]) + r.choice("。。。！？")


def en_sentence(r: random.Random) -> str:
    words = [r.choice(EN_VOCAB) if r.random() > 0.02 else r.choice(OOV) for _ in range(r.randint(6, 22))]
    extra = r.choice(["", str(r.randint(2, 999)), f"in {r.randint(1900, 2030)}",
                      f"${r.randint(1, 9999)}.{r.randint(10, 99)}", f"{r.randint(1, 99)}%", "the NASA and GPU", f"at {r.randint(1, 12)}:{r.randint(10, 59)} pm",
                      "Mr. Smith", "e.g. this"])
    words.insert(r.randint(0, len(words)), extra)
    text = " ".join(w for w in words if w)
    return text[0].upper() + text[1:] + r.choice("...!?")


def mixed_sentence(r: random.Random) -> str:
    parts = []
    for _ in range(r.randint(2, 4)):
        parts.append("".join(r.choice(ZH_VOCAB) for _ in range(r.randint(3, 8))))
        parts.append(" ".join(r.choice(EN_VOCAB + ["PyTorch", "GPU", "iPhone 15", "GPT-4o"])
                              for _ in range(r.randint(1, 3))))
    return " ".join(parts) + r.choice("。！？")


def make_text(kind: str, n_chars: int, seed: int = 0) -> list[str]:
    r = random.Random(seed)
    make = {"zh": zh_sentence, "en": en_sentence, "mixed": mixed_sentence}[kind]
    paragraphs, total = [], 0
    while total < n_chars:
        para = (" " if kind == "en" else "").join(make(r) for _ in range(r.randint(2, 6)))
        paragraphs.append(para)
        total += len(para)
    return paragraphs


def run(paragraphs: list[str], lang: str, g2p: G2P) -> tuple[int, float, int]:
    t0 = time.perf_counter()
    n_phones = 0
    for para in paragraphs:
        for sentence in segment(para, lang, where="bench"):
            n_phones += sum(len(p.phones) for p in g2p.sentence(sentence))
    return sum(map(len, paragraphs)), time.perf_counter() - t0, n_phones


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chars", type=int, default=200_000, help="characters per text (default 200000)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    g2p = G2P()
    run(["预热 warm up，一二三。Hello 123."], "zh", g2p)
    print(f"load dictionaries/models: {time.perf_counter() - t0:.2f} s")
    total_chars, total_s = 0, 0.0
    for kind, lang in (("zh", "zh"), ("en", "en"), ("mixed", "zh")):
        paragraphs = make_text(kind, args.chars)
        chars, secs, phones = run(paragraphs, lang, g2p)
        total_chars += chars
        total_s += secs
        print(f"{kind:6s}: {chars:8d} chars in {secs:6.2f} s = {chars / secs:9.0f} chars/s ({phones} phones)")
    rate = total_chars / total_s
    print(f"overall: {rate:.0f} chars/s -> 1.2M-character book in {1.2e6 / rate:.1f} s (target < 60 s)")


if __name__ == "__main__":
    main()
