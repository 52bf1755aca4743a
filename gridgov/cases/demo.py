"""The demo case history: about 90 days of cases over the demo district, made by the real actions.

``demo_history`` writes nothing by hand: every case is reported with ``case_report(at=…)`` and
moved with ``case_act(at=…)`` through the workflow table, so the timeline, the clocks, the
counters and the notifications are exactly what the platform itself makes.

The work is split like the district loader (``gridgov.core.demo``):

* ``plan_reports`` is pure: for a seed it spreads the report times over the days before ``end``
  (weighted to working hours; residents also in the evenings and at weekends) and draws each
  report's channel. Everything else about report number ``i`` (grid, place, category, what
  happens to it and when) comes from a random generator seeded with ``(seed, i)``, so the same
  seed gives the same cases, and a run stopped at report ``i`` continues exactly there.
* The runner drives each case (with its duplicate, if it has one) through its life in one
  transaction, and counts the reports done in the ``core.Stamp`` row ``demo.history.done`` in
  that same transaction. The plan's parameters are kept in ``demo.history.*`` stamps: a second
  run continues the stored plan, and a finished plan adds nothing.

Synthetic staff do the work: one grid worker per grid, two supervisors per street, intake
operators, shift leaders and dispatchers for the district, a handler per unit and residents per
community, all with usernames starting ``demo-`` and no usable password. The demo logins
(``gridgov.core.demo.DEMO_USERS``) take their share of the work; the grids of the demo grid
workers and the demo community get a fixed share of the reports, and the recent ones there stay
open more often, so that every demo login finds real work in their to-do list. When the history
is complete, the demo logins' notifications from it are marked read (their bells start at zero;
the deadline sweeper then announces what is overdue now).

Routing rules send each category to a unit of its default kind serving the place (see
``routing_rules_ensure``); notifications, clocks and escalation marks are whatever the actions
and the background worker make of the cases.
"""

from __future__ import annotations

import bisect
import io
import math
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from gridgov.core.dbstats import database_analyze
from gridgov.core.errors import DomainError
from gridgov.core.worktime import WorkCalendar, current_calendar, local_zone

if TYPE_CHECKING:
    from gridgov.accounts.models import Unit, User
    from gridgov.cases.models import Case, Category
    from gridgov.core.photos import StoredPhoto

#: ``core.Stamp`` keys: the reports done, and the plan they belong to.
DONE_KEY = "demo.history.done"
SEED_KEY = "demo.history.seed"
CASES_KEY = "demo.history.cases"
DAYS_KEY = "demo.history.days"
END_KEY = "demo.history.end"
PLAN_KEYS = (SEED_KEY, CASES_KEY, DAYS_KEY, END_KEY)

DEFAULT_SEED = 2026
#: Reports the intake operator escalates on arrival: at least this many, or this share, chosen
#: among the older half of the history (their escalation lies well before its end).
PLANNED_ESCALATIONS = 2
PLANNED_ESCALATION_SHARE = 0.004
USER_PREFIX = "demo-"
#: SQLite has one writer at a time, and a writer waiting for the lock looks again about every
#: 100 ms: between two cases the loader pauses this long every so many seconds, so that the web
#: server and the worker always find a gap to write in (and never time out behind it). Not on
#: PostgreSQL, whose writers do not wait for each other.
PAUSE = 0.12
PAUSE_EVERY = 1.0
#: A case whose transaction found the database locked for too long is tried again this often.
LOCK_RETRIES = 5
MAX_CASES = 1_000_000
MAX_DAYS = 3_650

# --- channels -----------------------------------------------------------------------------------

SOURCES = ("grid_worker", "supervisor", "resident", "hotline", "api", "sensor")
SOURCE_SHARES = (0.55, 0.10, 0.15, 0.15, 0.025, 0.025)
#: Channels through which the public reports (they decline more often; residents rate).
PUBLIC = frozenset({"resident", "hotline", "api"})
#: Staff patrol in working hours; the public calls any time; sensors never sleep.
_STAFF_HOURS = (
    0, 0, 0, 0, 0, 0, 0, 0.3, 1.2, 2.0, 2.0, 1.8, 0.5, 0.9, 2.0, 2.0, 1.8, 1.0, 0.3, 0.15,
    0.05, 0, 0, 0,
)  # fmt: skip
_PUBLIC_HOURS = (
    0.05, 0.02, 0.01, 0.01, 0.01, 0.03, 0.1, 0.5, 1.0, 1.5, 1.6, 1.4, 1.0, 0.9, 1.2, 1.3, 1.3,
    1.2, 1.1, 1.3, 1.3, 1.0, 0.6, 0.2,
)  # fmt: skip
_HOURS = {"staff": _STAFF_HOURS, "public": _PUBLIC_HOURS, "sensor": (1.0,) * 24}
#: Relative weight of a rest day (weekend, holiday) against a working day.
_REST_DAY = {"staff": 0.12, "public": 0.75, "sensor": 1.0}


def _source_class(source: str) -> str:
    if source == "sensor":
        return "sensor"
    return "public" if source in PUBLIC else "staff"


# --- what gets reported -------------------------------------------------------------------------


@dataclass(frozen=True)
class Topic:
    """A family of categories found by words in their Chinese names, with a share of reports,
    what people write about it and what the unit answers."""

    key: str
    share: float
    words: tuple[str, ...]
    reports: tuple[str, ...]
    fixes: tuple[str, ...]
    #: grid workers sometimes solve it on the spot (自处理)
    on_the_spot: bool = False
    #: share of its reports that are urgent
    urgent: float = 0.005
    #: sensors report it
    sensed: bool = False


