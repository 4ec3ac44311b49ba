"""Mandarin tone changes in connected speech, applied to dictionary tones of a jieba-cut phrase.

pypinyin gives citation tones per word; a narrator says something else in context:
- 不 becomes bu2 before a fourth tone and is neutral inside A-不-A questions (好不好);
- 一 is yi1 when counting (一九九八, 第一, 统一), yi5 inside reduplications (看一看),
  yi2 before a fourth or neutral tone (一个, 一样) and yi4 before the others (一起, 一天);
- a third tone before a third tone becomes a second tone (你好), along chains across short words
  (我很好), except that a single syllable before a two-syllable word keeps it (小 老虎);
- suffixes and particles are neutral (我们, 桌子, 看看, 的, 了), as are common disyllables
  (东西 'thing', 朋友, 意思);
- 儿 after a word is erhua: it takes the tone of the syllable it attaches to.
Each phrase is a list of (word, [syllable, ...]) with tone-numbered pinyin, modified in place.
"""
from __future__ import annotations

NUMERALS = set("零〇一二两三四五六七八九十百千万亿几第")
_COUNT_BEFORE = set("零〇一二两三四五六七八九十百千万亿第")  # 十一, 第一, 一百一: counting
_COUNT_AFTER = set("零〇一二三四五六七八九")  # 一九九八: digits read one by one
MUST_NEUTRAL = frozenset("""东西 朋友 时候 事情 衣服 明白 知道 告诉 意思 先生 地方 休息 消息 窗户 收拾 打扮
客气 漂亮 舒服 清楚 暖和 热闹 麻烦 商量 喜欢 认识 便宜 答应 聪明 糊涂 脑袋 眼睛 耳朵 嘴巴 头发 豆腐 萝卜
葡萄 玻璃 石头 木头 骨头 指头 舌头 馒头 枕头 姑娘 丈夫 媳妇 亲戚 伙计 关系 学生 大夫 太阳 月亮 云彩 衣裳
行李 生意 买卖 功夫 故事 事儿 规矩 主意 打听 琢磨 折腾 凑合 嘱咐 吩咐 应付 照顾 欺负 结实 老实 踏实 扎实
厉害 利索 痛快 凉快 爽快 勤快 模糊 含糊 马虎 软和 暖和 热乎 黏糊 稀罕 体面 大方 小气 和气 福气 脾气 力气
名字 本事 东家 亲家 人家 别人 王八 尾巴 哑巴 结巴 嘴唇 指甲 下巴 胳膊 屁股 肚子 膏药 芝麻 蘑菇 核桃 黄瓜
西瓜 南瓜 冬瓜 苍蝇 蚊子 蛤蟆 骆驼 狐狸 刺猬 麻雀 喇叭 琵琶 胡琴 灯笼 笤帚 簸箕 扁担 棉花 庄稼 牲口 粮食
芝麻 厨子 日子 院子 屋子 被子 对付 盘算 思量 估计 合同 衙门 柴火 火候 动静 报酬 招呼 提防 相声 进去 出来
进来 出去 回来 回去 上来 下来 上去 下去 起来 过来 过去 开来 明白 路上 身上 晚上 早上 天上 地上
街上 手上 脸上 桌上 墙上 山上 树上 世上 头上 心上 家里 心里 手里 屋里 夜里 嘴里 眼里 梦里 交情 心思 念叨 唠叨 叨唠 咳嗽 哆嗦 懒得
记得 觉得 晓得 舍得 认得 值得 怪不得 免得 难得 见得 来得 算得""".split())
NOT_NEUTRAL_REDUP = frozenset("""常常 刚刚 往往 渐渐 偏偏 明明 仅仅 默默 纷纷 悄悄 慢慢 久久 处处 人人 天天 年年
个个 家家 事事 步步 时时 刻刻 种种 统统 轻轻 静静 深深 紧紧 微微 暗暗 隐隐 稍稍 淡淡 缓缓 匆匆 苦苦 好好
高高 大大 多多 早早 白白 每每 区区 层层 重重 滔滔 源源 熊熊 津津 翩翩 冉冉 历历 寥寥 欣欣 堂堂 楚楚 茫茫 纷纷
频频 连连 声声 句句 条条 样样 代代 世世 生生 头头 洋洋 哈哈 呵呵 嘻嘻 嘿嘿 哗哗 隆隆 啦啦 咚咚 恰恰 迟迟 遥遥
生生 真真 实实 确确 亭亭 团团 万万 千千 双双 对对 点点 滴滴 片片 阵阵 丝丝 粒粒 朵朵 落落 井井 循循 喋喋""".split())
ZI_FULL_TONE = frozenset("""孔子 孟子 老子 庄子 墨子 荀子 韩非子 君子 男子 女子 天子 太子 王子 公子 原子 电子
分子 离子 粒子 质子 中子 光子 因子 量子 游子 学子 赤子 才子 孝子 弟子 甲子 夫子 仙子 诸子 瓜子 棋子 种子 
莲子 松子 卵子 精子 孢子 臣子 逆子 浪子 犬子 童子 内子 舟子""".split())
NOT_ERHUA = frozenset("""女儿 儿子 婴儿 孤儿 幼儿 少儿 患儿 男儿 健儿 宠儿 胎儿 孙儿 侄儿 妻儿 儿女 混血儿 婴幼儿
新生儿 弃儿 孩儿 乞儿 犬儿 花儿 鸟儿 马儿 猫儿 狗儿 虫儿 鱼儿 雏儿""".split())
NEUTRAL_BU = frozenset("""对不起 看不起 了不起 差不多 受不了 忍不住 来不及 用不着 说不定 大不了 少不了 免不了
靠不住 比不上 买不起 想不到 想不通 睡不着 吃不下 忘不了 舍不得 怪不得 记不住 看不见 听不见 找不到 做不到""".split())
_COUNTERS = set("个只次天年位本件张条句步")
_PARTICLES = set("吧呢啊嘛呀哦啦哇呐喽哟呗噢")
_DIRECTION_HEAD = set("上下进出回过起开")


