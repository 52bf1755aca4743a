"""Demo base data: rooms, households, people, tags, organisations and components for the demo
district's grids, loaded by ``gridgov demo registry`` (and by ``gridgov demo load``).

Everything here is synthetic. The demo district (``gridgov.core.demo``) planned its buildings
with a household count each and cut its grids at about 300 households; this module fills them:

* **Rooms** laid out by unit (单元), floor and number from each building's floors and planned
  households; a share stays vacant, mixed buildings get shop fronts (use: business).
* **Households and people** drawn from a profile of the community's kind (see
  ``gridgov.core.demo.community_kind``): the dense old town (迈皋桥, 燕子矶) has many older
  residents and elderly living alone, the villages turned into estates (安置房) many floating
  residents in rented rooms, the talent apartments of the zones young single tenants, the
  villages and outskirts few people, older ones and left-behind children. Names follow Faker's
  zh_CN surname frequencies and given names; id numbers are valid (GB 11643 check character)
  and agree with the birth date and sex, with the district's region code for registered
  residents, another province's for floating ones and 81/82/83 for residents from Hong Kong,
  Macao and Taiwan; mobile numbers for most people over 14; ethnicity mostly 汉族; relations
  within each household (head, spouse, child, parent, grandchild, …).
* **Tags** at realistic rates: elderly living alone and empty-nest elderly where the household
  says so, disability rising with age, low income, veterans, single parents, left-behind
  children, and a few key persons (sensitive tags).
* **Organisations** (shops in the shop fronts, companies, schools, clinics, social
  organisations) with valid unified social credit codes (GB 32100), and **city components**
  (manhole covers, street lights, litter bins…) with valid 17-digit codes (district +
  GB/T 47678.5 category + sequence), a status and their competent, owner and maintainer units.

Speed: about 1,000,000 people take a few minutes. Rows are written in bulk (multi-row inserts on
SQLite, COPY on PostgreSQL) with their encrypted values, look-up hashes and masks computed
beforehand (``gridgov.privacy.crypto``), one transaction per grid.

Resumable and idempotent: grids are filled in a fixed order (the demo community first, so the
demo logins see their residents at once), each in one transaction that also counts it in the
``core.Stamp`` row ``demo.registry.done``; the plan (grids, households per grid, seed) is kept
in ``demo.registry.*`` stamps. A stopped run continues with the next grid; a complete one adds
nothing. Each grid's data comes from a generator seeded with (seed, grid code), so the same seed
gives the same residents.

``GRIDGOV_DEMO_HOUSEHOLDS_PER_GRID`` (default 300, the grids' planned size; 0: no demo
residents) scales every building's planned households.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import itertools
import json
import math
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from operator import itemgetter
from typing import Any

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, models, transaction
from django.utils import timezone

from gridgov.core.errors import DomainError
from gridgov.core.masking import mask_id_number, mask_phone
from gridgov.privacy import crypto

#: ``core.Stamp`` keys: grids done, and the plan they belong to.
DONE_KEY = "demo.registry.done"
GRIDS_KEY = "demo.registry.grids"
SEED_KEY = "demo.registry.seed"
PER_GRID_KEY = "demo.registry.per_grid"
PLAN_KEYS = (GRIDS_KEY, SEED_KEY, PER_GRID_KEY)

DEFAULT_SEED = 2026
#: The households a grid was planned with (``gridgov.core.demo.HOUSEHOLDS_PER_GRID``): the
#: setting scales the buildings' planned households by setting / this.
PLANNED_PER_GRID = 300
MAX_PER_GRID = 3_000
#: SQLite has one writer: after this many seconds of writing, let others write for a moment.
PAUSE_EVERY = 1.0
PAUSE = 0.1
LOCK_RETRIES = 5
#: A transaction writes grids until it holds this many people or took this long.
BATCH_PEOPLE = 4_000
BATCH_SECONDS = 0.5


def households_per_grid_setting() -> int:
    """``GRIDGOV_DEMO_HOUSEHOLDS_PER_GRID`` (default 300; 0 turns the demo residents off)."""
    return int(getattr(settings, "GRIDGOV_DEMO_HOUSEHOLDS_PER_GRID", PLANNED_PER_GRID))


# --- what the areas are like ---------------------------------------------------------------------

#: household type -> what it is (see ``_members``)
HOUSEHOLD_TYPES = (
    "elderly_alone",  # one person of 65 and over
    "elderly_couple",  # two of 60 and over (empty nest)
    "couple",  # two adults without children at home
    "family",  # a couple and their children
    "three_generations",  # grandparents, parents, children
    "single",  # one adult under 60 (sometimes with a sibling)
    "single_parent",  # a parent and children
    "left_behind",  # grandparents and grandchildren whose parents work elsewhere
    "tenants",  # unrelated people sharing a rented flat
    "young_family",  # a young couple, maybe a small child
)


@dataclass(frozen=True)
class Profile:
    """What the households of a kind of community are like."""

    households: dict[str, float]  # household type -> weight
    rented: float  # share of occupied rooms rented out (tenants are floating residents)
    vacant: float  # share of rooms standing empty
    low_income: float  # share of registered households on minimum living allowance (低保)
    area: tuple[int, int]  # flat size in m² (min, max)
    shops: float  # shops per grid besides the shop fronts of mixed buildings
    companies: float  # companies per grid
    components: int  # city components per grid


_P = Profile
# fmt: off
PROFILES: dict[str, Profile] = {
    # the dense old town: older residents, many living alone, some tenants
    "dense": _P({"elderly_alone": .11, "elderly_couple": .17, "couple": .08, "family": .20,
                 "three_generations": .12, "single": .08, "single_parent": .04, "tenants": .12,
                 "young_family": .08}, .20, .04, .012, (38, 78), 6, 2, 90),
    # villages turned into estates (安置房): resettled villagers and many floating tenants
    "resettled": _P({"elderly_alone": .05, "elderly_couple": .08, "couple": .06, "family": .15,
                     "three_generations": .14, "single": .06, "single_parent": .03,
                     "tenants": .26, "young_family": .17}, .48, .04, .015, (55, 110), 5, 2, 70),
    "urban": _P({"elderly_alone": .04, "elderly_couple": .08, "couple": .13, "family": .31,
                 "three_generations": .12, "single": .11, "single_parent": .04, "tenants": .09,
                 "young_family": .08}, .16, .08, .005, (68, 145), 4, 4, 80),
    "campus": _P({"elderly_alone": .02, "elderly_couple": .04, "couple": .12, "family": .27,
                  "three_generations": .08, "single": .18, "single_parent": .03, "tenants": .15,
                  "young_family": .11}, .32, .10, .003, (60, 130), 3, 5, 60),
    "suburban": _P({"elderly_alone": .04, "elderly_couple": .09, "couple": .10, "family": .29,
                    "three_generations": .16, "single": .08, "single_parent": .03,
                    "tenants": .11, "young_family": .10}, .20, .12, .006, (75, 150), 3, 3, 55),
    "town": _P({"elderly_alone": .08, "elderly_couple": .14, "couple": .08, "family": .25,
                "three_generations": .18, "single": .07, "single_parent": .03, "tenants": .08,
                "left_behind": .01, "young_family": .08}, .12, .08, .012, (60, 120), 4, 2, 45),
    # villages and the island: few people, older ones, left-behind children, empty houses
    "village": _P({"elderly_alone": .12, "elderly_couple": .19, "couple": .05, "family": .13,
                   "three_generations": .20, "single": .06, "single_parent": .02,
                   "left_behind": .15, "tenants": .05, "young_family": .03},
                  .06, .16, .025, (90, 220), 1, 1, 15),
    # talent apartments of the development zones: young single tenants
    "zone": _P({"couple": .12, "family": .07, "single": .31, "tenants": .35,
                "young_family": .15}, .78, .10, .0, (35, 70), 2, 12, 35),
    "closed": _P({"single": 1.0}, .5, .5, .0, (30, 60), 0, 2, 10),
}
# fmt: on

#: Registered residents' id numbers: the district's own region code mostly, some from
#: elsewhere in Nanjing and Jiangsu (玄武, 秦淮, 鼓楼, 浦口, 江宁, 丰县, 泗洪).
OTHER_HOME_REGIONS = ("320102", "320104", "320106", "320111", "320115", "320321", "321324")
#: Floating residents come from elsewhere in Jiangsu and the provinces around (GB/T 2260 codes
#: of counties and districts: 合肥蜀山, 来安, 全椒, 临泉, 太和, 砀山, 丰县, 灌云, 涟水, 泗洪,
#: 罗山, 郸城, 单县, 南部, 城口, 隆回, 阳新).
FLOATING_REGIONS = (
    ("340104", 3.0),
    ("341122", 4.0),
    ("341124", 3.0),
    ("341221", 4.0),
    ("341222", 3.0),
    ("341321", 2.0),
    ("320321", 2.0),
    ("320723", 2.0),
    ("320826", 2.0),
    ("321324", 2.0),
    ("411521", 2.0),
    ("412726", 2.0),
    ("372925", 1.5),
    ("511321", 1.5),
    ("500229", 1.0),
    ("430524", 1.0),
    ("420222", 1.0),
)
#: Residence permits of residents from Hong Kong (81), Macao (82) and Taiwan (83).
OVERSEAS_REGIONS = ("810000", "820000", "830000")
ETHNICITIES = (
    ("回族", 0.5),
    ("满族", 0.2),
    ("壮族", 0.12),
    ("苗族", 0.1),
    ("土家族", 0.1),
    ("蒙古族", 0.08),
    ("朝鲜族", 0.05),
    ("彝族", 0.04),
    ("维吾尔族", 0.03),
    ("布依族", 0.03),
)
HAN_SHARE = 0.985
MOBILE_PREFIXES = (
    *(f"13{d}" for d in range(10)),
    *("150", "151", "152", "153", "155", "156", "157", "158", "159"),
    *("166", "173", "176", "177", "178"),
    *(f"18{d}" for d in range(10)),
    *("191", "198", "199"),
)

#: Key-person tags (sensitive): (code, share, ages, share of them men)
KEY_PERSON_RATES = (
    ("released_prisoner", 0.0012, (25, 65), 0.9),
    ("community_correction", 0.0004, (20, 60), 0.85),
    ("severe_mental", 0.004, (18, 90), 0.5),
    ("drug_user", 0.0005, (18, 55), 0.8),
    ("petitioner", 0.0003, (40, 85), 0.6),
    ("at_risk_youth", 0.002, (12, 25), 0.7),
)

SHOP_WORDS = (
    "面馆",
    "小吃店",
    "便利店",
    "水果店",
    "理发店",
    "五金店",
    "烟酒店",
    "干洗店",
    "大药房",
    "超市",
    "包子铺",
    "快餐店",
    "手机维修店",
    "快递驿站",
    "彩票站",
    "早餐店",
    "花店",
    "文具店",
    "眼镜店",
    "美容院",
)
COMPANY_SUFFIXES = (
    "科技有限公司",
    "商贸有限公司",
    "物流有限公司",
    "建设工程有限公司",
    "餐饮管理有限公司",
    "物业管理有限公司",
    "信息技术有限公司",
    "电子有限公司",
    "机械制造有限公司",
    "文化传媒有限公司",
)
SOCIAL_ORGANISATIONS = ("志愿者协会", "老年人协会", "养老服务中心", "文体协会", "慈善工作站")

#: GB/T 47678.5 component categories -> weight, competent unit, owner, maintainer ({d}: the
#: district's name, {s}: its short name). Categories missing from the catalogue are skipped.
# fmt: off
COMPONENTS: dict[str, tuple[float, str, str, str]] = {
    "01001": (8, "{d}水务局", "南京水务集团有限公司", "南京水务集团{s}营业所"),
    "01002": (10, "{d}水务局", "{d}水务局", "{d}排水管理所"),
    "01003": (10, "{d}水务局", "{d}水务局", "{d}排水管理所"),
    "01004": (8, "{d}水务局", "{d}水务局", "{d}排水管理所"),
    "01005": (4, "{d}城市管理局", "国网南京供电公司", "国网南京供电公司{s}供电中心"),
    "01006": (5, "{d}工业和信息化局", "中国电信南京分公司", "中国电信{s}分局"),
    "01007": (3, "{d}城市管理局", "南京港华燃气有限公司", "港华燃气{s}服务中心"),
    "01009": (3, "{d}消防救援大队", "南京水务集团有限公司", "南京水务集团{s}营业所"),
    "01010": (12, "{d}城市管理局", "{d}城市管理局", "{d}路灯管理所"),
    "01011": (2, "{d}城市管理局", "国网南京供电公司", "国网南京供电公司{s}供电中心"),
    "01012": (2, "{d}工业和信息化局", "中国移动南京分公司", "中国移动{s}分公司"),
    "02002": (3, "{d}交通运输局", "{d}交通运输局", "{d}市政设施养护所"),
    "02004": (1, "{d}交通运输局", "南京公共交通（集团）有限公司", "南京公交{s}分公司"),
    "02008": (2, "{d}城市管理局", "{d}城市管理局", "{d}市政设施养护所"),
    "03001": (0.5, "{d}城市管理局", "{d}城市管理局", "{d}环境卫生管理所"),
    "03002": (8, "{d}城市管理局", "{d}城市管理局", "{d}环境卫生管理所"),
    "03003": (0.5, "{d}城市管理局", "{d}城市管理局", "{d}环境卫生管理所"),
    "03004": (4, "{d}城市管理局", "{d}城市管理局", "{d}环境卫生管理所"),
    "04002": (8, "{d}城市管理局", "{d}城市管理局", "{d}园林绿化管理所"),
    "04004": (2, "{d}城市管理局", "{d}城市管理局", "{d}园林绿化管理所"),
    "05001": (3, "南京市公安局{s}分局", "南京市公安局{s}分局", "{d}公共安全视频运维中心"),
    "05002": (1, "{d}文化和旅游局", "{d}文化和旅游局", "{d}全民健身中心"),
    "05003": (1, "{d}城市管理局", "{d}城市管理局", "{d}市政设施养护所"),
    "05004": (2, "{d}民政局", "{d}民政局", "{d}地名管理所"),
    "05005": (1, "{d}城市管理局", "{d}城市管理局", "{d}园林绿化管理所"),
}
# fmt: on
#: status -> share
COMPONENT_STATUSES = (
    ("intact", 0.92),
    ("damaged", 0.045),
    ("lost", 0.01),
    ("abandoned", 0.015),
    ("removed", 0.01),
)


# --- names ---------------------------------------------------------------------------------------


class Names:
    """Chinese names from Faker's zh_CN person provider (surname frequencies, given names)."""

    def __init__(self) -> None:
        from faker.providers.company.zh_CN import Provider as CompanyProvider
        from faker.providers.person.zh_CN import Provider as PersonProvider

        surnames = PersonProvider.last_names
        self.surnames = list(surnames)
        self.cumulative = list(itertools.accumulate(float(w) for w in surnames.values()))
        self.male = [str(n) for n in PersonProvider.first_names_male]
        self.female = [str(n) for n in PersonProvider.first_names_female]
        self.male_chars = [n for n in self.male if len(n) == 1]
        self.female_chars = [n for n in self.female if len(n) == 1]
        self.company_prefixes = [str(p) for p in CompanyProvider.company_prefixes]

    def surname(self, rng: random.Random) -> str:
        x = rng.random() * self.cumulative[-1]
        return self.surnames[min(bisect.bisect_right(self.cumulative, x), len(self.surnames) - 1)]

    def given(self, rng: random.Random, sex: str) -> str:
        names, chars = (
            (self.male, self.male_chars) if sex == "male" else (self.female, self.female_chars)
        )
        if rng.random() < 0.45:
            return rng.choice(chars) + rng.choice(chars)
        return rng.choice(names)

    def full(self, rng: random.Random, sex: str, surname: str | None = None) -> str:
        return (surname or self.surname(rng)) + self.given(rng, sex)


