"""Generated residents that look like a Shanghai neighbourhood's register, for demos and benchmarks.

Everything derives from one `random.Random(seed)`, so a seed (and `today`) always gives
the same people. Residents come in households of one to five sharing a room; ID numbers
are valid GB 11643 numbers, unique across the set, whose birth date and sex digit agree
with the person; mobile and landline numbers are unique and already in the form
`services.registry.identity.normalize_phone` returns. Nobody here is real: names are
drawn from frequency tables and numbers from random sequences.

The generator is on the path of a 100,000-row benchmark, so per-person work is a few
random draws against precomputed cumulative tables.
"""
import csv
from bisect import bisect
from datetime import date
from itertools import accumulate
from random import Random
from typing import Iterator

from services.registry.identity import check_character
from shared import clock

__all__ = ["generate", "CSV_HEADERS", "to_csv_row", "write_csv"]

# --- names -----------------------------------------------------------------------------------

# Shares per 10,000 people, after the 2020 census surname ranking; compound surnames are rare.
_SURNAMES = [
    ("王", 710), ("李", 700), ("张", 670), ("刘", 540), ("陈", 460), ("杨", 310), ("黄", 220),
    ("赵", 200), ("吴", 190), ("周", 190), ("徐", 150), ("孙", 150), ("马", 140), ("朱", 130),
    ("胡", 130), ("郭", 110), ("何", 110), ("高", 100), ("林", 100), ("罗", 90), ("郑", 90),
    ("梁", 90), ("谢", 80), ("宋", 70), ("唐", 70), ("许", 70), ("韩", 60), ("冯", 60),
    ("邓", 60), ("曹", 60), ("彭", 55), ("曾", 55), ("肖", 55), ("田", 50), ("董", 50),
    ("袁", 50), ("潘", 50), ("于", 45), ("蒋", 45), ("蔡", 45), ("余", 45), ("杜", 40),
    ("叶", 40), ("程", 40), ("苏", 40), ("魏", 40), ("吕", 40), ("丁", 40), ("任", 35),
    ("沈", 35), ("姚", 35), ("卢", 35), ("姜", 35), ("崔", 30), ("钟", 30), ("谭", 30),
    ("陆", 30), ("汪", 30), ("范", 30), ("金", 30), ("石", 30), ("廖", 28), ("贾", 28),
    ("夏", 28), ("韦", 28), ("付", 28), ("方", 28), ("白", 25), ("邹", 25), ("孟", 25),
    ("熊", 25), ("秦", 25), ("邱", 25), ("江", 25), ("尹", 22), ("薛", 22), ("闫", 22),
    ("段", 20), ("雷", 20), ("侯", 20), ("龙", 20), ("史", 20), ("陶", 18), ("黎", 18),
    ("贺", 18), ("顾", 18), ("毛", 18), ("郝", 16), ("龚", 16), ("邵", 16), ("万", 16),
    ("钱", 16), ("严", 15), ("覃", 15), ("武", 15), ("戴", 15), ("莫", 14), ("孔", 14),
    ("向", 14), ("汤", 14), ("倪", 12), ("施", 12), ("殷", 10), ("俞", 10), ("葛", 10),
    ("欧阳", 4), ("司马", 1), ("上官", 1), ("诸葛", 1), ("东方", 1),
]
# Families rooted in Shanghai skew towards the Jiangnan surnames.
_SHANGHAI_BOOST = {"徐": 2.5, "朱": 2.0, "沈": 4.0, "陆": 4.0, "顾": 5.0, "钱": 3.0, "周": 1.6,
                   "陈": 1.3, "张": 1.2, "施": 4.0, "倪": 3.0, "俞": 3.0, "葛": 2.0, "金": 2.0,
                   "蒋": 1.5, "姚": 1.5, "汤": 1.5, "马": 0.6, "郭": 0.6, "韦": 0.2, "覃": 0.1}

