"""The demo district: Nanjing Qixia (栖霞区, 320113), loaded by ``gridgov demo load``.

What is real: the district's 21 streets and zones and 142 communities and villages with their
official codes and names, and the district outline (``gridgov/data``). What is synthetic: the
street and community polygons, the buildings with their households, the grids cut from them,
the units and the demo accounts.

The work is split in two:

* ``demo_plan`` is pure (no database): it reads the data files, repairs the outline, tiles the
  district into streets and each street into its communities, and places the buildings. The
  same seed always gives the same plan, to the last coordinate.
* ``demo_load`` writes a plan through the apps' own actions (divisions import, grid
  generation, units, users and role assignments) in one transaction, and marks the database so
  that a second run adds nothing.

Tiling: each level is a power diagram (a Voronoi diagram whose cells can be given different
sizes) of seed points inside the parent polygon, Lloyd-relaxed a few rounds while the cell
weights are fitted to target areas. The cells are then noded together with the parent's
boundary on the stored 1e-7° grid and polygonised, so neighbours share their edges exactly,
and the children's union is the parent. A cell cut in pieces by the parent's shape keeps its
largest piece; the others join the neighbour they share the longest edge with.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

from gridgov.geo.codes import community_short_name
from gridgov.geo.geometry import GRID_SIZE, geodesic_area, repair, validity_problem

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
DIVISIONS_PATH = DATA_DIR / "divisions-320113-qixia.csv"
OUTLINE_PATH = DATA_DIR / "district-320113-qixia.geojson"

DEFAULT_HOUSEHOLDS = 350_000  # about the real district (~1,300 grids)
DEFAULT_SEED = 2026
HOUSEHOLDS_PER_GRID = 300
#: Grid size for communities without buildings (rural land, parks, industrial zones).
EMPTY_COMMUNITY_GRID_M2 = 200_000
#: The community the demo accounts work in (迈皋桥街道 长营社区, in the dense old town).
DEMO_COMMUNITY = "320113003001"
#: The demo community gets at least this many households, so that it has several grids.
DEMO_COMMUNITY_MIN_HOUSEHOLDS = 1_500
#: One password for every demo account; it passes Django's validators (length 10+, not common).
DEMO_PASSWORD = "gridgov-demo-2026"  # noqa: S105 - published demo logins
#: A ``core.Stamp`` row with this key marks a database that holds the demo (version = seed).
DEMO_STAMP = "demo.loaded"

#: Coordinates are computed on the grid they are stored on (see ``geo.geometry``).
GRID = GRID_SIZE


# --- input data ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Division:
    code: str
    name: str
    level: str
    parent_code: str


def read_divisions(path: Path = DIVISIONS_PATH) -> list[Division]:
    with path.open(encoding="utf-8", newline="") as fh:
        return [
            Division(
                code=row["code"].strip(),
                name=row["name"].strip(),
                level=row["level"].strip(),
                parent_code=row["parent_code"].strip(),
            )
            for row in csv.DictReader(fh)
        ]


def read_outline(path: Path = OUTLINE_PATH) -> BaseGeometry:
    """The district outline exactly as given (it is not valid: it touches itself)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("type") == "FeatureCollection":
        data = data["features"][0]
    if data.get("type") == "Feature":
        data = data["geometry"]
    return shapely.geometry.shape(data)


# --- rough geography of Qixia --------------------------------------------------------------------

#: street code -> (lon, lat of its centre, character, area factor). The centres follow the real
#: map roughly: the dense old town of 迈皋桥/燕子矶/尧化 in the south-west, 马群 and the Xianlin
#: university town (仙林) in the south, 栖霞 and 西岗 in the middle, the island 八卦洲 in the
#: north-west and 龙潭 with its port and villages along the river in the east.
QIXIA_STREETS: dict[str, tuple[float, float, str, float]] = {
    "320113001": (118.865, 32.135, "urban", 1.0),  # 尧化街道
    "320113002": (118.905, 32.065, "urban", 1.0),  # 马群街道
    "320113003": (118.800, 32.130, "dense", 1.0),  # 迈皋桥街道
    "320113004": (118.815, 32.165, "dense", 1.0),  # 燕子矶街道
    "320113005": (118.965, 32.170, "suburban", 1.0),  # 栖霞街道
    "320113006": (119.150, 32.215, "rural", 1.0),  # 龙潭街道
    "320113007": (118.920, 32.112, "campus", 1.0),  # 仙林街道
    "320113009": (118.820, 32.205, "rural", 1.2),  # 八卦洲街道 (the island)
    "320113010": (119.000, 32.115, "suburban", 1.0),  # 西岗街道
    "320113400": (119.030, 32.180, "zone", 0.5),  # 龙潭监狱
    "320113401": (119.000, 32.165, "zone", 1.0),  # 栖霞经济开发区
    "320113402": (119.100, 32.215, "zone", 1.0),  # 南京龙潭物流园
    "320113403": (119.220, 32.225, "zone", 1.0),  # 靖安三江口工业园
    "320113405": (118.900, 32.045, "zone", 0.6),  # 马群科技园
    "320113406": (118.935, 32.125, "zone", 1.5),  # 仙林大学城
    "320113407": (118.965, 32.125, "zone", 0.6),  # 江苏生命科技创新园
    "320113409": (118.945, 32.110, "zone", 0.6),  # 南大科学园
    "320113410": (118.915, 32.085, "zone", 0.6),  # 紫东国际创意园
    "320113411": (118.850, 32.160, "zone", 0.6),  # 金港科技创业中心
    "320113413": (118.950, 32.140, "zone", 0.7),  # 仙林智谷
    "320113450": (118.900, 32.165, "zone", 1.5),  # 南京经济技术开发区
}


@dataclass(frozen=True)
class Kind:
    """What a community is like: its relative area, density and buildings."""

    name: str
    area_km2: float  # relative area of one community of this kind
    density: float  # households per km² before scaling to the requested total
    floors: tuple[int, ...]  # floor counts of its buildings
    units: tuple[int, int]  # 单元 per building (min, max)
    per_floor: tuple[int, int]  # households per floor per unit (min, max)
    spacing_m: float  # distance between neighbouring buildings
    estate_buildings: tuple[int, int]  # buildings per estate (min, max)
    suffixes: tuple[str, ...]  # estate name endings