_names: Names | None = None


def names() -> Names:
    global _names
    if _names is None:
        _names = Names()
    return _names


# --- synthetic numbers ---------------------------------------------------------------------------


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_number(region6: str, birth: date, order: int) -> str:
    """A valid GB 11643 id number: region, birth date, order code (odd for a man), check."""
    first17 = f"{region6}{birth.year:04d}{birth.month:02d}{birth.day:02d}{order % 1000:03d}"
    total = sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True))
    return first17 + _ID_CHECK[total % 11]


def credit_code(rng: random.Random, prefix2: str, region6: str) -> str:
    """A valid unified social credit code (GB 32100) with a random organisation code."""
    from .validators import CREDIT_ALPHABET, credit_check_char, org_check_char

    letters = CREDIT_ALPHABET
    if prefix2 == "91" and rng.random() < 0.6:  # companies registered since 2015: MA…
        body = "MA" + "".join(rng.choice(letters) for _ in range(6))
    else:
        body = "".join(rng.choice(letters) for _ in range(8))
    first17 = f"{prefix2}{region6}{body}{org_check_char(body)}"
    return first17 + credit_check_char(first17)


def mobile(rng: random.Random) -> str:
    random_ = rng.random
    prefix = MOBILE_PREFIXES[int(random_() * len(MOBILE_PREFIXES))]
    return f"{prefix}{int(random_() * 10**8):08d}"