# Given names by the decade they were fashionable; keys are (generation, sex).
_GIVEN = {
    ("old", "M"): "建国 建华 国强 志强 德明 国华 建军 卫国 永康 福生 根宝 金根 荣根 明华 文彬 伟民 国庆 建平 "
                  "志刚 振华 德华 宝根 桂生 海根 秋生 长根 水生 炳坤 耀华 国平 建新 福林 永福 鸿昌 阿毛 德胜 "
                  "援朝 跃进 忠 华 明".split(),
    ("old", "F"): "秀英 桂英 桂兰 淑珍 秀兰 玉兰 凤英 美娟 凤珍 月娥 素珍 雅芳 彩娣 金妹 小妹 根娣 丽华 秀珍 "
                  "桂芳 玉珍 惠珍 菊英 美华 宝娣 兰英 素英 杏娣 翠英 月英 招娣 美英 爱华 淑英 玉英 梅 英 "
                  "芳 珍".split(),
    ("mid", "M"): "伟 勇 军 强 磊 斌 杰 涛 明 刚 志明 海涛 建伟 晓东 立新 文杰 俊 卫东 国栋 建峰 志华 海峰 "
                  "晓峰 春华 红兵 文军 永平 浩 健 鹏 勇军 晓明 卫华 东升 建忠 伟华 振宇 国伟 敏 峰 辉 "
                  "剑 锋 亮 波".split(),
    ("mid", "F"): "丽 静 敏 燕 艳 霞 娟 芳 红 丽娟 晓红 丽萍 春燕 雪梅 晓燕 慧 琳 丹 颖 海燕 红梅 美玲 文静 "
                  "秀梅 佳 婷 莉 晓丽 丽华 卫红 晓霞 雯 蓉 萍 洁 瑾 晶 晓雯 丽君 敏华 秀娟".split(),
    ("young", "M"): "浩然 梓轩 宇轩 子轩 一鸣 俊杰 宇航 浩宇 博文 皓轩 子墨 铭泽 睿 奕辰 思远 天佑 嘉豪 "
                    "子豪 晨阳 宇 昊 哲 杰 浩 旭 俊熙 承泽 睿哲 煜城 子骞 沐阳 明轩 逸凡 浩轩 嘉懿 宇泽 "
                    "翊 辰 一航 佳豪 晟 文博".split(),
    ("young", "F"): "子涵 欣怡 梓涵 诗涵 雨桐 一诺 梓萱 语嫣 思琪 可馨 佳怡 欣然 雨欣 若曦 紫涵 梦瑶 诗琪 "
                    "婉清 嘉怡 雅琪 梓晴 芷若 心怡 依诺 悦 萱 琪 婷 怡 雨涵 沐晴 安琪 梓琪 佳琪 思涵 "
                    "语桐 诗雨 晨曦 瑾 玥".split(),
}

# --- regions ---------------------------------------------------------------------------------

# Where people were first registered (the ID's region never changes, so the pre-2015
# codes of merged districts, 310103 卢湾 and 310108 闸北, still appear among older people).
_SHANGHAI_REGIONS = [
    ("310101", 10), ("310104", 9), ("310105", 7), ("310106", 6), ("310107", 9), ("310109", 8),
    ("310110", 14), ("310112", 7), ("310113", 7), ("310115", 12), ("310114", 3), ("310116", 2),
    ("310117", 2), ("310118", 2), ("310120", 2), ("310103", 3), ("310108", 5),
]
# Counties that send many people to Shanghai: Jiangsu, Anhui, Henan, Hubei, Hunan, Sichuan,
# Jiangxi, Hebei, Zhejiang, Fujian, Shandong, Chongqing.
_OTHER_REGIONS = [
    ("320321", 8), ("340822", 9), ("410523", 6), ("420117", 5), ("430124", 4), ("510722", 6),
    ("362330", 6), ("130424", 3), ("320382", 6), ("341221", 9), ("411522", 6), ("500235", 5),
    ("330381", 4), ("350583", 3), ("320981", 5), ("371322", 3), ("342425", 3), ("422421", 3),
]

