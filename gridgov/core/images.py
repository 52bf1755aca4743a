"""Photo intake: check an uploaded photo and re-encode it as a clean JPEG (no models here).

``process_image(data, filename=..., keep_gps=...)`` accepts JPEG, PNG, WebP and HEIC/HEIF (what
phones send) and answers a ``ProcessedImage``; anything else raises ``ImageRejected`` (a
``DomainError``, 422; 413 when the file is too large) whose message names the problem.

The steps, cheapest first, so that a hostile file costs as little as possible:

1. **size**: an empty file, or one over ``GRIDGOV_PHOTO_MAX_MB`` (default 15), is refused before
   anything reads it;
2. **format**: the real format comes from the first bytes (magic numbers), never from the file
   name or the content type the client claims; SVG, HTML, GIF, PDF, text… are refused, naming
   what the file seems to be (an SVG can carry scripts, a GIF is not a photo);
3. **pixels**: the dimensions come from the header, before any pixel is decoded; an image over
   ``GRIDGOV_PHOTO_MAX_MEGAPIXELS`` (default 50) is refused (a decompression bomb: a few
   kilobytes that would decode into gigabytes). Pillow's own guard (``Image.MAX_IMAGE_PIXELS``)
   is kept at least as high as that limit so that gridgov's check speaks first; Pillow's
   ``DecompressionBombError`` for far larger images becomes an ``ImageRejected`` as well;
4. **decoding**: any decoder error (truncated, corrupt, unsupported variant) is an
   ``ImageRejected``, never a 500;
5. **re-encoding**: the EXIF orientation is applied to the pixels, colours are converted to sRGB
   (an embedded ICC profile, such as an iPhone's Display P3, is honoured), transparency is
   flattened onto white, the longest edge is capped at ``GRIDGOV_PHOTO_MAX_EDGE`` (default 2560)
   and the pixels are written as a new baseline JPEG with no EXIF, XMP, ICC profile or comment;
   bytes hidden after the image or in metadata do not survive. A 320-pixel thumbnail is made
   the same way.

The photo's GPS position is read from its EXIF before the metadata is dropped, and returned as
``ProcessedImage.gps`` only when the reporter allowed it (``keep_gps=True``) and the position is
well formed; (0, 0), the value of a phone without a fix, counts as no position.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import math
import unicodedata
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _
from PIL import ExifTags, Image, ImageCms, ImageOps

from gridgov.core.errors import DomainError

logger = logging.getLogger(__name__)

#: The formats accepted, by the name ``detect_format`` gives them, and Pillow's name for each.
ACCEPTED_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "heic": "HEIF"}
#: How messages name the accepted formats.
FORMAT_NAMES = {"jpeg": "JPEG", "png": "PNG", "webp": "WebP", "heic": "HEIC"}
#: Longest edge of the thumbnail, in pixels.
THUMBNAIL_EDGE = 320
JPEG_QUALITY = 85
THUMBNAIL_QUALITY = 80

_MB = 1024 * 1024
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
_HEIF_GENERIC_BRANDS = {b"mif1", b"msf1", b"mif2"}
_AVIF_BRANDS = {b"avif", b"avis"}
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_WIDE_GRAY_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N", "F"}


class ImageRejected(DomainError):
    """An uploaded photo that gridgov does not accept; the message says why."""

    status = 422


class ImageTooLarge(ImageRejected):
    """A photo over the byte limit (HTTP 413, Content Too Large)."""

    status = 413


@dataclass(frozen=True)
class ProcessedImage:
    """A photo re-encoded as a clean JPEG, with its thumbnail."""

    data: bytes
    thumbnail: bytes
    width: int
    height: int
    #: What the upload really was: "jpeg", "png", "webp" or "heic".
    source_format: str
    #: (latitude, longitude) in decimal degrees (WGS 84, as phones record it), or None.
    gps: tuple[float, float] | None
    #: Hex SHA-256 of ``data``.
    sha256: str


def photo_limits() -> tuple[int, int, int]:
    """(largest accepted size in bytes, largest pixel count, longest edge kept) from settings."""
    max_mb = float(getattr(settings, "GRIDGOV_PHOTO_MAX_MB", 15))
    max_megapixels = float(getattr(settings, "GRIDGOV_PHOTO_MAX_MEGAPIXELS", 50))
    max_edge = int(getattr(settings, "GRIDGOV_PHOTO_MAX_EDGE", 2560))
    return int(max_mb * _MB), int(max_megapixels * 1_000_000), max(1, max_edge)


def process_image(data: bytes, *, filename: str = "", keep_gps: bool = False) -> ProcessedImage:
    """Check ``data`` and re-encode it; ``ImageRejected`` (422/413) names what is wrong.

    ``filename`` only names the file in messages; the format is read from the bytes.
    """
    name = _display_name(filename)
    max_bytes, max_pixels, max_edge = photo_limits()
    if not data:
        raise ImageRejected(_("%(name)s is empty") % {"name": name}, detail={"reason": "empty"})
    if len(data) > max_bytes:
        raise ImageTooLarge(
            _("%(name)s is %(size)s MB; the limit is %(limit)s MB")
            % {"name": name, "size": _megabytes(len(data)), "limit": _number(max_bytes / _MB)},
            detail={"reason": "too_large", "size": len(data), "limit": max_bytes},
        )
    kind = detect_format(data)
    if kind not in ACCEPTED_FORMATS:
        raise ImageRejected(
            _("%(name)s is not a JPEG, PNG, WebP or HEIC image (it looks like %(kind)s)")
            % {"name": name, "kind": _kind_label(kind)},
            detail={"reason": "format", "detected": kind},
        )
    if kind == "heic":
        _register_heif()
    _align_pillow_bomb_guard(max_pixels)
    try:
        return _process(
            data, kind=kind, name=name, keep_gps=keep_gps, max_pixels=max_pixels, edge=max_edge
        )
    except ImageRejected:
        raise
    except Image.DecompressionBombError as exc:
        raise _too_many_pixels(name, _header_size(data, kind), max_pixels) from exc
    except Exception as exc:  # any decoder error: the file is refused, never a 500
        logger.info("photo %r (%s) rejected: %s: %s", name, kind, type(exc).__name__, exc)
        raise ImageRejected(
            _("%(name)s is truncated or corrupt; it cannot be read as a %(format)s image")
            % {"name": name, "format": FORMAT_NAMES[kind]},
            detail={"reason": "corrupt", "detected": kind},
        ) from exc


def detect_format(data: bytes) -> str:
    """What ``data`` is, from its first bytes.

    One of the accepted formats ("jpeg", "png", "webp", "heic"), or what a refused file seems to
    be: "svg", "html", "xml", "text", "gif", "pdf", "bmp", "tiff", "avif", "jxl", "ico", "psd",
    "video", "zip", "archive", "program", "unknown".
    """
    head = data[:4096]
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp":
        return _iso_media_kind(head)
    for magic, kind in _BINARY_MAGIC:
        if head.startswith(magic):
            return kind
    text = _text_head(head)
    if text is not None:
        return _text_kind(text)
    for magic, kind in _WEAK_MAGIC:  # two-letter signatures: only once text is ruled out
        if head.startswith(magic):
            return kind
    return "unknown"


_BINARY_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"%PDF-", "pdf"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"\xff\x0a", "jxl"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "jxl"),
    (b"\x00\x00\x01\x00", "ico"),
    (b"8BPS", "psd"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"\x1f\x8b", "archive"),
    (b"7z\xbc\xaf\x27\x1c", "archive"),
    (b"Rar!\x1a\x07", "archive"),
    (b"\xfd7zXZ\x00", "archive"),
    (b"BZh", "archive"),
    (b"\x7fELF", "program"),
    (b"\xcf\xfa\xed\xfe", "program"),
    (b"\xfe\xed\xfa\xcf", "program"),
    (b"\x1a\x45\xdf\xa3", "video"),  # Matroska, WebM
    (b"RIFF", "video"),  # AVI, WAVE (WebP was recognised above)
    (b"ID3", "video"),  # MP3
    (b"OggS", "video"),
)
_WEAK_MAGIC: tuple[tuple[bytes, str], ...] = ((b"BM", "bmp"), (b"MZ", "program"))


def _iso_media_kind(head: bytes) -> str:
    """HEIC/HEIF, AVIF or a video, from the brands of an ISO media file's ``ftyp`` box."""
    box_size = int.from_bytes(head[:4], "big")
    end = min(max(box_size, 16), len(head))
    brands = {head[8:12]} | {head[i : i + 4] for i in range(16, end - 3, 4)}
    if brands & _HEIC_BRANDS:
        return "heic"
    if brands & _AVIF_BRANDS:
        return "avif"
    if brands & _HEIF_GENERIC_BRANDS:
        return "heic"  # a HEIF container; the decoder decides whether it can read it
    return "video"