def landline(rng: random.Random) -> str:
    """A Nanjing landline (025 and 8 digits) as digits."""
    return f"025{rng.choice('5858')}{rng.randrange(10**7):07d}"


_UUID_MASK = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_V4 = (0x4000 << 64) | (0x8000 << 48)


def _uuid(rng: random.Random) -> str:
    """A version-4 UUID from ``rng`` as 32 hex digits (what the bulk writer stores)."""
    return f"{(rng.getrandbits(128) & _UUID_MASK) | _UUID_V4:032x}"


class Choice:
    """A weighted choice among options, prepared once (``rng.choices`` rebuilds its table)."""

    def __init__(self, options: Iterable[tuple[Any, float]]) -> None:
        pairs = [(o, float(w)) for o, w in options if w > 0]
        self.options = [o for o, _ in pairs]
        self.cumulative = list(itertools.accumulate(w for _, w in pairs))
        self.total = self.cumulative[-1]
        self.last = len(self.options) - 1

    def __call__(self, rng: random.Random) -> Any:
        return self.options[
            min(bisect.bisect_right(self.cumulative, rng.random() * self.total), self.last)
        ]


_choices: dict[Any, Choice] = {}


def _weighted(rng: random.Random, options: Sequence[tuple[Any, float]]) -> Any:
    """A weighted choice among ``options`` (a module constant or tuple: prepared once)."""
    key = options if isinstance(options, tuple) else id(options)
    choice = _choices.get(key)
    if choice is None:
        choice = _choices[key] = Choice(options)
    return choice(rng)


# --- the input of one grid -----------------------------------------------------------------------


@dataclass(frozen=True)
class BuildingInfo:
    pk: int
    estate: str
    number: str
    address: str
    kind: str
    floors: int
    households: int
    lon: float
    lat: float


@dataclass
class GridInput:
    """A grid to fill, and what the generator needs to know about it."""

    code: str
    kind: str  # the community's kind (``gridgov.core.demo.KINDS``)
    district_name: str
    community_name: str
    buildings: list[BuildingInfo]
    polygon: Any = None  # shapely polygon of the grid, for components away from buildings
    has_rooms: frozenset[int] = frozenset()  # buildings that have rooms already (left alone)


# --- the rows of one grid ------------------------------------------------------------------------


@dataclass
class GridRows:
    """Rows for one grid. References between them are list indices, made ids on writing."""

    rooms: list[dict[str, Any]] = field(default_factory=list)
    households: list[dict[str, Any]] = field(default_factory=list)
    people: list[dict[str, Any]] = field(default_factory=list)
    tags: list[tuple[int, str, date | None]] = field(default_factory=list)  # person, code, since
    organisations: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)  # "category" is a code


def _age(rng: random.Random, low: int, high: int, mode: float) -> int:
    return max(0, int(rng.triangular(low, high + 1, mode)))


def _partner_age(rng: random.Random, age: int, head_is_male: bool) -> int:
    delta = rng.randint(-5, 2) if head_is_male else rng.randint(-2, 5)
    return max(18, age + delta)


def _children(rng: random.Random, mother_age: int, *, most: int = 3, oldest: int = 40) -> list[int]:
    count = _weighted(rng, ((1, 0.62), (2, 0.34), (3, 0.04)))
    ages = []
    for _ in range(min(count, most)):
        age = mother_age - rng.randint(23, 36)
        if 0 <= age <= oldest:
            ages.append(age)
    return ages


def _members(rng: random.Random, kind: str) -> list[tuple[int, str, str]]:
    """(age, sex, relation) of the members of a household of ``kind``, the head first."""
    m, f = "male", "female"

    def couple(low: int, high: int, mode: float) -> tuple[list[tuple[int, str, str]], int]:
        head_male = rng.random() < 0.72
        age = _age(rng, low, high, mode)
        partner = _partner_age(rng, age, head_male)
        head_sex, partner_sex = (m, f) if head_male else (f, m)
        mother = partner if head_male else age
        return [(age, head_sex, "head"), (partner, partner_sex, "spouse")], mother

    def child_sex() -> str:
        return m if rng.random() < 0.52 else f

    if kind == "elderly_alone":
        return [(_age(rng, 65, 97, 78), f if rng.random() < 0.64 else m, "head")]
    if kind == "elderly_couple":
        people, _ = couple(60, 92, 70)
        return people
    if kind == "couple":
        people, _ = couple(24, 64, 34)
        return people
    if kind == "family":
        people, mother = couple(28, 56, 40)
        return people + [(a, child_sex(), "child") for a in _children(rng, mother)]
    if kind == "three_generations":
        if rng.random() < 0.5:  # the grandparents keep the household of their son or daughter
            people, _ = couple(56, 84, 64)
            son_age = people[0][0] - rng.randint(24, 32)
            son_male = rng.random() < 0.7
            in_law_age = _partner_age(rng, son_age, son_male)
            people += [
                (son_age, m if son_male else f, "child"),
                (in_law_age, f if son_male else m, "child_in_law"),
            ]
            mother = in_law_age if son_male else son_age
            people += [(a, child_sex(), "grandchild") for a in _children(rng, mother, oldest=20)]
            return people
        people, mother = couple(30, 55, 40)
        people += [(a, child_sex(), "child") for a in _children(rng, mother, oldest=24)]
        for _ in range(_weighted(rng, ((1, 0.55), (2, 0.45)))):
            parent_age = min(99, people[0][0] + rng.randint(24, 33))
            people.append((parent_age, f if rng.random() < 0.58 else m, "parent"))
        return people
    if kind == "single":
        age = _age(rng, 19, 60, 30)
        people = [(age, m if rng.random() < 0.55 else f, "head")]
        if rng.random() < 0.06:
            people.append((max(16, age + rng.randint(-8, 8)), child_sex(), "sibling"))
        elif rng.random() < 0.03:
            people.append((_age(rng, 16, 70, 40), child_sex(), "other_relative"))
        return people
    if kind == "single_parent":
        head_sex = f if rng.random() < 0.72 else m
        age = _age(rng, 27, 52, 38)
        kids = _children(rng, age, most=2, oldest=22) or [max(0, age - 28)]
        return [(age, head_sex, "head")] + [(a, child_sex(), "child") for a in kids]
    if kind == "left_behind":
        if rng.random() < 0.7:
            people, _ = couple(52, 78, 62)
        else:
            people = [(_age(rng, 52, 80, 64), f if rng.random() < 0.7 else m, "head")]
        return people + [
            (rng.randint(2, 15), child_sex(), "grandchild")
            for _ in range(_weighted(rng, ((1, 0.6), (2, 0.4))))
        ]
    if kind == "tenants":
        people = [(_age(rng, 19, 48, 27), m if rng.random() < 0.58 else f, "head")]
        for _ in range(_weighted(rng, ((1, 0.55), (2, 0.33), (3, 0.12)))):
            people.append((_age(rng, 18, 48, 27), m if rng.random() < 0.58 else f, "tenant"))
        return people
    # young_family
    people, mother = couple(22, 37, 28)
    if rng.random() < 0.45 and mother >= 22:
        people.append((rng.randint(0, min(8, mother - 21)), child_sex(), "child"))
    return people


# --- generating one grid -------------------------------------------------------------------------


@dataclass
class _Ctx:
    rng: random.Random
    grid: GridInput
    profile: Profile
    today: date
    now: datetime
    district6: str
    tags: set[str]
    rows: GridRows = field(default_factory=GridRows)


def grid_seed(seed: int, code: str) -> random.Random:
    return random.Random(f"gridgov-demo-registry:{seed}:{code}")