# --- phones ----------------------------------------------------------------------------------

_MOBILE_PREFIXES = [
    ("139", 10), ("138", 10), ("137", 7), ("136", 7), ("135", 7), ("134", 3), ("150", 4),
    ("151", 4), ("152", 3), ("158", 5), ("159", 5), ("157", 2), ("187", 4), ("188", 3),
    ("186", 5), ("185", 3), ("189", 5), ("180", 3), ("181", 3), ("133", 3), ("153", 3),
    ("177", 3), ("176", 2), ("173", 2), ("199", 3), ("198", 2), ("166", 1), ("195", 1),
]

# --- households ------------------------------------------------------------------------------

# (template, weight per 1,000 households, residence weights: registered, permanent, floating,
# lodging). Elderly households are overwhelmingly registered; flat-sharers mostly floating.
_TEMPLATES = [
    ("single_adult", 85, (32, 15, 43, 10)),
    ("single_elder", 105, (90, 8, 2, 0)),
    ("couple_young", 60, (38, 25, 31, 6)),
    ("couple_middle", 55, (68, 18, 14, 0)),
    ("couple_elder", 170, (88, 9, 3, 0)),
    ("couple_child", 160, (58, 21, 21, 0)),
    ("couple_two_children", 40, (55, 20, 25, 0)),
    ("single_parent_child", 35, (75, 12, 13, 0)),
    ("three_generations", 55, (64, 18, 18, 0)),
    ("three_generations_full", 35, (75, 15, 10, 0)),
    ("elders_adult_child", 95, (84, 10, 6, 0)),
    ("grandparents_grandchild", 35, (85, 10, 5, 0)),
    ("siblings", 15, (35, 20, 35, 10)),
    ("shared_rental", 35, (5, 10, 75, 10)),
    ("family_with_helper", 20, (85, 10, 5, 0)),
]
_RESIDENCE = ("registered", "permanent", "floating", "lodging")
# How far back a household's move-in date can lie, by residence type.
_STAY_DAYS = {"registered": 40 * 365, "permanent": 15 * 365, "floating": 6 * 365, "lodging": 3 * 365}
# Templates whose size depends on nothing random, so the last household can be picked to fit.
_SIZES = {
    "single_adult": 1, "single_elder": 1, "couple_young": 2, "couple_middle": 2, "couple_elder": 2,
    "couple_child": 3, "couple_two_children": 4, "single_parent_child": 2, "three_generations": 4,
    "three_generations_full": 5, "elders_adult_child": 3, "grandparents_grandchild": 3,
    "siblings": 2, "shared_rental": 3, "family_with_helper": 4,
}

# Five-year bands from 60 and their weights among people aged 60 and over.
_ELDER_BANDS = [60, 65, 70, 75, 80, 85, 90, 95]
_ELDER_CUM = list(accumulate([26, 26, 20, 11, 8.5, 5.5, 2.4, 0.6]))

BUILDINGS_PER_BLOCK = 60
UNITS = 6
FLOORS = 6
ROOMS_PER_FLOOR = 2

# --- CSV -------------------------------------------------------------------------------------

CSV_HEADERS = ["姓名", "公民身份号码", "性别", "出生日期", "联系电话", "社区代码", "网格代码", "楼号", "单元",
               "室号", "户号", "与户主关系", "居住类型", "标签", "入住日期"]
SEX_LABELS = {"M": "男", "F": "女"}
RELATION_LABELS = {"self": "本人", "spouse": "配偶", "child": "子女", "parent": "父母",
                   "grandchild": "孙子女", "sibling": "兄弟姐妹", "other": "其他"}
RESIDENCE_LABELS = {"registered": "户籍", "permanent": "常住", "floating": "流动", "lodging": "寄住"}
TAG_LABELS = {"elderly_alone": "独居老人", "disabled": "残疾人", "low_income": "低保",
              "veteran": "退役军人", "after_school_child": "课后看护儿童"}


