"""A fast in-memory point → polygon index for unit grids (pure Python + numpy + shapely).

``GridIndex`` answers "which grid contains this point?" for a fixed list of polygons in
WGS-84 longitude/latitude degrees. It is built for a tessellation of small, non-overlapping
unit grids, but it is exact for any polygons: holes, multipolygons, concave shapes, gaps
between polygons and points outside everything. Where polygons overlap, the lowest index wins.

The method
----------
A uniform raster of square cells (side ``h`` degrees) is laid over the bounds of all
polygons. The origin is shifted by an irrational fraction of a cell so that cell centres
do not fall on the straight, axis-aligned edges that hand-drawn and generated data are full
of. All geometry inside the index is done in *cell units*: ``(lon - x0) / h``,
``(lat - y0) / h``; points and vertices go through the same transform, so they stay
consistent with each other.

1. **Boundary cells.** Every polygon edge is walked along its major axis, slab by slab, and
   marks each cell it touches (a cell grown by a tiny margin, so that rounding when a point
   is binned can never put it beyond an edge that the cell does not know about). This gives,
   per cell, its edges (with the polygon of each) and its *candidates*: the polygons that
   have an edge in it, sorted.
2. **Scan-line fill.** For every cell row, the crossings of each polygon's rings with the
   horizontal line through the row's cell centres are computed (half-open rule
   ``ymin <= y < ymax``); sorted per (polygon, row), consecutive pairs of crossings bound
   the runs of cell centres inside the polygon (even-odd rule, so holes and multipolygons
   need nothing special). This gives, for every cell, the polygons that contain its centre.
3. **Cells without edges** ("interior" cells) lie wholly inside their centre's polygon (or
   wholly outside everything): their answer is stored directly in ``owner``.
4. **Boundary cells** keep, for each candidate polygon ``q``, whether the cell's reference
   point ``c`` (normally its centre) lies inside ``q``, plus the lowest polygon containing
   the whole cell without an edge in it (``base``; only non-trivial when polygons overlap).
   A point ``p`` in the cell is inside ``q`` exactly when ``c`` is inside ``q`` XOR the
   segment ``c → p`` crosses an odd number of ``q``'s edges. The segment stays within the
   cell, so only the cell's own edges can be crossed. The crossing test uses orientation
   signs with a half-open rule (a vertex exactly on the line ``c p`` counts as lying on its
   negative side), which is the classic ray-casting rule turned to an arbitrary direction,
   so a segment through a vertex is counted consistently.

Storage. ``owner`` holds one int32 per cell: the polygon, -1, or for a boundary cell the
offset of its *record* in one flat array of 4-byte words: header, candidates, then every edge
as (flags, ax, ay, bx, by) relative to the reference point. A look-up thus touches one owner
word and one short run of memory (see ``_pack_boundary_cells``). The edge coordinates are
clipped to the 3x3 cells around the cell (in a canonical direction, so the two copies of an
edge shared by neighbours stay identical), which keeps them within a few cell widths of 0;
for cells up to ``FLOAT32_MAX_CELL`` (0.001°, ~100 m) they are float32, which moves an edge
by at most ~2e-7 cells (2e-10°, 20 µm), otherwise float64. All crossing tests run on these
stored values, so they are consistent with each other.

The reference point must not lie (numerically) on the line of one of its cell's edges, or
the fill and the crossing test could disagree. The build checks every boundary cell; the
rare cell whose centre is within ``2e-6`` cells of such a line gets another reference point
inside the cell, as far as possible from all of them, and its inside flags are recomputed by
ray casting.

``locate`` runs this in pure Python (float arithmetic and memoryview indexing only);
``locate_many`` runs the same arithmetic vectorised with numpy, chunk by chunk. Both use the
same floating-point operations in the same order, so they agree bit for bit.

``nearest`` (for points outside every polygon) is not on the hot path: it uses a shapely
``STRtree`` over longitude-scaled geometries to find the nearest polygon and then measures
the geodesic distance on the WGS-84 ellipsoid with ``pyproj.Geod``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

__all__ = ["GridIndex"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
LocalArray = npt.NDArray[np.floating[Any]]

#: Default number of cells across a polygon of median size (sqrt of its area).
CELLS_PER_POLYGON = 10.0
#: The raster never has more cells than this, whatever the cell size asked for.
MAX_CELLS = 24_000_000
#: Points handled per numpy chunk in ``locate_many`` (bounds the temporary memory).
CHUNK = 1 << 16
#: Margin (cell units) by which a cell is grown when deciding which edges touch it.
_MARGIN = 1e-6
#: A reference point closer than this (cell units) to the line of an edge of its cell moves.
_REF_TOLERANCE = 2e-6
#: Cells up to this size (degrees) keep their edges in float32 (the edges then move by at most
#: ~2e-7 cells, 2e-10° = 20 µm); larger cells keep them in float64.
FLOAT32_MAX_CELL = 1e-3
#: Irrational fractions of a cell by which the raster origin is shifted.
_ORIGIN_SHIFT = (0.6180339887498949, 0.41421356237309515)


def _reference_points(count: int = 32) -> tuple[tuple[float, float], ...]:
    """Candidate reference points of a cell, in cell units from its lower-left corner.

    The first is the centre; the others spiral around it at the golden angle, between 0.12
    and 0.42 cells from the centre, so some of them are always far from any edge.
    """
    points = [(0.5, 0.5)]
    for k in range(1, count):
        r = 0.12 + 0.3 * ((k * 0.6180339887498949) % 1.0)
        angle = 2.399963229728653 * k
        points.append((0.5 + r * math.cos(angle), 0.5 + r * math.sin(angle)))
    return tuple(points)


#: Reference points of a boundary cell (index = the cell's ``refcode``); 0 = the centre.
_REF_POINTS = _reference_points()
_REF_X = np.array([p[0] for p in _REF_POINTS])
_REF_Y = np.array([p[1] for p in _REF_POINTS])
_NO_POLYGON = np.iinfo(np.int32).max
_POLYGONAL = (3, 6)  # shapely type ids of Polygon and MultiPolygon


def _ragged(counts: IntArray) -> tuple[IntArray, IntArray]:
    """For groups of the given sizes, return (group of each item, rank of the item in it)."""
    total = int(counts.sum())
    group = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    starts = np.cumsum(counts) - counts
    rank = np.arange(total, dtype=np.int64) - starts[group]
    return group, rank


def _edge_slabs(
    ua: FloatArray,
    va: FloatArray,
    ub: FloatArray,
    vb: FloatArray,
    n_major: int,
    n_minor: int,
) -> tuple[IntArray, IntArray, IntArray]:
    """Cells touched by edges whose major axis is ``v`` (``|dv| >= |du|``).

    Returns ``(edge, major index, minor index)`` per touched cell. Each edge is cut into the
    slabs ``[k - m, k + 1 + m]`` of the major axis it spans; within a slab its extent along
    the minor axis follows from the slope ``du/dv`` (at most 1 in magnitude, so this is well
    conditioned), and every cell of that extent, grown by the margin ``m``, is touched.
    """
    m = _MARGIN
    vlo = np.minimum(va, vb)
    vhi = np.maximum(va, vb)
    k0 = np.clip(np.floor(vlo - m), 0, n_major - 1).astype(np.int64)
    k1 = np.clip(np.floor(vhi + m), 0, n_major - 1).astype(np.int64)
    edge, rank = _ragged(k1 - k0 + 1)
    k = k0[edge] + rank
    s0 = np.maximum(vlo[edge], k - m)
    s1 = np.minimum(vhi[edge], k + 1 + m)
    eua, eva, eub, evb = ua[edge], va[edge], ub[edge], vb[edge]
    slope = (eub - eua) / (evb - eva)
    x0 = eua + (s0 - eva) * slope
    x1 = eua + (s1 - eva) * slope
    ulo = np.minimum(eua, eub)
    uhi = np.maximum(eua, eub)
    lo = np.clip(np.minimum(x0, x1), ulo, uhi)
    hi = np.clip(np.maximum(x0, x1), ulo, uhi)
    j0 = np.clip(np.floor(lo - m), 0, n_minor - 1).astype(np.int64)
    j1 = np.clip(np.floor(hi + m), 0, n_minor - 1).astype(np.int64)
    piece, rank2 = _ragged(j1 - j0 + 1)
    return edge[piece], k[piece], j0[piece] + rank2


class GridIndex:
    """Point → polygon index over a fixed list of polygons (see the module docstring).

    Build it with :meth:`GridIndex.build`; the instance is immutable and thread-safe.
    """

    def __init__(self, polygons: Sequence[BaseGeometry]) -> None:
        self._polygons: list[BaseGeometry] = list(polygons)
        self._n = len(self._polygons)
        # Raster geometry: a point (lon, lat) is at ((lon - x0) * inv, (lat - y0) * inv) in
        # cell units; cell (col, row) = the integer parts.
        self.cell_size = 1.0
        self._x0 = 0.0
        self._y0 = 0.0
        self._inv = 1.0
        self._nx = 0
        self._ny = 0
        # owner[row * nx + col] >= 0: that polygon; -1: none; <= -2: a boundary cell, whose
        # record starts at word -2 - owner of `blob` (see _pack_boundary_cells for the layout).
        self._owner = np.zeros(0, dtype=np.int32)
        self._blob = np.zeros(0, dtype=np.int32)
        self._wf = 1  # words per edge coordinate: 1 (float32) or 2 (float64)
        self._n_edges = 0
        self._n_entries = 0
        self._nb = 0
        self._moved = 0
        self._nearest_state: tuple[Any, Any, float] | None = None
        self._bind_views()

    # ------------------------------------------------------------------ building

    @classmethod
    def build(
        cls, polygons: Sequence[BaseGeometry], *, cell_size: float | None = None
    ) -> GridIndex:
        """Index ``polygons`` (shapely Polygon/MultiPolygon in lon/lat degrees).

        ``cell_size`` is the raster cell side in degrees; by default it is a tenth of the
        median polygon's width (the square root of its area), enlarged if needed so the
        raster stays below ``MAX_CELLS`` cells. Empty geometries are allowed (never found).
        """
        index = cls(polygons)
        geoms = np.asarray(index._polygons, dtype=object)
        if len(geoms):
            type_ids = shapely.get_type_id(geoms)
            bad = ~np.isin(type_ids, _POLYGONAL) & ~shapely.is_empty(geoms)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise TypeError(
                    f"polygon {i} is a {geoms[i].geom_type}; only Polygon and MultiPolygon "
                    "can be indexed"
                )
        if cell_size is not None and not (math.isfinite(cell_size) and cell_size > 0):
            raise ValueError(f"cell_size must be a positive number of degrees, not {cell_size}")
        ax, ay, bx, by, epoly = _ring_edges(geoms)
        if len(ax):
            index._build(geoms, ax, ay, bx, by, epoly, cell_size)
        return index

    def _build(
        self,
        geoms: npt.NDArray[np.object_],
        ax: FloatArray,
        ay: FloatArray,
        bx: FloatArray,
        by: FloatArray,
        epoly: npt.NDArray[np.int32],
        cell_size: float | None,
    ) -> None:
        minx = float(min(ax.min(), bx.min()))
        maxx = float(max(ax.max(), bx.max()))
        miny = float(min(ay.min(), by.min()))
        maxy = float(max(ay.max(), by.max()))
        width = max(maxx - minx, 1e-12)
        height = max(maxy - miny, 1e-12)
        h = cell_size if cell_size is not None else _default_cell_size(geoms, width, height)
        # never more than MAX_CELLS cells (+2 for the shifted origin and the far edge)
        while (width / h + 2) * (height / h + 2) > MAX_CELLS:
            h *= 1.25
        inv = 1.0 / h
        x0 = minx - _ORIGIN_SHIFT[0] * h
        y0 = miny - _ORIGIN_SHIFT[1] * h
        nx = int((maxx - x0) * inv) + 2
        ny = int((maxy - y0) * inv) + 2

        # All geometry from here on is in cell units.
        eax = (ax - x0) * inv
        eay = (ay - y0) * inv
        ebx = (bx - x0) * inv
        eby = (by - y0) * inv
        # endpoints a rounding apart in degrees may coincide in cell units: drop such edges
        proper = (eax != ebx) | (eay != eby)
        if not proper.all():
            eax, eay, ebx, eby = eax[proper], eay[proper], ebx[proper], eby[proper]
            epoly = epoly[proper]
            if not len(eax):  # nothing but specks: an empty index
                return
        self.cell_size, self._inv, self._x0, self._y0, self._nx, self._ny = h, inv, x0, y0, nx, ny
        n_edges = self._n_edges = len(eax)

        # 1. boundary cells: entries (cell, edge), sorted by cell, then polygon, then edge
        ymajor = np.abs(eby - eay) >= np.abs(ebx - eax)
        yi = np.flatnonzero(ymajor)
        xi = np.flatnonzero(~ymajor)
        e1, row1, col1 = _edge_slabs(eax[yi], eay[yi], ebx[yi], eby[yi], ny, nx)
        e2, col2, row2 = _edge_slabs(eay[xi], eax[xi], eby[xi], ebx[xi], nx, ny)
        key = np.concatenate(
            [(row1 * nx + col1) * n_edges + yi[e1], (row2 * nx + col2) * n_edges + xi[e2]]
        )
        del e1, row1, col1, e2, col2, row2
        key.sort()
        ent_cell = key // n_edges
        ent_edge = key - ent_cell * n_edges
        del key
        n_ent = len(ent_cell)
        new_cell = np.ones(n_ent, dtype=np.bool_)
        new_cell[1:] = ent_cell[1:] != ent_cell[:-1]
        bcells = ent_cell[new_cell]
        nb = len(bcells)
        ent_b = np.cumsum(new_cell) - 1
        ent_start = np.flatnonzero(new_cell)
        ent_poly = epoly[ent_edge]
        new_cand = new_cell
        new_cand[1:] |= ent_poly[1:] != ent_poly[:-1]
        cand_of_ent = np.cumsum(new_cand) - 1
        cand_b = ent_b[new_cand]
        cand_poly = ent_poly[new_cand].astype(np.int64)
        del new_cand, ent_poly, ent_cell
        cand_start = np.flatnonzero(np.r_[True, cand_b[1:] != cand_b[:-1]])
        ent_loc = cand_of_ent - cand_start[ent_b]
        del cand_of_ent

        # 2. + 3. scan-line fill of the cell centres; interior cells get their owner
        bmap = np.full(nx * ny, -1, dtype=np.int32)
        bmap[bcells] = np.arange(nb, dtype=np.int32)
        owner = np.full(nx * ny, _NO_POLYGON, dtype=np.int32)
        pair_b, pair_poly = _fill(owner, bmap, eax, eay, ebx, eby, epoly, nx, ny)
        del bmap
        owner[owner == _NO_POLYGON] = -1

        # 4. boundary cells: does each candidate contain the centre; the base polygon
        n_poly = max(self._n, 1)
        cand_key = cand_b * n_poly + cand_poly
        pair_key = pair_b * n_poly + pair_poly
        pos = np.minimum(np.searchsorted(cand_key, pair_key), len(cand_key) - 1)
        hit = cand_key[pos] == pair_key
        cand_flag = np.zeros(len(cand_key), dtype=np.bool_)
        cand_flag[pos[hit]] = True
        base = np.full(nb, _NO_POLYGON, dtype=np.int32)
        np.minimum.at(base, pair_b[~hit], pair_poly[~hit])
        base[base == _NO_POLYGON] = -1
        del cand_key, pair_key, pos, hit, pair_b, pair_poly, cand_b

        # 5. the edges of each boundary cell, local to its reference point (the centre)
        ent_row = (bcells // nx)[ent_b]
        ent_col = (bcells - (bcells // nx) * nx)[ent_b]
        edges = (eax[ent_edge], eay[ent_edge], ebx[ent_edge], eby[ent_edge])
        coord_type = np.float32 if h <= FLOAT32_MAX_CELL else np.float64
        local = _local_edges(*edges, ent_col, ent_row, ent_col + 0.5, ent_row + 0.5, coord_type)
        refcode = np.zeros(nb, dtype=np.int8)
        # the rare centre (numerically) on the line of one of its cell's edges moves away
        moved = np.unique(ent_b[_too_close(local)])
        for b in moved.tolist():
            s, e = int(ent_start[b]), int(ent_start[b + 1]) if b + 1 < nb else n_ent
            col, row = int(ent_col[s]), int(ent_row[s])
            eax_s, eay_s, ebx_s, eby_s = (a[s:e] for a in edges)
            code, local[s:e] = _best_reference(eax_s, eay_s, ebx_s, eby_s, col, row, coord_type)
            refcode[b] = code
            cx, cy = col + _REF_POINTS[code][0], row + _REF_POINTS[code][1]
            c_end = int(cand_start[b + 1]) if b + 1 < nb else len(cand_poly)
            for slot in range(int(cand_start[b]), c_end):
                # edges are stored polygon by polygon: q's edges are one contiguous run
                q = int(cand_poly[slot])
                lo, hi = np.searchsorted(epoly, [q, q + 1])
                run = slice(int(lo), int(hi))
                cand_flag[slot] = _ray_parity(cx, cy, eax[run], eay[run], ebx[run], eby[run])
        self._moved = len(moved)
        del edges, ent_row, ent_col, ent_edge

        # 6. one contiguous record per boundary cell
        blob, offset = _pack_boundary_cells(
            ent_start, cand_start, base, refcode, ent_loc, local, cand_poly, cand_flag
        )
        owner[bcells] = -2 - offset
        self._owner = owner
        self._blob = blob
        self._wf = local.itemsize // 4
        self._n_entries = n_ent
        self._nb = nb
        self._bind_views()

    def _bind_views(self) -> None:
        """Memoryviews for the pure-Python path (indexing them yields plain Python numbers)."""
        self._v_owner = self._owner.data
        self._v_blob = self._blob.data  # the words as int32
        # the same words as float32 or (pairs of them) as float64
        self._v_blobf = self._blob.view(np.float32 if self._wf == 1 else np.float64).data
        self._fnx = float(self._nx)
        self._fny = float(self._ny)

    # ------------------------------------------------------------------ queries

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return (
            f"<GridIndex {self._n} polygons, {self._nx}x{self._ny} cells of {self.cell_size:.3g}°>"
        )

    @property
    def polygons(self) -> list[BaseGeometry]:
        """The indexed polygons, in the order given to :meth:`build`."""
        return list(self._polygons)

    def stats(self) -> dict[str, float]:
        """Sizes of the internal tables (for benchmarks and tuning)."""
        n_cells = self._nx * self._ny
        nb = self._nb
        arrays = (self._owner, self._blob)
        return {
            "polygons": self._n,
            "cell_size_deg": self.cell_size,
            "raster_cols": self._nx,
            "raster_rows": self._ny,
            "cells": n_cells,
            "boundary_cells": nb,
            "boundary_fraction": nb / n_cells if n_cells else 0.0,
            "edges": self._n_edges,
            "edge_entries": self._n_entries,
            "moved_reference_points": self._moved,
            "memory_mb": sum(a.nbytes for a in arrays) / 2**20,
        }

    def locate(self, lon: float, lat: float) -> int:
        """Index of the polygon containing (lon, lat), or -1 (also for NaN and infinities)."""
        px = (lon - self._x0) * self._inv
        py = (lat - self._y0) * self._inv
        if not (0.0 <= px < self._fnx and 0.0 <= py < self._fny):
            return -1
        col = int(px)
        row = int(py)
        owner: int = self._v_owner[row * self._nx + col]
        if owner > -2:
            return owner
        # A boundary cell: its record starts at word o (see the module docstring). This is
        # the same arithmetic as _resolve_boundary, in the same order.
        o = -2 - owner
        words = self._v_blob
        n_cand: int = words[o + 1]
        code: int = words[o + 3]
        if code:
            ux = px - (col + _REF_POINTS[code][0])
            uy = py - (row + _REF_POINTS[code][1])
        else:
            ux = px - (col + 0.5)
            uy = py - (row + 0.5)
        floats = self._v_blobf
        wf = self._wf
        first = (o + 4 + n_cand + wf - 1) // wf  # in units of coordinates
        parity = 0
        for k in range(first, first + 5 * words[o], 5):
            ax: float = floats[k + 1]
            ay: float = floats[k + 2]
            bx: float = floats[k + 3]
            by: float = floats[k + 4]
            # a and b on different sides of the line c p (half-open), then c and p on
            # different sides of the edge (the side of c is stored in the info word)
            if (ux * ay > uy * ax) != (ux * by > uy * bx):
                info: int = words[k * wf]
                if ((bx - ax) * (uy - ay) > (by - ay) * (ux - ax)) != (info & 1):
                    parity ^= 1 << (info >> 1)
        best: int = words[o + 2]
        for n in range(n_cand):
            cand: int = words[o + 4 + n]
            if ((parity >> n) & 1) != (cand & 1):
                q = cand >> 1
                return q if best < 0 or q < best else best
        return best

    def locate_many(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> IntArray:
        """Vectorised :meth:`locate`: an int64 array of polygon indices (-1 for none).

        ``lon`` and ``lat`` must have the same shape; the result has that shape. Large
        inputs are processed in chunks of ``CHUNK`` points to bound the temporary memory.
        """
        x = np.asarray(lon, dtype=np.float64)
        y = np.asarray(lat, dtype=np.float64)
        if x.shape != y.shape:
            raise ValueError(f"lon and lat differ in shape: {x.shape} and {y.shape}")
        xf = x.ravel()
        yf = y.ravel()
        out = np.full(xf.shape, -1, dtype=np.int64)
        if self._nx:
            for s in range(0, len(xf), CHUNK):
                out[s : s + CHUNK] = self._locate_chunk(xf[s : s + CHUNK], yf[s : s + CHUNK])
        return out.reshape(x.shape)

    def _locate_chunk(self, x: FloatArray, y: FloatArray) -> IntArray:
        fx = (x - self._x0) * self._inv
        fy = (y - self._y0) * self._inv
        valid = (fx >= 0.0) & (fx < self._fnx) & (fy >= 0.0) & (fy < self._fny)
        if valid.all():
            sel = None
        else:
            sel = np.flatnonzero(valid)
            fx = fx[sel]
            fy = fy[sel]
        col = fx.astype(np.int64)
        row = fy.astype(np.int64)
        found = self._owner[row * self._nx + col].astype(np.int64)
        bpts = np.flatnonzero(found <= -2)
        if len(bpts):
            found[bpts] = self._resolve_boundary(
                -2 - found[bpts], col[bpts], row[bpts], fx[bpts], fy[bpts]
            )
        if sel is None:
            return found
        out = np.full(len(x), -1, dtype=np.int64)
        out[sel] = found
        return out

    def _resolve_boundary(
        self, o: IntArray, col: IntArray, row: IntArray, px: FloatArray, py: FloatArray
    ) -> IntArray:
        """Vectorised boundary-cell rule for points ``(px, py)`` in the cells of records ``o``.

        The same float64 operations, in the same order, as :meth:`locate`.
        """
        words = self._blob
        wf = self._wf
        floats = words.view(np.float32 if wf == 1 else np.float64)
        n_ent = words[o].astype(np.int64)
        n_cand = words[o + 1].astype(np.int64)
        if self._moved:
            code = words[o + 3]
            cx = col + _REF_X[code]
            cy = row + _REF_Y[code]
        else:
            cx = col + 0.5
            cy = row + 0.5
        ux = px - cx
        uy = py - cy
        # one item per (point, edge of its cell)
        pt, rank = _ragged(n_ent)
        k = ((o + 4 + n_cand + wf - 1) // wf)[pt] + 5 * rank
        ax = floats[k + 1].astype(np.float64)
        ay = floats[k + 2].astype(np.float64)
        bx = floats[k + 3].astype(np.float64)
        by = floats[k + 4].astype(np.float64)
        uxr = ux[pt]
        uyr = uy[pt]
        crossed = (uxr * ay > uyr * ax) != (uxr * by > uyr * bx)
        info = words[k * wf]
        crossed &= ((bx - ax) * (uyr - ay) > (by - ay) * (uxr - ax)) != (info & 1).astype(np.bool_)
        # parity of the crossings per (point, candidate of its cell)
        cstart = np.cumsum(n_cand) - n_cand
        slot = cstart[pt] + (info >> 1)
        counts = np.bincount(slot[crossed], minlength=int(cstart[-1] + n_cand[-1]))
        cpt, crank = _ragged(n_cand)
        cand = words[o[cpt] + 4 + crank]
        inside = (counts & 1) != (cand & 1)
        value = np.where(inside, cand >> 1, _NO_POLYGON)
        best = np.minimum.reduceat(value, cstart).astype(np.int64)
        base = words[o + 2]
        over = base >= 0
        if over.any():
            best[over] = np.minimum(best[over], base[over])
        best[best == _NO_POLYGON] = -1
        return best

    def nearest(self, lon: float, lat: float) -> tuple[int, float]:
        """Nearest polygon to (lon, lat) and the geodesic distance to it in metres.

        A point inside a polygon gives ``(index, 0.0)``. An empty index or a non-finite
        coordinate gives ``(-1, inf)``. Ties are broken by the lowest index.
        """
        if not (math.isfinite(lon) and math.isfinite(lat)):
            return -1, math.inf
        found = self.locate(lon, lat)
        if found >= 0:
            return found, 0.0
        state = self._nearest_tree()
        if state is None:
            return -1, math.inf
        tree, geod, kx = state
        probe = shapely.Point(lon * kx, lat)
        first = tree.query_nearest(probe, all_matches=False)
        if len(first) == 0:
            return -1, math.inf
        scaled = tree.geometries
        reach = float(shapely.distance(scaled[int(first[0])], probe))
        # the scaled plane is only nearly isometric: compare every polygon within reach
        candidates = tree.query(probe, predicate="dwithin", distance=reach * 1.05 + 1e-12)
        best, best_dist = -1, math.inf
        for i in sorted(int(c) for c in candidates):
            line = shapely.shortest_line(scaled[i], probe)
            qx, qy = shapely.get_coordinates(line)[0]
            _, _, dist = geod.inv(lon, lat, qx / kx, qy)
            if dist < best_dist:
                best, best_dist = i, float(dist)
        return best, best_dist

    def _nearest_tree(self) -> tuple[Any, Any, float] | None:
        """STRtree over the polygons with longitudes scaled by cos(mean latitude) (lazy)."""
        if self._nearest_state is None:
            if not self._nx:
                return None
            import pyproj

            lat_mid = self._y0 + 0.5 * self._ny * self.cell_size
            kx = max(math.cos(math.radians(lat_mid)), 1e-6)
            scaled = shapely.transform(
                np.asarray(self._polygons, dtype=object), lambda c: c * np.array([kx, 1.0])
            )
            scaled[shapely.is_empty(scaled)] = None
            self._nearest_state = (shapely.STRtree(scaled), pyproj.Geod(ellps="WGS84"), kx)
        return self._nearest_state


# ---------------------------------------------------------------------- helpers


def _ring_edges(
    geoms: npt.NDArray[np.object_],
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, npt.NDArray[np.int32]]:
    """All ring edges (a → b) of the polygons, with the index of the polygon of each edge."""
    if not len(geoms):
        empty = np.zeros(0)
        return empty, empty, empty, empty, np.zeros(0, dtype=np.int32)
    parts, part_poly = shapely.get_parts(geoms, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
    same_ring = coord_ring[:-1] == coord_ring[1:]
    a = coords[:-1][same_ring]
    b = coords[1:][same_ring]
    poly = part_poly[ring_part[coord_ring[:-1][same_ring]]].astype(np.int32)
    keep = (a != b).any(axis=1) & np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1)
    return (
        np.ascontiguousarray(a[keep, 0]),
        np.ascontiguousarray(a[keep, 1]),
        np.ascontiguousarray(b[keep, 0]),
        np.ascontiguousarray(b[keep, 1]),
        poly[keep],
    )


def _default_cell_size(geoms: npt.NDArray[np.object_], width: float, height: float) -> float:
    areas = shapely.area(geoms)
    areas = areas[np.isfinite(areas) & (areas > 0)]
    if len(areas):
        return float(np.sqrt(np.median(areas))) / CELLS_PER_POLYGON
    return max(width, height) / 1000.0


def _fill(
    owner: npt.NDArray[np.int32],
    bmap: npt.NDArray[np.int32],
    eax: FloatArray,
    eay: FloatArray,
    ebx: FloatArray,
    eby: FloatArray,
    epoly: npt.NDArray[np.int32],
    nx: int,
    ny: int,
) -> tuple[IntArray, IntArray]:
    """Scan-line even-odd fill of cell centres, polygon by polygon.

    Writes the lowest polygon containing each cell centre into ``owner`` and returns the
    (boundary cell, polygon) pairs for the centres of boundary cells (``bmap >= 0``).
    """
    ylo = np.minimum(eay, eby)
    yhi = np.maximum(eay, eby)
    # rows whose centre y = r + 0.5 satisfies ylo <= y < yhi
    r0 = np.clip(np.ceil(ylo - 0.5), 0, ny).astype(np.int64)
    r1 = np.clip(np.ceil(yhi - 0.5), 0, ny).astype(np.int64)
    edge, rank = _ragged(np.maximum(r1 - r0, 0))
    row = r0[edge] + rank
    xa, ya, xb, yb = eax[edge], eay[edge], ebx[edge], eby[edge]
    x = xa + (row + 0.5 - ya) * ((xb - xa) / (yb - ya))
    x = np.clip(x, np.minimum(xa, xb), np.maximum(xa, xb))
    # the column a crossing starts: centres j + 0.5 >= x
    col = np.clip(np.ceil(x - 0.5), 0, nx).astype(np.int64)
    del xa, ya, xb, yb, x, rank
    # sort crossings by (polygon, row, column); consecutive pairs bound inside runs
    key = (epoly[edge].astype(np.int64) * ny + row) * (nx + 1) + col
    del edge, row, col
    key.sort()
    group = key // (nx + 1)
    col = key - group * (nx + 1)
    poly = (group // ny).astype(np.int32)
    row = group - (group // ny) * ny
    del key, group
    start = col[0::2]
    length = col[1::2] - start
    first_cell = row[0::2] * nx + start
    span_poly = poly[0::2]
    keep = length > 0
    first_cell, length, span_poly = first_cell[keep], length[keep], span_poly[keep]
    pairs_b: list[IntArray] = []
    pairs_poly: list[IntArray] = []
    budget = 1 << 22
    ends = np.cumsum(length)
    lo = 0
    while lo < len(length):
        done = int(ends[lo - 1]) if lo else 0
        hi = int(np.searchsorted(ends, done + budget, side="right"))
        hi = max(hi, lo + 1)
        span, rank = _ragged(length[lo:hi])
        cells = first_cell[lo:hi][span] + rank
        polys = span_poly[lo:hi][span]
        np.minimum.at(owner, cells, polys)
        bb = bmap[cells]
        on_boundary = bb >= 0
        pairs_b.append(bb[on_boundary].astype(np.int64))
        pairs_poly.append(polys[on_boundary].astype(np.int64))
        lo = hi
    if not pairs_b:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(pairs_b), np.concatenate(pairs_poly)


def _pack_boundary_cells(
    ent_start: IntArray,
    cand_start: IntArray,
    base: npt.NDArray[np.int32],
    refcode: npt.NDArray[np.int8],
    ent_loc: IntArray,
    local: LocalArray,
    cand_poly: IntArray,
    cand_flag: npt.NDArray[np.bool_],
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
    """Pack every boundary cell into one contiguous record of 4-byte words.

    With ``w`` words per coordinate (1 for float32, 2 for float64), the record of a cell
    with ``n`` edges and ``m`` candidates, at word ``o``, is::

        o + 0        n                    number of edges
        o + 1        m                    number of candidate polygons
        o + 2        base                 lowest polygon holding the whole cell (or -1)
        o + 3        refcode              which reference point (0 = the centre)
        o + 4 + i    polygon << 1 | flag  candidate i; flag: it contains the reference point
        (padding to a multiple of w words)
        e + 5wj      info                 edge j: its candidate number << 1 | (reference
                                          point left of the edge), then w - 1 words of padding
        e + 5wj + w  ax, ay, bx, by       edge j relative to the reference point, w words each

    A look-up reads one owner word and one short run of memory. Returns the words and each
    cell's record offset.
    """
    nb = len(ent_start)
    w = local.itemsize // 4
    n_ent = np.diff(np.append(ent_start, len(ent_loc)))
    n_cand = np.diff(np.append(cand_start, len(cand_poly)))
    head = -(-(4 + n_cand) // w) * w  # header and candidates, padded to a multiple of w
    size = head + 5 * w * n_ent
    if w > 1:
        size = -(-size // w) * w
    offset = np.cumsum(size) - size
    total = int(offset[-1] + size[-1]) if nb else 0
    if total >= 2**31 - 2 or (len(cand_poly) > 0 and int(cand_poly.max()) >= 2**30):
        raise ValueError("too many polygons or edges for one GridIndex")
    blob = np.zeros(total, dtype=np.int32)
    coords = blob.view(local.dtype)
    blob[offset] = n_ent
    blob[offset + 1] = n_cand
    blob[offset + 2] = base
    blob[offset + 3] = refcode
    cand_b = np.repeat(np.arange(nb), n_cand)
    blob[offset[cand_b] + 4 + np.arange(len(cand_poly)) - cand_start[cand_b]] = (
        cand_poly << 1 | cand_flag
    )
    ent_b = np.repeat(np.arange(nb), n_ent)
    k = (offset + head)[ent_b] // w + 5 * (np.arange(len(ent_loc)) - ent_start[ent_b])
    la = local[:, 0].astype(np.float64)
    lb = local[:, 1].astype(np.float64)
    # the side of each edge the reference point (0, 0) lies on, by the query's formula
    left = (local[:, 2] - la) * (0.0 - lb) > (local[:, 3] - lb) * (0.0 - la)
    blob[k * w] = ent_loc << 1 | left
    for j in range(4):
        coords[k + 1 + j] = local[:, j]
    return blob, offset.astype(np.int32)


def _local_edges(
    ax: FloatArray,
    ay: FloatArray,
    bx: FloatArray,
    by: FloatArray,
    col: IntArray,
    row: IntArray,
    cx: FloatArray,
    cy: FloatArray,
    coord_type: type[np.floating[Any]],
) -> LocalArray:
    """Edges a → b of cells (col, row) relative to their reference points (cx, cy).

    An edge reaching beyond the 3x3 cells around its cell is first clipped to them (a query
    segment never leaves its cell, so nothing it could cross is lost); the clipping runs in
    the edge's canonical direction, so the two copies of an edge shared by two polygons stay
    identical. The values are then small, and even float32 keeps them to ~1e-7 cells.
    """
    local = np.empty((len(ax), 4), dtype=coord_type)
    local[:, 0] = ax - cx
    local[:, 1] = ay - cy
    local[:, 2] = bx - cx
    local[:, 3] = by - cy
    beyond = (np.minimum(ax, bx) < col - 1) | (np.maximum(ax, bx) > col + 2)
    beyond |= (np.minimum(ay, by) < row - 1) | (np.maximum(ay, by) > row + 2)
    if beyond.any():
        i = np.flatnonzero(beyond)
        ci, ri = col[i].astype(np.float64), row[i].astype(np.float64)
        clipped = _clip(ax[i], ay[i], bx[i], by[i], ci - 1, ci + 2, ri - 1, ri + 2)
        for j, (value, centre) in enumerate(zip(clipped, (cx, cy, cx, cy), strict=True)):
            local[i, j] = value - centre[i]
    return local


def _clip(
    ax: FloatArray,
    ay: FloatArray,
    bx: FloatArray,
    by: FloatArray,
    xlo: FloatArray,
    xhi: FloatArray,
    ylo: FloatArray,
    yhi: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Liang-Barsky clipping of segments that meet their boxes, in canonical direction."""
    swap = (ax > bx) | ((ax == bx) & (ay > by))
    px, py = np.where(swap, bx, ax), np.where(swap, by, ay)
    qx, qy = np.where(swap, ax, bx), np.where(swap, ay, by)
    dx, dy = qx - px, qy - py
    t0 = np.zeros(len(ax))
    t1 = np.ones(len(ax))
    with np.errstate(divide="ignore", invalid="ignore"):
        for p, d, lo, hi in ((px, dx, xlo, xhi), (py, dy, ylo, yhi)):
            ta = (lo - p) / d
            tb = (hi - p) / d
            moving = d != 0
            t0 = np.where(moving, np.maximum(t0, np.minimum(ta, tb)), t0)
            t1 = np.where(moving, np.minimum(t1, np.maximum(ta, tb)), t1)
    spx = np.where(t0 > 0, px + t0 * dx, px)
    spy = np.where(t0 > 0, py + t0 * dy, py)
    sqx = np.where(t1 < 1, px + t1 * dx, qx)
    sqy = np.where(t1 < 1, py + t1 * dy, qy)
    return (
        np.where(swap, sqx, spx),
        np.where(swap, sqy, spy),
        np.where(swap, spx, sqx),
        np.where(swap, spy, sqy),
    )