def scaled(households: int, per_grid: int, rng: random.Random) -> int:
    """A building's planned households scaled to ``per_grid`` (rounded at random, fairly)."""
    if per_grid == PLANNED_PER_GRID:
        return households
    exact = households * per_grid / PLANNED_PER_GRID
    whole = math.floor(exact)
    return whole + (1 if rng.random() < exact - whole else 0)


def plan_grid(
    grid: GridInput,
    *,
    seed: int,
    per_grid: int = PLANNED_PER_GRID,
    today: date | None = None,
    now: datetime | None = None,
    tags: Iterable[str] = (),
) -> GridRows:
    """The rows of one grid (pure: no database). The same arguments give the same rows, but for
    the encrypted values (computed on writing)."""
    ctx = _Ctx(
        rng=grid_seed(seed, grid.code),
        grid=grid,
        profile=PROFILES.get(grid.kind, PROFILES["urban"]),
        today=today or timezone.localdate(),
        now=now or timezone.now(),
        district6=grid.code[:6],
        tags=set(tags),
    )
    for building in grid.buildings:
        if building.pk in grid.has_rooms:
            continue
        count = scaled(building.households, per_grid, ctx.rng)
        _building_rows(ctx, building, count)
    _organisations(ctx)
    _components(ctx)
    return ctx.rows


def _room(
    ctx: _Ctx, building: BuildingInfo, unit: str, floor: int | None, number: str, use: str
) -> int:
    low, high = ctx.profile.area
    area = Decimal(ctx.rng.randint(low * 100, high * 100)) / 100
    ctx.rows.rooms.append(
        {
            "uuid": _uuid(ctx.rng),
            "building_id": building.pk,
            "unit": unit,
            "floor": floor,
            "number": number,
            "use": use,
            "area": area,
        }
    )
    return len(ctx.rows.rooms) - 1


