"""Photo intake: what phones send is re-encoded clean; anything else is refused, saying why."""

from __future__ import annotations

import io
import struct
import time
import zlib
from typing import Any

import numpy as np
import pillow_heif
import pytest
from PIL import ExifTags, Image, ImageCms, ImageFile

from gridgov.core.images import (
    THUMBNAIL_EDGE,
    ImageRejected,
    ImageTooLarge,
    ProcessedImage,
    detect_format,
    process_image,
)

pytestmark = pytest.mark.usefixtures("english")

#: Xianlin, Qixia district: 32° 6' 36" N, 118° 54' 36" E.
XIANLIN = ((32.0, 6.0, 36.0), (118.0, 54.0, 36.0))
XIANLIN_DEGREES = (32.11, 118.91)


def phone_exif(
    *,
    orientation: int = 1,
    position: tuple[tuple[float, float, float], tuple[float, float, float]] | None = XIANLIN,
    refs: tuple[str, str] = ("N", "E"),
) -> bytes:
    """EXIF as a phone writes it: maker, orientation, GPS."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "GridPhone"
    exif[ExifTags.Base.Model] = "Secret Model 7"
    exif[ExifTags.Base.Orientation] = orientation
    if position is not None:
        exif[ExifTags.IFD.GPSInfo] = {
            ExifTags.GPS.GPSLatitudeRef: refs[0],
            ExifTags.GPS.GPSLatitude: position[0],
            ExifTags.GPS.GPSLongitudeRef: refs[1],
            ExifTags.GPS.GPSLongitude: position[1],
        }
    return exif.tobytes()


def encoded(image: Image.Image, fmt: str, **params: Any) -> bytes:
    if fmt == "HEIF":
        pillow_heif.register_heif_opener()
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def landscape(size: tuple[int, int] = (400, 200), colour: str = "#3366cc") -> Image.Image:
    return Image.new("RGB", size, colour)


def assert_clean_jpeg(data: bytes) -> None:
    """A JPEG with no EXIF, XMP, ICC profile or comment."""
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        assert image.mode == "RGB"
        assert not image.getexif()
        assert {"exif", "icc_profile", "xmp", "comment", "photoshop"}.isdisjoint(image.info)
    for marker in (b"Exif", b"ICC_PROFILE", b"http://ns.adobe.com", b"GridPhone", b"Secret"):
        assert marker not in data


def pixel(data: bytes, xy: tuple[int, int]) -> tuple[int, ...]:
    with Image.open(io.BytesIO(data)) as image:
        return tuple(image.convert("RGB").getpixel(xy))  # type: ignore[arg-type]


def png_claiming(width: int, height: int) -> bytes:
    """A few dozen bytes of PNG whose header claims ``width`` × ``height`` pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def rejected(data: bytes, filename: str = "", **kwargs: Any) -> ImageRejected:
    with pytest.raises(ImageRejected) as caught:
        process_image(data, filename=filename, **kwargs)
    return caught.value


# --- what is accepted ----------------------------------------------------------------------------


def test_a_phone_jpeg_is_re_encoded_without_exif_and_upright() -> None:
    data = encoded(landscape(), "JPEG", exif=phone_exif(orientation=6), comment=b"Secret note")
    photo = process_image(data, filename="IMG_0001.jpg")
    assert isinstance(photo, ProcessedImage)
    assert (photo.width, photo.height) == (200, 400)  # turned upright: orientation 6
    assert photo.source_format == "jpeg"
    assert photo.gps is None  # the reporter did not allow it
    assert_clean_jpeg(photo.data)
    with Image.open(io.BytesIO(photo.data)) as image:
        assert image.size == (200, 400)


def test_the_gps_position_is_kept_as_a_field_only_when_the_reporter_allows_it() -> None:
    data = encoded(landscape(), "JPEG", exif=phone_exif())
    assert process_image(data, keep_gps=False).gps is None
    kept = process_image(data, keep_gps=True)
    assert kept.gps == pytest.approx(XIANLIN_DEGREES)
    assert_clean_jpeg(kept.data)  # the position is a field, never in the file