def _text_head(head: bytes) -> str | None:
    """The start of ``head`` as text, or None when it is binary."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return head[: len(head) // 2 * 2].decode("utf-16", errors="strict")
        except UnicodeDecodeError:
            return None
    if b"\x00" in head:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not merely a character cut at the end of the sample
            return None
        text = head[: exc.start].decode("utf-8")
    if not text:
        return None
    printable = sum(1 for ch in text if ch.isprintable() or ch in "\t\r\n\f")
    return text if printable >= 0.95 * len(text) else None


def _text_kind(text: str) -> str:
    start = text.lstrip("\ufeff \t\r\n").lower()
    if start.startswith(("<!doctype html", "<html")):
        return "html"
    if "<svg" in start:
        return "svg"
    if start.startswith("<?xml"):
        return "xml"
    if any(tag in start for tag in ("<html", "<head", "<body", "<script", "<iframe", "<div")):
        return "html"
    return "text"


def _kind_label(kind: str) -> str:
    labels = {
        "svg": _("an SVG drawing"),
        "html": _("an HTML page"),
        "xml": _("XML text"),
        "text": _("plain text"),
        "gif": _("a GIF image"),
        "pdf": _("a PDF document"),
        "bmp": _("a BMP image"),
        "tiff": _("a TIFF image"),
        "avif": _("an AVIF image"),
        "jxl": _("a JPEG XL image"),
        "ico": _("a Windows icon"),
        "psd": _("a Photoshop document"),
        "video": _("a video or audio file"),
        "zip": _("a ZIP archive or an Office document"),
        "archive": _("a compressed archive"),
        "program": _("a program"),
    }
    return labels.get(kind, _("data in no known image format"))


# --- decoding and re-encoding --------------------------------------------------------------------


@functools.cache
def _register_heif() -> None:
    """Teach Pillow to open HEIC/HEIF, on first use (pillow-heif loads libheif)."""
    from pillow_heif import register_heif_opener

    # Only the primary image is wanted: skip the embedded thumbnails, depth and auxiliary images.
    register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)


def _align_pillow_bomb_guard(max_pixels: int) -> None:
    """Keep Pillow's process-wide guard no lower than gridgov's limit, so gridgov's check (with
    the dimensions in its message) speaks first; Pillow still raises for twice as much."""
    current = Image.MAX_IMAGE_PIXELS
    if current is not None and current < max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels


def _process(
    data: bytes, *, kind: str, name: str, keep_gps: bool, max_pixels: int, edge: int
) -> ProcessedImage:
    # Image.open reads the header only; no pixel is decoded before the size check below.
    with Image.open(io.BytesIO(data), formats=[ACCEPTED_FORMATS[kind]]) as source:
        width, height = source.size
        if width * height > max_pixels:
            raise _too_many_pixels(name, (width, height), max_pixels)
        if source.format in ("JPEG", "MPO"):
            # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when the result is still large enough.
            source.draft(None, (edge, edge))
        source.load()
        gps = _exif_gps(source) if keep_gps else None
        image = _to_srgb(ImageOps.exif_transpose(source))
    image.thumbnail((edge, edge), Image.Resampling.LANCZOS)
    thumb = image.copy()
    thumb.thumbnail((THUMBNAIL_EDGE, THUMBNAIL_EDGE), Image.Resampling.LANCZOS)
    full = _encode_jpeg(image, JPEG_QUALITY)
    return ProcessedImage(
        data=full,
        thumbnail=_encode_jpeg(thumb, THUMBNAIL_QUALITY),
        width=image.width,
        height=image.height,
        source_format=kind,
        gps=gps,
        sha256=hashlib.sha256(full).hexdigest(),
    )


def _header_size(data: bytes, kind: str) -> tuple[int, int] | None:
    """Width and height from the header alone, bypassing Pillow's guard (for the message)."""
    try:
        factory, _accept = Image.OPEN[ACCEPTED_FORMATS[kind]]
        return factory(io.BytesIO(data), "").size
    except Exception:
        return None