TOPICS: tuple[Topic, ...] = (
    Topic(
        "manhole", 6, ("井盖", "箅子"),
        ("井盖缺失，行人和车辆有跌落危险", "井盖破损开裂，车辆经过有异响",
         "井盖沉陷，与路面高差明显", "井盖松动移位，存在安全隐患"),
        ("已补齐井盖并固定，现场警示已撤除", "已更换破损井盖，与路面平顺"),
        urgent=0.06, sensed=True,
    ),
    Topic(
        "light", 6, ("路灯", "景观灯", "灯箱"),
        ("路灯夜间不亮，路段照明不足", "连续三盏路灯不亮", "路灯白天常亮", "灯杆倾斜，灯罩破损"),
        ("已更换灯具和镇流器，路灯恢复正常", "已检修线路，路灯恢复照明"),
        sensed=True,
    ),
    Topic(
        "garbage", 16, ("暴露垃圾", "垃圾", "废物箱", "道路不洁", "废弃家具"),
        ("路边堆放生活垃圾未及时清运，散发异味", "垃圾桶满溢，垃圾散落地面",
         "绿化带内有暴露垃圾", "有人在路边倾倒建筑垃圾", "废弃家具堆放在人行道上"),
        ("已安排保洁人员清运，现场已恢复整洁", "垃圾已清运，已增加巡查频次"),
        on_the_spot=True,
    ),
    Topic(
        "parking", 12, ("乱停放", "停车", "停放"),
        ("机动车占用人行道停放，影响行人通行", "车辆堵塞小区出入口",
         "非机动车在盲道上乱停乱放", "车辆长期停放在消防通道"),
        ("已联系车主挪车，现场秩序恢复", "已张贴告知单并拖移违停车辆",
         "已整理非机动车并划定停放区域"),
        on_the_spot=True,
    ),
    Topic(
        "vending", 10, ("游商", "店外经营", "占道", "废品收购"),
        ("流动摊贩占道经营，影响通行", "商户在店外摆摊经营", "早市摊点占用人行道",
         "废品收购点占道堆放"),
        ("已劝离流动摊贩，现场恢复通行", "已责令商户将物品收回店内经营"),
        on_the_spot=True,
    ),
    Topic(
        "dispute", 7, ("纠纷", "争议"),
        ("邻里因楼上漏水发生纠纷，需要调解", "邻居之间因噪音问题多次争吵",
         "业主与物业因停车收费发生争执", "家庭矛盾激化，需社区介入调解"),
        ("已组织双方调解，达成一致意见", "调解员已上门沟通，矛盾已化解"),
        urgent=0.01,
    ),
    Topic(
        "fire", 6, ("消防", "充电", "三合一", "电线", "通道堵塞"),
        ("楼道堆放杂物堵塞消防通道", "电动自行车在楼道内充电", "居民私拉电线为电动车充电",
         "消防栓无水，灭火器过期"),
        ("已清理楼道杂物，消防通道畅通", "已劝导居民将电动车推至集中充电点", "已拆除私拉电线"),
        on_the_spot=True, urgent=0.03,
    ),
    Topic(
        "advert", 5, ("广告", "横幅", "标语"),
        ("墙面和电线杆上张贴非法小广告", "沿街商户设置违规广告牌", "横幅破损下垂"),
        ("已清除小广告", "已拆除违规广告牌"),
        on_the_spot=True,
    ),
    Topic(
        "noise", 5, ("噪声", "扰民", "油烟", "烧烤", "焚烧"),
        ("夜间施工噪声扰民", "广场舞音响声音过大，影响居民休息",
         "餐饮店油烟直排，居民反映强烈", "有人在空地焚烧垃圾树叶", "夜间露天烧烤油烟扰民"),
        ("已责令停止夜间施工", "已与相关人员沟通，降低音量并调整时间",
         "已督促商户安装油烟净化设备"),
    ),
    Topic(
        "building", 5, ("施工", "工地", "遗撒", "掘路", "违法建设", "私搭乱建", "围挡"),
        ("渣土车遗撒，路面脏污", "楼顶私自搭建彩钢棚", "施工围挡破损倒伏",
         "工地扬尘大，未采取覆盖措施"),
        ("已责令施工单位清扫路面并整改", "已下达整改通知，违建已拆除"),
    ),
    Topic(
        "green", 4, ("树", "绿地", "花坛", "绿化"),
        ("行道树枝干断裂，有坠落风险", "绿地被踩踏毁损", "树木倒伏压住道路", "绿化带杂草丛生"),
        ("已修剪断枝，消除安全隐患", "已补植绿化"),
        urgent=0.02,
    ),
    Topic(
        "water", 3, ("积水", "水管", "下水", "供水", "水域", "化粪池"),
        ("道路积水严重，行人车辆通行困难", "自来水管破裂漏水", "下水道堵塞，污水外溢",
         "河道水面漂浮垃圾"),
        ("已疏通下水道，积水已排除", "已抢修管道，恢复供水"),
        urgent=0.05, sensed=True,
    ),
    Topic(
        "road", 4, ("路面", "塌陷", "护栏", "信号灯", "标志", "人行道", "盲道", "站亭", "天桥",
                    "通道", "泊位", "路名牌"),
        ("人行道地砖松动破损", "路面出现坑洞", "交通护栏被撞损", "交通信号灯故障"),
        ("已修复破损路面", "已更换损坏护栏"),
        urgent=0.04,
    ),
    Topic(
        "safety", 3, ("隐患", "坠物", "电梯", "危险", "防溺水", "危旧"),
        ("高层住户阳台花盆有坠落风险", "电梯运行异常，多次困人", "老旧房屋墙体开裂"),
        ("已督促整改，隐患已消除", "已设置警示并安排检修"),
        urgent=0.05,
    ),
    Topic(
        "order", 2, ("可疑", "盗窃", "斗殴", "诈骗", "涉黄", "乞讨", "黑车"),
        ("小区内发现可疑人员多次徘徊", "有人在路口发生争执推搡", "居民接到疑似诈骗电话"),
        ("已联系派出所处置", "已加强巡逻并做好防范宣传"),
        urgent=0.05,
    ),
    Topic(
        "care", 4, ("救助", "养老", "助残", "就业", "咨询", "水电气"),
        ("独居老人生活困难，申请救助", "居民咨询养老服务补贴政策", "失业人员希望获得就业帮扶",
         "小区停水停电，居民反映强烈"),
        ("已上门走访，协助办理相关手续", "已解答政策并跟进落实"),
    ),
    Topic(
        "health", 1, ("发热", "健康监测", "消杀", "聚集", "防疫"),
        ("小区有居民发热，需要上门排查", "楼道需要环境消杀", "广场有较多人员聚集"),
        ("已上门排查并登记", "已完成环境消杀"),
    ),
)  # fmt: skip
OTHER = Topic("other", 3, (), ("需要尽快处理",), ("已处理完毕",))
SCHEME_WEIGHT = {"legacy": 0.3, "gbt47678": 1.0, "social": 1.0}


def topic_of(name: str) -> Topic:
    for topic in TOPICS:
        if any(word in name for word in topic.words):
            return topic
    return OTHER


# --- what people write --------------------------------------------------------------------------

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"  # noqa: E501
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红文斌辉玲鹏宇浩晨欣怡雪婷俊峰琳萍海燕波亮庆云凤丹梅飞鑫宁慧佳颖嘉瑞子涵梓轩思雨诗博睿"  # noqa: E501

DECLINE_REASONS = (
    "不属于平台受理范围，已告知反映人向相关部门咨询",
    "描述不清且无法联系反映人，无法核实",
    "反映的问题已在处理中",
    "经核实属正常经营行为",
)
DUPLICATE = "重复上报，该问题已办结"
VOID_REASONS = ("经现场核实问题不存在", "属于正常施工作业，无需立案", "反映人撤回诉求")
VERIFY_NOTES = ("现场核实情况属实", "已到现场核实，问题存在", "现场核实，需要处置")
SEND_BACK_REASONS = ("该问题不属于本单位职责范围，请重新派遣", "权属不清，请核实后重新派遣")
EXTENSION_REASONS = (
    "需采购配件，申请延期",
    "涉及多方协调，申请延期",
    "受天气影响无法施工，申请延期",
)
SUSPENSION_REASONS = ("需列入年度维修计划，暂时无法处置", "涉及历史遗留问题，需上级协调解决")
SUPERVISE_NOTES = ("该案件处置进度缓慢，请尽快处置并反馈", "居民多次反映，请加快处置")
SUPERVISE_REPLIES = ("已加派人员，预计今日处置完毕", "已制定处置方案，正在推进")
ESCALATE_REASONS = ("需上级协调多个部门处置", "涉及面广，网格层面无法解决")
CHECK_NOTES = ("现场核查，问题已解决", "回访反映人，对处置结果满意", "现场核查合格")
REWORK_REASONS = ("现场核查仍未处理到位，需返工", "处置不彻底，问题仍然存在")
SELF_HANDLE_NOTES = ("现场已处理完毕", "已当场劝导整改，现场恢复正常")
REVIEW_FAIL_REASONS = ("照片显示问题仍然存在，转入立案处置",)
REOPEN_REASONS = ("居民反映问题复发，重新处置", "回访不满意，重新派遣")
RATING_NOTES = ("处理及时，非常满意", "处理结果一般", "处理速度有待提高")


def person_name(rng: random.Random) -> str:
    """A plausible Chinese name (surname and one or two given characters)."""
    given = "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2, 2))))
    return rng.choice(_SURNAMES) + given


def phone_number(rng: random.Random) -> str:
    return rng.choice(("139", "138", "137", "152", "186", "189")) + "".join(
        str(rng.randrange(10)) for _ in range(8)
    )


# --- the plan of reports ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportPlan:
    """When each report comes in (epoch seconds, ascending), through which channel, whether
    it is a second report of the previous one's problem (a duplicate, merged later), and
    whether the intake operator escalates it at once (``escalate``: a few of the older reports,
    so that even a short history shows an escalated case; the actions escalate others by
    chance later in their lives)."""

    at: np.ndarray
    source: np.ndarray
    duplicate: np.ndarray
    escalate: np.ndarray

    def __len__(self) -> int:
        return len(self.at)