def test_southern_and_western_positions_are_negative() -> None:
    data = encoded(landscape(), "JPEG", exif=phone_exif(refs=("S", "W")))
    assert process_image(data, keep_gps=True).gps == pytest.approx((-32.11, -118.91))


@pytest.mark.parametrize(
    ("position", "refs"),
    [
        (((95.0, 0.0, 0.0), (118.0, 0.0, 0.0)), ("N", "E")),  # latitude out of range
        (((32.0, 0.0, 0.0), (181.0, 0.0, 0.0)), ("N", "E")),  # longitude out of range
        (((32.0, 75.0, 0.0), (118.0, 0.0, 0.0)), ("N", "E")),  # 75 minutes
        (((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)), ("N", "E")),  # a phone without a fix
        (XIANLIN, ("X", "E")),  # no valid reference
    ],
)
def test_a_malformed_or_empty_gps_position_is_no_position(
    position: tuple[tuple[float, float, float], tuple[float, float, float]],
    refs: tuple[str, str],
) -> None:
    data = encoded(landscape(), "JPEG", exif=phone_exif(position=position, refs=refs))
    photo = process_image(data, keep_gps=True)
    assert photo.gps is None
    assert_clean_jpeg(photo.data)


def test_a_photo_without_gps_has_no_position_even_when_allowed() -> None:
    data = encoded(landscape(), "JPEG", exif=phone_exif(position=None))
    assert process_image(data, keep_gps=True).gps is None


def test_a_heic_photo_from_a_phone_is_stored_as_jpeg_without_exif_and_upright() -> None:
    data = encoded(landscape(), "HEIF", exif=phone_exif(orientation=6), quality=80)
    assert detect_format(data) == "heic"
    photo = process_image(data, filename="IMG_0002.HEIC", keep_gps=True)
    assert photo.source_format == "heic"
    assert (photo.width, photo.height) == (200, 400)
    assert photo.gps == pytest.approx(XIANLIN_DEGREES)
    assert_clean_jpeg(photo.data)
    assert_clean_jpeg(photo.thumbnail)


def test_a_png_with_transparency_is_flattened_onto_white() -> None:
    image = Image.new("RGBA", (100, 50), (255, 0, 0, 255))
    image.paste((0, 0, 0, 0), (50, 0, 100, 50))  # the right half fully transparent
    photo = process_image(encoded(image, "PNG", exif=phone_exif(orientation=3)))
    assert photo.source_format == "png"
    assert_clean_jpeg(photo.data)
    # Orientation 3 turned it half a turn: the transparent half is now on the left.
    assert all(channel > 245 for channel in pixel(photo.data, (10, 25)))
    red, green, blue = pixel(photo.data, (90, 25))
    assert red > 240 and green < 20 and blue < 20


def test_a_palette_png_with_a_transparent_colour_is_flattened_onto_white() -> None:
    image = Image.new("P", (40, 40), 0)
    image.putpalette([0, 0, 0, 0, 128, 0] + [0] * 762)
    image.paste(1, (20, 0, 40, 40))
    photo = process_image(encoded(image, "PNG", transparency=0))
    assert all(channel > 245 for channel in pixel(photo.data, (5, 20)))
    red, green, blue = pixel(photo.data, (35, 20))
    assert green > 100 and red < 30 and blue < 30


def test_a_16_bit_grey_png_is_scaled_not_clipped() -> None:
    image = Image.fromarray(np.full((30, 30), 32768, dtype=np.uint16))
    assert image.mode == "I;16"
    value = pixel(process_image(encoded(image, "PNG")).data, (15, 15))
    assert all(120 <= channel <= 136 for channel in value)


def test_a_webp_photo_is_re_encoded_as_jpeg() -> None:
    data = encoded(landscape(), "WEBP", exif=phone_exif(orientation=8))
    photo = process_image(data, keep_gps=True)
    assert photo.source_format == "webp"
    assert (photo.width, photo.height) == (200, 400)
    assert photo.gps == pytest.approx(XIANLIN_DEGREES)
    assert_clean_jpeg(photo.data)