def _to_srgb(image: Image.Image) -> Image.Image:
    """8-bit sRGB with no alpha: wide greys scaled, transparency on white, ICC honoured."""
    icc = image.info.get("icc_profile")
    if image.mode in _WIDE_GRAY_MODES:
        image = _wide_gray_to_l(image)
    if image.mode == "P" or "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in _ALPHA_MODES:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba).convert("RGB")
    if icc:
        try:
            converted = ImageCms.profileToProfile(
                image, ImageCms.ImageCmsProfile(io.BytesIO(icc)), _srgb_profile(), outputMode="RGB"
            )
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as exc:
            logger.info("photo colour profile ignored: %s", exc)
        else:
            if converted is not None:
                image = converted
    return image if image.mode == "RGB" else image.convert("RGB")


def _wide_gray_to_l(image: Image.Image) -> Image.Image:
    """16-bit (or 32-bit) grey as 8-bit "L"; Pillow's own conversion clips instead of scaling."""
    import numpy as np

    values = np.asarray(image, dtype=np.float64)
    top = 65535.0 if image.mode != "F" else max(float(values.max(initial=0.0)), 1.0)
    scaled = np.clip(values * (255.0 / top), 0, 255).round().astype(np.uint8)
    return Image.fromarray(scaled, mode="L")