# fmt: off
KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("dense", 0.6, 14000, (5, 6, 6, 6, 7), (2, 4), (2, 2), 28, (8, 30),
             ("新村", "小区", "新寓", "里", "公寓")),
        Kind("resettled", 1.2, 8000, (6, 6, 11, 18), (2, 3), (2, 2), 32, (15, 40),
             ("佳园", "家园", "安居苑", "新苑", "雅居")),
        Kind("urban", 1.2, 7000, (6, 11, 18, 18, 26, 33), (1, 3), (2, 4), 40, (6, 24),
             ("花园", "苑", "名居", "华府", "雅苑", "公寓", "府")),
        Kind("campus", 3.0, 2500, (6, 11, 18), (2, 3), (2, 3), 50, (6, 20),
             ("公寓", "学府", "花园", "苑", "雅居")),
        Kind("suburban", 2.0, 3000, (6, 11, 18, 26), (2, 3), (2, 3), 42, (8, 30),
             ("花园", "山庄", "家园", "苑", "名苑", "新城")),
        Kind("town", 1.5, 4000, (4, 5, 6, 11), (2, 3), (2, 2), 30, (6, 20),
             ("新村", "小区", "花园", "苑")),
        Kind("village", 5.0, 250, (2, 2, 3), (1, 1), (1, 1), 22, (15, 60), ("组",)),
        Kind("zone", 6.0, 150, (11, 18), (2, 2), (2, 4), 50, (3, 8), ("人才公寓", "公寓")),
        Kind("closed", 4.0, 0, (1,), (1, 1), (1, 1), 50, (1, 1), ("",)),
    )
}
# fmt: on

#: the character of a street -> the kind of its ordinary (居委会) communities
STREET_COMMUNITY_KIND = {
    "dense": "dense",
    "urban": "urban",
    "campus": "campus",
    "suburban": "suburban",
    "rural": "town",
    "zone": "suburban",
}

_ESTATE_WORDS = (
    "金陵",
    "翠屏",
    "仙鹤",
    "紫金",
    "燕华",
    "尧顺",
    "和园",
    "丽景",
    "锦绣",
    "枫林",
    "桂园",
    "兰亭",
    "梅园",
    "银杏",
    "香樟",
    "凤凰",
    "麒麟",
    "龙湾",
    "江岸",
    "滨江",
    "东方",
    "明珠",
    "阳光",
    "春江",
    "秋水",
    "朝阳",
    "聚福",
    "康乐",
    "和谐",
    "幸福",
    "丰润",
    "嘉和",
    "安居",
    "怡景",
    "瑞祥",
    "华庭",
    "景明",
    "福润",
    "新城",
    "中兴",
    "迎宾",
    "青山",
    "碧水",
    "天润",
    "书香",
    "文苑",
    "学府",
    "摄山",
    "长江",
    "宝华",
    "万寿",
    "东井",
    "惠民",
    "泰和",
    "永安",
    "长乐",
    "翠湖",
    "星河",
    "晨光",
    "紫荆",
    "金港",
    "恒通",
    "天泽",
    "馨园",
    "悦城",
    "观澜",
    "九龙",
    "栖云",
    "燕归",
    "石榴",
    "玉兰",
    "芳草",
)
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红文斌辉玲鹏宇浩晨欣怡雪婷俊峰"


def _street_character(code: str) -> str:
    geo = QIXIA_STREETS.get(code)
    if geo is not None:
        return geo[2]
    suffix = int(code[6:9])
    if suffix < 100:
        return "urban"
    if suffix < 200:
        return "suburban"
    if suffix < 400:
        return "rural"
    return "zone"


def community_kind(community: Division, street_character: str) -> str:
    name = community.name
    suffix = int(community.code[9:12])
    if "虚拟社区" in name or suffix >= 400:
        return "closed" if any(w in name for w in ("监狱", "物流", "工业园")) else "zone"
    if 200 <= suffix < 400 or name.endswith(("村委会", "村民委员会")):
        return "village"
    kind = STREET_COMMUNITY_KIND[street_character]
    short = community_short_name(name)
    if kind in ("dense", "urban") and "村" in short and "新村" not in short:
        return "resettled"  # a village turned into estates (安置房)
    return kind