def _table(pairs):
    items = [p[0] for p in pairs]
    cum = list(accumulate(p[1] for p in pairs))
    return items, cum


_SURNAME_ITEMS, _SURNAME_CUM = _table(_SURNAMES)
_SH_SURNAME_ITEMS, _SH_SURNAME_CUM = _table([(s, w * _SHANGHAI_BOOST.get(s, 1.0)) for s, w in _SURNAMES])
_SH_REGION_ITEMS, _SH_REGION_CUM = _table(_SHANGHAI_REGIONS)
_OTHER_REGION_ITEMS, _OTHER_REGION_CUM = _table(_OTHER_REGIONS)
_PREFIX_ITEMS, _PREFIX_CUM = _table(_MOBILE_PREFIXES)
_TEMPLATE_ITEMS, _TEMPLATE_CUM = _table([(t[0], t[1]) for t in _TEMPLATES])
_RESIDENCE_CUM = {t[0]: list(accumulate(t[2])) for t in _TEMPLATES}


def _pick(rnd, items, cum):
    return items[bisect(cum, rnd() * cum[-1])]


# 3-digit sequence numbers by the sex their last digit encodes; 000 is never issued.
_SEQUENCES = {"M": [f"{i:03d}" for i in range(1, 1000, 2)], "F": [f"{i:03d}" for i in range(2, 1000, 2)]}
_GIVEN_BY_SEX = {sex: (_GIVEN["old", sex], _GIVEN["mid", sex], _GIVEN["young", sex]) for sex in "MF"}


class _People:
    """The state one generate() call carries: the random source and what is already taken."""

    def __init__(self, rng, today):
        self.rnd = rng.random
        self.today_ord = today.toordinal()
        self.used_ids = set()
        self.used_phones = set()
        self.ymd = {}  # birth date -> "YYYYMMDD", which repeats across thousands of people

    def age_between(self, low, high):
        return low + int(self.rnd() * (high - low + 1))

    def elder_age(self, low=60):
        # Shanghai's old-age pyramid: about half of those over 60 are in their sixties and
        # roughly one in seven is 80 or older.
        start = _ELDER_BANDS[bisect(_ELDER_CUM, self.rnd() * _ELDER_CUM[-1])]
        return max(low, start + int(self.rnd() * 5))

    def region(self, residence, home):
        # Most of a household shares its place of first registration; a spouse or a child
        # born elsewhere does not.
        rnd = self.rnd
        if home is not None and rnd() < 0.75:
            return home
        if rnd() < (0.92 if residence == "registered" else 0.06):
            return _SH_REGION_ITEMS[bisect(_SH_REGION_CUM, rnd() * _SH_REGION_CUM[-1])]
        return _OTHER_REGION_ITEMS[bisect(_OTHER_REGION_CUM, rnd() * _OTHER_REGION_CUM[-1])]

    def id_number(self, region, born, sex):
        # The sequence's last digit carries the sex (odd male, even female); numbers already
        # issued for the same region and birthday are skipped so every ID is unique.
        ymd = self.ymd.get(born)
        if ymd is None:
            ymd = self.ymd[born] = born.isoformat().replace("-", "")
        stem = region + ymd
        sequences = _SEQUENCES[sex]
        used = self.used_ids
        rnd = self.rnd
        for _ in range(20):
            first17 = stem + sequences[int(rnd() * len(sequences))]
            if first17 not in used:
                break
        else:
            # Only a crowded region and birthday gets here; take the first sequence left.
            first17 = next((stem + s for s in sequences if stem + s not in used), None)
            if first17 is None:
                raise ValueError(f"all {len(sequences)} sequence numbers of {stem} are taken")
        used.add(first17)
        return first17 + check_character(first17)

    def phone(self, age):
        rnd = self.rnd
        r = rnd()
        if age < 12 or (age < 18 and r >= 0.6) or (age >= 85 and r >= 0.55):
            return None
        used = self.used_phones
        while True:
            if age >= 70 and r < 0.3:
                # Shanghai local numbers are 8 digits; homes in the north-east start with 6.
                number = f"021-6{int(rnd() * 10_000_000):07d}"
            else:
                number = (_PREFIX_ITEMS[bisect(_PREFIX_CUM, rnd() * _PREFIX_CUM[-1])]
                          + f"{int(rnd() * 100_000_000):08d}")
            if number not in used:
                used.add(number)
                return number