def _slots(building: BuildingInfo, count: int) -> list[tuple[str, int, str]]:
    """(unit, floor, number) of ``count`` flats in a building: unit by unit, floor by floor."""
    if count <= 0:
        return []
    floors = max(1, building.floors or 1)
    if count <= 3 and floors <= 3:  # a village house or a small block: rooms 1, 2, 3
        return [("", 1, str(i + 1)) for i in range(count)]
    per_floor = max(1, math.ceil(count / floors))
    per_unit = 2 if per_floor % 2 == 0 else (3 if per_floor % 3 == 0 else 1)
    per_unit = min(per_unit, per_floor)
    units = max(1, math.ceil(per_floor / per_unit))
    slots = []
    for unit in range(1, units + 1):
        for level in range(1, floors + 1):
            for k in range(1, per_unit + 1):
                slots.append((str(unit), level, f"{level}{k:02d}"))
    if len(slots) < count:  # more households than the floors hold: a second wing
        extra = count - len(slots)
        slots += [
            (str(units + 1), 1 + i // per_unit, f"{1 + i // per_unit}{i % per_unit + 1:02d}")
            for i in range(extra)
        ]
    # fill unit by unit: the last unit may stay partly empty
    return slots[:count]


def _building_rows(ctx: _Ctx, building: BuildingInfo, count: int) -> None:
    rng, profile = ctx.rng, ctx.profile
    for unit, level, number in _slots(building, count):
        if rng.random() < profile.vacant:
            _room(ctx, building, unit, level, number, "vacant")
            continue
        rented = rng.random() < profile.rented
        room = _room(ctx, building, unit, level, number, "rented" if rented else "self_occupied")
        _household(ctx, room, rented=rented)
    if building.kind == "mixed":
        for i in range(rng.randint(2, 6)):
            room = _room(ctx, building, "", 1, f"商铺{i + 1}", "business")
            _shop(ctx, building, room)


def _household_kinds(profile: Profile, rented: bool) -> tuple[tuple[str, float], ...]:
    weights = dict(profile.households)
    if rented:  # rooms let out: tenants and young families rather than the old
        for kind in ("tenants", "young_family", "single"):
            weights[kind] = weights.get(kind, 0.0) * 3 + 0.05
        for kind in ("elderly_couple", "three_generations", "left_behind"):
            weights[kind] = weights.get(kind, 0.0) * 0.25
    return tuple(weights.items())


_kind_choices: dict[tuple[int, bool], Choice] = {}


def _household_kind(ctx: _Ctx, rented: bool) -> str:
    key = (id(ctx.profile), rented)
    choice = _kind_choices.get(key)
    if choice is None:
        choice = _kind_choices[key] = Choice(_household_kinds(ctx.profile, rented))
    return str(choice(ctx.rng))


def _household(ctx: _Ctx, room: int, *, rented: bool) -> None:
    rng, rows = ctx.rng, ctx.rows
    kind = _household_kind(ctx, rented)
    if rented:
        person_type = "floating" if rng.random() < 0.88 else "registered"
    else:
        person_type = "registered" if rng.random() < 0.96 else "floating"
    if person_type == "floating":
        overseas = 0.015 if ctx.grid.kind in ("urban", "campus", "zone") else 0.004
        if rng.random() < overseas:
            person_type = "overseas"
    if person_type == "registered":
        home = ctx.district6 if rng.random() < 0.9 else rng.choice(OTHER_HOME_REGIONS)
    elif person_type == "floating":
        home = _weighted(rng, FLOATING_REGIONS)
    else:
        home = rng.choice(OVERSEAS_REGIONS)
    han = rng.random() < HAN_SHARE
    ethnicity = "汉族" if han else _weighted(rng, ETHNICITIES)
    index = len(rows.households)
    rows.households.append(
        {
            "uuid": _uuid(rng),
            "room": room,
            "number": f"{rng.randrange(10**8, 10**9)}" if person_type == "registered" else "",
            "head": len(rows.people),
        }
    )
    members = _members(rng, kind)
    surname = names().surname(rng)
    head_male = members[0][1] == "male"
    years_here = rng.randint(0, 6) if person_type != "registered" else rng.randint(0, 40)
    moved_in = ctx.today - timedelta(days=years_here * 365 + rng.randrange(365))
    low_income = person_type == "registered" and rng.random() < ctx.profile.low_income
    if person_type == "registered":
        verification = _weighted(rng, (("verified", 0.78), ("unverified", 0.2), ("doubtful", 0.02)))
    else:
        verification = _weighted(rng, (("verified", 0.55), ("unverified", 0.4), ("doubtful", 0.05)))
    first = len(rows.people)
    for age, sex, relation in members:
        # children carry the father's surname; spouses, parents and tenants their own
        family = relation == "head" or (relation == "sibling" and rng.random() < 0.9)
        descendant = relation == "grandchild" or (relation == "child" and head_male)
        own = surname if family or descendant else names().surname(rng)
        member_region = home
        if relation in ("tenant", "other") and person_type != "overseas":
            member_region = _weighted(rng, FLOATING_REGIONS)
        _person(
            ctx,
            household=index,
            age=age,
            sex=sex,
            relation=relation,
            name=names().full(rng, sex, own),
            person_type=person_type,
            region6=member_region,
            ethnicity=ethnicity if rng.random() < 0.93 else ("汉族" if not han else ethnicity),
            moved_in=moved_in,
            verification=verification,
        )
    _household_tags(ctx, kind, first, low_income=low_income)


def _person(
    ctx: _Ctx,
    *,
    household: int,
    age: int,
    sex: str,
    relation: str,
    name: str,
    person_type: str,
    region6: str,
    ethnicity: str,
    moved_in: date,
    verification: str,
) -> None:
    rng = ctx.rng
    random_ = rng.random
    birth = date.fromordinal(ctx.today.toordinal() - age * 365 - age // 4 - int(random_() * 365))
    if birth.year < 1900:
        birth = date(1900, 1, 1) + timedelta(days=int(random_() * 365))
    order = int(random_() * 500) * 2 + (1 if sex == "male" else 0)
    number = id_number(region6, birth, order)
    phone = ""
    if age >= 14 and rng.random() < (0.97 if age < 75 else 0.7):
        phone = mobile(rng)
    ctx.rows.people.append(
        {
            "uuid": _uuid(rng),
            "name": name,
            "sex": sex,
            "birth_date": birth,
            "id_number": number,
            "phone": phone,
            "ethnicity": ethnicity,
            "person_type": person_type,
            "household": household,
            "relation": relation,
            "verification": verification,
            "moved_in_on": max(moved_in, birth),
            "_age": age,
            "_order": order,
            "_region": region6,
        }
    )


def _since(ctx: _Ctx, years: int) -> date | None:
    if years <= 0 or ctx.rng.random() < 0.3:
        return None
    return ctx.today - timedelta(days=ctx.rng.randrange(max(1, years * 365)))


def _tag(ctx: _Ctx, person: int, code: str, years: int = 5) -> None:
    if code in ctx.tags:
        ctx.rows.tags.append((person, code, _since(ctx, years)))


def _household_tags(ctx: _Ctx, kind: str, first: int, *, low_income: bool) -> None:
    rng, people = ctx.rng, ctx.rows.people
    members = range(first, len(people))
    for index in members:
        p = people[index]
        age, sex = p["_age"], p["sex"]
        if kind == "elderly_alone" and age >= 60:
            _tag(ctx, index, "elderly_alone", 10)
            if ctx.grid.kind == "village" and rng.random() < 0.06:
                _tag(ctx, index, "five_guarantees", 10)
        if kind == "elderly_couple" and age >= 60 and rng.random() < 0.85:
            _tag(ctx, index, "empty_nest", 10)
        disabled = 0.005 if age < 18 else 0.014 if age < 60 else 0.04 if age < 80 else 0.09
        if rng.random() < disabled:
            _tag(ctx, index, "disabled", min(age, 30))
        if low_income:
            _tag(ctx, index, "low_income", 6)
        veteran = 0.06 if sex == "male" and 38 <= age <= 88 else 0.003 if 38 <= age <= 70 else 0
        if veteran and rng.random() < veteran:
            _tag(ctx, index, "veteran", 20)
        if kind == "single_parent" and p["relation"] == "head":
            _tag(ctx, index, "single_parent", 8)
        if kind == "left_behind" and p["relation"] == "grandchild" and age < 16:
            _tag(ctx, index, "left_behind_child", 4)
        for code, share, (low, high), male_share in KEY_PERSON_RATES:
            if low <= age <= high:
                sex_share = male_share if sex == "male" else 1.0 - male_share
                if rng.random() < share * 2 * sex_share:
                    _tag(ctx, index, code, 5)


# --- organisations and components ----------------------------------------------------------------


def _organisation(
    ctx: _Ctx,
    *,
    name: str,
    kind: str,
    prefix2: str,
    building: BuildingInfo | None,
    staff: int,
    phone: str,
    address: str = "",
    point: tuple[float, float] | None = None,
) -> None:
    rng = ctx.rng
    legal_rep = names().full(rng, "male" if rng.random() < 0.6 else "female")
    contact = (
        legal_rep
        if kind == "shop"
        else names().full(rng, "male" if rng.random() < 0.5 else "female")
    )
    lon, lat = point if point else ((building.lon, building.lat) if building else (None, None))
    ctx.rows.organisations.append(
        {
            "uuid": _uuid(rng),
            "name": name[:200],
            "kind": kind,
            "credit_code": credit_code(rng, prefix2, ctx.district6),
            "legal_rep": legal_rep,
            "contact_name": contact,
            "contact_phone": phone,
            "staff_count": staff,
            "address": (address or (building.address if building else ""))[:200],
            "building_id": building.pk if building else None,
            "lon": lon,
            "lat": lat,
        }
    )


def _shop(ctx: _Ctx, building: BuildingInfo, room: int) -> None:
    rng = ctx.rng
    word = rng.choice(SHOP_WORDS)
    name = f"{names().surname(rng)}记{word}" if rng.random() < 0.5 else f"{building.estate}{word}"
    number = ctx.rows.rooms[room]["number"]
    _organisation(
        ctx,
        name=name,
        kind="shop",
        prefix2="92",  # individual business (个体工商户)
        building=building,
        staff=rng.randint(1, 8),
        phone=mobile(rng),
        address=f"{building.address}{number}",
    )


def _community_label(ctx: _Ctx) -> str:
    from gridgov.geo.codes import community_short_name

    return community_short_name(ctx.grid.community_name)


def _place(ctx: _Ctx) -> tuple[BuildingInfo | None, tuple[float, float] | None]:
    if ctx.grid.buildings:
        return ctx.rng.choice(ctx.grid.buildings), None
    return None, _random_point(ctx)


def _random_point(ctx: _Ctx) -> tuple[float, float] | None:
    polygon = ctx.grid.polygon
    if polygon is None or polygon.is_empty:
        return None
    import shapely

    minx, miny, maxx, maxy = polygon.bounds
    for _ in range(50):
        x, y = ctx.rng.uniform(minx, maxx), ctx.rng.uniform(miny, maxy)
        if shapely.contains_xy(polygon, x, y):
            return round(x, 7), round(y, 7)
    point = polygon.representative_point()
    return round(point.x, 7), round(point.y, 7)


def _count(rng: random.Random, mean: float) -> int:
    """A whole number around ``mean`` (Poisson-like, cheap)."""
    whole = int(mean)
    return whole + (1 if rng.random() < mean - whole else 0) + rng.randint(-whole // 3, whole // 3)


def _organisations(ctx: _Ctx) -> None:
    rng, profile = ctx.rng, ctx.profile
    has_homes = bool(ctx.rows.households)
    community = _community_label(ctx)
    district = ctx.grid.district_name
    for _ in range(max(0, _count(rng, profile.shops))):
        building, point = _place(ctx)
        word = rng.choice(SHOP_WORDS)
        estate = building.estate if building else community
        _organisation(
            ctx,
            name=f"{names().surname(rng)}记{word}" if rng.random() < 0.6 else f"{estate}{word}",
            kind="shop",
            prefix2="92",
            building=building,
            staff=rng.randint(1, 6),
            phone=mobile(rng),
            point=point,
            address="" if building else f"{district}{community}",
        )
    for _ in range(max(0, _count(rng, profile.companies))):
        building, point = _place(ctx)
        prefix = rng.choice(names().company_prefixes)
        _organisation(
            ctx,
            name=f"南京{prefix}{rng.choice(COMPANY_SUFFIXES)}",
            kind="company",
            prefix2="91",
            building=building,
            staff=int(rng.lognormvariate(2.5, 1.1)) + 1,
            phone=landline(rng) if rng.random() < 0.6 else mobile(rng),
            point=point,
            address="" if building else f"{district}{community}",
        )
    if has_homes:
        estate = rng.choice(ctx.grid.buildings).estate if ctx.grid.buildings else community
        for chance, name, prefix2, staff in (
            (0.35, f"南京市{district}{estate}幼儿园", "52", (12, 40)),
            (0.15, f"南京市{district}{community.removesuffix('社区')}小学", "12", (40, 120)),
            (0.05, f"南京市{district}{community.removesuffix('社区')}中学", "12", (60, 160)),
            (0.30, f"{community}卫生服务站", "12", (4, 15)),
            (0.35, f"{names().surname(rng)}氏诊所", "92", (1, 6)),
            (0.20, f"{community}{rng.choice(SOCIAL_ORGANISATIONS)}", "51", (2, 20)),
        ):
            if rng.random() < chance:
                kind = (
                    "school"
                    if name.endswith(("幼儿园", "小学", "中学"))
                    else "clinic"
                    if name.endswith(("卫生服务站", "诊所"))
                    else "social_organisation"
                )
                building, point = _place(ctx)
                _organisation(
                    ctx,
                    name=name,
                    kind=kind,
                    prefix2=prefix2,
                    building=building,
                    staff=rng.randint(*staff),
                    phone=landline(rng),
                    point=point,
                )
    if rng.random() < 0.03:
        building, point = _place(ctx)
        _organisation(
            ctx,
            name=f"南京市公安局{district}分局{community.removesuffix('社区')}警务室",
            kind="government",
            prefix2="11",
            building=building,
            staff=rng.randint(2, 8),
            phone=landline(rng),
            point=point,
        )


def _components(ctx: _Ctx) -> None:
    rng = ctx.rng
    homes = len(ctx.rows.households)
    base = ctx.profile.components
    if ctx.grid.buildings:
        count = max(5, round(base * (0.4 + 0.6 * min(2.0, homes / PLANNED_PER_GRID))))
    else:
        count = max(3, base // 3)
    count = max(0, count + rng.randint(-count // 5, count // 5))
    codes = list(COMPONENTS)
    weights = [COMPONENTS[c][0] for c in codes]
    district = ctx.grid.district_name
    short = district.removesuffix("区")
    polygon = ctx.grid.polygon
    if polygon is not None:
        import shapely

        shapely.prepare(polygon)
    for category in rng.choices(codes, weights, k=count) if count else ():
        _w, competent, owner, maintainer = COMPONENTS[category]
        point: tuple[float, float] | None = None
        if ctx.grid.buildings:
            b = rng.choice(ctx.grid.buildings)
            # within some 10 to 40 m of the building (1e-5 degree is about 1 m)
            angle = rng.uniform(0, 2 * math.pi)
            r = rng.uniform(10, 40) * 1e-5
            lon, lat = round(b.lon + r * math.cos(angle), 7), round(b.lat + r * math.sin(angle), 7)
            if polygon is not None:
                import shapely

                if not shapely.contains_xy(polygon, lon, lat):
                    lon, lat = b.lon, b.lat
            point = (lon, lat)
            address = f"{b.address}旁"
        else:
            point = _random_point(ctx)
            address = f"{district}{_community_label(ctx)}"
        if point is None:
            continue
        ctx.rows.components.append(
            {
                "uuid": _uuid(rng),
                "category": category,
                "lon": point[0],
                "lat": point[1],
                "address": address[:200],
                "status": _weighted(rng, COMPONENT_STATUSES),
                "competent_unit": competent.format(d=district, s=short)[:100],
                "owner_unit": owner.format(d=district, s=short)[:100],
                "maintainer_unit": maintainer.format(d=district, s=short)[:100],
            }
        )


# --- writing -------------------------------------------------------------------------------------


_Convert = Callable[[Any], Any] | None


class BulkWriter:
    """Rows (dicts by attribute name) into a model's table: multi-row INSERTs on SQLite, COPY on
    PostgreSQL. Values are written as given (encrypted columns must hold tokens already); a
    column missing from a row gets the field's (non-callable) default; ``constants`` give
    columns one value for every row (converted once)."""

    def __init__(self, *models_: type[models.Model]) -> None:
        self.vendor = connection.vendor
        self.columns: dict[Any, list[tuple[str, str, _Convert, Any]]] = {}
        for model in models_:
            cols = []
            for f in model._meta.concrete_fields:
                default = None
                if not f.primary_key and f.has_default() and not callable(f.default):
                    default = f.default
                elif not f.primary_key and not f.null and f.empty_strings_allowed:
                    default = ""
                cols.append((f.attname, str(f.column), self._converter(f), default))
            self.columns[model] = cols

    def _converter(self, f: models.Field[Any, Any]) -> _Convert:
        kind = f.get_internal_type()
        if kind == "JSONField":
            return lambda v: json.dumps(v, ensure_ascii=False)
        if self.vendor != "sqlite":
            return None
        if kind == "DateTimeField":
            return lambda v: (
                None if v is None else v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
            )
        if kind == "DateField":
            return lambda v: None if v is None else v.isoformat()
        if kind == "UUIDField":
            return lambda v: v if v is None or isinstance(v, str) else v.hex
        if kind == "DecimalField":
            return lambda v: None if v is None else str(v)
        if kind == "BooleanField":
            return lambda v: int(bool(v))
        return None

    def reserve_ids(self, model: type[models.Model], count: int) -> list[int]:
        """``count`` new primary keys for ``model`` (inside the writing transaction)."""
        if count <= 0:
            return []
        table = model._meta.db_table
        with connection.cursor() as cursor:
            if self.vendor == "postgresql":
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                    [table, count],
                )
                return [int(r[0]) for r in cursor.fetchall()]
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")  # noqa: S608 (model's)
            start = int(cursor.fetchone()[0]) + 1
        return list(range(start, start + count))

    def _columns(
        self, model: type[models.Model], rows: list[dict[str, Any]]
    ) -> list[tuple[str, str, _Convert, Any]]:
        """The model's columns; without the primary key when the rows bring none (the
        database numbers them)."""
        pk = model._meta.pk
        cols = self.columns[model]
        if pk is not None and rows and pk.attname not in rows[0]:
            return [c for c in cols if c[0] != pk.attname]
        return cols

    def values(
        self, model: type[models.Model], rows: list[dict[str, Any]], constants: dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        """The rows as tuples in column order, converted for the database."""
        cols = self._columns(model, rows)
        base = {n: d for n, _c, _v, d in cols}
        for name, _c, conv, _d in cols:
            if name in constants:
                base[name] = conv(constants[name]) if conv else constants[name]
        converted = [(n, conv) for n, _c, conv, _d in cols if conv and n not in constants]
        getter = itemgetter(*(n for n, _c, _v, _d in cols))
        out = []
        for row in rows:
            merged = base | row
            for name, conv in converted:
                if name in row:
                    merged[name] = conv(row[name])
            out.append(getter(merged))
        return out

    def write(
        self,
        model: type[models.Model],
        rows: list[dict[str, Any]],
        constants: dict[str, Any] | None = None,
    ) -> None:
        if not rows:
            return
        cols = self._columns(model, rows)
        values = self.values(model, rows, constants or {})
        names_ = ", ".join(connection.ops.quote_name(c) for _n, c, _v, _d in cols)
        table = connection.ops.quote_name(model._meta.db_table)
        with connection.cursor() as cursor:
            if self.vendor == "postgresql":
                raw = cursor.cursor
                with raw.copy(f"COPY {table} ({names_}) FROM STDIN") as copy:
                    for value in values:
                        copy.write_row(value)
            else:
                marks = ", ".join(["%s"] * len(cols))
                sql = f"INSERT INTO {table} ({names_}) VALUES ({marks})"  # noqa: S608 (model's)
                cursor.executemany(sql, values)


class Sealer:
    """Encrypted tokens, look-up hashes and masks for many values, with the privacy app's keys.

    The look-up hash of an already normalised value is computed directly with the key ring's
    HMAC key; a self-check against ``crypto.lookup_hash`` guards that both agree (else every
    hash goes through ``crypto.lookup_hash``)."""

    def __init__(self) -> None:
        ring = crypto.key_ring()
        self.key = ring.lookup_key
        sample = "320113199001010014"
        self.direct = self._direct(crypto.ID_NUMBER, sample) == crypto.lookup_hash(
            crypto.ID_NUMBER, sample
        ) and self._direct(crypto.PHONE, "13912345678") == crypto.lookup_hash(
            crypto.PHONE, "13912345678"
        )

    def _direct(self, kind: str, value: str) -> str:
        return hmac.new(self.key, f"{kind}\0{value}".encode(), hashlib.sha256).hexdigest()

    def hash(self, kind: str, value: str) -> str:
        if not value:
            return ""
        return self._direct(kind, value) if self.direct else crypto.lookup_hash(kind, value)

    @staticmethod
    def encrypt(value: str) -> str:
        return crypto.encrypt(value) if value else ""


# --- the run -------------------------------------------------------------------------------------


@dataclass
class RegistrySummary:
    grids_added: int = 0
    done: int = 0
    total: int = 0
    per_grid: int = 0
    seed: int = DEFAULT_SEED
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    message: str = ""

    @property
    def complete(self) -> bool:
        return self.done >= self.total

    @property
    def people_per_s(self) -> float:
        return self.counts.get("people", 0) / self.seconds if self.seconds else 0.0


def registry_state() -> dict[str, int] | None:
    """The stored plan (grids, per_grid, seed) and the grids done, or None."""
    from gridgov.core.models import Stamp

    values = dict(
        Stamp.objects.filter(key__in=(DONE_KEY, *PLAN_KEYS)).values_list("key", "version")
    )
    if not all(k in values for k in (DONE_KEY, *PLAN_KEYS)):
        return None
    return {
        "grids": int(values[GRIDS_KEY]),
        "per_grid": int(values[PER_GRID_KEY]),
        "seed": int(values[SEED_KEY]),
        "done": int(values[DONE_KEY]),
    }


def registry_progress() -> tuple[int, int] | None:
    """(grids done, grids in all) while the demo residents are being loaded; None when they
    are not, or are complete (for the home page, like ``cases.demo.history_progress``)."""
    state = registry_state()
    if state is None or state["done"] >= state["grids"]:
        return None
    return state["done"], state["grids"]


def demo_grid_codes(prefix: str) -> list[str]:
    """The grids to fill, in order: the demo community's first, then by code."""
    from gridgov.core.demo import DEMO_COMMUNITY
    from gridgov.core.scope import prefix_q
    from gridgov.geo.models import Level, Region

    codes = list(
        Region.objects.filter(prefix_q("code", prefix), level=Level.GRID)
        .order_by("code")
        .values_list("code", flat=True)
    )
    return sorted(codes, key=lambda c: (not c.startswith(DEMO_COMMUNITY), c))


def _store_plan(*, grids: int, per_grid: int, seed: int) -> None:
    from gridgov.core.models import Stamp

    with transaction.atomic():
        for key, value in (
            (GRIDS_KEY, grids),
            (PER_GRID_KEY, per_grid),
            (SEED_KEY, seed),
            (DONE_KEY, 0),
        ):
            Stamp.objects.update_or_create(key=key, defaults={"version": value})


def _prepare_buildings(prefix: str) -> None:
    """Buildings loaded in bulk by the district loader get their scope column and address key."""
    from gridgov.core.scope import prefix_q

    from .actions import region_codes_refresh
    from .models import Building, normalise_address

    scoped = (
        Building.objects.filter(prefix_q("community_code", prefix))
        if len(prefix) <= 12
        else (Building.objects.filter(grid__code=prefix))
    )
    if scoped.filter(region_code="").exists():
        region_codes_refresh()
    batch = []
    for b in scoped.filter(address_key="").only("pk", "address", "estate", "number"):
        b.address_key = normalise_address(b.address_text())
        batch.append(b)
    Building.objects.bulk_update(batch, ["address_key"], batch_size=2000)


def _ensure_component_categories(say: Callable[[str], None]) -> dict[str, int]:
    """Category code -> pk of the component categories used (the catalogue is loaded into a
    database without categories)."""
    from gridgov.cases.models import Category, CategoryClass

    if not Category.objects.exists():
        from gridgov.cases import catalogue

        try:
            with transaction.atomic():
                catalogue.catalogue_load_standard()
            say("categories: the standard catalogue was loaded")
        except IntegrityError:  # loaded at the same moment by the case history
            pass
    return dict(
        Category.objects.filter(
            klass=CategoryClass.COMPONENT,
            is_active=True,
            parent__isnull=False,
            code__in=list(COMPONENTS),
        )
        .order_by("scheme")
        .values_list("code", "pk")
    )


def _existing_hashes(hashes: list[str]) -> set[str]:
    """Which of ``hashes`` are registered id numbers already (one indexed query per 500)."""
    from .models import Person

    table = connection.ops.quote_name(Person._meta.db_table)
    taken: set[str] = set()
    with connection.cursor() as cursor:
        for i in range(0, len(hashes), 500):
            chunk = hashes[i : i + 500]
            marks = ", ".join(["%s"] * len(chunk))
            # "NOT (… = '')" lets SQLite use the partial unique index
            cursor.execute(
                f"SELECT id_number_hash FROM {table} WHERE id_number_hash IN ({marks}) "  # noqa: S608
                "AND NOT (id_number_hash = '')",
                chunk,
            )
            taken.update(row[0] for row in cursor.fetchall())
    return taken


class _Loader:
    """Reads a grid's input, writes its rows."""

    def __init__(self, *, seed: int, per_grid: int, categories: dict[str, int]) -> None:
        from gridgov.geo.models import Level, Region

        from .models import Component, Household, Organisation, Person, PersonTag, Room, TagType

        self.seed = seed
        self.per_grid = per_grid
        self.categories = categories
        self.writer = BulkWriter(Room, Household, Person, PersonTag, Organisation, Component)
        self.sealer = Sealer()
        self.tags = dict(TagType.objects.filter(active=True).values_list("code", "pk"))
        self.names: dict[str, str] = dict(
            Region.objects.exclude(level=Level.GRID).values_list("code", "name")
        )
        self.kinds: dict[str, str] = {}
        #: district + category -> the last component sequence number used
        self.sequences: dict[str, int] = {}

    def community_kind(self, community_code: str) -> str:
        if community_code not in self.kinds:
            from gridgov.core.demo import Division, _street_character, community_kind

            name = self.names.get(community_code, "")
            division = Division(community_code, name, "community", community_code[:9])
            self.kinds[community_code] = community_kind(
                division, _street_character(community_code[:9])
            )
        return self.kinds[community_code]

    def grid_input(self, code: str) -> GridInput | None:
        from gridgov.geo.models import Region

        from .models import Building, Room

        grid = Region.objects.filter(code=code).first()
        if grid is None:
            return None
        buildings = [
            BuildingInfo(
                pk=pk,
                estate=estate,
                number=number,
                address=address or f"{estate}{number}",
                kind=kind,
                floors=int(floors or 1),
                households=int(households or 0),
                lon=lon,
                lat=lat,
            )
            for pk, estate, number, address, kind, floors, households, lon, lat in (
                Building.objects.filter(grid=grid, closed_at__isnull=True)
                .order_by("pk")
                .values_list(
                    "pk",
                    "estate",
                    "number",
                    "address",
                    "kind",
                    "floors",
                    "households",
                    "lon",
                    "lat",
                )
            )
        ]
        has_rooms = frozenset(
            Room.objects.filter(building__grid=grid)
            .values_list("building_id", flat=True)
            .distinct()
        )
        return GridInput(
            code=code,
            kind=self.community_kind(code[:12]),
            district_name=self.names.get(code[:6], ""),
            community_name=self.names.get(code[:12], ""),
            buildings=buildings,
            polygon=grid.shape(),
            has_rooms=has_rooms,
        )

    def load(self, code: str, *, today: date | None = None) -> dict[str, int]:
        """Fill one grid (inside the caller's transaction); the counts written."""
        grid = self.grid_input(code)
        if grid is None:
            return {}
        now = timezone.now()
        rows = plan_grid(
            grid, seed=self.seed, per_grid=self.per_grid, today=today, now=now, tags=self.tags
        )
        return self.write(code, rows, now)

    def _unique_id_numbers(self, people: list[dict[str, Any]]) -> None:
        """Hash the id numbers; a number already registered (or twice in the grid) gets another
        order code of the same sex until it is free."""

        sealer = self.sealer
        for p in people:
            p["id_number_hash"] = sealer.hash(crypto.ID_NUMBER, p["id_number"])
        accepted: set[str] = set()
        pending = people
        for round_ in range(1, 21):
            hashes = [p["id_number_hash"] for p in pending]
            taken = _existing_hashes(hashes)
            clashes = []
            for p in pending:
                digest = p["id_number_hash"]
                if digest in taken or digest in accepted:
                    clashes.append(p)
                else:
                    accepted.add(digest)
            if not clashes:
                return
            for p in clashes:
                p["_order"] = (p["_order"] + 2 * round_) % 1000
                p["id_number"] = id_number(p["_region"], p["birth_date"], p["_order"])
                p["id_number_hash"] = sealer.hash(crypto.ID_NUMBER, p["id_number"])
            pending = clashes
        raise DomainError("could not find free synthetic id numbers")

    def _unique_credit_codes(self, orgs: list[dict[str, Any]], code: str) -> None:
        from .models import Organisation

        rng = grid_seed(self.seed, code + ":credit")
        for _round in range(10):
            wanted = [o["credit_code"] for o in orgs]
            taken = set(
                Organisation.objects.filter(credit_code__in=wanted).values_list(
                    "credit_code", flat=True
                )
            )
            seen: set[str] = set()
            again = False
            for o in orgs:
                c = o["credit_code"]
                if c in taken or c in seen:
                    o["credit_code"] = credit_code(rng, c[:2], c[2:8])
                    again = True
                seen.add(o["credit_code"])
            if not again:
                return

    def _component_codes(self, components: list[dict[str, Any]], district6: str) -> None:
        """Number the components: the next free sequence of each district and category (the
        highest in use is read once a run, and again after a failed grid)."""
        from .models import Component

        following = self.sequences
        for c in components:
            prefix = f"{district6}{c['category']}"
            if prefix not in following:
                following[prefix] = 0
                in_range = Component.objects.filter(
                    code__gte=f"{prefix}000000", code__lte=f"{prefix}999999"
                ).order_by("-code")
                for found in in_range.values_list("code", flat=True).iterator():
                    if len(found) == 17 and found.isdigit():
                        following[prefix] = int(found[-6:])
                        break
            following[prefix] += 1
            c["code"] = f"{prefix}{following[prefix]:06d}"

    def write(self, code: str, rows: GridRows, now: datetime) -> dict[str, int]:
        from .models import Component, Household, Organisation, Person, PersonTag, Room

        writer, sealer = self.writer, self.sealer
        stamp = {"created_at": now, "updated_at": now, "region_code": code}
        people = rows.people
        self._unique_id_numbers(people)
        room_ids = writer.reserve_ids(Room, len(rows.rooms))
        household_ids = writer.reserve_ids(Household, len(rows.households))
        person_ids = writer.reserve_ids(Person, len(people))
        for pk, room in zip(room_ids, rows.rooms, strict=True):
            room["id"] = pk
        for pk, h in zip(household_ids, rows.households, strict=True):
            h.update(id=pk, room_id=room_ids[h["room"]], head_id=person_ids[h["head"]])
        encrypt, hash_ = sealer.encrypt, sealer.hash
        for pk, p in zip(person_ids, people, strict=True):
            number, phone = p["id_number"], p["phone"]
            p["id"] = pk
            p["household_id"] = household_ids[p["household"]]
            p["id_number"] = encrypt(number)
            p["id_number_mask"] = mask_id_number(number)
            if phone:
                p["phone"] = encrypt(phone)
                p["phone_hash"] = hash_(crypto.PHONE, phone)
                p["phone_mask"] = mask_phone(phone)
        tags = [
            {
                "person_id": person_ids[index],
                "tag_type_id": self.tags[tag],
                "since": since,
            }
            for index, tag, since in rows.tags
            if tag in self.tags
        ]
        self._unique_credit_codes(rows.organisations, code)
        for o in rows.organisations:
            phone = o["contact_phone"]
            o.update(
                contact_phone=encrypt(phone),
                contact_phone_hash=hash_(crypto.PHONE, phone),
                contact_phone_mask=mask_phone(phone),
            )
        components = [c for c in rows.components if c["category"] in self.categories]
        self._component_codes(components, code[:6])
        for c in components:
            c["category_id"] = self.categories[c["category"]]
        writer.write(Room, rows.rooms, stamp)
        writer.write(Household, rows.households, stamp)
        writer.write(Person, people, stamp)
        writer.write(PersonTag, tags, {"created_at": now, "updated_at": now, "note": ""})
        writer.write(Organisation, rows.organisations, stamp)
        writer.write(Component, components, stamp)
        return {
            "rooms": len(rows.rooms),
            "households": len(rows.households),
            "people": len(people),
            "tags": len(tags),
            "organisations": len(rows.organisations),
            "components": len(components),
        }


@contextmanager
def _big_cache() -> Iterator[None]:
    """On SQLite, a page cache of 256 MB for this connection while it writes: the indexes on
    random keys (uuids, hashes) then stay in memory."""
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        before = int(cursor.fetchone()[0])
        cursor.execute("PRAGMA cache_size=-262144")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size={before}")


def _run(
    loader: _Loader,
    codes: list[str],
    summary: RegistrySummary,
    *,
    today: date | None,
    pause: bool,
    progress: Callable[[int, int], None] | None,
) -> None:
    from gridgov.core.models import Stamp

    total = summary.total
    counts = summary.counts
    single_writer = connection.vendor == "sqlite"
    paused = time.monotonic()
    index = summary.done
    while index < total:
        for attempt in range(LOCK_RETRIES + 1):
            added: dict[str, int] = {}
            try:
                with transaction.atomic():
                    # a few grids a transaction: fewer commits, still short enough for others
                    began = time.monotonic()
                    end = index
                    while end < total:
                        code = codes[end] if end < len(codes) else None
                        for key, value in (loader.load(code, today=today) if code else {}).items():
                            added[key] = added.get(key, 0) + value
                        end += 1
                        if added.get("people", 0) >= BATCH_PEOPLE:
                            break
                        if time.monotonic() - began >= BATCH_SECONDS:
                            break
                    Stamp.objects.filter(key=DONE_KEY).update(version=end)
                break
            except (OperationalError, IntegrityError) as exc:
                # SQLite: another writer held on too long; anywhere: a concurrent user took a
                # number (id, credit code, component code) between the check and the write
                locked = isinstance(exc, OperationalError) and "locked" in str(exc)
                if not (locked or isinstance(exc, IntegrityError)) or attempt == LOCK_RETRIES:
                    raise
                loader.sequences.clear()
                time.sleep(0.5 * (attempt + 1))
        for key, value in added.items():
            counts[key] = counts.get(key, 0) + value
        summary.grids_added += end - index
        summary.done = index = end
        if pause and single_writer and time.monotonic() - paused >= PAUSE_EVERY:
            time.sleep(PAUSE)
            paused = time.monotonic()
        if progress is not None:
            progress(end, total)


def demo_registry(
    *,
    per_grid: int | None = None,
    seed: int | None = None,
    region: str | None = None,
    today: date | None = None,
    pause: bool = True,
    progress: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> RegistrySummary:
    """Fill the demo district's grids with residents, organisations and components (see the
    module docstring); resumes a stopped run and adds nothing once complete.

    ``region``: the code prefix of the grids to fill (default: the demo district, which must be
    loaded). ``per_grid``: households per grid (default ``GRIDGOV_DEMO_HOUSEHOLDS_PER_GRID``;
    0 adds nothing). ``progress(done, total)`` is called after each committed grid; an
    exception it raises stops the run there, and the next run continues from that point.
    ``pause``: on SQLite, leave the database to other writers for a moment every second.
    """
    from gridgov.core.dbstats import database_analyze
    from gridgov.core.demo import DEMO_COMMUNITY, demo_loaded

    say = log or (lambda line: None)
    per_grid = households_per_grid_setting() if per_grid is None else int(per_grid)
    if not 0 <= per_grid <= MAX_PER_GRID:
        raise DomainError(f"households per grid must be 0 to {MAX_PER_GRID:,}, got {per_grid:,}")
    if region is None:
        loaded = demo_loaded()
        if loaded is None:
            raise DomainError("the demo district is not loaded: run `gridgov demo load` first")
        region = DEMO_COMMUNITY[:6]
        seed = loaded if seed is None else seed
    seed = DEFAULT_SEED if seed is None else int(seed)
    stored = registry_state()
    if stored is None and per_grid == 0:
        message = "no demo residents asked for (GRIDGOV_DEMO_HOUSEHOLDS_PER_GRID is 0)"
        say(message)
        return RegistrySummary(per_grid=0, seed=seed, message=message)
    codes = demo_grid_codes(region)
    if stored is not None:
        asked = (per_grid, seed)
        per_grid, seed = stored["per_grid"], stored["seed"]
        if stored["done"] >= stored["grids"]:
            message = (
                f"the demo residents are loaded already ({stored['grids']:,} grids, "
                f"{per_grid} households a grid, seed {seed}); nothing was added"
            )
            say(message)
            return RegistrySummary(
                done=stored["done"],
                total=stored["grids"],
                per_grid=per_grid,
                seed=seed,
                message=message,
            )
        if asked != (per_grid, seed):
            say(f"continuing the stored plan: {per_grid} households a grid, seed {seed}")
        done = stored["done"]
        total = stored["grids"]
    else:
        done = 0
        total = len(codes)
    started = time.monotonic()
    _prepare_buildings(region)
    categories = _ensure_component_categories(say)
    if stored is None:
        _store_plan(grids=total, per_grid=per_grid, seed=seed)
        say(f"demo residents: {total:,} grids, about {per_grid} households a grid (seed {seed})")
    else:
        say(f"resuming at grid {done + 1:,} of {total:,}")
    loader = _Loader(seed=seed, per_grid=per_grid, categories=categories)
    summary = RegistrySummary(done=done, total=total, per_grid=per_grid, seed=seed)
    with _big_cache():
        _run(loader, codes, summary, today=today, pause=pause, progress=progress)
    counts = summary.counts
    summary.seconds = time.monotonic() - started
    if summary.complete:
        database_analyze(bulk_load=True)
    summary.message = (
        f"demo residents: {summary.grids_added:,} grids filled in {summary.seconds:.0f} s "
        f"({counts.get('people', 0):,} people in {counts.get('households', 0):,} households and "
        f"{counts.get('rooms', 0):,} rooms, {counts.get('tags', 0):,} tags, "
        f"{counts.get('organisations', 0):,} organisations, "
        f"{counts.get('components', 0):,} components); {summary.done:,} of {summary.total:,} "
        "grids done"
    )
    say(summary.message)
    return summary