# --- the affine metric frame and power diagrams --------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """An affine map from lon/lat to metres around a point (straight lines stay straight)."""

    lon0: float
    lat0: float
    mx: float
    my: float

    @classmethod
    def around(cls, geom: BaseGeometry) -> Frame:
        minx, miny, maxx, maxy = geom.bounds
        lon0, lat0 = (minx + maxx) / 2.0, (miny + maxy) / 2.0
        a, e2 = 6378137.0, 6.69437999014e-3
        phi = math.radians(lat0)
        w = math.sqrt(1.0 - e2 * math.sin(phi) ** 2)
        mx = math.pi / 180.0 * a * math.cos(phi) / w
        my = math.pi / 180.0 * a * (1.0 - e2) / w**3
        return cls(lon0, lat0, mx, my)

    def to_xy(self, geom: BaseGeometry) -> BaseGeometry:
        return shapely.transform(geom, self._xy)

    def to_lonlat(self, geom: BaseGeometry) -> BaseGeometry:
        return shapely.transform(geom, self._lonlat)

    def _xy(self, c: np.ndarray) -> np.ndarray:
        return np.column_stack([(c[:, 0] - self.lon0) * self.mx, (c[:, 1] - self.lat0) * self.my])

    def _lonlat(self, c: np.ndarray) -> np.ndarray:
        return np.column_stack([c[:, 0] / self.mx + self.lon0, c[:, 1] / self.my + self.lat0])

    def points_xy(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        return np.column_stack([(lon - self.lon0) * self.mx, (lat - self.lat0) * self.my])


Cell = tuple[list[tuple[float, float]], list[int]]


def power_cells(
    sites: np.ndarray, weights: np.ndarray, box: tuple[float, float, float, float]
) -> list[Cell]:
    """Each site's power cell inside ``box``: its corners and, per edge, the neighbour it faces.

    Site i owns the points x with |x - p_i|² - w_i <= |x - p_j|² - w_j for every j; the edge
    tags are the index j of the neighbour across the edge, or -1 on the box.
    """
    minx, miny, maxx, maxy = box
    start = [(minx, miny), (maxx, miny), (maxx, maxy), (minx, maxy)]
    sq = (sites**2).sum(axis=1)
    cells: list[Cell] = []
    n = len(sites)
    for i in range(n):
        verts = list(start)
        tags = [-1, -1, -1, -1]
        pi = sites[i]
        for j in range(n):
            if j == i or not verts:
                continue
            # 2 (p_j - p_i) . x <= |p_j|² - |p_i|² - w_j + w_i
            ax = 2.0 * (sites[j, 0] - pi[0])
            ay = 2.0 * (sites[j, 1] - pi[1])
            b = sq[j] - sq[i] - weights[j] + weights[i]
            verts, tags = _clip(verts, tags, ax, ay, b, j)
        cells.append((verts, tags))
    return cells


def _clip(
    verts: list[tuple[float, float]], tags: list[int], ax: float, ay: float, b: float, tag: int
) -> tuple[list[tuple[float, float]], list[int]]:
    values = [ax * x + ay * y - b for x, y in verts]
    if all(v <= 0.0 for v in values):
        return verts, tags
    out: list[tuple[float, float]] = []
    out_tags: list[int] = []
    m = len(verts)
    for k in range(m):
        p, q = verts[k], verts[(k + 1) % m]
        fp, fq = values[k], values[(k + 1) % m]
        if fp <= 0.0:
            out.append(p)
            if fq > 0.0:
                t = fp / (fp - fq)
                out_tags.append(tags[k])
                out.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
                out_tags.append(tag)
            else:
                out_tags.append(tags[k])
        elif fq <= 0.0:
            t = fp / (fp - fq)
            out.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
            out_tags.append(tags[k])
    if len(out) < 3:
        return [], []
    return out, out_tags


def _box(geom: BaseGeometry, pad: float = 0.05) -> tuple[float, float, float, float]:
    minx, miny, maxx, maxy = geom.bounds
    d = pad * max(maxx - minx, maxy - miny) + 1.0
    return (minx - d, miny - d, maxx + d, maxy + d)


def _cell_polygons(cells: list[Cell]) -> np.ndarray:
    return np.array([Polygon(v) if len(v) >= 3 else Polygon() for v, _ in cells], dtype=object)


def fit_sites(
    region: BaseGeometry, sites: np.ndarray, targets: np.ndarray, *, rounds: int, lloyd: float
) -> tuple[np.ndarray, np.ndarray]:
    """Move the sites (Lloyd) and fit power weights so that cell ∩ region areas meet ``targets``.

    ``region`` and ``sites`` are in metres; ``targets`` are areas in m² summing to the region's
    area. Returns the new sites and weights.
    """
    sites = np.array(sites, dtype=float)
    n = len(sites)
    weights = np.zeros(n)
    if n < 2:
        return sites, weights
    shapely.prepare(region)
    box = _box(region)
    mean_target = float(targets.mean())
    for _ in range(rounds):
        cells = power_cells(sites, weights, box)
        clipped = shapely.intersection(_cell_polygons(cells), region)
        areas = shapely.area(clipped)
        # d(area_i)/d(w_i) = sum over neighbours j of (shared edge inside region) / (2 d_ij)
        lines, owners, dists = [], [], []
        for i, (verts, tags) in enumerate(cells):
            for k, j in enumerate(tags):
                if j < 0:
                    continue
                lines.append(LineString([verts[k], verts[(k + 1) % len(verts)]]))
                owners.append(i)
                dists.append(float(np.hypot(*(sites[i] - sites[j]))))
        derivative: np.ndarray = np.zeros(n)
        if lines:
            inside = shapely.length(shapely.intersection(np.array(lines, dtype=object), region))
            derivative = np.bincount(
                np.array(owners),
                weights=inside / (2.0 * np.maximum(np.array(dists), 1.0)),
                minlength=n,
            )
        step = (targets - areas) / np.maximum(derivative, 0.3)
        step = np.clip(step, -mean_target, mean_target)
        if lloyd > 0:
            centroids = shapely.centroid(clipped)
            for i in range(n):
                if areas[i] <= 0:
                    continue
                c = centroids[i]
                if not region.contains(c):
                    c = clipped[i].point_on_surface()
                sites[i] += lloyd * (np.array([c.x, c.y]) - sites[i])
        weights = weights + 0.7 * step
        weights -= weights.mean()
    return sites, weights


# --- tiling --------------------------------------------------------------------------------------


@dataclass
class Container:
    """A polygon (lon/lat) to tile with power cells of ``sites`` (metres, in ``frame``)."""

    polygon: Polygon
    sites: np.ndarray
    weights: np.ndarray


def tile(frame: Frame, containers: Sequence[Container]) -> list[list[Polygon]]:
    """Tile every container with its sites' cells: one Polygon per site, sharing edges exactly.

    All containers are noded together, so children of neighbouring containers share their
    vertices along the containers' common border too.
    """
    lines: list[BaseGeometry] = []
    for c in containers:
        lines.append(c.polygon.boundary)
        if len(c.sites) < 2:
            continue
        box = _box(frame.to_xy(c.polygon))
        cells = power_cells(c.sites, c.weights, box)
        polys = [frame.to_lonlat(p) for p in _cell_polygons(cells) if not p.is_empty]
        pieces = shapely.intersection(np.array(polys, dtype=object), c.polygon, grid_size=GRID)
        lines.extend(shapely.boundary(p) for p in pieces if not p.is_empty)
    noded = shapely.union_all(np.array(lines, dtype=object), grid_size=GRID)
    faces = np.array(shapely.get_parts(shapely.polygonize(shapely.get_parts(noded))), dtype=object)
    reps = shapely.point_on_surface(faces)
    rx, ry = shapely.get_x(reps), shapely.get_y(reps)
    owner = np.full(len(faces), -1)
    for index, c in enumerate(containers):
        inside = shapely.contains_xy(c.polygon, rx, ry) & (owner < 0)
        owner[inside] = index
    result: list[list[Polygon]] = []
    for index, c in enumerate(containers):
        mine = np.nonzero(owner == index)[0]
        n = len(c.sites)
        if n == 0:
            result.append([])
            continue
        if n == 1:
            result.append([_as_polygon(shapely.union_all(faces[mine], grid_size=GRID))])
            continue
        xy = frame.points_xy(rx[mine], ry[mine])
        power = ((xy[:, None, :] - c.sites[None, :, :]) ** 2).sum(axis=2) - c.weights[None, :]
        site_of = power.argmin(axis=1)
        groups = [shapely.union_all(faces[mine[site_of == s]], grid_size=GRID) for s in range(n)]
        result.append(merge_fragments(groups))
    return result


def _as_polygon(geom: BaseGeometry) -> Polygon:
    parts = [p for p in shapely.get_parts(geom) if isinstance(p, Polygon) and not p.is_empty]
    if not parts:
        return Polygon()
    return max(parts, key=lambda p: p.area)


def merge_fragments(geoms: list[BaseGeometry]) -> list[Polygon]:
    """Keep each geometry's largest piece; give every other piece to the neighbour it shares
    the longest edge with."""
    polys: list[BaseGeometry] = list(geoms)
    for _ in range(20):
        changed = False
        for k in range(len(polys)):
            parts = sorted(
                (
                    p
                    for p in shapely.get_parts(polys[k])
                    if isinstance(p, Polygon) and not p.is_empty
                ),
                key=lambda p: p.area,
                reverse=True,
            )
            if len(parts) <= 1:
                continue
            polys[k] = parts[0]
            for fragment in parts[1:]:
                best, best_length = -1, 0.0
                for j, other in enumerate(polys):
                    if j == k or other.is_empty or not fragment.intersects(other):
                        continue
                    shared = shapely.length(
                        shapely.intersection(fragment.boundary, other.boundary, grid_size=GRID)
                    )
                    if shared > best_length:
                        best, best_length = j, float(shared)
                target = best if best >= 0 else k
                polys[target] = shapely.union(polys[target], fragment, grid_size=GRID)
                changed = changed or best >= 0
        if not changed:
            break
    return [_single(p) for p in polys]


def _single(geom: BaseGeometry) -> Polygon:
    if isinstance(geom, Polygon):
        return geom
    parts = [p for p in shapely.get_parts(geom) if isinstance(p, Polygon) and not p.is_empty]
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return Polygon()
    joined = shapely.union_all(parts, grid_size=GRID)
    if isinstance(joined, Polygon):
        return joined
    # a piece with no neighbour to join (not seen with the demo data): keep the largest
    return max(parts, key=lambda p: p.area)


def _random_points_in(polygon: BaseGeometry, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` uniform random points inside ``polygon`` (same coordinates as the polygon)."""
    minx, miny, maxx, maxy = polygon.bounds
    shapely.prepare(polygon)
    found: list[np.ndarray] = []
    total = 0
    while total < count:
        batch = max(64, count * 4)
        x = rng.uniform(minx, maxx, batch)
        y = rng.uniform(miny, maxy, batch)
        ok = shapely.contains_xy(polygon, x, y)
        pts = np.column_stack([x[ok], y[ok]])
        found.append(pts)
        total += len(pts)
    return np.vstack(found)[:count]


# --- the plan ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedBuilding:
    community_code: str
    estate: str
    number: str
    address: str
    kind: str
    floors: int
    households: int
    lon: float
    lat: float


@dataclass
class DemoPlan:
    seed: int
    households: int
    district: Division
    streets: list[Division]
    communities: list[Division]
    outline: Polygon | MultiPolygon  # the repaired district outline
    outline_change_m2: float
    outline_change_pct: float | None
    tiled: Polygon  # the part of the outline the streets tile (its largest polygon)
    outline_problem: str = ""  # what was wrong with the outline as given
    polygons: dict[str, Polygon] = field(default_factory=dict)  # street/community code -> polygon
    kinds: dict[str, str] = field(default_factory=dict)  # community code -> kind
    community_households: dict[str, int] = field(default_factory=dict)
    buildings: list[PlannedBuilding] = field(default_factory=list)


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, *keys])


def _inside_or_nearest(polygon: BaseGeometry, x: float, y: float) -> tuple[float, float]:
    point = shapely.Point(x, y)
    if polygon.contains(point):
        return x, y
    # the nearest boundary point, nudged a little towards the polygon's inside
    near = nearest_points(polygon, point)[0]
    inner = polygon.point_on_surface()
    for t in (0.02, 0.05, 0.1, 0.3, 1.0):
        candidate = shapely.Point(near.x + t * (inner.x - near.x), near.y + t * (inner.y - near.y))
        if polygon.contains(candidate):
            return candidate.x, candidate.y
    return inner.x, inner.y


def demo_plan(
    *,
    households: int = DEFAULT_HOUSEHOLDS,
    seed: int = DEFAULT_SEED,
    divisions_path: Path = DIVISIONS_PATH,
    outline_path: Path = OUTLINE_PATH,
) -> DemoPlan:
    """The whole demo district in memory; the same arguments always give the same plan."""
    divisions = read_divisions(divisions_path)
    district = next(d for d in divisions if d.level == "district")
    streets = sorted((d for d in divisions if d.level == "street"), key=lambda d: d.code)
    communities = sorted((d for d in divisions if d.level == "community"), key=lambda d: d.code)
    raw_outline = read_outline(outline_path)
    outline, change_m2, change_pct = repair(raw_outline)
    tiled = max(shapely.get_parts(shapely.set_precision(outline, GRID)), key=lambda p: p.area)
    plan = DemoPlan(
        seed=seed,
        households=households,
        district=district,
        streets=streets,
        communities=communities,
        outline=outline,
        outline_change_m2=change_m2,
        outline_change_pct=change_pct,
        tiled=tiled,
        outline_problem=validity_problem(raw_outline) or "valid as given",
    )
    by_street: dict[str, list[Division]] = {s.code: [] for s in streets}
    for c in communities:
        by_street[c.parent_code].append(c)
    for street in streets:
        character = _street_character(street.code)
        for c in by_street[street.code]:
            plan.kinds[c.code] = community_kind(c, character)
    _plan_polygons(plan, by_street)
    _plan_households(plan)
    _plan_buildings(plan, by_street)
    return plan


def _plan_polygons(plan: DemoPlan, by_street: dict[str, list[Division]]) -> None:
    frame = Frame.around(plan.tiled)
    district_xy = frame.to_xy(plan.tiled)
    streets = plan.streets
    rng = _rng(plan.seed, int(plan.district.code))
    # streets: seeds at their rough real places, sized by their communities
    sites = []
    for street in streets:
        geo = QIXIA_STREETS.get(street.code)
        if geo is not None:
            x, y = frame.points_xy(np.array([geo[0]]), np.array([geo[1]]))[0]
        else:
            x, y = _random_points_in(district_xy, 1, rng)[0]
        sites.append(_inside_or_nearest(district_xy, float(x), float(y)))
    anchors = np.array(sites)
    weights = np.array(
        [
            sum(KINDS[plan.kinds[c.code]].area_km2 for c in by_street[s.code])
            * (QIXIA_STREETS[s.code][3] if s.code in QIXIA_STREETS else 1.0)
            for s in streets
        ]
    )
    targets = weights / weights.sum() * district_xy.area
    street_sites, street_weights = fit_sites(district_xy, anchors, targets, rounds=30, lloyd=0.1)
    street_polys = tile(frame, [Container(plan.tiled, street_sites, street_weights)])[0]
    if any(p.is_empty for p in street_polys):  # a power weight squeezed a cell out: plain Voronoi
        street_polys = tile(frame, [Container(plan.tiled, street_sites, np.zeros(len(streets)))])[0]
    # communities: seeds spread inside each street, town communities near the street's centre
    containers = []
    for index, street in enumerate(streets):
        members = by_street[street.code]
        polygon = street_polys[index]
        polygon_xy = frame.to_xy(polygon)
        local = _rng(plan.seed, int(street.code))
        n = len(members)
        if n < 2:
            containers.append(Container(polygon, np.zeros((n, 2)), np.zeros(n)))
            continue
        start = _random_points_in(polygon_xy, n, local)
        even = np.full(n, polygon_xy.area / n)
        start, _ = fit_sites(polygon_xy, start, even, rounds=4, lloyd=0.9)
        centre = _inside_or_nearest(polygon_xy, *anchors[index])
        order = np.argsort(
            np.hypot(start[:, 0] - centre[0], start[:, 1] - centre[1]), kind="stable"
        )
        ranked = sorted(members, key=lambda c: (plan.kinds[c.code] == "village", c.code))
        site_of = {c.code: order[i] for i, c in enumerate(ranked)}
        c_sites = np.array([start[site_of[c.code]] for c in members])
        c_weights = np.array(
            [
                KINDS[plan.kinds[c.code]].area_km2 * float(np.exp(local.normal(0.0, 0.25)))
                for c in members
            ]
        )
        c_targets = c_weights / c_weights.sum() * polygon_xy.area
        c_sites, c_power = fit_sites(polygon_xy, c_sites, c_targets, rounds=15, lloyd=0.5)
        containers.append(Container(polygon, c_sites, c_power))
    tiles = tile(frame, containers)
    for index, street in enumerate(streets):
        members = by_street[street.code]
        pieces = tiles[index]
        if any(p.is_empty for p in pieces):
            box = containers[index]
            pieces = tile(frame, [Container(box.polygon, box.sites, np.zeros(len(box.sites)))])[0]
        for member, piece in zip(members, pieces, strict=True):
            plan.polygons[member.code] = piece
        union = _single(shapely.union_all(pieces, grid_size=GRID)) if pieces else Polygon()
        plan.polygons[street.code] = containers[index].polygon if union.is_empty else union


def _plan_households(plan: DemoPlan) -> None:
    """Households per community: area x the density of its kind, scaled to the total asked."""
    raw: dict[str, float] = {}
    for c in plan.communities:
        kind = KINDS[plan.kinds[c.code]]
        area_km2 = geodesic_area(plan.polygons[c.code]) / 1e6
        noise = float(np.exp(_rng(plan.seed, int(c.code), 1).normal(0.0, 0.35)))
        raw[c.code] = area_km2 * kind.density * noise
    total = plan.households
    fixed: dict[str, int] = {}
    if DEMO_COMMUNITY in raw and raw[DEMO_COMMUNITY] > 0:
        share = round(raw[DEMO_COMMUNITY] / sum(raw.values()) * total)
        fixed[DEMO_COMMUNITY] = min(
            total, max(share, min(DEMO_COMMUNITY_MIN_HOUSEHOLDS, total // 4))
        )
    rest = {code: value for code, value in raw.items() if code not in fixed}
    counts = _apportion(rest, total - sum(fixed.values()))
    counts.update(fixed)
    plan.community_households = {c.code: counts.get(c.code, 0) for c in plan.communities}


def _apportion(weights: dict[str, float], total: int) -> dict[str, int]:
    """Integers proportional to ``weights`` that sum to ``total`` (largest remainders)."""
    weight_sum = sum(weights.values())
    if total <= 0 or weight_sum <= 0:
        return dict.fromkeys(weights, 0)
    exact = {code: w / weight_sum * total for code, w in weights.items()}
    counts = {code: math.floor(v) for code, v in exact.items()}
    short = total - sum(counts.values())
    for code in sorted(exact, key=lambda k: (counts[k] - exact[k], k))[:short]:
        counts[code] += 1
    return counts


_CITY = {"3201": "南京市"}
_ORDINALS = "二三四五六七八九十"
_NAMED_ESTATE_ENDINGS = ("花园", "新村", "家园", "佳园", "人家", "园", "苑")


def _plan_buildings(plan: DemoPlan, by_street: dict[str, list[Division]]) -> None:
    frame = Frame.around(plan.tiled)
    used_names: set[str] = set()
    prefix = _CITY.get(plan.district.code[:4], "") + plan.district.name
    street_of = {c.code: s for s in plan.streets for c in by_street[s.code]}
    for c in plan.communities:
        count = plan.community_households[c.code]
        kind = KINDS[plan.kinds[c.code]]
        if count <= 0 or kind.name == "closed":
            continue
        street = street_of[c.code]
        # villages: the estate is the village group (兴隆村3组), which names the village already
        community_part = "" if kind.name in ("zone", "village") else community_short_name(c.name)
        where = f"{prefix}{street.name}{community_part}"
        plan.buildings.extend(
            _community_buildings(
                plan, c, kind, count, frame, where, used_names, _rng(plan.seed, int(c.code), 2)
            )
        )


def _community_buildings(
    plan: DemoPlan,
    community: Division,
    kind: Kind,
    count: int,
    frame: Frame,
    where: str,
    used_names: set[str],
    rng: np.random.Generator,
) -> list[PlannedBuilding]:
    polygon = plan.polygons[community.code]
    shapely.prepare(polygon)
    village = kind.name == "village"
    buildings: list[PlannedBuilding] = []
    centres: list[tuple[float, float]] = []
    remaining = count
    estate_number = 0
    while remaining > 0:
        estate_number += 1
        size = int(rng.integers(kind.estate_buildings[0], kind.estate_buildings[1] + 1))
        homes: list[tuple[int, int]] = []  # (floors, households)
        while len(homes) < size and remaining > 0:
            if village:
                floors = int(rng.choice(kind.floors))
                households = int(rng.choice([1, 1, 2, 2, 2, 3]))
            else:
                floors = int(rng.choice(kind.floors))
                units = int(rng.integers(kind.units[0], kind.units[1] + 1))
                per_floor = int(rng.integers(kind.per_floor[0], kind.per_floor[1] + 1))
                households = floors * units * per_floor
            households = min(households, remaining)
            remaining -= households
            homes.append((floors, households))
        if village:
            estate = f"{community_short_name(community.name)}{estate_number}组"
        else:
            estate = _estate_name(community, kind, estate_number, used_names, rng)
        used_names.add(estate)
        points = _estate_layout(polygon, frame, kind, len(homes), centres, rng)
        for number, ((floors, households), (lon, lat)) in enumerate(
            zip(homes, points, strict=True), 1
        ):
            label = f"{number}号" if village else f"{number}栋"
            mixed = not village and kind.name in ("dense", "urban", "town") and rng.random() < 0.1
            buildings.append(
                PlannedBuilding(
                    community_code=community.code,
                    estate=estate,
                    number=label,
                    address=f"{where}{estate}{label}",
                    kind="mixed" if mixed else "residential",
                    floors=floors,
                    households=households,
                    lon=lon,
                    lat=lat,
                )
            )
    return buildings


def _estate_name(
    community: Division, kind: Kind, number: int, used: set[str], rng: np.random.Generator
) -> str:
    if number == 1:
        own = community_short_name(community.name).removesuffix("社区")
        if own.endswith(_NAMED_ESTATE_ENDINGS) and own not in used:
            return own  # 金尧花园社区 has the estate 金尧花园
    for _ in range(40):
        name = str(rng.choice(_ESTATE_WORDS)) + str(rng.choice(kind.suffixes))
        if name not in used:
            return name
    base = str(rng.choice(_ESTATE_WORDS)) + str(rng.choice(kind.suffixes))
    for i, ordinal in enumerate(_ORDINALS):
        for name in (f"{base}{ordinal}期", f"{base}{i + 2}区"):
            if name not in used:
                return name
    return f"{base}{community.code[-3:]}{number}"


def _estate_layout(
    polygon: Polygon,
    frame: Frame,
    kind: Kind,
    count: int,
    centres: list[tuple[float, float]],
    rng: np.random.Generator,
) -> list[tuple[float, float]]:
    """Positions (lon, lat) for an estate's buildings: rows facing south, inside the community."""
    village = kind.name == "village"
    # the estate's centre: the best of a few random points, away from the other estates
    candidates = _random_points_in(polygon, 6, rng)
    if centres:
        known = np.array(centres)
        dx = (candidates[:, None, 0] - known[None, :, 0]) * frame.mx
        dy = (candidates[:, None, 1] - known[None, :, 1]) * frame.my
        best = int(np.argmax(np.hypot(dx, dy).min(axis=1)))
    else:
        best = 0
    cx, cy = float(candidates[best, 0]), float(candidates[best, 1])
    centres.append((cx, cy))
    spacing = kind.spacing_m
    cols = max(1, math.ceil(math.sqrt(count * 1.6)))
    rows = math.ceil(count / cols)
    i, j = np.meshgrid(np.arange(cols), np.arange(rows))
    ex = (i.ravel()[:count] - (cols - 1) / 2.0) * spacing
    ey = (j.ravel()[:count] - (rows - 1) / 2.0) * spacing * 1.4
    jitter = 0.35 if village else 0.08
    ex = ex + rng.normal(0.0, jitter * spacing, count)
    ey = ey + rng.normal(0.0, jitter * spacing, count)
    angle = float(rng.uniform(-0.3, 0.3))
    rx = ex * math.cos(angle) - ey * math.sin(angle)
    ry = ex * math.sin(angle) + ey * math.cos(angle)
    lon = cx + rx / frame.mx
    lat = cy + ry / frame.my
    # buildings that fall outside the community move to free spots nearer its inside
    radius = spacing * (max(cols, rows) + 2)
    for _ in range(8):
        outside = ~shapely.contains_xy(polygon, lon, lat)
        missing = int(outside.sum())
        if not missing:
            break
        radius *= 1.6
        r = radius * np.sqrt(rng.random(missing))
        t = rng.uniform(0.0, 2.0 * math.pi, missing)
        lon[outside] = cx + r * np.cos(t) / frame.mx
        lat[outside] = cy + r * np.sin(t) / frame.my
    outside = ~shapely.contains_xy(polygon, lon, lat)
    if outside.any():
        spare = _random_points_in(polygon, int(outside.sum()), rng)
        lon[outside] = spare[:, 0]
        lat[outside] = spare[:, 1]
    return [(round(float(x), 7), round(float(y), 7)) for x, y in zip(lon, lat, strict=True)]


# --- loading into the database -------------------------------------------------------------------

CITY_DEPARTMENTS: tuple[tuple[str, str, str], ...] = (
    # (code suffix, name ({district}: 栖霞区, {short}: 栖霞), unit kind)
    ("cgj", "{district}城市管理局", "city_department"),
    ("zjj", "{district}住房和城乡建设局", "city_department"),
    ("swj", "{district}水务局（市政设施）", "city_department"),
    ("scjgj", "{district}市场监督管理局", "city_department"),
    ("hbj", "{district}生态环境局", "city_department"),
    ("gdgs", "{short}供电公司", "utility"),
    ("rqgs", "{short}燃气服务中心", "utility"),
    ("wygs", "南京{short}物业管理有限公司", "property_company"),
)
#: username -> (role, where): "district", "street", "community", "grid1", "grid2" (the demo
#: community's first grid and a grid next to it), "unit:cgj" (a city department) or
#: "unit:community" (the demo community's committee); None for everywhere.
DEMO_USERS: tuple[tuple[str, str, str | None], ...] = (
    ("admin", "administrator", None),
    ("leader", "leader", "district"),
    ("intake", "intake_operator", "district"),
    ("shiftleader", "shift_leader", "district"),
    ("dispatcher", "dispatcher", "district"),
    ("handler", "unit_handler", "unit:cgj"),
    ("handler2", "unit_handler", "unit:community"),
    ("supervisor", "supervisor", "street"),
    ("gridleader", "grid_leader", "community"),
    ("gridworker", "grid_worker", "grid1"),
    ("gridworker2", "grid_worker", "grid2"),
    ("resident", "resident", "community"),
)


def grid_cut_arguments(plan: DemoPlan, code: str) -> dict[str, Any]:
    """How a community is cut: by households where people live, else (closed zones) by area."""
    has_homes = plan.community_households.get(code, 0) > 0
    if has_homes and plan.kinds[code] != "closed":
        return {"households_per_grid": HOUSEHOLDS_PER_GRID}
    return {"area_m2": EMPTY_COMMUNITY_GRID_M2}


def plan_grids(plan: DemoPlan) -> list[Polygon]:
    """The demo grids cut in memory, as ``demo_load`` cuts them (no database needed)."""
    from gridgov.geo.gridgen import cut_community

    homes: dict[str, list[PlannedBuilding]] = {}
    for b in plan.buildings:
        homes.setdefault(b.community_code, []).append(b)
    grids: list[Polygon] = []
    for c in plan.communities:
        buildings = homes.get(c.code, [])
        grids.extend(
            cut_community(
                plan.polygons[c.code],
                points=[(b.lon, b.lat) for b in buildings] or None,
                weights=[b.households for b in buildings] or None,
                **grid_cut_arguments(plan, c.code),
            )
        )
    return grids


@dataclass
class DemoResult:
    loaded: bool
    message: str
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)


def demo_loaded() -> int | None:
    """The seed of the demo in the database, or None when it holds none."""
    from gridgov.core.models import Stamp

    return Stamp.objects.filter(key=DEMO_STAMP).values_list("version", flat=True).first()


def unit_code(district_code: str, suffix: str) -> str:
    return f"{district_code}-{suffix}"


def demo_load(
    *,
    households: int = DEFAULT_HOUSEHOLDS,
    seed: int = DEFAULT_SEED,
    log: Callable[[str], None] | None = None,
) -> DemoResult:
    """Load the demo district (see the module docstring); a second call adds nothing."""
    from django.db import transaction

    from gridgov.core.errors import DomainError

    say = log or (lambda line: None)
    if not 1_000 <= households <= 2_000_000:
        raise DomainError(
            f"households must be 1,000 to 2,000,000 (the real district has about 350,000), "
            f"got {households:,}",
            detail={"households": households},
        )
    loaded = demo_loaded()
    if loaded is not None:
        return _already_loaded(loaded, say)
    started = time.monotonic()
    clock = [started]

    def step(number: int, text: str) -> None:
        now = time.monotonic()
        say(f"[{number}/8] {text} ({now - clock[0]:.1f} s)")
        clock[0] = now

    plan = demo_plan(households=households, seed=seed)
    step(
        1,
        f"planned {plan.district.name}: {len(plan.streets)} streets, "
        f"{len(plan.communities)} communities, {len(plan.buildings):,} buildings, "
        f"{sum(b.households for b in plan.buildings):,} households (seed {seed})",
    )
    with transaction.atomic():
        loaded = demo_loaded()  # again, now inside the writing transaction
        if loaded is not None:
            return _already_loaded(loaded, say)
        _refuse_if_occupied(plan)
        counts = _write(plan, step)
    seconds = time.monotonic() - started
    message = (
        f"demo loaded in {seconds:.1f} s: {counts['grids']:,} grids, {counts['buildings']:,} "
        f"buildings, {counts['households']:,} households, {counts['units']} units, "
        f"{counts['users']} accounts"
    )
    say(message)
    return DemoResult(loaded=True, message=message, seconds=seconds, counts=counts)


def _already_loaded(seed: int, say: Callable[[str], None]) -> DemoResult:
    message = f"the demo is already loaded (seed {seed}); nothing was added"
    say(message)
    return DemoResult(loaded=False, message=message)


def _refuse_if_occupied(plan: DemoPlan) -> None:
    from gridgov.accounts.models import User
    from gridgov.core.errors import Conflict
    from gridgov.geo.models import Level, Region

    grids = Region.objects.filter(level=Level.GRID, code__startswith=plan.district.code).count()
    if grids:
        raise Conflict(
            f"the database already has {grids} grids in {plan.district.code}; the demo loads "
            "into a district without grids (use a fresh database)",
            detail={"district": plan.district.code},
        )
    taken = sorted(
        User.objects.filter(username__in=[u for u, _, _ in DEMO_USERS]).values_list(
            "username", flat=True
        )
    )
    if taken:
        raise Conflict(
            f"the demo accounts {', '.join(taken)} exist already; use a fresh database",
            detail={"usernames": taken},
        )


def _write(plan: DemoPlan, step: Callable[[int, str], None]) -> dict[str, int]:
    from gridgov.core.errors import DomainError
    from gridgov.core.models import Stamp
    from gridgov.geo.actions import grids_generate, regions_import_divisions
    from gridgov.geo.geometry import region_fields_from_geometry
    from gridgov.geo.models import Level, Region
    from gridgov.registry.models import Building

    report = regions_import_divisions(path=DIVISIONS_PATH, district=plan.district.code)
    if not report.ok:
        raise DomainError("the demo divisions did not import: " + report.text())
    step(
        2,
        f"divisions: {report.added} added, {report.changed} changed, {report.unchanged} unchanged",
    )

    regions = {
        r.code: r
        for r in Region.objects.filter(code__startswith=plan.district.code).exclude(
            level=Level.GRID
        )
    }
    updated = []
    for code, geom in [(plan.district.code, plan.outline), *plan.polygons.items()]:
        region = regions[code]
        for name, value in region_fields_from_geometry(geom).items():
            setattr(region, name, value)
        updated.append(region)
    Region.objects.bulk_update(
        updated,
        [*region_fields_from_geometry(plan.tiled)],
        batch_size=500,
    )
    pieces = len(shapely.get_parts(plan.outline))
    left_out = geodesic_area(plan.outline) - geodesic_area(plan.tiled)
    change = (
        "the same area"
        if abs(plan.outline_change_m2) < 1.0
        else f"area {plan.outline_change_m2:+,.0f} m²"
    )
    step(
        3,
        f"polygons: the district outline ({plan.outline_problem}; repaired into {pieces} "
        f"polygons of {change}); {len(plan.streets)} streets "
        f"and {len(plan.communities)} communities tile its main polygon"
        + (
            f" ({pieces - 1} pieces that touch it at one point only, {left_out:,.0f} m², "
            "belong to no community)"
            if pieces > 1
            else ""
        ),
    )

    Building.objects.bulk_create(
        [
            Building(
                estate=b.estate,
                number=b.number,
                address=b.address,
                kind=b.kind,
                floors=b.floors,
                households=b.households,
                lon=b.lon,
                lat=b.lat,
                community_code=b.community_code,
            )
            for b in plan.buildings
        ],
        batch_size=2000,
    )
    households = sum(b.households for b in plan.buildings)
    step(4, f"buildings: {len(plan.buildings):,} with {households:,} households")

    grids = 0
    by_area = 0
    problems = 0
    for c in plan.communities:
        cut = grid_cut_arguments(plan, c.code)
        result = grids_generate(community=regions[c.code], **cut)
        by_area += "area_m2" in cut
        grids += len(result.grids)
        problems += len(result.problems)
    step(
        5,
        f"grids: {grids} ({HOUSEHOLDS_PER_GRID} households each; {by_area} communities without "
        f"buildings by area, {EMPTY_COMMUNITY_GRID_M2:,} m² each); {problems} check warnings",
    )

    units = _write_units(plan, regions)
    step(6, f"units: {len(units)} (street offices, community committees, departments)")

    users = _write_accounts(plan, regions, units)
    step(7, f"accounts: {len(users)}, password {DEMO_PASSWORD!r}")

    Stamp.objects.create(key=DEMO_STAMP, version=plan.seed)  # unique: a racing load fails
    step(8, "marked the database as holding the demo")
    return {
        "streets": len(plan.streets),
        "communities": len(plan.communities),
        "grids": grids,
        "buildings": len(plan.buildings),
        "households": households,
        "units": len(units),
        "users": len(users),
    }


def _write_units(plan: DemoPlan, regions: dict[str, Any]) -> dict[str, Any]:
    from gridgov.accounts.actions import unit_create
    from gridgov.accounts.models import UnitKind
    from gridgov.geo.models import Level, Region

    district = regions[plan.district.code]
    prefix = plan.district.name
    units: dict[str, Any] = {}
    short = prefix.removesuffix("区")
    for suffix, template, kind in CITY_DEPARTMENTS:
        served = [district]
        if kind == UnitKind.PROPERTY_COMPANY:
            # a property company serves the estates of a few communities, not the district
            demo_street = DEMO_COMMUNITY[:9]
            served = [regions[c.code] for c in plan.communities if c.parent_code == demo_street][:4]
        units[suffix] = unit_create(
            code=unit_code(plan.district.code, suffix),
            name=template.format(district=prefix, short=short),
            kind=kind,
            regions=served,
        )
    for street in plan.streets:
        office = "管理委员会" if int(street.code[6:9]) >= 400 else "办事处"
        units[street.code] = unit_create(
            code=unit_code(plan.district.code, f"street-{street.code}"),
            name=f"{street.name}{office}",
            kind=UnitKind.STREET_OFFICE,
            regions=[regions[street.code]],
        )
    for c in plan.communities:
        name = c.name if c.name.endswith("会") else f"{c.name}工作站"
        units[c.code] = unit_create(
            code=unit_code(plan.district.code, f"community-{c.code}"),
            name=name,
            kind=UnitKind.COMMUNITY_COMMITTEE,
            regions=[regions[c.code]],
        )
    # who answers for a region: the street office for a street, the committee for a community
    # and for each of its grids
    for street in plan.streets:
        Region.objects.filter(pk=regions[street.code].pk).update(
            responsible_unit=units[street.code]
        )
    for c in plan.communities:
        Region.objects.filter(
            code__startswith=c.code, level__in=[Level.COMMUNITY, Level.GRID]
        ).update(responsible_unit=units[c.code])
    return units


def _person(seed: int, username: str) -> tuple[str, str]:
    """A deterministic Chinese display name and a 139 mobile number for a demo account."""
    rng = np.random.default_rng([seed, *username.encode("utf-8")])
    surname = _SURNAMES[int(rng.integers(len(_SURNAMES)))]
    given = "".join(_GIVEN[int(rng.integers(len(_GIVEN)))] for _ in range(int(rng.integers(1, 3))))
    phone = "139" + "".join(str(int(d)) for d in rng.integers(0, 10, 8))
    return surname + given, phone


def _demo_grids(community_code: str) -> tuple[Any, Any]:
    """The demo community's first grid and the first grid sharing an edge with it."""
    from gridgov.geo.models import Level, Region

    grids = list(
        Region.objects.filter(level=Level.GRID, parent__code=community_code).order_by("code")
    )
    first = grids[0]
    first_shape = first.shape()
    for other in grids[1:]:
        shared = shapely.length(
            shapely.intersection(first_shape.boundary, other.shape().boundary, grid_size=GRID)
        )
        if shared > 0:
            return first, other
    return first, grids[1] if len(grids) > 1 else grids[0]


def _write_accounts(plan: DemoPlan, regions: dict[str, Any], units: dict[str, Any]) -> list[Any]:
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.password_validation import validate_password

    from gridgov.accounts.actions import role_assign, user_create

    grid1, grid2 = _demo_grids(DEMO_COMMUNITY)
    hashed = make_password(DEMO_PASSWORD)  # hashed once: a strong hash takes a while
    places = {
        "district": regions[plan.district.code],
        "street": regions[DEMO_COMMUNITY[:9]],
        "community": regions[DEMO_COMMUNITY],
        "grid1": grid1,
        "grid2": grid2,
    }
    users = []
    for username, role, where in DEMO_USERS:
        display_name, phone = _person(plan.seed, username)
        user = user_create(
            username=username, password=None, display_name=display_name, work_phone=phone
        )
        validate_password(DEMO_PASSWORD, user)
        user.password = hashed
        user.is_staff = user.is_superuser = role == "administrator"
        user.save(update_fields=["password", "is_staff", "is_superuser"])
        if where is None:
            role_assign(user=user, role=role)
        elif where.startswith("unit:"):
            key = where.removeprefix("unit:")
            role_assign(
                user=user, role=role, unit=units[DEMO_COMMUNITY if key == "community" else key]
            )
        else:
            role_assign(user=user, role=role, region=places[where])
        users.append(user)
    return users


def demo_accounts() -> list[dict[str, str]]:
    """The demo logins, one row per role assignment, read from the database.

    Keys: username, name (display name), role, where (a readable region or unit), region
    (code or ""), unit (code or ""), password.
    """
    from gridgov.accounts.models import RoleAssignment, User

    names = [u for u, _, _ in DEMO_USERS]
    users = {u.username: u for u in User.objects.filter(username__in=names)}
    assignments: dict[int, list[Any]] = {}
    for a in RoleAssignment.objects.filter(user__in=users.values()).select_related(
        "region__parent", "unit"
    ):
        assignments.setdefault(a.user_id, []).append(a)
    rows = []
    for username in names:
        user = users.get(username)
        if user is None:
            continue
        for a in assignments.get(user.pk, []) or [None]:
            if a is None:
                role, where = "", ""
            elif a.unit is not None:
                role, where = a.role, f"{a.unit.name} ({a.unit.code})"
            elif a.region is not None:
                role, where = a.role, f"{a.region.code} {_region_label(a.region)}"
            else:
                role, where = a.role, "everywhere"
            rows.append(
                {
                    "username": username,
                    "name": user.display_name,
                    "role": role,
                    "where": where,
                    "region": a.region.code if a is not None and a.region is not None else "",
                    "unit": a.unit.code if a is not None and a.unit is not None else "",
                    "password": DEMO_PASSWORD,
                }
            )
    return rows


def _region_label(region: Any) -> str:
    if region.level == "grid" and region.parent is not None:
        return f"{region.parent.name} {region.name}"
    return str(region.name)


def accounts_table(rows: list[dict[str, str]]) -> str:
    """The demo logins as an aligned text table."""
    if not rows:
        return "no demo accounts (run `gridgov demo load`)"
    headers = {"username": "username", "name": "name", "role": "role", "where": "where"}

    def width(text: str) -> int:  # CJK characters take two columns in a terminal
        return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)

    cols = list(headers)
    widths = {k: max(width(headers[k]), *(width(r[k]) for r in rows)) for k in cols}

    def line(values: dict[str, str]) -> str:
        cells = (values[k] + " " * (widths[k] - width(values[k])) for k in cols)
        return "  ".join(cells).rstrip()

    out = [line(headers), line({k: "-" * widths[k] for k in cols})]
    out.extend(line(r) for r in rows)
    out.append(f"password for every account: {DEMO_PASSWORD}")
    return "\n".join(out)