def plan_reports(
    *, seed: int, cases: int, days: int, end: datetime, working_day: Callable[[date], bool]
) -> ReportPlan:
    """The report times and channels of a history (pure: same arguments, same plan)."""
    rng = np.random.default_rng([seed, 0])
    source = rng.choice(len(SOURCES), size=cases, p=np.array(SOURCE_SHARES))
    zone = local_zone()
    start_ts = end.timestamp() - days * 86400
    first = datetime.fromtimestamp(start_ts, zone).date()
    day_list = [first + timedelta(days=d) for d in range(days + 2)]
    midnight = np.array([datetime.combine(d, dtime(0), tzinfo=zone).timestamp() for d in day_list])
    working = np.array([working_day(d) for d in day_list])
    at = np.zeros(cases)
    classes = np.array([_source_class(SOURCES[s]) for s in range(len(SOURCES))])[source]
    for klass, hours in _HOURS.items():
        idx = np.flatnonzero(classes == klass)
        day_p = np.where(working, 1.0, _REST_DAY[klass])
        day_p = day_p / day_p.sum()
        hour_p = np.array(hours) / sum(hours)
        todo = idx
        while len(todo):
            d = rng.choice(len(day_list), size=len(todo), p=day_p)
            h = rng.choice(24, size=len(todo), p=hour_p)
            t = np.floor(midnight[d] + h * 3600 + rng.uniform(0, 3600, size=len(todo)))
            at[todo] = t
            todo = todo[(t < start_ts) | (t >= end.timestamp())]
    duplicate = rng.random(cases) < 0.015
    order = np.argsort(at, kind="stable")
    at, source = at[order], source[order]
    if cases:
        duplicate[0] = False
    for i in range(1, cases):
        if duplicate[i] and duplicate[i - 1]:
            duplicate[i] = False
    # drawn last, so the arrays above stay as they were for a seed
    escalate = np.zeros(cases, dtype=bool)
    older = np.flatnonzero((at < end.timestamp() - days * 86400 / 2) & ~duplicate)
    wanted = min(len(older), max(PLANNED_ESCALATIONS, round(cases * PLANNED_ESCALATION_SHARE)))
    escalate[rng.choice(older, size=wanted, replace=False)] = True
    return ReportPlan(at=at, source=source, duplicate=duplicate, escalate=escalate)


# --- the world the history happens in -----------------------------------------------------------


@dataclass
class Place:
    code: str
    name: str
    community: str
    area_m2: float
    bounds: tuple[float, float, float, float] | None
    label: tuple[float, float] | None  # (lat, lon)
    #: (lat, lon, address, households) of the buildings in the grid
    buildings: list[tuple[float, float, str, int]] = field(default_factory=list)


class Pool:
    """Users who may take a kind of step, with weights (demo logins take a bigger share)."""

    def __init__(self, users: Iterable[tuple[User, float]] = ()) -> None:
        self.users: list[User] = []
        self.weights: list[float] = []
        for user, weight in users:
            self.add(user, weight)

    def add(self, user: User, weight: float = 1.0) -> None:
        if all(u.pk != user.pk for u in self.users):
            self.users.append(user)
            self.weights.append(weight)

    def __bool__(self) -> bool:
        return bool(self.users)

    def pick(self, rng: random.Random) -> User:
        return rng.choices(self.users, weights=self.weights)[0]


@dataclass
class World:
    district: str
    cal: WorkCalendar
    places: list[Place]
    place_cum: list[float]
    categories: list[Category]
    category_cum: dict[str, list[float]]
    topics: dict[int, Topic]
    units: dict[int, Unit]
    street_office: dict[str, Unit]
    committee: dict[str, Unit]
    default_unit: Unit | None
    grid_workers: dict[str, Pool]
    supervisors: dict[str, Pool]
    residents: dict[str, Pool]
    handlers: dict[int, Pool]
    intake: Pool
    shift: Pool
    dispatchers: Pool
    leaders: Pool
    users: dict[int, User]
    photos: list[StoredPhoto]
    #: grids of the demo grid workers (their lists should hold work)
    focus: set[str] = field(default_factory=set)
    api_user: User | None = None
    sensor_user: User | None = None
    limits: dict[tuple[int, str, bool], float] = field(default_factory=dict)

    def limit_minutes(self, category: Category, step: str, *, emergency: bool = False) -> float:
        """The working minutes a step of ``category`` may take."""
        from .deadlines import parse_limit, step_limit

        key = (category.pk, step, emergency)
        if key not in self.limits:
            span = self.cal.span(parse_limit(step_limit(category, step, emergency=emergency)))
            self.limits[key] = span.total_seconds() / 60
        return self.limits[key]


def history_prepare(*, seed: int = DEFAULT_SEED, log: Callable[[str], None] | None = None) -> World:
    """What the history needs besides the district: the standard categories (into an empty
    catalogue), the routing rules and the staff (idempotent); returns the loaded world."""
    return _build_world(seed, log or (lambda line: None))


def _build_world(seed: int, say: Callable[[str], None]) -> World:
    from gridgov.accounts.models import Unit, UnitKind
    from gridgov.geo.models import Level, Region
    from gridgov.registry.models import Building

    district = settings.GRIDGOV_DISTRICT_CODE
    if not Region.objects.filter(code=district, level=Level.DISTRICT).exists():
        raise DomainError(f"there is no district {district}: run `gridgov demo load` first")
    regions = {
        r.code: r
        for r in Region.objects.filter(code__startswith=district).exclude(level=Level.GRID)
    }
    grids = list(
        Region.objects.filter(level=Level.GRID, code__startswith=district)
        .select_related("parent")
        .order_by("code")
    )
    if not grids:
        raise DomainError(f"district {district} has no grids: run `gridgov demo load` first")
    places = [
        Place(
            code=g.code,
            name=g.name,
            community=g.parent.name if g.parent else "",
            area_m2=float(g.area_m2 or 10_000),
            bounds=g.bbox,
            label=(
                (g.label_lat, g.label_lon)
                if g.label_lat is not None and g.label_lon is not None
                else None
            ),
        )
        for g in grids
    ]
    by_pk = {g.pk: p for g, p in zip(grids, places, strict=True)}
    for lat, lon, address, households, grid_id in Building.objects.filter(
        grid__isnull=False, community_code__startswith=district
    ).values_list("lat", "lon", "address", "households", "grid_id"):
        place = by_pk.get(grid_id)
        if place is not None:
            place.buildings.append((lat, lon, address, households))

    categories = _ensure_categories(say)
    topics = {c.pk: topic_of(c.name_zh) for c in categories}
    category_cum = {}
    for klass in ("staff", "public", "sensor"):
        weights = [_category_weight(c, topics[c.pk], klass) for c in categories]
        if not any(weights):
            weights = [1.0] * len(categories)
        category_cum[klass] = list(np.cumsum(weights))

    units = {
        u.pk: u
        for u in Unit.objects.filter(is_active=True, regions__code__startswith=district)
        .distinct()
        .prefetch_related("regions")
    }
    street_office: dict[str, Unit] = {}
    committee: dict[str, Unit] = {}
    for u in sorted(units.values(), key=lambda u: u.code):
        for r in u.regions.all():
            if u.kind == UnitKind.STREET_OFFICE and r.level == Level.STREET:
                street_office.setdefault(r.code, u)
            if u.kind == UnitKind.COMMUNITY_COMMITTEE and r.level == Level.COMMUNITY:
                committee.setdefault(r.code, u)
    departments = sorted(
        (u for u in units.values() if u.kind == UnitKind.CITY_DEPARTMENT), key=lambda u: u.code
    )
    default_unit = next((u for u in departments if "城市管理" in u.name), None) or (
        departments[0] if departments else min(units.values(), key=lambda u: u.code, default=None)
    )
    rules = routing_rules_ensure(categories=categories, units=list(units.values()))
    say(f"routing rules: {rules} added")

    world = World(
        district=district,
        cal=current_calendar(),
        places=places,
        place_cum=[],
        categories=categories,
        category_cum=category_cum,
        topics=topics,
        units=units,
        street_office=street_office,
        committee=committee,
        default_unit=default_unit,
        grid_workers={},
        supervisors={},
        residents={},
        handlers={},
        intake=Pool(),
        shift=Pool(),
        dispatchers=Pool(),
        leaders=Pool(),
        users={},
        photos=[],
    )
    created = _ensure_staff(world, seed, regions)
    say(f"staff: {created} demo accounts added, {len(world.users):,} take part")
    world.place_cum = list(np.cumsum(_place_weights(world, seed)))
    return world


def _category_weight(category: Category, topic: Topic, klass: str) -> float:
    weight = topic.share * SCHEME_WEIGHT.get(category.scheme, 0.5)
    if topic.words and topic.words[0] in category.name_zh:
        weight *= 3  # the topic's own category (暴露垃圾 among the garbage ones …)
    if klass == "public" and category.klass == "component":
        weight *= 0.4
    if klass == "sensor" and not (topic.sensed and category.klass == "component"):
        weight = 0.0
    return weight


def _ensure_categories(say: Callable[[str], None]) -> list[Category]:
    """The active minor categories; the standard catalogue is loaded into an empty database."""
    from gridgov.cases.models import Category

    if not Category.objects.exists():
        from gridgov.cases import catalogue

        catalogue.catalogue_load_standard()
        say("categories: the standard catalogue was loaded")
    categories = list(
        Category.objects.filter(is_active=True, parent__isnull=False)
        .select_related("parent")
        .prefetch_related("attributes")
        .order_by("scheme", "code")
    )
    if not categories:
        raise DomainError("there are no active categories: load the catalogue first")
    return categories


