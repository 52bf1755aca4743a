"""Photo storage: a photo and its thumbnail are kept under unguessable names, and only them."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import FileSystemStorage
from PIL import ExifTags, Image

from gridgov.core.errors import NotFound
from gridgov.core.images import ImageRejected
from gridgov.core.photos import CONTENT_TYPE, photo_delete, photo_open, photo_save

pytestmark = pytest.mark.usefixtures("english")

STORED_NAME = re.compile(r"photos/\d{4}/\d{2}/[0-9a-f]{32}\.jpg")


@pytest.fixture
def media(settings: Any, tmp_path: Path) -> Path:
    """A local media directory of the test's own, whatever the environment configures."""
    settings.MEDIA_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    }
    return tmp_path


def phone_jpeg(size: tuple[int, int] = (600, 400)) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (32.0, 6.0, 36.0),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (118.0, 54.0, 36.0),
    }
    out = io.BytesIO()
    Image.new("RGB", size, "#228844").save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


def stored_files(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def test_a_photo_is_stored_with_its_thumbnail_under_unguessable_names(media: Path) -> None:
    photo = photo_save(data=phone_jpeg(), filename="drain by the school.jpg")
    assert STORED_NAME.fullmatch(photo.name)
    assert photo.thumbnail_name == photo.name.removesuffix(".jpg") + "_thumb.jpg"
    assert stored_files(media) == sorted([photo.name, photo.thumbnail_name])
    assert "school" not in photo.name
    full = (media / photo.name).read_bytes()
    assert photo.size == len(full)
    assert photo.sha256 == hashlib.sha256(full).hexdigest()
    assert (photo.width, photo.height) == (400, 600)
    assert photo.source_format == "jpeg"
    assert photo.gps is None
    with Image.open(media / photo.name) as image:
        assert image.size == (400, 600)
        assert not image.getexif()
    with Image.open(media / photo.thumbnail_name) as thumbnail:
        assert max(thumbnail.size) <= 320


def test_the_same_photo_uploaded_twice_gets_two_different_names(media: Path) -> None:
    first = photo_save(data=phone_jpeg())
    second = photo_save(data=phone_jpeg())
    assert first.name != second.name
    assert first.sha256 == second.sha256
    assert len(stored_files(media)) == 4


def test_the_gps_position_is_returned_only_when_the_reporter_allows_it(media: Path) -> None:
    assert photo_save(data=phone_jpeg()).gps is None
    kept = photo_save(data=phone_jpeg(), keep_gps=True)
    assert kept.gps == pytest.approx((32.11, 118.91))
    assert b"Exif" not in (media / kept.name).read_bytes()


def test_a_caller_chooses_the_folder(media: Path) -> None:
    photo = photo_save(data=phone_jpeg(), folder="cases/evidence")
    assert re.fullmatch(r"cases/evidence/\d{4}/\d{2}/[0-9a-f]{32}\.jpg", photo.name)
    assert (media / photo.thumbnail_name).is_file()


@pytest.mark.parametrize("folder", ["", "../var", "/etc", "photos/", "a//b", "photos/.."])
def test_a_folder_outside_the_media_storage_is_a_programming_error(
    media: Path, folder: str
) -> None:
    with pytest.raises(ValueError, match="folder"):
        photo_save(data=phone_jpeg(), folder=folder)
    assert stored_files(media) == []


def test_a_refused_file_stores_nothing(media: Path) -> None:
    with pytest.raises(ImageRejected) as caught:
        photo_save(data=b"<svg xmlns='http://www.w3.org/2000/svg'/>", filename="photo.jpg")
    assert caught.value.status == 422
    assert "SVG" in caught.value.message
    assert stored_files(media) == []


def test_a_failure_storing_the_thumbnail_removes_the_full_image(
    media: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_save = FileSystemStorage.save

    def save(self: FileSystemStorage, name: str, content: Any, **kwargs: Any) -> str:
        if name.endswith("_thumb.jpg"):
            raise OSError("disk full")
        return real_save(self, name, content, **kwargs)

    monkeypatch.setattr(FileSystemStorage, "save", save)
    with pytest.raises(OSError, match="disk full"):
        photo_save(data=phone_jpeg())
    assert stored_files(media) == []


def test_photo_delete_removes_the_photo_and_its_thumbnail(media: Path) -> None:
    kept = photo_save(data=phone_jpeg())
    gone = photo_save(data=phone_jpeg())
    photo_delete(gone.name)
    assert stored_files(media) == sorted([kept.name, kept.thumbnail_name])
    photo_delete(gone.name)  # again: nothing left to remove, no error
    photo_delete(kept.thumbnail_name)  # the thumbnail's name will do as well
    assert stored_files(media) == []


def test_a_stored_photo_is_read_back_through_the_storage(media: Path) -> None:
    photo = photo_save(data=phone_jpeg())
    with photo_open(photo.name) as stored:
        assert hashlib.sha256(stored.read()).hexdigest() == photo.sha256
    with photo_open(photo.thumbnail_name) as thumbnail:
        assert thumbnail.read(3) == b"\xff\xd8\xff"
    assert CONTENT_TYPE == "image/jpeg"


def test_opening_a_removed_photo_answers_not_found(media: Path) -> None:
    photo = photo_save(data=phone_jpeg())
    photo_delete(photo.name)
    with pytest.raises(NotFound) as caught:
        photo_open(photo.name)
    assert caught.value.status == 404
    assert caught.value.message == "this photo is no longer stored"


@pytest.mark.parametrize(
    "name",
    [
        "secret_key",
        "../secret_key",
        "imports/0123456789abcdef0123456789abcdef/ledger.csv",
        "photos/2026/01/../../../secret_key.jpg",
        "/photos/2026/01/0123456789abcdef0123456789abcdef.jpg",
        "photos/2026/01/0123456789ABCDEF0123456789ABCDEF.jpg",
    ],
)
def test_names_that_photo_save_cannot_have_made_are_refused(media: Path, name: str) -> None:
    (media / "secret_key").write_text("keep me")
    with pytest.raises(ValueError, match="not the name of a stored photo"):
        photo_open(name)
    with pytest.raises(ValueError, match="not the name of a stored photo"):
        photo_delete(name)
    assert (media / "secret_key").read_text() == "keep me"
