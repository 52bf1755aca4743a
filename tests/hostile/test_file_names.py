"""File names that try to leave their folder or hide what they are: ../../etc/passwd,
..\\..\\x, absolute paths, names with NUL, right-to-left overrides or markup, 300 characters,
"." and "..". Sent as raw multipart bodies (Django's test client would strip them), to every
upload: photos (API and report form), ledgers (API and web), GeoJSON and division files (API and
admin), category files. Whatever the name, the file is stored under a name gridgov generates (or
not at all), nothing is written outside MEDIA_ROOT, and the original name is shown sanitised."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from gridgov.cases.models import PhotoUpload
from gridgov.registry.models import LedgerImport
from tests.cases.factories import IN_GRID_A, category
from tests.hostile.conftest import ApiClient, media_files
from tests.registry.data.ledgers import csv_bytes, household_rows
from tests.world import World

pytestmark = pytest.mark.django_db

LAT, LON = IN_GRID_A

#: id -> the file name as the client sends it (bytes: a header may carry anything)
HOSTILE_NAMES: dict[str, bytes] = {
    "parent-traversal": b"../../etc/passwd",
    "deep-traversal": b"../../../../../../../../tmp/gridgov-escape",
    "windows-traversal": b"..\\..\\windows\\system.ini",
    "absolute-path": b"/etc/cron.d/gridgov",
    "windows-absolute": b"C:\\Windows\\win.ini",
    "nul-in-name": b"photo.jpg\x00.php",
    "right-to-left-override": "photo\u202egnp.exe".encode(),
    "markup-in-name": b"<img src=x onerror=alert(1)>.jpg",
    "three-hundred-characters": b"a" * 300 + b".jpg",
    "dot-dot": b"..",
    "dotfile": b".htaccess",
    "encoded-traversal": b"%2e%2e%2f%2e%2e%2fetc%2fpasswd",
}
IDS = list(HOSTILE_NAMES)


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (0, 90, 200)).save(out, "JPEG")
    return out.getvalue()


def multipart(
    files: dict[str, tuple[bytes, bytes]], fields: dict[str, str] | None = None
) -> tuple[bytes, str]:
    """A multipart body with ``files`` (field -> (file name, data)) named exactly as given."""
    boundary = "----gridgov-hostile-" + uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in (fields or {}).items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        parts.append(head.encode() + value.encode() + b"\r\n")
    for field, (filename, data) in files.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="'.encode()
            + filename.replace(b'"', b"%22")
            + b'"\r\nContent-Type: application/octet-stream\r\n\r\n'
            + data
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def post_multipart(
    client: Any, url: str, files: dict[str, tuple[bytes, bytes]], **fields: str
) -> Any:
    body, content_type = multipart(files, fields)
    return client.post(url, body, content_type=content_type)


def nothing_escaped(media_root: Path) -> None:
    """No file was written next to MEDIA_ROOT or above it."""
    outside = [
        p
        for p in media_root.parent.rglob("*")
        if p.is_file() and media_root not in p.parents and "gridgov-escape" in p.name
    ]
    assert not outside, outside
    assert not Path("/tmp/gridgov-escape").exists()
    for stored in media_files():
        assert ".." not in Path(stored).parts and not stored.startswith("/")


@pytest.mark.parametrize("name", HOSTILE_NAMES.values(), ids=IDS)
def test_a_photo_uploaded_under_a_hostile_name_is_stored_under_a_generated_one(
    world: World, api: Callable[[str], ApiClient], media_root: Path, name: bytes
) -> None:
    r = post_multipart(api("grid_worker_a"), "/api/v1/cases/photos", {"file": (name, jpeg())})
    if name == b"..":  # Django drops a file named ".." (no name is left): nothing was sent
        assert r.status_code in (400, 422) and not PhotoUpload.objects.exists()
        return
    assert r.status_code == 201, r.content
    stored = media_files()
    assert len(stored) == 2  # the photo and its thumbnail
    for path in stored:
        parts = Path(path).parts
        assert parts[0] == "photos" and len(parts) == 4, path
        assert len(Path(path).stem.removesuffix("_thumb")) == 32, path
    nothing_escaped(media_root)


@pytest.mark.parametrize("name", HOSTILE_NAMES.values(), ids=IDS)
def test_a_ledger_uploaded_under_a_hostile_name_is_stored_under_a_generated_one_and_shown_safe(
    world: World, api: Callable[[str], ApiClient], web: Any, media_root: Path, name: bytes
) -> None:
    r = post_multipart(
        api("grid_worker_a"),
        "/api/v1/registry/ledger/imports",
        {"file": (name, csv_bytes(household_rows(1)))},
    )
    if name == b"..":
        assert r.status_code in (400, 422) and not LedgerImport.objects.exists()
        return
    assert r.status_code == 201, r.content
    li = LedgerImport.objects.get()
    shown = li.file_name
    assert "/" not in shown and "\\" not in shown and "\x00" not in shown and "\u202e" not in shown
    assert len(shown) <= 255 and r.json()["file_name"] == shown
    assert Path(li.file.name).parts[0] == "ledger"
    assert Path(li.file.name).stem == li.uuid.hex
    page = web("grid_worker_a").get(f"/registry/ledger/{li.uuid}/")
    assert page.status_code == 200
    assert b"<img src=x" not in page.content
    nothing_escaped(media_root)


@pytest.mark.parametrize("name", HOSTILE_NAMES.values(), ids=IDS)
def test_a_ledger_uploaded_on_the_web_under_a_hostile_name_is_kept_safely(
    world: World, web: Any, media_root: Path, name: bytes
) -> None:
    client = web("grid_worker_a")
    r = post_multipart(
        client,
        "/registry/ledger/upload/",
        {"file": (name, csv_bytes(household_rows(1)))},
        token=uuid.uuid4().hex,
    )
    assert r.status_code in (302, 400), r.status_code
    for li in LedgerImport.objects.all():
        assert "/" not in li.file_name and "\x00" not in li.file_name
        assert Path(li.file.name).stem == li.uuid.hex
    nothing_escaped(media_root)


@pytest.mark.parametrize("name", HOSTILE_NAMES.values(), ids=IDS)
def test_a_boundary_file_under_a_hostile_name_is_staged_under_a_safe_name_in_the_admin(
    world: World, web: Any, media_root: Path, name: bytes
) -> None:
    square = [
        [118.95, 32.101],
        [118.951, 32.101],
        [118.951, 32.102],
        [118.95, 32.102],
        [118.95, 32.101],
    ]
    geojson = (
        '{"type":"FeatureCollection","features":[{"type":"Feature","properties":'
        '{"code":"320113005001009","name":"新"},"geometry":{"type":"Polygon","coordinates":['
        + str(square)
        + "]}}]}"
    ).encode()
    r = post_multipart(web("admin"), "/admin/geo/region/import/", {"file": (name, geojson)})
    assert r.status_code == 200
    for stored in media_files():
        parts = Path(stored).parts
        assert parts[0] == "imports" and len(parts) == 3 and len(parts[1]) == 32, stored
        assert parts[2] == parts[2].lstrip(".") and len(parts[2]) <= 100, stored
        assert all(ch.isalnum() or ch in "-_." for ch in parts[2]), stored
    assert b"<img src=x" not in r.content
    nothing_escaped(media_root)


@pytest.mark.parametrize("name", HOSTILE_NAMES.values(), ids=IDS)
def test_division_geojson_and_category_files_under_a_hostile_name_leave_no_file(
    world: World, api: Callable[[str], ApiClient], media_root: Path, name: bytes
) -> None:
    admin = api("admin")
    divisions = "code,name,level,parent_code\n320113003009,新社区,community,320113003\n".encode()
    r = post_multipart(
        admin, "/api/v1/geo/regions/import-divisions", {"file": (name, divisions)}, dry_run="true"
    )
    assert r.status_code in (200, 400, 422), r.content
    r = post_multipart(
        admin,
        "/api/v1/geo/regions/import",
        {"file": (name, b'{"type":"FeatureCollection","features":[]}')},
    )
    assert r.status_code in (200, 400, 422), r.content
    category()
    r = post_multipart(
        admin,
        "/api/v1/categories/import",
        {"file": (name, b'{"format":"gridgov-categories","version":1,"categories":[]}')},
        dry_run="true",
    )
    assert r.status_code in (200, 400, 422), r.content
    assert not media_files()
    nothing_escaped(media_root)


@pytest.mark.parametrize(
    "name",
    [HOSTILE_NAMES[k] for k in ("parent-traversal", "nul-in-name", "markup-in-name")],
    ids=["parent-traversal", "nul-in-name", "markup-in-name"],
)
def test_a_report_form_photo_under_a_hostile_name_is_stored_under_a_generated_one(
    world: World, web: Any, media_root: Path, name: bytes
) -> None:
    category()
    r = post_multipart(
        web("grid_worker_a"),
        "/cases/report/",
        {"photos": (name, jpeg())},
        token=uuid.uuid4().hex,
        category="gbt47678:01002",
        description="井盖缺失",
        urgency="normal",
        lat=str(LAT),
        lon=str(LON),
    )
    assert r.status_code == 302, r.content[:300]
    stored = media_files()
    assert stored and all(
        Path(p).parts[0] == "cases" or Path(p).parts[0] == "photos" for p in stored
    ), stored
    assert all(len(Path(p).stem.removesuffix("_thumb")) == 32 for p in stored), stored
    nothing_escaped(media_root)


def test_a_refused_photo_names_itself_sanitised_in_the_message(
    world: World, api: Callable[[str], ApiClient]
) -> None:
    name = "../../<b>x</b>\u202e.jpg".encode()
    r = post_multipart(api("grid_worker_a"), "/api/v1/cases/photos", {"file": (name, b"<svg/>")})
    assert r.status_code == 422
    message = r.json()["message"]
    assert "../" not in message and "\u202e" not in message