# --- routing --------------------------------------------------------------------------------------

#: Words in a category's name → words in the name of the unit that handles it.
_UNIT_WORDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("燃气", "煤气", "天然气"), "燃气"),
    (("电力", "配电", "变电", "线缆", "充电桩", "路灯井盖", "电线"), "供电"),
    (("施工", "工地", "建设", "掘路", "房屋", "电梯", "围挡", "危旧", "遗撒"), "住房"),
    (("噪声", "油烟", "焚烧", "污染", "扬尘", "烧烤"), "生态环境"),
    (("市场", "消费", "食品", "价格"), "市场监督"),
    (("井盖", "箅子", "水管", "供水", "污水", "雨水", "下水", "积水", "化粪池", "水域", "消火栓",
      "消防栓"), "水务"),
)  # fmt: skip


def _unit_for(category: Category, candidates: Sequence[Unit], everyone: Sequence[Unit]) -> Unit:
    """The unit among ``candidates`` (units of the category's kind) that fits the category's
    name best; a unit of another kind serving the same place when only it fits (water
    manholes go to the water authority even when the catalogue says "utility")."""
    names = category.name_zh + (category.parent.name_zh if category.parent else "")
    for words, unit_word in _UNIT_WORDS:
        if any(w in names for w in words):
            for pool in (candidates, everyone):
                match = next((u for u in pool if unit_word in u.name), None)
                if match is not None:
                    return match
            break
    return next((u for u in candidates if "城市管理" in u.name), candidates[0])


def routing_rules_ensure(*, categories: Sequence[Category], units: Sequence[Unit]) -> int:
    """Routing rules that send each category to a unit of its default kind serving the case's
    place (a department or utility for the district, a community's committee, a property
    company for its estates); categories of the street office need none (it is the fallback).

    Adds only rules for (category, region) pairs that have none yet, so an administrator's own
    rules stay and a second call adds nothing. Returns how many were added.
    """
    from gridgov.accounts.models import UnitKind
    from gridgov.cases.cache import catalogue_changed
    from gridgov.cases.models import RoutingRule

    served: dict[str, list[tuple[str, Unit]]] = {}  # kind -> [(region code, unit)]
    for u in sorted(units, key=lambda u: u.code):
        for r in u.regions.all():
            served.setdefault(u.kind, []).append((r.code, u))
    existing = set(RoutingRule.objects.values_list("category_id", "region_code"))
    rows: list[RoutingRule] = []
    for category in categories:
        kind = category.default_unit_kind
        if not kind or kind in (UnitKind.STREET_OFFICE, UnitKind.OTHER) or kind not in served:
            continue
        by_region: dict[str, list[Unit]] = {}
        for code, unit in served[kind]:
            by_region.setdefault(code, []).append(unit)
        for code, candidates in sorted(by_region.items()):
            if (category.pk, code) in existing:
                continue
            everyone = [u for c, us in served.items() for rc, u in us if rc == code]
            unit = _unit_for(category, candidates, everyone)
            rows.append(RoutingRule(category=category, region_code=code, unit=unit))
            existing.add((category.pk, code))
    RoutingRule.objects.bulk_create(rows, batch_size=1000)
    if rows:
        with transaction.atomic():
            catalogue_changed()  # bulk_create sends no signals
    return len(rows)


# --- staff --------------------------------------------------------------------------------------


def _display_name(seed: int, username: str) -> str:
    return person_name(random.Random(f"{seed}:{username}"))


def _ensure_staff(world: World, seed: int, regions: dict[str, Any]) -> int:
    """Fill the world's pools with the demo logins and synthetic staff, creating what is
    missing through the accounts actions (idempotent: existing ``demo-`` accounts are reused)."""
    from gridgov.accounts.actions import role_assign, user_create
    from gridgov.accounts.models import RoleAssignment, User
    from gridgov.core.demo import DEMO_USERS
    from gridgov.geo.models import Level, Region

    district = regions[world.district]
    logins = [u for u, _role, _where in DEMO_USERS]
    existing = {
        u.username: u
        for u in User.objects.filter(username__startswith=USER_PREFIX).only(
            "pk", "username", "display_name", "is_active", "first_name", "last_name"
        )
    }

    # the demo logins, where they work
    demo_roles: dict[str, list[RoleAssignment]] = {}
    for a in RoleAssignment.objects.filter(
        user__username__in=logins, user__is_active=True
    ).select_related("user", "region", "unit"):
        demo_roles.setdefault(a.role, []).append(a)
        world.users[a.user.pk] = a.user
    for a in demo_roles.get("grid_worker", []):
        if a.region is not None and a.region.level == Level.GRID:
            world.grid_workers.setdefault(a.region.code, Pool()).add(a.user)
            world.focus.add(a.region.code)
    for a in demo_roles.get("supervisor", []):
        if a.region is not None:
            world.supervisors.setdefault(a.region.code[:9], Pool()).add(a.user, 1.5)
    for a in demo_roles.get("resident", []):
        if a.region is not None:
            world.residents.setdefault(a.region.code[:12], Pool()).add(a.user, 2.0)
    for a in demo_roles.get("unit_handler", []):
        if a.unit_id in world.units:
            world.handlers.setdefault(a.unit_id, Pool()).add(a.user, 1.5)
    for role, pool in (
        ("intake_operator", world.intake),
        ("shift_leader", world.shift),
        ("dispatcher", world.dispatchers),
        ("leader", world.leaders),
    ):
        for a in demo_roles.get(role, []):
            if a.region is not None and world.district.startswith(a.region.code):
                pool.add(a.user, 2.0)

    # synthetic staff: (username, role, region, unit, display name, the pool it joins)
    specs: list[tuple[str, str, Any, Any, str, Pool | None]] = []
    for n in range(1, 5):
        specs.append((f"demo-intake-{n}", "intake_operator", district, None, "", world.intake))
    for n in range(1, 3):
        specs.append((f"demo-shift-{n}", "shift_leader", district, None, "", world.shift))
    for n in range(1, 4):
        specs.append((f"demo-dispatch-{n}", "dispatcher", district, None, "", world.dispatchers))
    specs.append(("demo-api", "intake_operator", district, None, "12345热线平台接口", None))
    specs.append(("demo-iot", "intake_operator", district, None, "城市运行物联感知平台", None))
    for code, region in sorted(regions.items()):
        if region.level == Level.STREET:
            pool = world.supervisors.setdefault(code, Pool())
            specs += [(f"demo-sv-{code}-{n}", "supervisor", region, None, "", pool) for n in (1, 2)]
        elif region.level == Level.COMMUNITY:
            pool = world.residents.setdefault(code, Pool())
            specs += [(f"demo-res-{code}-{n}", "resident", region, None, "", pool) for n in (1, 2)]
    grids = {
        r.code: r
        for r in Region.objects.filter(level=Level.GRID, code__startswith=world.district).only(
            "pk", "code", "level"
        )
    }
    for place in world.places:
        if place.code not in world.grid_workers:
            pool = world.grid_workers.setdefault(place.code, Pool())
            specs.append(
                (f"demo-gw-{place.code}", "grid_worker", grids[place.code], None, "", pool)
            )
    for unit in sorted(world.units.values(), key=lambda u: u.code):
        pool = world.handlers.setdefault(unit.pk, Pool())
        specs.append((f"demo-unit-{unit.code}", "unit_handler", None, unit, "", pool))

    # create the missing ones, a hundred to a transaction (the site stays writable meanwhile)
    missing = [spec for spec in specs if spec[0] not in existing]
    for start in range(0, len(missing), 100):
        with transaction.atomic():
            for username, role, region, unit, name, _pool in missing[start : start + 100]:
                user = user_create(
                    username=username,
                    password=None,
                    display_name=name or _display_name(seed, username),
                    work_phone=phone_number(random.Random(f"{seed}:phone:{username}")),
                )
                role_assign(user=user, role=role, region=region, unit=unit)
                existing[username] = user
    for username, _role, _region, _unit, _name, joins in specs:
        user = existing[username]
        world.users[user.pk] = user
        if joins is not None:
            joins.add(user)
    world.api_user = existing["demo-api"]
    world.sensor_user = existing["demo-iot"]
    return len(missing)