@functools.cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _encode_jpeg(image: Image.Image, quality: int) -> bytes:
    # A fresh info dict: Pillow would otherwise copy a JPEG comment into the output. No exif,
    # icc_profile or comment argument is given, so none is written.
    image.info = {}
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()


def _exif_gps(image: Image.Image) -> tuple[float, float] | None:
    """The (latitude, longitude) of the photo's EXIF GPS block, or None if absent or malformed."""
    try:
        gps = image.getexif().get_ifd(ExifTags.IFD.GPSInfo)
        lat = _gps_degrees(
            gps.get(ExifTags.GPS.GPSLatitude), gps.get(ExifTags.GPS.GPSLatitudeRef), "N", "S", 90
        )
        lon = _gps_degrees(
            gps.get(ExifTags.GPS.GPSLongitude), gps.get(ExifTags.GPS.GPSLongitudeRef), "E", "W", 180
        )
    except Exception as exc:  # broken EXIF is no reason to refuse the photo
        logger.info("photo GPS ignored: %s: %s", type(exc).__name__, exc)
        return None
    if lat is None or lon is None or (lat == 0 and lon == 0):
        return None
    return round(lat, 7), round(lon, 7)


def _gps_degrees(value: Any, ref: Any, plus: str, minus: str, limit: float) -> float | None:
    """Degrees from EXIF's (degrees, minutes, seconds) rationals and an N/S or E/W reference."""
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", errors="replace")
    if not isinstance(ref, str) or ref.strip("\x00 ").upper() not in (plus, minus):
        return None
    parts = list(value) if isinstance(value, tuple | list) else [value]
    if not 1 <= len(parts) <= 3:
        return None
    numbers = [float(part) for part in parts]
    if not all(math.isfinite(n) and n >= 0 for n in numbers):
        return None
    if any(n >= 60 for n in numbers[1:2]) or any(n > 60 for n in numbers[2:3]):
        return None
    degrees = sum(n / 60**i for i, n in enumerate(numbers))
    if degrees > limit:
        return None
    return -degrees if ref.strip("\x00 ").upper() == minus else degrees


# --- messages ------------------------------------------------------------------------------------


def _too_many_pixels(name: str, size: tuple[int, int] | None, max_pixels: int) -> ImageRejected:
    limit = _number(max_pixels / 1_000_000)
    if size is None:  # Pillow's own guard fired: far above the limit
        return ImageRejected(
            _("%(name)s has far more than %(limit)s megapixels, the limit")
            % {"name": name, "limit": limit},
            detail={"reason": "too_many_pixels", "limit": max_pixels},
        )
    width, height = size
    return ImageRejected(
        _("%(name)s is %(width)s × %(height)s pixels; the limit is %(limit)s megapixels")
        % {"name": name, "width": width, "height": height, "limit": limit},
        detail={
            "reason": "too_many_pixels",
            "width": width,
            "height": height,
            "limit": max_pixels,
        },
    )


def _display_name(filename: str) -> str:
    """The base name of the upload, made safe to show (no path, no control characters)."""
    base = str(filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    if len(base) > 80:
        base = base[:77] + "..."
    return base or _("the photo")


def _megabytes(size: int) -> str:
    """Size in MB with one decimal, rounded up so that a file over the limit never reads equal."""
    return _number(math.ceil(size * 10 / _MB) / 10)


def _number(value: float) -> str:
    """``15``, ``23.4``, ``0.25``: at most two decimals, no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")
