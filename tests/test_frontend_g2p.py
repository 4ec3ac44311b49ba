"""G2P for GPT-SoVITS v2: symbol table, alignment invariants, lexicon, padding, offline use."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from gpt_sovits_fixtures import fixture_path

from ingest.errors import InputError
from ingest.frontend import FrontendConfig
from ingest.segment import Run, Sentence, segment
from synth.errors import SynthesisError
from synth.g2p import G2P, PhoneRun, load_lexicon, pad_like_reference, phonemize, phones_to_ids, symbols
from synth.g2p.neural import neural_g2p
from synth.g2p.pinyin import split_syllable

REPO = Path(__file__).resolve().parents[1]


def test_shipped_symbols_equal_fixture():
    path = fixture_path("symbols_v2.json")
    assert list(symbols()) == json.loads(path.read_text(encoding="utf-8"))


def test_reference_phone_ids():
    # phones and ids of the golden GPT case (fixtures README), independent of the fixture files
    ref = "n i3 h ao3 , zh ong1 g uo2 r en2 sh ir4 j ie4 SP m ai3 t ian1 .".split()
    assert phones_to_ids(ref) == [227, 168, 158, 119, 1, 320, 235, 156, 291, 248, 141, 251, 214, 221, 194,
                                  77, 225, 104, 252, 176, 3]
    tgt = "q i4 x ia4 y u3 d e5 , HH AH0 L OW1 W ER1 L D .".split()
    assert phones_to_ids(tgt) == [247, 169, 317, 174, 318, 257, 127, 134, 1, 51, 12, 62, 68, 91, 39, 62, 26, 3]
    with pytest.raises(SynthesisError, match="zz9"):
        phones_to_ids(["zz9"])


@pytest.mark.parametrize("syl,expected", [
    ("zhong1", ("zh", "ong1")), ("a1", ("AA", "a1")), ("e4", ("EE", "e4")), ("ou3", ("OO", "ou3")),
    ("er2", ("EE", "er2")), ("yan2", ("y", "En2")), ("ye4", ("y", "E4")), ("yu3", ("y", "v3")),
    ("yuan2", ("y", "van2")), ("ju4", ("j", "v4")), ("quan2", ("q", "van2")), ("xue2", ("x", "ve2")),
    ("lv4", ("l", "v4")), ("nve4", ("n", "ve4")), ("zhi1", ("zh", "ir1")), ("si4", ("s", "i04")),
    ("ri4", ("r", "ir4")), ("wu3", ("w", "u3")), ("yi1", ("y", "i1")), ("gui4", ("g", "ui4")),
    ("liu2", ("l", "iu2")), ("dun1", ("d", "un1")), ("n2", ("EE", "en2")), ("de", ("d", "e5")),
])
def test_pinyin_to_v2(syl, expected):
    assert split_syllable(syl) == expected
    assert all(p in symbols() for p in expected)


def test_mixed_sentence_alignment_and_inventory():
    g2p = G2P()
    text = "我们用 PyTorch 训练了 3.5 个小时，效果很好！Then we read 12 papers on GPU's and activationism."
    table = set(symbols())
    for sentence in segment(text, "zh"):
        for run in g2p.sentence(sentence):
            assert run.phones and set(run.phones) <= table
            if run.lang == "zh":
                assert run.word2ph is not None
                assert len(run.word2ph) == len(run.text) and sum(run.word2ph) == len(run.phones)
                assert all(ch.isalpha() or ch in ",.!?…-" for ch in run.text)
            else:
                assert run.word2ph is None
            assert len(run.ids) == len(run.phones)


def test_zh_phones_example():
    (run,) = phonemize(Sentence("你好，世界。", (Run("你好，世界。", "zh"),)))
    assert run == PhoneRun("zh", "你好,世界.", ("n", "i2", "h", "ao3", ",", "sh", "ir4", "j", "ie4", "."),
                           (2, 2, 1, 2, 2, 1))


def test_english_oov_uses_offline_neural_model():
    assert neural_g2p().predict("activationist") == (
        "AE2", "K", "T", "IH0", "V", "EY1", "SH", "AH0", "N", "IH0", "S", "T")


def test_lexicon_toml_overrides_both(tmp_path):
    lex = tmp_path / "lexicon.toml"
    lex.write_text('[zh]\n"曾小贤" = "zeng1 xiao3 xian2"\n[en]\n"Sovits" = "S OW1 V IH0 T S"\n"read" = "R IY1 D"\n',
                   encoding="utf-8")
    g2p = G2P(lex)
    zh = g2p.run(Run("曾小贤来了", "zh"))
    assert zh.phones[:6] == ("z", "eng1", "x", "iao3", "x", "ian2")
    en = g2p.run(Run("Sovits read it", "en"))
    assert en.phones[:9] == ("S", "OW1", "V", "IH0", "T", "S", "R", "IY1", "D")


def test_lexicon_words_survive_normalisation(tmp_path):
    lex = tmp_path / "lexicon.toml"
    lex.write_text('[en]\n"SQL" = "S IY1 K W AH0 L"\n', encoding="utf-8")
    lexicon = load_lexicon(lex)
    config = FrontendConfig(keep_words=lexicon.keep_words())
    (s,) = segment("We use SQL and CSS.", "en", config=config)
    assert s.runs[0].text == "We use SQL and C S S."
    (run,) = G2P(lexicon).sentence(s)
    assert run.phones[5:11] == ("S", "IY1", "K", "W", "AH0", "L")


def test_lexicon_tsv_and_errors(tmp_path):
    tsv = tmp_path / "names.tsv"
    tsv.write_text("# names\n重庆\tchong2 qing4\nKubernetes\tK UW2 B ER0 N EH1 T IY0 Z\n", encoding="utf-8")
    lex = load_lexicon(tsv)
    assert lex.zh["重庆"] == ("chong2", "qing4") and lex.en["kubernetes"][0] == "K"
    bad = tmp_path / "bad.tsv"
    bad.write_text("重庆\tchong2\n", encoding="utf-8")
    with pytest.raises(InputError, match="bad.tsv.*重庆"):
        load_lexicon(bad)
    bad.write_text("Foo\tQQ1\n", encoding="utf-8")
    with pytest.raises(InputError, match="QQ1"):
        load_lexicon(bad)
    with pytest.raises(InputError, match="missing.toml"):
        load_lexicon(tmp_path / "missing.toml")


def test_pad_like_reference():
    short = [PhoneRun("en", "OK", ("OW2", "K", "EY1"))]
    padded = pad_like_reference(short)
    assert padded[0].phones[:2] == (".", ",")
    zh = [PhoneRun("zh", "好", ("h", "ao3"), (2,))]
    (p,) = pad_like_reference(zh)
    assert p.text == ".好" and p.phones == (".", "h", "ao3") and p.word2ph == (1, 2)


def test_whole_front_end_without_network(monkeypatch):
    """Sockets raise; the front end (fresh interpreter, so imports happen under the ban) still works
    and never imports nltk or g2p_en's module (whose import tries downloads)."""
    code = r"""
import socket, sys
class NoNetwork(socket.socket):  # a subclass, so modules that subclass socket (ssl) still import
    def __init__(self, *a, **k):
        raise OSError("network disabled in test")
def banned(*a, **k):
    raise OSError("network disabled in test")
socket.socket = NoNetwork
socket.create_connection = banned
socket.getaddrinfo = banned
from ingest.segment import segment
from synth.g2p import G2P
g = G2P()
n = 0
for s in segment("我们用 PyTorch 训练了 3 个模型。Zorblaxian words like activationism read fine in 2024.", "zh"):
    n += sum(len(r.phones) for r in g.sentence(s))
assert n > 50, n
assert "nltk" not in sys.modules and "g2p_en" not in sys.modules, sorted(m for m in sys.modules if "nltk" in m or "g2p" in m)
print("ok", n)
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("ok")


@pytest.mark.parametrize("seed", range(4))
def test_random_text_through_whole_front_end(seed):
    import random
    r = random.Random(seed)
    alphabet = ("的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家"
                "儿还长行重 abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 ，。！？、；：“”《》"
                "（）.,!?;:'\"()-—…%$¥€@#/&+= 😀ひら한국\u200b")
    g2p = G2P()
    table = set(symbols())
    text = "".join(r.choice(alphabet) for _ in range(600))
    for sentence in segment(text, r.choice(["zh", "en"])):
        for run in g2p.sentence(sentence):
            assert set(run.phones) <= table
            if run.word2ph is not None:
                assert len(run.word2ph) == len(run.text) and sum(run.word2ph) == len(run.phones)