#: Shares of all reports: each grid of a demo grid worker, and the demo community in all.
DEMO_GRID_SHARE = 0.015
DEMO_COMMUNITY_SHARE = 0.05


def _place_weights(world: World, seed: int) -> np.ndarray:
    """More reports in small (dense, old-town) grids and a few hot spots; a fixed share in the
    grids of the demo grid workers and in the demo community, so that the demo logins' lists
    hold a fair share of the work."""
    from gridgov.core.demo import DEMO_COMMUNITY

    rng = np.random.default_rng([seed, 7])
    area = np.array([max(p.area_m2, 500.0) for p in world.places])
    weights = np.clip((20_000 / area) ** 0.35, 0.25, 3.0) * rng.lognormal(0, 0.45, len(area))
    weights /= weights.sum()
    codes = [p.code for p in world.places]
    focus = np.array([code in world.focus for code in codes])
    community = np.array([code.startswith(DEMO_COMMUNITY) for code in codes]) & ~focus
    rest = ~focus & ~community
    fixed = DEMO_GRID_SHARE * focus.sum()
    if focus.any() and fixed < 0.5:
        weights[focus] = DEMO_GRID_SHARE
        if community.any():
            share = max(DEMO_COMMUNITY_SHARE - fixed, 0.0)
            weights[community] *= share / weights[community].sum()
            fixed += share
        if rest.any():
            weights[rest] *= (1 - fixed) / weights[rest].sum()
    return weights / weights.sum()


def _demo_photos(count: int = 4) -> list[StoredPhoto]:
    """A handful of small generated JPEGs, stored once through ``photo_save`` and attached to
    many cases (the demo needs pictures, not thousands of files)."""
    from PIL import Image, ImageDraw

    from gridgov.core.photos import photo_save

    photos = []
    palette = ((96, 125, 139), (121, 85, 72), (76, 175, 80), (255, 152, 0), (63, 81, 181))
    for n in range(count):
        image = Image.new("RGB", (160, 120), palette[n % len(palette)])
        draw = ImageDraw.Draw(image)
        for k in range(0, 160, 20):
            draw.line([(k, 0), (k + 60, 120)], fill=(240, 240, 240), width=3)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=80)
        photos.append(photo_save(data=buffer.getvalue(), filename=f"demo-{n}.jpg", folder="demo"))
    return photos


# --- one case's life ----------------------------------------------------------------------------


@dataclass
class Step:
    at: datetime
    who: str  # intake, shift, dispatcher, unit, checker, grid, reporter, leader
    action: str
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    at: datetime
    source: str
    place: str  # the planned grid's code
    category: Category
    lat: float
    lon: float
    address: str
    description: str
    urgency: str
    attributes: dict[str, Any]
    photos: int
    caller: tuple[str, str] = ("", "")


@dataclass
class Script:
    report: Report
    steps: list[Step]
    #: a duplicate: merged into the group's first case
    duplicate: bool = False


class _Stopped(Exception):
    """The case stays open in the state it reached."""


class _Life:
    """Builds a case's steps; stops before the first step that leaves ``stop`` (an open case)."""

    def __init__(
        self, world: World, rng: random.Random, report: Report, stop: str, end: datetime
    ) -> None:
        from .workflow import TABLE

        self.table = TABLE
        self.end = end
        self.world = world
        self.rng = rng
        self.report = report
        self.stop = stop
        self.state = "reported"
        self.t = report.at
        self.steps: list[Step] = []
        self.supervised = False

    def act(self, at: datetime, who: str, action: str, **inputs: Any) -> None:
        target = self.table[action].target
        if self.state == self.stop and target is not None and target != self.state:
            raise _Stopped
        at = max(at, self.t + timedelta(seconds=1))
        self.steps.append(Step(at, who, action, inputs))
        self.t = at
        if target is not None:
            self.state = target

    # time
    def work(self, minutes: float, since: datetime | None = None) -> datetime:
        start = since or self.t
        later = self.world.cal.add_working_time(start, timedelta(minutes=max(minutes, 0.5)))
        return later + timedelta(seconds=self.rng.randrange(60))

    def wall(self, minutes: float, since: datetime | None = None) -> datetime:
        return (since or self.t) + timedelta(minutes=minutes, seconds=self.rng.randrange(60))

    def delay(self, median: float, limit: float | None = None, late: float = 0.0) -> float:
        """Working minutes around ``median`` (at most 40 % of ``limit``), kept within the limit
        except with probability ``late``, when the step takes 1.05–2.2 times the limit."""
        if limit is None:
            return median * math.exp(self.rng.gauss(0, 0.6))
        if self.rng.random() < late:
            return limit * self.rng.uniform(1.05, 2.2)
        value = min(median, limit * 0.4) * math.exp(self.rng.gauss(0, 0.6))
        return min(value, limit * 0.95)

    def pick(self, options: Sequence[str]) -> str:
        return self.rng.choice(options)


def _stop_state(rng: random.Random, age_days: float, *, focus: bool = False) -> str:
    """Where an open case stays: recent ones anywhere (in a demo grid worker's grid mostly
    where the grid worker comes next), older ones mostly with the units."""
    if focus and age_days <= 6:  # on-site verifications are the grid worker's to-dos
        states = {
            "verifying": 45, "reported": 15, "self_handled": 5, "accepted": 5, "dispatched": 10,
            "handling": 20,
        }  # fmt: skip
    elif age_days <= 5:
        states = {
            "reported": 12, "accepted": 7, "verifying": 3, "registered": 9, "sent_back": 3,
            "dispatched": 13, "handling": 28, "checking": 10, "checked": 6, "suspended": 4,
            "self_handled": 3,
        }  # fmt: skip
    else:
        states = {
            "registered": 3, "sent_back": 3, "dispatched": 10, "handling": 56, "checking": 4,
            "checked": 3, "suspended": 21,
        }  # fmt: skip
    return rng.choices(list(states), weights=list(states.values()))[0]


def _life(
    world: World, rng: random.Random, report: Report, *, end: datetime, escalate: bool = False
) -> Script:
    """The steps of one case: the usual loop with its side paths, or a refusal, or an open case
    stopped somewhere on the way; ``escalate``: the intake operator first sends it one level up
    (beyond what the grid can handle)."""
    source = report.source
    topic = world.topics[report.category.pk]
    age = (end - report.at).total_seconds() / 86400

    p_decline = 0.045 if source in PUBLIC else 0.008
    p_void = 0.015
    focus = report.place in world.focus
    p_open = 0.16 + 0.55 * math.exp(-age / 6)
    if focus and age <= 6:
        p_open = 0.8  # the demo grid workers' recent reports: their list holds them
    r = rng.random()
    if r < p_decline:
        fate = "declined"
    elif r < p_decline + p_void:
        fate = "voided"
    elif r < p_decline + p_void + p_open:
        fate = "open"
    else:
        fate = "closed"
    stop = _stop_state(rng, age, focus=focus) if fate == "open" else ""
    urgent = report.urgency != "normal"
    on_the_spot = source == "grid_worker" and topic.on_the_spot and not urgent
    self_handle = (
        on_the_spot and stop != "verifying" and (rng.random() < 0.35 or stop == "self_handled")
    )
    if stop == "self_handled" and not self_handle:
        stop = "reported"
    verify = (
        not urgent
        and not self_handle
        and (stop == "verifying" or (source in PUBLIC and rng.random() < 0.10))
    )
    if urgent and stop in ("accepted", "verifying", "registered"):
        stop = "dispatched"
    life = _Life(world, rng, report, stop, end)
    cat = report.category
    register_limit = world.limit_minutes(cat, "register", emergency=urgent)
    try:
        if escalate:  # no state of its own: the case goes on from where it is
            life.act(
                life.work(life.delay(3)), "intake", "escalate", reason=life.pick(ESCALATE_REASONS)
            )
        if fate == "declined":
            life.act(
                life.work(life.delay(8)), "intake", "decline", reason=life.pick(DECLINE_REASONS)
            )
            return Script(report, life.steps)
        if urgent:
            life.act(
                life.work(life.delay(4, register_limit, 0.05)),
                "dispatcher",
                "urgent_dispatch",
                lead_unit="suggested",
            )
        else:
            if self_handle:
                life.act(
                    life.wall(life.delay(15)),
                    "reporter",
                    "self_handle",
                    note=life.pick(SELF_HANDLE_NOTES),
                    photos=1,
                )
                review = world.limit_minutes(cat, "review")
                if rng.random() < 0.92:
                    life.act(life.work(life.delay(20, review, 0.08)), "intake", "review_pass")
                    return Script(report, life.steps)
                life.act(
                    life.work(life.delay(20, review, 0.08)),
                    "intake",
                    "review_fail",
                    reason=life.pick(REVIEW_FAIL_REASONS),
                )
            else:
                accept = life.delay(6, register_limit, 0.08)
                life.act(life.work(accept), "intake", "accept")
            if fate == "voided":
                if rng.random() < 0.3:
                    life.act(life.work(life.delay(4)), "intake", "register")
                life.act(
                    life.work(life.delay(20)), "intake", "void", reason=life.pick(VOID_REASONS)
                )
                return Script(report, life.steps)
            if verify:
                life.act(life.work(life.delay(3)), "intake", "request_verification")
                verify_limit = world.limit_minutes(cat, "verify")
                life.act(
                    life.work(life.delay(35, verify_limit, 0.1)),
                    "grid",
                    "verify",
                    note=life.pick(VERIFY_NOTES),
                )
            life.act(life.work(life.delay(4)), "intake", "register")
            if rng.random() < 0.006:
                life.act(
                    life.work(life.delay(5)),
                    "intake",
                    "escalate",
                    reason=life.pick(ESCALATE_REASONS),
                )
            life.act(life.work(life.delay(5)), "dispatcher", "dispatch", lead_unit="suggested")
        _unit_phase(life, fate=fate)
        life.act(
            life.work(life.delay(12, world.limit_minutes(cat, "close"), 0.05)), "shift", "close"
        )
        _after_close(life, end=end)
    except _Stopped:
        pass
    return Script(report, life.steps)


