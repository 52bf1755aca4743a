"""``gridgov regions locate-file``: the grid of every row of a CSV ledger, streamed in chunks."""

from __future__ import annotations

import csv
import io
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from gridgov.geo import bulk
from gridgov.geo.crs import wgs84_to_gcj02
from gridgov.geo.index import grid_index
from tests.world import World

IN_A = (32.05, 118.82)  # lat, lon inside grid A (320113003001001)
IN_B = (32.05, 118.87)  # inside grid B
OUTSIDE = (32.05, 119.50)  # east of every grid


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("regions", "locate-file", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


def test_a_gbk_ledger_with_chinese_column_names_gets_grid_columns(
    world: World, tmp_path: Path, english: None
) -> None:
    ledger = tmp_path / "台账.csv"
    ledger.write_bytes(
        (
            "姓名,纬度,经度,备注\n"
            f"张三,{IN_A[0]},{IN_A[1]},一楼\n"
            f"李四,{IN_B[0]},{IN_B[1]},\n"
            f"王五,{OUTSIDE[0]},{OUTSIDE[1]},外地\n"
        ).encode("gbk")
    )
    out, err = run(str(ledger), "--lat-column", "纬度", "--lon-column", "经度")
    rows = rows_of(out)
    assert rows[0] == ["姓名", "纬度", "经度", "备注", "grid_code", "grid_name", "community_code"]
    assert rows[1] == [
        "张三",
        "32.05",
        "118.82",
        "一楼",
        world.grid_a.code,
        world.grid_a.name,
        "320113003001",
    ]
    assert rows[2][4:] == [world.grid_b.code, world.grid_b.name, "320113003001"]
    assert rows[3][4:] == ["", "", ""]
    assert "3 rows (GBK): 2 located in a grid, 1 outside every grid, 0 with bad coordinates" in err


def test_rows_with_bad_coordinates_are_kept_empty_and_their_lines_named(
    world: World, tmp_path: Path, english: None
) -> None:
    ledger = tmp_path / "ledger.csv"
    ledger.write_text(
        "id,lat,lon\n"
        f"1,{IN_A[0]},{IN_A[1]}\n"
        "2,,118.82\n"
        "3,north,118.82\n"
        "4,95,118.82\n"
        "5,32.05\n"
        "6,nan,118.82\n"
        f"7,{IN_B[0]},{IN_B[1]}\n",
        encoding="utf-8",
    )
    out, err = run(str(ledger))
    rows = rows_of(out)
    assert len(rows) == 8  # the header and all seven rows, none dropped
    assert [r[0] for r in rows[1:]] == ["1", "2", "3", "4", "5", "6", "7"]
    assert rows[1][-3] == world.grid_a.code and rows[7][-3] == world.grid_b.code
    assert all(r[-3:] == ["", "", ""] for r in rows[2:7])
    assert "7 rows (UTF-8): 2 located in a grid, 0 outside every grid, 5 with bad" in err
    assert "bad coordinates on lines 3, 4, 5, 6, 7 (kept with an empty grid)" in err


def test_gcj02_coordinates_are_converted_before_the_look_up(
    world: World, tmp_path: Path, english: None
) -> None:
    # just west of the A|B border in WGS-84; read as WGS-84 the GCJ-02 point lies in B
    lon, lat = wgs84_to_gcj02(118.8495, 32.05)
    ledger = tmp_path / "phone.csv"
    ledger.write_text(f"lat,lon\n{lat},{lon}\n", encoding="utf-8-sig")
    plain, _ = run(str(ledger))
    declared, err = run(str(ledger), "--crs", "gcj02")
    assert rows_of(plain)[1][2] == world.grid_b.code
    assert rows_of(declared)[1][2] == world.grid_a.code
    assert "(UTF-8 with BOM)" in err
    assert rows_of(declared)[0] == ["lat", "lon", "grid_code", "grid_name", "community_code"]


def test_output_goes_to_a_file_with_a_bom_for_excel_when_asked(
    world: World, tmp_path: Path, english: None
) -> None:
    ledger = tmp_path / "in.csv"
    ledger.write_text(f"lat,lon\n{IN_A[0]},{IN_A[1]}\n", encoding="utf-8")
    target = tmp_path / "out.csv"
    out, err = run(str(ledger), "-o", str(target))
    assert out == ""
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert rows_of(raw.decode("utf-8-sig"))[1][2] == world.grid_a.code
    assert "1 located in a grid" in err


def test_a_missing_column_or_file_is_a_clear_error_and_leaves_no_output(
    world: World, tmp_path: Path, english: None
) -> None:
    ledger = tmp_path / "in.csv"
    ledger.write_text("name,y_coord,x_coord\na,1,2\n", encoding="utf-8")
    target = tmp_path / "out.csv"
    with pytest.raises(CommandError, match=r"has no column 'lat'; its columns are name, y_coord"):
        run(str(ledger), "-o", str(target))
    assert not target.exists()
    with pytest.raises(CommandError, match="cannot read"):
        run(str(tmp_path / "missing.csv"))


def test_common_column_names_are_found_without_options(world: World, tmp_path: Path) -> None:
    ledger = tmp_path / "in.csv"
    ledger.write_text(f"Latitude,Longitude\n{IN_A[0]},{IN_A[1]}\n", encoding="utf-8")
    out, _ = run(str(ledger))
    assert rows_of(out)[1][2] == world.grid_a.code


def test_a_gbk_ledger_whose_chinese_starts_late_is_still_read_as_gbk(
    world: World, tmp_path: Path
) -> None:
    # 200 KB of ASCII before the first Chinese character: a sample would guess UTF-8
    ascii_rows = "".join(f"{i},{IN_A[0]},{IN_A[1]}\n" for i in range(10_000))
    ledger = tmp_path / "late.csv"
    ledger.write_bytes(("id,lat,lon\n" + ascii_rows + f"栖霞,{IN_B[0]},{IN_B[1]}\n").encode("gbk"))
    out, _ = run(str(ledger))
    last = rows_of(out)[-1]
    assert last[0] == "栖霞" and last[3] == world.grid_b.code


def test_the_file_is_read_and_located_in_chunks(
    world: World, tmp_path: Path, monkeypatch: Any
) -> None:
    ledger = tmp_path / "in.csv"
    ledger.write_text(
        "lat,lon\n" + "".join(f"{IN_A[0]},{IN_A[1]}\n" for _ in range(25)), encoding="utf-8"
    )
    sizes: list[int] = []
    real = bulk._locate_chunk

    def spy(chunk: list[Any], **kwargs: Any) -> None:
        sizes.append(len(chunk))
        real(chunk, **kwargs)

    monkeypatch.setattr(bulk, "CHUNK_ROWS", 10)
    monkeypatch.setattr(bulk, "_locate_chunk", spy)
    out, _ = run(str(ledger))
    assert sizes == [10, 10, 5]
    assert len(rows_of(out)) == 26


def write_ledger(path: Path, rows: int) -> int:
    line = f"居民,{IN_A[0]},{IN_A[1]},栖霞区迈皋桥街道和畅社区某某小区某某栋某某室\n"
    with path.open("w", encoding="gbk") as handle:
        handle.write("name,lat,lon,address\n")
        for _ in range(rows):
            handle.write(line)
    return path.stat().st_size


def peak_memory(path: Path) -> tuple[int, bulk.LocateSummary, int]:
    """Peak traced memory of locating every row of ``path``, and the lines written."""
    written = {"lines": 0}

    class Sink:
        def write(self, text: str) -> int:
            written["lines"] += text.count("\n")
            return len(text)

    tracemalloc.start()
    try:
        summary = bulk.locate_csv(path=path, out=Sink(), chunk_rows=2_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, summary, written["lines"]


def test_a_200000_row_file_streams_with_bounded_memory(world: World, tmp_path: Path) -> None:
    grid_index()  # built once per process, not part of what is measured
    small, big = tmp_path / "small.csv", tmp_path / "big.csv"
    write_ledger(small, 20_000)
    size = write_ledger(big, 200_000)
    assert size > 10_000_000

    small_peak, _, _ = peak_memory(small)
    peak, summary, lines = peak_memory(big)
    assert summary.rows == 200_000 and summary.located == 200_000
    assert summary.encoding == "gb18030" and summary.chunks == 100
    assert lines == 200_001
    # ten times the rows, about the same memory: the file is never held whole
    assert peak < 2 * small_peak, f"peak {peak:,} bytes vs {small_peak:,} for a tenth of it"
    assert peak < size / 4, f"peak {peak:,} bytes for a {size:,}-byte file"