# Household make-ups: each returns (relation, sex, age) for the members, head first.

def _other_sex(sex):
    return "F" if sex == "M" else "M"


def _any_sex(rnd, male_share=0.52):
    return "M" if rnd() < male_share else "F"


def _head_sex(rnd):
    # Registers list the husband as head in most couples.
    return "M" if rnd() < 0.72 else "F"


def _spouse_age(rnd, age):
    return max(20, age + int(rnd() * 9) - 5)


def _child_age(p, parent_age):
    return max(0, parent_age - p.age_between(24, 36))


def _couple(p, age, min_spouse_age=20):
    sex = _head_sex(p.rnd)
    return [("self", sex, age), ("spouse", _other_sex(sex), max(min_spouse_age, _spouse_age(p.rnd, age)))]


def _single_adult(p):
    return [("self", _any_sex(p.rnd, 0.55), p.age_between(19, 59))]


def _single_elder(p):
    # Widows outnumber widowers by far among elders living alone.
    return [("self", _any_sex(p.rnd, 0.32), p.elder_age(61))]


def _couple_young(p):
    return _couple(p, p.age_between(24, 38))


def _couple_middle(p):
    return _couple(p, p.age_between(45, 59))


def _couple_elder(p):
    return _couple(p, p.elder_age(60), 55)


def _couple_child(p):
    age = p.age_between(28, 52)
    return _couple(p, age) + [("child", _any_sex(p.rnd), _child_age(p, age))]


def _couple_two_children(p):
    members = _couple_child(p)
    members.append(("child", _any_sex(p.rnd), max(0, members[-1][2] - p.age_between(2, 8))))
    return members


def _single_parent_child(p):
    age = p.age_between(32, 55)
    return [("self", _any_sex(p.rnd, 0.3), age), ("child", _any_sex(p.rnd), _child_age(p, age))]


def _three_generations(p):
    age = p.age_between(30, 45)
    return _couple(p, age) + [("child", _any_sex(p.rnd), _child_age(p, age)),
                              ("parent", _any_sex(p.rnd, 0.35), min(99, age + p.age_between(24, 34)))]


def _three_generations_full(p):
    age = p.age_between(32, 45)
    parent_age = min(98, age + p.age_between(25, 34))
    return _couple(p, age) + [("child", _any_sex(p.rnd), _child_age(p, age)), ("parent", "M", parent_age),
                              ("parent", "F", max(50, parent_age - p.age_between(0, 5)))]


def _elders_adult_child(p):
    age = p.elder_age(58)
    return _couple(p, age, 55) + [("child", _any_sex(p.rnd, 0.55), max(18, age - p.age_between(24, 34)))]


def _grandparents_grandchild(p):
    return _couple(p, p.age_between(58, 78), 55) + [("grandchild", _any_sex(p.rnd), p.age_between(2, 15))]


def _siblings(p):
    age = p.age_between(20, 40)
    return [("self", _head_sex(p.rnd), age),
            ("sibling", _any_sex(p.rnd, 0.5), max(18, age + int(p.rnd() * 11) - 5))]


def _shared_rental(p):
    return [("self", _head_sex(p.rnd), p.age_between(20, 40)),
            ("other", _any_sex(p.rnd, 0.5), p.age_between(20, 40)),
            ("other", _any_sex(p.rnd, 0.5), p.age_between(20, 40))]


def _family_with_helper(p):
    # A couple with a child and a live-in helper or relative staying with them.
    age = p.age_between(30, 50)
    return _couple(p, age) + [("child", _any_sex(p.rnd), _child_age(p, age)),
                              ("other", _any_sex(p.rnd, 0.15), p.age_between(40, 62))]