def _unit_phase(life: _Life, *, fate: str) -> None:
    """From dispatch to a passed check: sign, handle (side paths), feed back, check."""
    world, rng, cat = life.world, life.rng, life.report.category
    topic = world.topics[cat.pk]
    sign_limit = world.limit_minutes(cat, "sign")
    handle_limit = world.limit_minutes(cat, "handle")
    check_limit = world.limit_minutes(cat, "check")
    if life.stop == "sent_back" or rng.random() < 0.04:
        if rng.random() < 0.5:
            life.act(life.work(life.delay(90, sign_limit, 0.03)), "unit", "sign")
        life.act(
            life.work(life.delay(60)), "unit", "send_back", reason=life.pick(SEND_BACK_REASONS)
        )
        life.act(life.work(life.delay(25)), "dispatcher", "dispatch", lead_unit="alternative")
    life.act(life.work(life.delay(100, sign_limit, 0.05)), "unit", "sign")
    started = life.t
    handle = life.delay(handle_limit * 0.45, handle_limit, 0.12)
    stuck_with_unit = life.stop == "handling"
    if life.stop == "suspended" or rng.random() < 0.02:
        life.act(
            life.work(handle * 0.3),
            "unit",
            "request_suspension",
            reason=life.pick(SUSPENSION_REASONS),
        )
        life.act(life.work(life.delay(60)), "dispatcher", "approve_suspension")
        life.act(life.work(rng.uniform(3, 20) * 450), "dispatcher", "resume")
        started = life.t
        handle = life.delay(handle_limit * 0.45, handle_limit, 0.12)
    if rng.random() < 0.05:
        span = rng.choice(("4h", "1d", "2d"))
        life.act(
            life.work(handle * 0.5, started),
            "unit",
            "request_extension",
            reason=life.pick(EXTENSION_REASONS),
            span=span,
        )
        if rng.random() < 0.85:
            life.act(life.work(life.delay(40)), "dispatcher", "approve_extension")
            handle += {"4h": 240, "1d": 450, "2d": 900}[span] * 0.7
        else:
            life.act(
                life.work(life.delay(40)),
                "dispatcher",
                "refuse_extension",
                reason="请按原定时限处置",
            )
    # overdue work is supervised: most often the cases still with the unit after their limit
    overdue_now = stuck_with_unit and life.work(handle_limit, started) < life.end
    if rng.random() < (0.2 if overdue_now else 0.015):
        at = life.work(min(handle * 0.7, handle_limit * 1.05), started)
        life.act(at, "leader", "supervise", note=life.pick(SUPERVISE_NOTES))
        if rng.random() < 0.85:
            life.act(
                life.work(life.delay(90)),
                "unit",
                "supervise_reply",
                note=life.pick(SUPERVISE_REPLIES),
            )
    if rng.random() < 0.015:
        life.act(life.work(life.delay(30)), "grid", "escalate", reason=life.pick(ESCALATE_REASONS))
    life.act(
        life.work(handle, started),
        "unit",
        "feedback",
        note=life.pick(topic.fixes),
        photos=1 if rng.random() < 0.3 else 0,
    )
    reworks = 0
    while reworks < 2 and rng.random() < (0.08 if reworks == 0 else 0.15):
        life.act(
            life.work(life.delay(25, check_limit, 0.1)),
            "checker",
            "check_fail",
            reason=life.pick(REWORK_REASONS),
        )
        reworks += 1
        rework = life.delay(handle_limit * 0.3, handle_limit, 0.1)
        life.act(life.work(rework), "unit", "feedback", note=life.pick(topic.fixes))
    life.act(
        life.work(life.delay(25, check_limit, 0.1)),
        "checker",
        "check_pass",
        note=life.pick(CHECK_NOTES),
    )


def _after_close(life: _Life, *, end: datetime) -> None:
    """A resident rates the result; a few recently closed cases are reopened and done again."""
    rng = life.rng
    closed_at = life.t
    resident = life.report.source == "resident"
    if resident and rng.random() < 0.6:
        rating = rng.choices((1, 2, 3, 4, 5), weights=(3, 5, 12, 30, 50))[0]
        life.act(
            life.wall(rng.uniform(60, 2880)),
            "reporter",
            "evaluate",
            rating=rating,
            note=RATING_NOTES[0 if rating >= 4 else (1 if rating == 3 else 2)],
        )
    recent = end - closed_at < timedelta(days=5)
    if recent and rng.random() < (0.2 if resident else 0.08):
        life.act(
            life.work(rng.uniform(60, 900), closed_at),
            "shift",
            "reopen",
            reason=life.pick(REOPEN_REASONS),
        )
        life.act(life.work(life.delay(10)), "dispatcher", "dispatch", lead_unit="suggested")
        _unit_phase(life, fate="closed")
        life.act(life.work(life.delay(12)), "shift", "close")


# --- the reports of one item --------------------------------------------------------------------


def _report(
    world: World, rng: random.Random, at: datetime, source: str, *, near: Report | None = None
) -> Report:
    """Where, what and how urgent: a grid by its weight, a building in it, a category that
    fits the channel."""
    from .models import Urgency

    klass = _source_class(source)
    if near is not None:  # the same problem, seen a few metres away
        from gridgov.geo.index import grid_index

        category, address, code = near.category, near.address, near.place
        lat, lon = near.lat, near.lon
        for _ in range(4):
            jlat, jlon = near.lat + rng.gauss(0, 0.00008), near.lon + rng.gauss(0, 0.00008)
            if grid_index().locate(jlon, jlat) == code:
                lat, lon = jlat, jlon
                break
    else:
        place = world.places[
            bisect.bisect_left(world.place_cum, rng.random() * world.place_cum[-1])
        ]
        lat, lon, address = _spot(world, rng, place)
        code = place.code
        cum = world.category_cum[klass]
        category = world.categories[bisect.bisect_left(cum, rng.random() * cum[-1])]
    topic = world.topics[category.pk]
    levels = category.urgency_levels or [Urgency.NORMAL]
    urgency = Urgency.NORMAL
    if near is None and Urgency.URGENT in levels and rng.random() < topic.urgent:
        urgency = Urgency.URGENT
        if Urgency.CRITICAL in levels and rng.random() < 0.1:
            urgency = Urgency.CRITICAL
    phrase = rng.choice(topic.reports)
    if topic is OTHER:
        phrase = f"{category.name_zh}{phrase}"
    description = f"{category.name_zh}：{phrase}" if topic is not OTHER else phrase
    caller = ("", "")
    if source in ("hotline", "api"):
        caller = (person_name(rng), phone_number(rng))
    elif source == "sensor":
        caller = (f"感知设备 {rng.randrange(10_000, 99_999)}", "")
    photos = 0
    if source in ("grid_worker", "supervisor") and rng.random() < 0.3:
        photos = rng.choice((1, 1, 2))
    elif source == "resident" and rng.random() < 0.2:
        photos = 1
    return Report(
        at=at,
        source=source,
        place=code,
        category=category,
        lat=round(lat, 7),
        lon=round(lon, 7),
        address=address,
        description=description,
        urgency=urgency,
        attributes=_attribute_values(category, rng, at),
        photos=photos,
        caller=caller,
    )


