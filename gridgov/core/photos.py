"""Photo storage: a checked, re-encoded photo and its thumbnail kept through Django's storage API.

``photo_save`` runs ``gridgov.core.images.process_image`` on the uploaded bytes (so everything it
refuses raises ``ImageRejected``, 422/413) and writes two JPEG files through ``default_storage``
(the local ``MEDIA_ROOT`` by default, an S3-compatible bucket with ``GRIDGOV_MEDIA_STORAGE=s3``)::

    <folder>/YYYY/MM/<32 random hex digits>.jpg
    <folder>/YYYY/MM/<32 random hex digits>_thumb.jpg

The names are unguessable (uuid4) and say nothing of the upload's own name. ``MEDIA_ROOT`` is
never served by the site: a view that has checked the user's permission streams a photo with
``photo_open``.

Files are not part of a database transaction. Save the photo first, then write the rows that
name it; if that transaction fails, remove the files::

    stored = photo_save(data=data, filename=upload.name, keep_gps=allowed)
    try:
        with transaction.atomic():
            ...  # rows that keep stored.name and stored.thumbnail_name
    except BaseException:
        photo_delete(stored.name)
        raise
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from django.utils.translation import gettext as _

from gridgov.core.errors import NotFound
from gridgov.core.images import process_image

#: What every stored photo is served as.
CONTENT_TYPE = "image/jpeg"
THUMBNAIL_SUFFIX = "_thumb"

_FOLDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(?:/[A-Za-z0-9][A-Za-z0-9_-]*)*")
_NAME = re.compile(
    r"(?P<stem>(?:[A-Za-z0-9][A-Za-z0-9_-]*/)+\d{4}/\d{2}/[0-9a-f]{32})(?:_thumb)?\.jpg"
)


@dataclass(frozen=True)
class StoredPhoto:
    """Where a photo was stored and what it is."""

    #: Storage name of the full image (re-encoded JPEG).
    name: str
    #: Storage name of its thumbnail (JPEG, longest edge 320 pixels).
    thumbnail_name: str
    width: int
    height: int
    #: Size of the full image in bytes.
    size: int
    #: Hex SHA-256 of the full image.
    sha256: str
    #: (latitude, longitude) from the photo's EXIF when the reporter allowed it, else None.
    gps: tuple[float, float] | None
    #: What the upload was: "jpeg", "png", "webp" or "heic".
    source_format: str


def photo_save(
    *, data: bytes, filename: str = "", keep_gps: bool = False, folder: str = "photos"
) -> StoredPhoto:
    """Check and re-encode ``data``, then store the photo and its thumbnail.

    ``filename`` only names the upload in messages. ``folder`` is a relative path chosen by the
    caller (e.g. ``"cases"``), never by the user. Raises ``ImageRejected`` for a refused file.
    """
    if not _FOLDER.fullmatch(folder):
        raise ValueError(f"folder must be a relative path of plain names, got {folder!r}")
    processed = process_image(data, filename=filename, keep_gps=keep_gps)
    stem = f"{folder}/{timezone.localtime():%Y/%m}/{uuid.uuid4().hex}"
    name = default_storage.save(f"{stem}.jpg", ContentFile(processed.data))
    try:
        thumbnail_name = default_storage.save(
            f"{stem}{THUMBNAIL_SUFFIX}.jpg", ContentFile(processed.thumbnail)
        )
    except BaseException:
        default_storage.delete(name)
        raise
    return StoredPhoto(
        name=name,
        thumbnail_name=thumbnail_name,
        width=processed.width,
        height=processed.height,
        size=len(processed.data),
        sha256=processed.sha256,
        gps=processed.gps,
        source_format=processed.source_format,
    )


def photo_delete(name: str) -> None:
    """Remove a stored photo and its thumbnail (either name will do); a missing file is no error.

    Raises ``ValueError`` for a name ``photo_save`` cannot have made, so that a bug never deletes
    another file of the storage.
    """
    stem = _stem(name)
    for each in (f"{stem}.jpg", f"{stem}{THUMBNAIL_SUFFIX}.jpg"):
        default_storage.delete(each)


def photo_open(name: str) -> File:
    """The stored photo (or thumbnail) ``name``, opened for reading; serve it as ``CONTENT_TYPE``.

    Check the user's permission first: this function checks nothing but the form of the name.
    ``NotFound`` when the file is gone; ``ValueError`` for a name ``photo_save`` cannot have made.
    """
    _stem(name)
    try:
        return default_storage.open(name, "rb")
    except FileNotFoundError as exc:
        raise NotFound(_("this photo is no longer stored"), detail={"name": name}) from exc


def _stem(name: str) -> str:
    match = _NAME.fullmatch(name)
    if match is None:
        raise ValueError(f"not the name of a stored photo: {name!r}")
    return match["stem"]