def _tone(s: str) -> str:
    return s[-1]


def _with_tone(s: str, tone: str) -> str:
    return s[:-1] + tone


def apply_sandhi(phrase: list[tuple[str, list[str]]], fixed: set[int] = frozenset(),
                 is_word=lambda w: False) -> None:
    """Apply all tone changes to one phrase (no punctuation inside), in place.

    `fixed` holds word indexes whose syllables came from the user lexicon: they are left as given.
    `is_word` tells whether a string is a dictionary word; it reveals the inner structure of
    three-syllable words (小|老虎 against 展览|馆).
    """
    _neutral(phrase, fixed)
    chars, sylls, word_of = _flatten(phrase)
    _yi_bu(chars, sylls, word_of, phrase, fixed)
    _third_tone(phrase, sylls, word_of, fixed, is_word)
    _erhua(phrase, sylls, word_of, fixed)
    pos = 0
    for w, (word, ps) in enumerate(phrase):
        if w not in fixed:
            ps[:] = sylls[pos:pos + len(word)]
        pos += len(word)


def _flatten(phrase):
    chars, sylls, word_of = [], [], []
    for w, (word, ps) in enumerate(phrase):
        chars.extend(word)
        sylls.extend(ps)
        word_of.extend([w] * len(word))
    return chars, sylls, word_of


def _neutral(phrase, fixed) -> None:
    for w, (word, ps) in enumerate(phrase):
        if w in fixed or not ps:
            continue
        n = len(word)
        if n == 1:
            if word in _PARTICLES or word in "们了着":
                ps[0] = _with_tone(ps[0], "5")
            elif word == "个" and w > 0 and phrase[w - 1][0][-1] in NUMERALS | set("这那哪每各整半"):
                ps[0] = _with_tone(ps[0], "5")
            continue
        if word in MUST_NEUTRAL or word[-2:] in MUST_NEUTRAL:
            ps[-1] = _with_tone(ps[-1], "5")
        elif n == 2 and word[0] == word[1] and word not in NOT_NEUTRAL_REDUP:
            ps[1] = _with_tone(ps[1], "5")
        elif word[-1] in "们" or (word[-1] in _PARTICLES):
            ps[-1] = _with_tone(ps[-1], "5")
        elif word[-1] == "子":
            ps[-1] = _with_tone(ps[-1], "3" if word in ZI_FULL_TONE or word[-3:] in ZI_FULL_TONE else "5")
        elif n == 2 and word[1] in "来去" and word[0] in _DIRECTION_HEAD:
            ps[1] = _with_tone(ps[1], "5")
        elif word[-1] in "个" and word[-2] in NUMERALS | set("这那哪每各整半"):
            ps[-1] = _with_tone(ps[-1], "5")