def _line_gap(local: LocalArray) -> FloatArray:
    """Distance (cell units) from the reference point (0, 0) to the line of each local edge."""
    ax, ay, bx, by = local.T.astype(np.float64)
    dx = bx - ax
    dy = by - ay
    length = np.hypot(dx, dy)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.abs(dx * ay - dy * ax) / length
    gap[length == 0] = np.inf  # collapsed by rounding: can never be crossed
    return gap


def _too_close(local: LocalArray) -> npt.NDArray[np.bool_]:
    """Edges whose line passes within ``_REF_TOLERANCE`` of the reference point (0, 0)."""
    ax, ay, bx, by = local.T.astype(np.float64)
    dx = bx - ax
    dy = by - ay
    cross = dx * ay - dy * ax
    length2 = dx * dx + dy * dy
    return (cross * cross <= _REF_TOLERANCE**2 * length2) & (length2 > 0)


def _best_reference(
    ax: FloatArray,
    ay: FloatArray,
    bx: FloatArray,
    by: FloatArray,
    col: int,
    row: int,
    coord_type: type[np.floating[Any]],
) -> tuple[int, LocalArray]:
    """The reference point of cell (col, row) farthest from the lines of the cell's edges.

    Far from every line, neither the inside flags nor the side of each edge the point lies
    on are in doubt, and a segment from it can only graze an edge where it ends next to it.
    Returns the point's code and the cell's edges local to it.
    """
    n = len(ax)
    cols = np.full(n, col, dtype=np.int64)
    rows = np.full(n, row, dtype=np.int64)
    best_code, best_gap = 0, -1.0
    best_local = np.zeros((n, 4), dtype=coord_type)
    for code in range(1, len(_REF_POINTS)):
        cx = np.full(n, col + _REF_POINTS[code][0])
        cy = np.full(n, row + _REF_POINTS[code][1])
        local = _local_edges(ax, ay, bx, by, cols, rows, cx, cy, coord_type)
        gap = float(_line_gap(local).min())
        if gap > best_gap:
            best_code, best_gap, best_local = code, gap, local
    return best_code, best_local


def _ray_parity(
    px: float, py: float, ax: FloatArray, ay: FloatArray, bx: FloatArray, by: FloatArray
) -> bool:
    """Even-odd test: is (px, py) inside the rings made of the edges a → b?"""
    upward = ay <= by
    lx = np.where(upward, ax, bx)
    ly = np.where(upward, ay, by)
    hx = np.where(upward, bx, ax)
    hy = np.where(upward, by, ay)
    spans = (ly <= py) & (py < hy)
    # the crossing is right of p when p is left of the upward edge
    right = (hx - lx) * (py - ly) - (hy - ly) * (px - lx) > 0
    return bool(np.count_nonzero(spans & right) & 1)
