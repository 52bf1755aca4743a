"""Serving a case's photos, for the case pages and the API alike."""

from __future__ import annotations

from typing import Any

from django.http import FileResponse
from django.utils.translation import gettext as _

from gridgov.accounts.models import User
from gridgov.core.errors import NotFound
from gridgov.core.photos import CONTENT_TYPE, photo_open

from .models import CasePhoto
from .selectors import case_get

#: Photos never change under their name, but who may see them does: private and for an hour.
CACHE_CONTROL = "private, max-age=3600"


def case_photo_response(number: str, photo: Any, user: User, *, thumb: bool) -> FileResponse:
    """Photo ``photo`` (its uuid) of case ``number``, or its thumbnail, when ``user`` may see
    the case; ``NotFound`` otherwise, and when the photo is not the case's or no longer stored."""
    case = case_get(number, user)
    found = CasePhoto.objects.filter(case=case, uuid=photo).first()
    if found is None:
        raise NotFound(_("no such photo on case %(number)s") % {"number": case.number})
    handle = photo_open(found.thumbnail_name if thumb else found.name)
    response = FileResponse(handle, content_type=CONTENT_TYPE)
    response["Cache-Control"] = CACHE_CONTROL
    response["X-Content-Type-Options"] = "nosniff"
    return response