def test_a_cmyk_jpeg_becomes_rgb() -> None:
    photo = process_image(encoded(Image.new("CMYK", (60, 40), (0, 255, 255, 0)), "JPEG"))
    assert_clean_jpeg(photo.data)
    red, green, blue = pixel(photo.data, (30, 20))
    assert red > 200 and green < 60 and blue < 60


def test_an_embedded_colour_profile_is_applied_and_dropped() -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    photo = process_image(encoded(landscape(), "JPEG", icc_profile=srgb))
    assert_clean_jpeg(photo.data)


def test_a_one_pixel_photo_is_accepted() -> None:
    photo = process_image(encoded(Image.new("RGB", (1, 1), "white"), "PNG"))
    assert (photo.width, photo.height) == (1, 1)
    with Image.open(io.BytesIO(photo.thumbnail)) as thumbnail:
        assert thumbnail.size == (1, 1)


def test_the_thumbnail_fits_in_320_pixels_and_keeps_the_shape() -> None:
    photo = process_image(encoded(landscape((1000, 500)), "JPEG"))
    with Image.open(io.BytesIO(photo.thumbnail)) as thumbnail:
        assert thumbnail.format == "JPEG"
        assert thumbnail.size == (THUMBNAIL_EDGE, THUMBNAIL_EDGE // 2)
    assert_clean_jpeg(photo.thumbnail)


def test_the_longest_edge_is_capped_by_the_setting(settings: Any) -> None:
    settings.GRIDGOV_PHOTO_MAX_EDGE = 100
    photo = process_image(encoded(landscape((400, 300)), "JPEG", exif=phone_exif(orientation=6)))
    assert (photo.width, photo.height) == (75, 100)


def test_a_large_photo_is_scaled_down_to_the_longest_edge_kept() -> None:
    photo = process_image(encoded(landscape((6000, 4000)), "JPEG", quality=50))
    assert (photo.width, photo.height) == (2560, 1707)


def test_bytes_hidden_after_the_image_do_not_survive() -> None:
    data = encoded(landscape(), "JPEG") + b"PK\x03\x04<script>alert(1)</script>"
    photo = process_image(data)
    assert b"script" not in photo.data
    assert b"PK\x03\x04" not in photo.data


def test_the_hash_is_the_sha256_of_the_re_encoded_photo() -> None:
    import hashlib

    photo = process_image(encoded(landscape(), "PNG"))
    assert photo.sha256 == hashlib.sha256(photo.data).hexdigest()


# --- what is refused -----------------------------------------------------------------------------


def test_an_svg_named_jpg_is_refused_naming_svg() -> None:
    svg = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>'
    error = rejected(svg, "photo.jpg")
    assert error.status == 422
    assert error.message == (
        "photo.jpg is not a JPEG, PNG, WebP or HEIC image (it looks like an SVG drawing)"
    )
    assert error.detail == {"reason": "format", "detected": "svg"}


def test_an_html_page_named_jpg_is_refused_naming_html() -> None:
    error = rejected(b"\n<!DOCTYPE html><html><body>hi</body></html>", "photo.jpg")
    assert error.status == 422
    assert "it looks like an HTML page" in error.message
    assert error.detail["detected"] == "html"


@pytest.mark.parametrize(
    ("data", "kind", "words"),
    [
        (b"GIF89a\x01\x00\x01\x00\x80\x00\x00", "gif", "a GIF image"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "pdf", "a PDF document"),
        (b"just some notes about the drain\n", "text", "plain text"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf", "avif", "an AVIF image"),
        (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom", "video", "a video or audio file"),
        (b"PK\x03\x04\x14\x00\x06\x00", "zip", "a ZIP archive"),
        (b"\x7fELF\x02\x01\x01\x00", "program", "a program"),
        (bytes(range(256)) * 4, "unknown", "data in no known image format"),
    ],
)
def test_other_files_are_refused_naming_what_they_seem_to_be(
    data: bytes, kind: str, words: str
) -> None:
    error = rejected(data, "photo.jpg")
    assert error.status == 422
    assert error.message.startswith("photo.jpg is not a JPEG, PNG, WebP or HEIC image")
    assert words in error.message
    assert error.detail == {"reason": "format", "detected": kind}


def test_a_real_gif_is_refused() -> None:
    error = rejected(encoded(landscape((10, 10)), "GIF"), "photo.png")
    assert "it looks like a GIF image" in error.message


def test_an_empty_file_is_refused() -> None:
    error = rejected(b"", "photo.jpg")
    assert error.status == 422
    assert error.message == "photo.jpg is empty"


def test_a_truncated_jpeg_is_refused_as_truncated_or_corrupt() -> None:
    data = encoded(landscape((300, 300), "#884422"), "JPEG")
    error = rejected(data[: len(data) // 2], "photo.jpg")
    assert error.status == 422
    assert error.message == "photo.jpg is truncated or corrupt; it cannot be read as a JPEG image"
    assert error.detail == {"reason": "corrupt", "detected": "jpeg"}


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "HEIF"])
def test_a_corrupt_photo_of_each_accepted_format_is_refused(fmt: str) -> None:
    data = bytearray(encoded(landscape((64, 64)), fmt))
    data[len(data) // 3 :] = b"\x00" * (len(data) - len(data) // 3)
    assert rejected(bytes(data)).detail["reason"] == "corrupt"


def test_a_decompression_bomb_is_refused_from_its_header_before_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_decoding(self: Any) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    started = time.monotonic()
    error = rejected(png_claiming(100_000, 100_000), "bomb.png")
    assert time.monotonic() - started < 1
    assert error.status == 422
    assert error.message == "bomb.png is 100000 × 100000 pixels; the limit is 50 megapixels"
    assert error.detail["reason"] == "too_many_pixels"


def test_an_image_just_over_the_pixel_limit_is_refused_with_its_size() -> None:
    error = rejected(png_claiming(8000, 8000), "big.png")
    assert error.message == "big.png is 8000 × 8000 pixels; the limit is 50 megapixels"
    assert error.detail == {
        "reason": "too_many_pixels",
        "width": 8000,
        "height": 8000,
        "limit": 50_000_000,
    }


def test_the_pixel_limit_follows_the_setting(settings: Any) -> None:
    settings.GRIDGOV_PHOTO_MAX_MEGAPIXELS = 0.01
    error = rejected(encoded(landscape((200, 100)), "JPEG"))
    assert error.message == "the photo is 200 × 100 pixels; the limit is 0.01 megapixels"


def test_a_file_over_the_size_limit_is_refused_with_413_before_reading_it(settings: Any) -> None:
    settings.GRIDGOV_PHOTO_MAX_MB = 1
    data = b"\xff\xd8\xff" + b"\x00" * (1536 * 1024)
    with pytest.raises(ImageTooLarge) as caught:
        process_image(data, filename="photo.jpg")
    error = caught.value
    assert error.status == 413
    assert error.message == "photo.jpg is 1.6 MB; the limit is 1 MB"
    assert error.detail == {"reason": "too_large", "size": len(data), "limit": 1024 * 1024}


def test_the_file_name_in_a_message_loses_its_path_and_control_characters() -> None:
    error = rejected(b"", "C:\\Users\\me\\evil\u202egpj.exe")
    assert error.message == "evilgpj.exe is empty"


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"\xff\xd8\xff\xe0", "jpeg"),
        (b"\x89PNG\r\n\x1a\n", "png"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic", "heic"),
        (b"\x00\x00\x00\x18ftypheix\x00\x00\x00\x00mif1heix", "heic"),
        (b"\xef\xbb\xbf  <svg viewBox='0 0 1 1'/>", "svg"),
        (b"<?xml version='1.0'?><note/>", "xml"),
        (b"BM\x36\x00\x0c\x00\x00\x00\x00\x00\x36\x00\x00\x00", "bmp"),
        (b"II*\x00\x08\x00\x00\x00", "tiff"),
    ],
)
def test_the_format_is_read_from_the_first_bytes(data: bytes, kind: str) -> None:
    assert detect_format(data) == kind
