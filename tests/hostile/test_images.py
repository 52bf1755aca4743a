"""Photos that are not what they claim, through the photo upload of the API and the report form
of the web: a decompression bomb (a small PNG claiming 100,000 × 100,000 pixels), a JPEG whose
header claims 65,000 pixels square, a truncated JPEG, an SVG, an HTML page, a PDF and a ZIP
named .jpg or .png, an empty file, a HEIC that is not one. Each is a 4xx naming what the file
seems to be, nothing is stored, no file is left behind. A PNG carrying script in a text chunk, a
JPEG with HTML appended and a JPEG with its EXIF GPS position are accepted and re-encoded: the
stored JPEG keeps none of it; the position is returned as a separate field only when allowed."""

from __future__ import annotations

import io
import struct
import uuid
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import ExifTags, Image, PngImagePlugin

from gridgov.cases.models import Case, CasePhoto, PhotoUpload
from tests.cases.factories import IN_GRID_A, category
from tests.hostile.conftest import ApiClient, assert_nothing_stored, assert_refused, media_files
from tests.world import World

pytestmark = pytest.mark.django_db

PHOTOS = "/api/v1/cases/photos"
LAT, LON = IN_GRID_A


def jpeg(*, size: tuple[int, int] = (120, 90), gps: tuple[float, float] | None = None) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "HostileCam"
    exif[ExifTags.Base.BodySerialNumber] = "SN-0042"
    if gps is not None:
        lat, lon = gps
        exif[ExifTags.IFD.GPSInfo] = {
            ExifTags.GPS.GPSLatitudeRef: "N",
            ExifTags.GPS.GPSLatitude: (float(int(lat)), (lat % 1) * 60, 0.0),
            ExifTags.GPS.GPSLongitudeRef: "E",
            ExifTags.GPS.GPSLongitude: (float(int(lon)), (lon % 1) * 60, 0.0),
        }
    out = io.BytesIO()
    Image.new("RGB", size, (200, 60, 40)).save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A PNG of a few hundred bytes whose header claims ``width`` × ``height`` pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", rows)
        + png_chunk(b"IEND", b"")
    )


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG whose frame header (SOF0) claims ``width`` × ``height`` pixels."""
    data = bytearray(jpeg())
    at = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, at + 5, height, width)
    return bytes(data)


def zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("photo.jpg", jpeg())
    return out.getvalue()


def png_with_script_chunk() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "<script>alert(1)</script>")
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta><script>alert(2)</script></x:xmpmeta>")
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 120, 30)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


#: (id, file name, bytes, status, words of the message)
REFUSED: list[tuple[str, str, bytes, int, tuple[str, ...]]] = [
    (
        "decompression-bomb-png",
        "bomb.png",
        png_claiming(100_000, 100_000),
        422,
        ("100000 × 100000", "megapixels"),
    ),
    ("giant-dimensions-jpeg", "giant.jpg", jpeg_claiming(65_000, 65_000), 422, ("65000 × 65000",)),
    ("truncated-jpeg", "cut.jpg", jpeg(size=(640, 480))[:600], 422, ("truncated or corrupt",)),
    (
        "svg-named-jpg",
        "photo.jpg",
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        422,
        ("SVG",),
    ),
    (
        "svg-with-xml-declaration",
        "photo.jpg",
        b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>',
        422,
        ("SVG",),
    ),
    (
        "html-named-jpg",
        "photo.jpg",
        b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>",
        422,
        ("HTML",),
    ),
    ("zip-named-png", "photo.png", zip_bytes(), 422, ("ZIP",)),
    (
        "pdf-named-jpg",
        "photo.jpg",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
        422,
        ("PDF",),
    ),
    (
        "gif",
        "photo.gif",
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!",
        422,
        ("GIF",),
    ),
    ("empty-file", "photo.jpg", b"", 422, ("empty",)),
    ("plain-text", "photo.jpg", b"just some words, not a picture", 422, ("plain text",)),
    ("elf-program", "photo.jpg", b"\x7fELF\x02\x01\x01" + b"\x00" * 64, 422, ("program",)),
    (
        "heic-brand-with-garbage",
        "photo.heic",
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x13\x37" * 200,
        422,
        ("truncated or corrupt", "HEIC"),
    ),
    ("png-signature-only", "photo.png", b"\x89PNG\r\n\x1a\n", 422, ("truncated or corrupt",)),
]


@pytest.mark.parametrize(
    ("label", "name", "data", "status", "words"), REFUSED, ids=[r[0] for r in REFUSED]
)
def test_a_hostile_photo_upload_is_refused_naming_what_it_is_and_nothing_is_kept(
    world: World,
    api: Callable[[str], ApiClient],
    label: str,
    name: str,
    data: bytes,
    status: int,
    words: tuple[str, ...],
) -> None:
    with assert_nothing_stored(PhotoUpload, CasePhoto):
        r = api("grid_worker_a").post(PHOTOS, {"file": SimpleUploadedFile(name, data)})
    body = assert_refused(r, status)
    assert any(w.lower() in body["message"].lower() for w in words), body["message"]


def test_a_photo_over_the_size_limit_is_a_413(
    world: World, api: Callable[[str], ApiClient], settings: Any
) -> None:
    settings.GRIDGOV_PHOTO_MAX_MB = 0.01
    with assert_nothing_stored(PhotoUpload):
        r = api("grid_worker_a").post(
            PHOTOS, {"file": SimpleUploadedFile("big.jpg", jpeg() + b"\x00" * 20_000)}
        )
    assert_refused(r, 413, "limit")


def stored_jpeg(upload_id: str) -> bytes:
    """The bytes kept for an upload (the re-encoded JPEG)."""
    from gridgov.core.photos import photo_open

    upload = PhotoUpload.objects.get(uuid=upload_id)
    with photo_open(upload.stored().name) as handle:
        return bytes(handle.read())


def test_a_png_with_script_in_its_text_chunks_is_re_encoded_without_them(
    world: World, api: Callable[[str], ApiClient]
) -> None:
    r = api("grid_worker_a").post(
        PHOTOS, {"file": SimpleUploadedFile("chunk.png", png_with_script_chunk())}
    )
    assert r.status_code == 201, r.content
    kept = stored_jpeg(r.json()["id"])
    assert kept.startswith(b"\xff\xd8\xff") and b"<script" not in kept and b"xmpmeta" not in kept


def test_a_jpeg_with_html_appended_is_re_encoded_without_it(
    world: World, api: Callable[[str], ApiClient]
) -> None:
    polyglot = jpeg() + b"<html><script>alert(document.cookie)</script></html>"
    r = api("grid_worker_a").post(PHOTOS, {"file": SimpleUploadedFile("poly.jpg", polyglot)})
    assert r.status_code == 201, r.content
    assert b"<script" not in stored_jpeg(r.json()["id"])


@pytest.mark.parametrize("keep_gps", [False, True], ids=["gps-not-allowed", "gps-allowed"])
def test_a_jpeg_with_exif_gps_is_stored_without_exif_and_the_position_only_when_allowed(
    world: World, api: Callable[[str], ApiClient], keep_gps: bool
) -> None:
    data = jpeg(gps=(32.05, 118.82))
    r = api("grid_worker_a").post(
        PHOTOS,
        {"file": SimpleUploadedFile("gps.jpg", data), "keep_gps": "true" if keep_gps else "false"},
    )
    assert r.status_code == 201, r.content
    kept = stored_jpeg(r.json()["id"])
    with Image.open(io.BytesIO(kept)) as image:
        assert not image.getexif() and "exif" not in image.info
    assert b"HostileCam" not in kept and b"SN-0042" not in kept
    gps = r.json()["gps"]
    if keep_gps:
        assert gps == pytest.approx([32.05, 118.82], abs=1e-3)
    else:
        assert gps is None
        assert PhotoUpload.objects.get(uuid=r.json()["id"]).gps_lat is None


@pytest.mark.parametrize(
    ("label", "name", "data"),
    [
        (r[0], r[1], r[2])
        for r in REFUSED
        if r[0] in ("decompression-bomb-png", "svg-named-jpg", "zip-named-png")
    ],
    ids=["decompression-bomb-png", "svg-named-jpg", "zip-named-png"],
)
def test_the_web_report_form_refuses_a_hostile_photo_and_stores_no_case_and_no_file(
    world: World, web: Any, label: str, name: str, data: bytes
) -> None:
    category()
    with assert_nothing_stored(Case, CasePhoto, PhotoUpload):
        response = web("grid_worker_a").post(
            "/cases/report/",
            {
                "token": uuid.uuid4().hex,
                "category": "gbt47678:01002",
                "description": "井盖缺失",
                "urgency": "normal",
                "lat": str(LAT),
                "lon": str(LON),
                "photos": [SimpleUploadedFile(name, data, content_type="image/jpeg")],
            },
        )
    assert response.status_code == 422
    assert not media_files()


def test_a_hostile_photo_among_good_ones_leaves_no_file_of_the_good_ones(
    world: World, web: Any, media_root: Path
) -> None:
    """Files are written before rows: a refused report must remove what it wrote."""
    category()
    with assert_nothing_stored(Case, CasePhoto):
        response = web("grid_worker_a").post(
            "/cases/report/",
            {
                "token": uuid.uuid4().hex,
                "category": "gbt47678:01002",
                "description": "井盖缺失",
                "urgency": "normal",
                "lat": str(LAT),
                "lon": str(LON),
                "photos": [
                    SimpleUploadedFile("good.jpg", jpeg(), content_type="image/jpeg"),
                    SimpleUploadedFile("bomb.png", png_claiming(100_000, 100_000)),
                ],
            },
        )
    assert response.status_code == 422
    assert not media_files()