def _spot(world: World, rng: random.Random, place: Place) -> tuple[float, float, str]:
    """A point in the grid: next to one of its buildings, else anywhere inside it."""
    from gridgov.geo.index import grid_index

    index = grid_index()
    if place.buildings:
        weights = [max(b[3], 1) for b in place.buildings]
        lat, lon, address, _households = rng.choices(place.buildings, weights=weights)[0]
        side = rng.choice(("", "旁", "门口", "东侧", "西侧", "南侧", "北侧", "附近"))
        for _ in range(4):
            jlat, jlon = lat + rng.gauss(0, 0.00012), lon + rng.gauss(0, 0.00012)
            if index.locate(jlon, jlat) == place.code:
                return jlat, jlon, f"{address}{side}"
        return lat, lon, address
    label = f"{place.community}{place.name}"
    if place.bounds is not None:
        min_lon, min_lat, max_lon, max_lat = place.bounds
        for _ in range(12):
            lat, lon = rng.uniform(min_lat, max_lat), rng.uniform(min_lon, max_lon)
            if index.locate(lon, lat) == place.code:
                return lat, lon, label
    if place.label is not None:
        return place.label[0], place.label[1], label
    raise DomainError(f"grid {place.code} has no position")


_NUMBER_RANGES = {
    "area_m2": (2, 120),
    "count": (5, 60),
    "people": (1, 12),
    "parties": (2, 4),
    "vehicles": (1, 8),
    "stalls": (1, 6),
    "lamps_out": (1, 5),
}


def _attribute_values(category: Category, rng: random.Random, at: datetime) -> dict[str, Any]:
    """Values for the category's attributes: every required one, half of the others."""
    values: dict[str, Any] = {}
    for a in category.attributes.all():
        if not a.variable or (not a.required and rng.random() < 0.5):
            continue
        keys = a.value_keys()
        if a.datatype == "singlevaluelist" and keys:
            values[a.code] = rng.choice(keys)
        elif a.datatype == "multivaluelist" and keys:
            values[a.code] = rng.sample(keys, k=min(len(keys), rng.choice((1, 1, 2))))
        elif a.datatype == "number":
            low, high = _NUMBER_RANGES.get(a.code, (1, 5))
            values[a.code] = rng.randint(low, high)
        elif a.datatype == "datetime":
            values[a.code] = (at - timedelta(minutes=rng.randint(5, 240))).isoformat()
        elif a.datatype in ("string", "text"):
            values[a.code] = "见现场照片"
    return values


def item_rng(seed: int, index: int) -> random.Random:
    """The random generator of report number ``index`` (its own, so a run can resume there)."""
    return random.Random(f"gridgov-demo-history:{seed}:{index}")


def plan_group(
    world: World, plan: ReportPlan, seed: int, index: int, end: datetime
) -> list[Script]:
    """The scripts of report ``index`` and, when the next report is its duplicate, of that one
    (merged into it, or declined when the first one is finished by then)."""
    from .workflow import TABLE, TERMINAL

    zone = local_zone()
    rng = item_rng(seed, index)
    at = datetime.fromtimestamp(float(plan.at[index]), zone)
    first = _report(world, rng, at, SOURCES[int(plan.source[index])])
    scripts = [_life(world, rng, first, end=end, escalate=bool(plan.escalate[index]))]
    if index + 1 < len(plan) and plan.duplicate[index + 1]:
        drng = item_rng(seed, index + 1)
        source = drng.choice(("resident", "resident", "hotline"))
        second_at = at + timedelta(minutes=drng.uniform(10, 240))
        if second_at > end:  # too late to be reported twice: the next report is its own
            return scripts
        second = _report(world, drng, second_at, source, near=first)
        scripts.append(Script(second, [], duplicate=True))
        merge_at = world.cal.add_working_time(second_at, timedelta(minutes=drng.uniform(5, 40)))
        ended = [st.at for st in scripts[0].steps if TABLE[st.action].target in TERMINAL]
        if ended and ended[0] <= merge_at:  # the first report is done with: nothing to merge into
            scripts[1].steps.append(Step(merge_at, "intake", "decline", {"reason": DUPLICATE}))
        else:
            scripts[1].steps.append(Step(merge_at, "intake", "merge", {"target": 0}))
    return scripts


# --- running the scripts ------------------------------------------------------------------------


@dataclass
class _Outcome:
    cases: list[Case]
    actions: int = 0
    refused: list[str] = field(default_factory=list)


def _actor(world: World, case: Case, who: str, rng: random.Random) -> User:
    if who == "reporter":
        user = world.users.get(case.reporter_id or 0) or case.reporter
        if user is None:
            raise DomainError(f"case {case.number} has no reporter")
        return user
    if who == "intake":
        return world.intake.pick(rng)
    if who == "shift":
        return world.shift.pick(rng)
    if who == "dispatcher":
        return world.dispatchers.pick(rng)
    if who == "leader":
        if world.leaders and rng.random() < 0.15:
            return world.leaders.pick(rng)
        return world.shift.pick(rng)
    if who == "unit":
        pool = world.handlers.get(case.lead_unit_id or 0)
        if not pool:
            raise DomainError(f"no handler for unit {case.lead_unit_id}")
        return pool.pick(rng)
    if who == "grid":
        pool = world.grid_workers.get(case.region_code) or world.supervisors.get(
            case.region_code[:9]
        )
        if pool:
            return pool.pick(rng)
        return world.intake.pick(rng)
    if who == "checker":
        pool = world.supervisors.get(case.region_code[:9])
        if pool and case.source not in PUBLIC:
            return pool.pick(rng)
        return world.intake.pick(rng)
    raise ValueError(who)


def _reporter(world: World, report: Report, rng: random.Random) -> tuple[User, str]:
    """Who reports through the report's channel where it is (the intake desk takes the call
    when the place has nobody of that kind)."""
    from gridgov.geo.index import grid_index

    code = grid_index().locate(report.lon, report.lat) or ""
    pool: Pool | None = None
    if report.source == "grid_worker":
        pool = world.grid_workers.get(code)
    elif report.source == "supervisor":
        pool = world.supervisors.get(code[:9])
    elif report.source == "resident":
        pool = world.residents.get(code[:12])
    elif report.source == "api" and world.api_user is not None:
        return world.api_user, "api"
    elif report.source == "sensor" and world.sensor_user is not None:
        return world.sensor_user, "sensor"
    if pool:
        return pool.pick(rng), report.source
    return world.intake.pick(rng), "hotline"


def _unit_choice(world: World, case: Case, how: str, previous: int | None) -> Unit:
    if how == "suggested" and case.suggested_unit_id in world.units:
        return world.units[case.suggested_unit_id]
    options = [
        world.street_office.get(case.region_code[:9]),
        world.committee.get(case.region_code[:12]),
        world.default_unit,
    ]
    for unit in options:
        if unit is not None and unit.pk != previous:
            return unit
    if world.default_unit is None:
        raise DomainError("the district has no units to dispatch to")
    return world.default_unit


