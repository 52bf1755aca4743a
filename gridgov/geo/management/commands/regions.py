"""``gridgov regions``: import divisions and polygons, export GeoJSON, find the grid of a point."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gridgov.core.errors import DomainError
from gridgov.geo.models import Level


class Command(BaseCommand):
    help = (
        "Manage the region tree: import-divisions, import-geojson, export-geojson, locate, "
        "locate-file."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")

        p = sub.add_parser(
            "import-divisions",
            help="import districts, streets and communities from CSV",
            description=(
                "Import divisions from gridgov's code,name,level,parent_code CSV or from the "
                "china-division package's areas.csv / streets.csv / villages.csv (give several "
                "files at once so parents come along). UTF-8 (with or without BOM) or GBK."
            ),
        )
        p.add_argument("files", nargs="+", metavar="FILE")
        p.add_argument("--district", metavar="CODE", help="keep only this district's subtree")

        p = sub.add_parser(
            "import-geojson",
            help="import polygons for regions and grids",
            description=(
                "Import a GeoJSON FeatureCollection of polygons matched by properties.code. "
                "All-or-nothing: any error writes nothing and exits with status 1."
            ),
        )
        p.add_argument("file", metavar="FILE")
        p.add_argument("--repair", action="store_true", help="repair invalid polygons")
        p.add_argument("--strict", action="store_true", help="treat check warnings as errors")
        p.add_argument("--dry-run", action="store_true", help="check only, write nothing")

        p = sub.add_parser("export-geojson", help="export regions with polygons as GeoJSON")
        p.add_argument("--level", choices=Level.values)
        p.add_argument("--under", metavar="CODE", help="only this region's subtree")
        p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")

        p = sub.add_parser("locate", help="find the grid of a point")
        p.add_argument("--lat", type=float, required=True)
        p.add_argument("--lon", type=float, required=True)
        p.add_argument("--crs", choices=["wgs84", "gcj02"], default="wgs84")

        p = sub.add_parser(
            "locate-file",
            help="find the grid of every row of a CSV",
            description=(
                "Read a CSV (UTF-8 with or without BOM, or GBK) in chunks, append the columns "
                "grid_code, grid_name and community_code (empty outside every grid or for bad "
                "coordinates) and write it to OUT (UTF-8 with BOM, for Excel) or stdout. A "
                "summary goes to stderr; rows with bad coordinates are kept and counted."
            ),
        )
        p.add_argument("file", metavar="FILE")
        p.add_argument("--lat-column", default="lat", metavar="NAME", help="default: lat")
        p.add_argument("--lon-column", default="lon", metavar="NAME", help="default: lon")
        p.add_argument("--crs", choices=["wgs84", "gcj02"], default="wgs84")
        p.add_argument(
            "--encoding",
            choices=["utf-8", "utf-8-sig", "gbk", "gb18030"],
            help="the file's encoding (default: detected)",
        )
        p.add_argument("-o", "--output", metavar="OUT", help="write to OUT (default: stdout)")
        p.add_argument("--chunk-rows", type=int, default=None, help=argparse.SUPPRESS)

    def handle(self, *args: Any, **options: Any) -> None:
        handler = {
            "import-divisions": self.import_divisions,
            "import-geojson": self.import_geojson,
            "export-geojson": self.export_geojson,
            "locate": self.locate,
            "locate-file": self.locate_file,
        }[options["subcommand"]]
        try:
            handler(options)
        except DomainError as exc:
            raise CommandError(exc.message) from exc

    def import_divisions(self, options: dict[str, Any]) -> None:
        from gridgov.geo.actions import regions_import_divisions

        report = regions_import_divisions(path=options["files"], district=options["district"])
        self.stdout.write(report.text())
        if not report.ok:
            raise CommandError(f"{len(report.errors)} errors; nothing was written")

    def import_geojson(self, options: dict[str, Any]) -> None:
        from gridgov.geo.actions import regions_import_geojson

        report = regions_import_geojson(
            path=options["file"],
            repair=options["repair"],
            strict=options["strict"],
            dry_run=options["dry_run"],
        )
        self.stdout.write(report.text())
        if not report.ok:
            raise CommandError(f"{len(report.errors)} errors; nothing was written")

    def export_geojson(self, options: dict[str, Any]) -> None:
        from gridgov.geo.actions import regions_export_geojson

        data = regions_export_geojson(level=options["level"], under=options["under"])
        text = json.dumps(data, ensure_ascii=False)
        if options["output"]:
            try:
                with open(options["output"], "w", encoding="utf-8") as handle:
                    handle.write(text)
            except OSError as exc:
                raise CommandError(f"cannot write {options['output']}: {exc.strerror}") from exc
            self.stderr.write(f"{len(data['features'])} features written to {options['output']}")
        else:
            self.stdout.write(text)

    def locate(self, options: dict[str, Any]) -> None:
        import math

        from gridgov.geo.api import locate_answer
        from gridgov.geo.crs import to_wgs84

        lat, lon = options["lat"], options["lon"]
        if not (math.isfinite(lat) and math.isfinite(lon)) or abs(lat) > 90 or abs(lon) > 180:
            raise CommandError("--lat must lie between -90 and 90 and --lon between -180 and 180")
        wlon, wlat = to_wgs84(lon, lat, options["crs"])
        answer = locate_answer(wlon, wlat)
        for region in answer["ancestors"]:
            self.stdout.write(f"{region['level']:<10} {region['code']:<16} {region['name']}")
        grid = answer["grid"]
        self.stdout.write(f"{grid['level']:<10} {grid['code']:<16} {grid['name']}")

    def locate_file(self, options: dict[str, Any]) -> None:
        from gridgov.geo.bulk import locate_csv

        encoding = options["encoding"]
        if encoding == "gbk":
            encoding = "gb18030"  # GBK's superset: a ledger may hold characters beyond GBK
        chunk_rows = options["chunk_rows"]
        if chunk_rows is not None and chunk_rows < 1:
            raise CommandError("--chunk-rows must be at least 1")
        common = {
            "path": options["file"],
            "lat_column": options["lat_column"],
            "lon_column": options["lon_column"],
            "crs": options["crs"],
            "encoding": encoding,
            "chunk_rows": chunk_rows,
        }
        output = options["output"]
        if output:
            try:
                with open(output, "w", encoding="utf-8-sig", newline="") as handle:
                    summary = locate_csv(out=handle, **common)
            except OSError as exc:
                raise CommandError(f"cannot write {output}: {exc.strerror}") from exc
            except DomainError:
                Path(output).unlink(missing_ok=True)
                raise
        else:
            sink = _Buffered(self.stdout)
            summary = locate_csv(out=sink, **common)
            sink.flush()
        self.stderr.write(summary.text())


class _Buffered:
    """Text for a command's stdout, passed on in blocks (its ``write`` adds a newline per call)."""

    def __init__(self, wrapper: Any, size: int = 1 << 16) -> None:
        self.wrapper = wrapper
        self.size = size
        self.parts: list[str] = []
        self.held = 0

    def write(self, text: str) -> int:
        self.parts.append(text)
        self.held += len(text)
        if self.held >= self.size:
            self.flush()
        return len(text)

    def flush(self) -> None:
        if self.parts:
            self.wrapper.write("".join(self.parts), ending="")
            self.parts, self.held = [], 0