def _yi_bu(chars, sylls, word_of, phrase, fixed) -> None:
    n = len(chars)
    for i, ch in enumerate(chars):
        if word_of[i] in fixed or ch not in "一不":
            continue
        prev = chars[i - 1] if i else ""
        nxt = chars[i + 1] if i + 1 < n else ""
        next_tone = _tone(sylls[i + 1]) if nxt else ""
        if ch == "不":
            if phrase[word_of[i]][0] in NEUTRAL_BU:
                sylls[i] = "bu5"
                continue
            if sylls[i].endswith("5") and prev and prev != nxt:
                continue  # lexicalised neutral: 对不起, 差不多
            if prev and prev == nxt:
                sylls[i] = "bu5"
            else:
                sylls[i] = "bu2" if next_tone == "4" else "bu4"
            continue
        word = phrase[word_of[i]][0]
        first_in_word = i == 0 or word_of[i - 1] != word_of[i]
        if prev in _COUNT_BEFORE or nxt in _COUNT_AFTER or not nxt or nxt in "月号" \
                or (nxt == "日" and prev == "月"):
            sylls[i] = "yi1"  # counting, ordinals, dates (一月, 一号)
        elif prev and prev == nxt and (not first_in_word or prev not in _COUNTERS):
            sylls[i] = "yi5"  # 看一看, 数一数
        elif not first_in_word and len(word) > 1:
            sylls[i] = "yi1"  # 统一, 唯一, 万一
        else:
            sylls[i] = "yi2" if next_tone in "45" else "yi4"


def _third_tone(phrase, sylls, word_of, fixed, is_word) -> None:
    """Words are grouped from the right into feet of at most three syllables (Chinese phrases
    branch to the right: 你也 | 很好). Inside a foot every third tone before a third tone becomes
    a second tone, except a monosyllable before a disyllabic word (小 | 老虎 keeps 小 low)."""
    original = [_tone(s) for s in sylls]
    foot_of = _feet(phrase)
    n = len(sylls)
    for i in range(n - 1):
        if original[i] != "3" or original[i + 1] != "3" or word_of[i] in fixed:
            continue
        w, nw = word_of[i], word_of[i + 1]
        word, next_word = phrase[w][0], phrase[nw][0]
        if foot_of[w] != foot_of[nw] and not (word in NUMERALS and len(next_word) == 1):
            continue  # a numeral and its measure word always join: 五把
        if w != nw and len(word) == 1 and len(next_word) == 2 and original[i + 2] == "3":
            continue
        if w == nw and len(word) == 3 and i == _start_of(word_of, w) and original[i + 2] == "3" \
                and is_word(word[1:]) and not is_word(word[:2]):
            continue  # 小老虎 = 小 + 老虎
        sylls[i] = _with_tone(sylls[i], "2")


def _start_of(word_of, w) -> int:
    return word_of.index(w)


def _feet(phrase) -> list[int]:
    foot_of = [0] * len(phrase)
    foot, size = 0, 0
    for w in range(len(phrase) - 1, -1, -1):
        length = len(phrase[w][0])
        if size and size + length > 3:
            foot, size = foot + 1, 0
        foot_of[w] = foot
        size += length
    return foot_of


def _erhua(phrase, sylls, word_of, fixed) -> None:
    pos = 0
    for w, (word, _ps) in enumerate(phrase):
        for k, ch in enumerate(word):
            i = pos + k
            if ch == "儿" and i and w not in fixed and sylls[i - 1][-1:].isdigit() \
                    and not _is_plain_er(phrase, w, k):
                sylls[i] = "er" + sylls[i - 1][-1]
        pos += len(word)


def _is_plain_er(phrase, w, k) -> bool:
    word = phrase[w][0]
    if k == 0 and len(word) > 1:
        return True  # 儿子, 儿童
    left = word[:k + 1] if k else (phrase[w - 1][0] + "儿" if w else "儿")
    return left in NOT_ERHUA or left[-2:] in NOT_ERHUA or left[-3:] in NOT_ERHUA