def _run_group(world: World, scripts: list[Script], end: datetime, rng: random.Random) -> _Outcome:
    """Report and act in time order across the group's cases (a duplicate is merged while its
    original is open); a refused step leaves that case where it is."""
    from .actions import Inputs, case_act, case_report

    outcome = _Outcome(cases=[])
    cases: list[Case | None] = [None] * len(scripts)
    previous_lead: list[int | None] = [None] * len(scripts)
    entries = sorted(
        [(s.report.at, k, -1) for k, s in enumerate(scripts)]
        + [(step.at, k, j) for k, s in enumerate(scripts) for j, step in enumerate(s.steps)]
    )
    stopped: set[int] = set()
    for at, k, j in entries:
        if at > end:
            break
        if k in stopped:
            continue
        script = scripts[k]
        if j < 0:
            r = script.report
            reporter, source = _reporter(world, r, rng)
            cases[k] = case_report(
                actor=reporter,
                category=r.category,
                description=r.description,
                lat=r.lat,
                lon=r.lon,
                address=r.address,
                urgency=r.urgency,
                attributes=r.attributes,
                photos=world.photos[: r.photos],
                source=source,
                reporter_name=r.caller[0],
                reporter_phone=r.caller[1],
                at=at,
            )
            continue
        case = cases[k]
        if case is None:
            continue
        step = script.steps[j]
        inputs = dict(step.inputs)
        if "lead_unit" in inputs:
            unit = _unit_choice(world, case, inputs["lead_unit"], previous_lead[k])
            inputs["lead_unit"] = unit
            previous_lead[k] = unit.pk
        if "photos" in inputs:
            inputs["photos"] = world.photos[: inputs["photos"]]
        if "target" in inputs:
            target = cases[inputs["target"]]
            if target is None:
                stopped.add(k)
                continue
            inputs["target"] = target
        try:
            actor = _actor(world, case, step.who, rng)
            cases[k] = case_act(
                case=case,
                actor=actor,
                action=step.action,
                version=case.version,
                inputs=Inputs(**inputs),
                at=at,
            )
            outcome.actions += 1
        except DomainError as exc:  # refused (a guard, a stale window): the case stays
            stopped.add(k)
            outcome.refused.append(f"{case.number} {step.action}: {exc}")
            continue
        if step.action == "merge":
            target = cases[step.inputs["target"]]
            if target is not None:
                target.refresh_from_db(fields=["version"])
    outcome.cases = [c for c in cases if c is not None]
    return outcome


# --- the history --------------------------------------------------------------------------------


@dataclass
class HistorySummary:
    #: reports made by this call (0 when the history was complete already)
    added: int
    done: int
    total: int
    seed: int
    days: int
    seconds: float
    actions: int
    refused: list[str]
    message: str

    @property
    def rate(self) -> float:
        return self.added / self.seconds if self.seconds else 0.0

    @property
    def complete(self) -> bool:
        return self.done >= self.total


def history_progress() -> tuple[int, int] | None:
    """(done, total) while a demo history is being loaded; None when none is, or it is done."""
    from gridgov.core.models import Stamp

    values = dict(Stamp.objects.filter(key__in=(DONE_KEY, CASES_KEY)).values_list("key", "version"))
    if DONE_KEY not in values or CASES_KEY not in values:
        return None
    done, total = int(values[DONE_KEY]), int(values[CASES_KEY])
    return (done, total) if done < total else None


def history_state() -> dict[str, int] | None:
    """The stored plan (seed, cases, days, end as epoch seconds, done), or None."""
    from gridgov.core.models import Stamp

    values = dict(
        Stamp.objects.filter(key__in=(DONE_KEY, *PLAN_KEYS)).values_list("key", "version")
    )
    if not all(k in values for k in (DONE_KEY, *PLAN_KEYS)):
        return None
    return {
        "seed": int(values[SEED_KEY]),
        "cases": int(values[CASES_KEY]),
        "days": int(values[DAYS_KEY]),
        "end": int(values[END_KEY]),
        "done": int(values[DONE_KEY]),
    }


def _store_plan(*, seed: int, cases: int, days: int, end: datetime) -> None:
    from gridgov.core.models import Stamp

    with transaction.atomic():
        for key, value in (
            (SEED_KEY, seed),
            (CASES_KEY, cases),
            (DAYS_KEY, days),
            (END_KEY, int(end.timestamp())),
            (DONE_KEY, 0),
        ):
            Stamp.objects.update_or_create(key=key, defaults={"version": value})


def demo_history(
    *,
    days: int | None = None,
    cases: int | None = None,
    seed: int = DEFAULT_SEED,
    end: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> HistorySummary:
    """Add the demo case history (see the module docstring); resumes a stopped run, and adds
    nothing once the history is complete.

    ``progress(done, total)`` is called after each committed case (or case and duplicate); an
    exception it raises stops the run there, and the next run continues from that point.
    """
    say = log or (lambda line: None)
    days = int(settings.GRIDGOV_DEMO_DAYS if days is None else days)
    cases = int(settings.GRIDGOV_DEMO_CASES if cases is None else cases)
    if not 0 <= cases <= MAX_CASES:
        raise DomainError(f"cases must be 0 to {MAX_CASES:,}, got {cases:,}")
    if not 1 <= days <= MAX_DAYS:
        raise DomainError(f"days must be 1 to {MAX_DAYS:,}, got {days:,}")
    stored = history_state()
    if stored is None:
        end = (end or timezone.now()).replace(microsecond=0)
        if cases == 0:
            return HistorySummary(0, 0, 0, seed, days, 0.0, 0, [], "no demo history asked for")
    else:
        asked = (seed, cases, days)
        seed, cases, days = stored["seed"], stored["cases"], stored["days"]
        end = datetime.fromtimestamp(stored["end"], local_zone())
        if stored["done"] >= cases:
            message = (
                f"the demo history is loaded already ({cases:,} cases over {days} days, seed "
                f"{seed}); nothing was added"
            )
            say(message)
            return HistorySummary(0, stored["done"], cases, seed, days, 0.0, 0, [], message)
        if asked != (seed, cases, days):
            say(f"continuing the stored plan: {cases:,} cases over {days} days, seed {seed}")
    started = time.monotonic()
    world = _build_world(seed, say)
    world.photos = _demo_photos()
    # the district, its residents, staff and rules were most likely loaded a moment ago: plan
    # the history's queries by their real sizes
    database_analyze(bulk_load=True)
    if stored is None:
        _store_plan(seed=seed, cases=cases, days=days, end=end)
        done = 0
    else:
        done = stored["done"]
        say(f"resuming at case {done + 1:,} of {cases:,}")
    plan = plan_reports(
        seed=seed, cases=cases, days=days, end=end, working_day=world.cal.is_working_day
    )
    summary = _run(world, plan, seed=seed, end=end, done=done, progress=progress)
    summary.seconds = time.monotonic() - started
    summary.days = days
    if summary.complete:
        _quiet_demo_inboxes(world)
        database_analyze(bulk_load=True)  # thousands of new cases: fresh planner statistics
    summary.message = (
        f"demo history: {summary.added:,} cases added in {summary.seconds:.0f} s "
        f"({summary.rate:.1f} cases/s, {summary.actions:,} actions); "
        f"{summary.done:,} of {summary.total:,} done"
    )
    if summary.refused:
        say(
            f"{len(summary.refused):,} planned steps were refused, so those cases stayed where "
            f"they were (e.g. {summary.refused[0]})"
        )
    say(summary.message)
    return summary


def _run(
    world: World,
    plan: ReportPlan,
    *,
    seed: int,
    end: datetime,
    done: int,
    progress: Callable[[int, int], None] | None,
) -> HistorySummary:
    from gridgov.core.models import Stamp

    total = len(plan)
    summary = HistorySummary(0, done, total, seed, 0, 0.0, 0, [], "")
    index = done
    paused = time.monotonic()
    single_writer = connection.vendor == "sqlite"
    while index < total:
        scripts = plan_group(world, plan, seed, index, end)
        for attempt in range(LOCK_RETRIES + 1):
            actors = random.Random(f"gridgov-demo-history-actors:{seed}:{index}")
            try:
                with transaction.atomic():
                    outcome = _run_group(world, scripts, end, actors)
                    Stamp.objects.filter(key=DONE_KEY).update(version=index + len(scripts))
                break
            except OperationalError as exc:  # SQLite: another writer held on for too long
                if "locked" not in str(exc) or attempt == LOCK_RETRIES:
                    raise
                time.sleep(0.5 * (attempt + 1))
        index += len(scripts)
        summary.added += len(scripts)
        summary.done = index
        summary.actions += outcome.actions + len(outcome.cases)
        summary.refused.extend(outcome.refused)
        if single_writer and time.monotonic() - paused >= PAUSE_EVERY:
            time.sleep(PAUSE)
            paused = time.monotonic()
        if progress is not None:
            progress(index, total)
    return summary


def _quiet_demo_inboxes(world: World) -> None:
    """The history's notifications are old news: mark them read for the demo logins (whose
    to-do lists show the open work), so their bells start at zero."""
    from gridgov.accounts.models import User
    from gridgov.core.demo import DEMO_USERS
    from gridgov.notifications.actions import notifications_mark_all_read

    for user in User.objects.filter(username__in=[u for u, _r, _w in DEMO_USERS]):
        notifications_mark_all_read(user=user)