_BUILDERS = {
    "single_adult": _single_adult, "single_elder": _single_elder, "couple_young": _couple_young,
    "couple_middle": _couple_middle, "couple_elder": _couple_elder, "couple_child": _couple_child,
    "couple_two_children": _couple_two_children, "single_parent_child": _single_parent_child,
    "three_generations": _three_generations, "three_generations_full": _three_generations_full,
    "elders_adult_child": _elders_adult_child, "grandparents_grandchild": _grandparents_grandchild,
    "siblings": _siblings, "shared_rental": _shared_rental, "family_with_helper": _family_with_helper,
}


class _Rooms:
    """Hands out each room of a community exactly once, in a scattered order."""

    def __init__(self, rng, grids):
        self.rng = rng
        # Grids split an estate by buildings, as they do on the ground.
        self.grid_of = [grids[b * len(grids) // BUILDINGS_PER_BLOCK] if grids else None
                        for b in range(BUILDINGS_PER_BLOCK)]
        self.block = -1
        self.rooms = []

    def next(self):
        if not self.rooms:
            # One estate block is 60 buildings; a community that outgrows it gets another
            # (61号…120号) rather than two households in one room.
            self.block += 1
            first = self.block * BUILDINGS_PER_BLOCK
            self.rooms = [(f"{first + b + 1}号", unit, room, self.grid_of[b]) for b, unit, room in _ROOM_SLOTS]
            self.rng.shuffle(self.rooms)
        return self.rooms.pop()


# Every (building index, unit, room) of one block: floors 1-6, two doors a floor ("101", "102").
_ROOM_SLOTS = [(b, f"{u}单元", f"{f}{d:02d}")
               for b in range(BUILDINGS_PER_BLOCK) for u in range(1, UNITS + 1)
               for f in range(1, FLOORS + 1) for d in range(1, ROOMS_PER_FLOOR + 1)]


def generate(count: int, communities: list[dict], seed: int | str = 2026, today: date | None = None) -> Iterator[dict]:
    """Yield `count` residents living in `communities`, in households; deterministic for (seed, today)."""
    if count < 0:
        raise ValueError("count must not be negative")
    if not communities:
        raise ValueError("at least one community is needed")
    codes = [c["code"] for c in communities]
    if len(set(codes)) != len(codes):
        raise ValueError("community codes must be unique")
    return _generate(count, communities, seed, today or clock.today())


def _generate(count, communities, seed, today):
    rng = Random(seed)
    p = _People(rng, today)
    rnd = p.rnd
    rooms = [_Rooms(rng, list(c.get("grids") or [])) for c in communities]
    household_counters = [0] * len(communities)
    today_ord = p.today_ord
    today_md = (today.month, today.day)
    today_year = today.year
    fromordinal = date.fromordinal
    region_of, id_number, phone = p.region, p.id_number, p.phone
    remaining = count

    while remaining > 0:
        template = _pick(rnd, _TEMPLATE_ITEMS, _TEMPLATE_CUM)
        while _SIZES[template] > remaining:
            template = _pick(rnd, _TEMPLATE_ITEMS, _TEMPLATE_CUM)
        members = _BUILDERS[template](p)
        remaining -= len(members)

        ci = int(rnd() * len(communities))
        community_code = communities[ci]["code"]
        household_counters[ci] += 1
        household_no = f"H{community_code}-{household_counters[ci]:06d}"
        building, unit, room, grid = rooms[ci].next()

        residence = _RESIDENCE[bisect(_RESIDENCE_CUM[template], rnd() * 100)]
        low_income = rnd() < (0.06 if template == "single_elder" else 0.015)
        # Newcomers rent recently; registered families have often been in the flat for decades.
        moved_ord = today_ord - int(rnd() * _STAY_DAYS[residence])
        moved_in = fromordinal(moved_ord)
        alone = template == "single_elder"

        home_region = None
        head_surname = family_surname = None
        for relation, sex, age in members:
            # A uniformly random day inside the year of life `age`, never after today.
            born_ord = today_ord - int((age + rnd()) * 365.2425)
            born = fromordinal(born_ord)
            age = today_year - born.year - (today_md < (born.month, born.day))
            person_residence = residence
            if relation == "other":
                person_residence = "lodging" if rnd() < 0.5 else "floating"
                region = region_of(person_residence, None)
            else:
                region = region_of(person_residence, home_region)
                if home_region is None:
                    home_region = region

            # Wives keep their own surnames; children and the head's father carry the
            # family's (patrilineal) one.
            if relation == "self":
                head_surname = family_surname = surname = _surname(rnd, region)
            elif relation == "child" or relation == "grandchild":
                surname = family_surname if rnd() < 0.9 else _surname(rnd, region)
            elif (relation == "parent" and sex == "M") or (relation == "sibling" and rnd() < 0.92):
                surname = head_surname
            else:
                surname = _surname(rnd, region)
                if relation == "spouse" and sex == "M":
                    # The husband's line names the children when the head is the wife.
                    family_surname = surname

            # Fashions in given names overlap, so generations blur by a few years either way.
            year = born.year + int(rnd() * 11) - 5
            pools = _GIVEN_BY_SEX[sex]
            pool = pools[0] if year < 1962 else pools[1] if year < 1988 else pools[2]

            tags = []
            if alone and age >= 60:
                tags.append("elderly_alone")
            if rnd() < (0.06 if age >= 70 else 0.025 if age >= 40 else 0.01):
                tags.append("disabled")
            if low_income and relation != "other":
                tags.append("low_income")
            if age >= 45 and rnd() < (0.07 if sex == "M" else 0.004):
                tags.append("veteran")
            if 6 <= age <= 12 and rnd() < 0.3:
                tags.append("after_school_child")

            yield {
                "name": surname + pool[int(rnd() * len(pool))],
                "id_number": id_number(region, born, sex),
                "phone": phone(age),
                "sex": sex,
                "birth_date": born,
                "community_code": community_code,
                "grid_code": grid,
                "building": building,
                "unit": unit,
                "room": room,
                "household_no": household_no,
                "relation": relation,
                "residence_type": person_residence,
                "tags": tags,
                "moved_in": moved_in if moved_ord > born_ord else born,
            }


def _surname(rnd, region):
    # Families first registered in Shanghai skew towards the Jiangnan surnames.
    if region[:2] == "31":
        return _SH_SURNAME_ITEMS[bisect(_SH_SURNAME_CUM, rnd() * _SH_SURNAME_CUM[-1])]
    return _SURNAME_ITEMS[bisect(_SURNAME_CUM, rnd() * _SURNAME_CUM[-1])]


def _iso(day):
    return day.isoformat() if day is not None else ""


def to_csv_row(person: dict) -> list[str]:
    """One resident as a row under CSV_HEADERS, with the Chinese labels a register clerk uses."""
    return [
        person["name"],
        person["id_number"],
        SEX_LABELS[person["sex"]],
        _iso(person["birth_date"]),
        person["phone"] or "",
        person["community_code"],
        person["grid_code"] or "",
        person["building"],
        person["unit"],
        person["room"],
        person["household_no"],
        RELATION_LABELS[person["relation"]],
        RESIDENCE_LABELS[person["residence_type"]],
        "、".join(TAG_LABELS[t] for t in person["tags"]),
        _iso(person["moved_in"]),
    ]


def write_csv(path, people, encoding="utf-8-sig"):
    """Write a header and one row per resident; utf-8-sig opens cleanly in Excel, gb18030 suits older tools.

    Returns the number of residents written.
    """
    written = 0
    with open(path, "w", encoding=encoding, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_HEADERS)
        for person in people:
            writer.writerow(to_csv_row(person))
            written += 1
    return written
