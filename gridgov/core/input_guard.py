"""Hostile input refused once, at the edge, before any view or endpoint sees it.

Two guards (see tests/hostile/ for the catalogue of inputs they answer):

- ``InputGuardMiddleware`` (the whole site): a NUL character in the path, in the name or value
  of a query parameter or in a header answers 400 naming where it is. No field of gridgov holds
  a NUL, and PostgreSQL can neither store nor even compare text containing one (psycopg raises
  ``DataError``, a 500), so a search, filter or look-up must never reach the database with it.
  A request whose declared body (``Content-Length``) exceeds ``DATA_UPLOAD_MAX_MEMORY_SIZE``
  (``GRIDGOV_MAX_REQUEST_BYTES``) and is not a multipart upload answers 413 before a byte of it
  is read (Django itself would read nothing either, but answer a bare 400 page). Multipart
  uploads have their own limits per endpoint (photos, ledgers, boundary files).
- ``JsonParser`` (the JSON API's body parser): the body must be declared JSON
  (``Content-Type: application/json`` or ``…+json``; 415 otherwise, also without a type, since a
  form or a ``text/plain`` body is what a cross-site form can send), UTF-8 (400), standard JSON
  (400 naming the line and column; ``NaN`` and ``Infinity`` are not JSON), nested at most
  ``MAX_DEPTH`` levels (400; the parser itself would raise ``RecursionError`` at about a thousand),
  and its keys and strings hold no NUL and no unpaired surrogate (422 naming the field: neither
  can be stored as UTF-8 text). Form fields of multipart endpoints are held to the same rule.

The API's error handler (``gridgov.api.main``) answers these with the one error shape
``{"message", "detail"}``; the rest of the site answers plain text.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.request import RawPostDataException
from django.utils.datastructures import MultiValueDict
from django.utils.translation import gettext as _
from ninja.parser import Parser
from pydantic import BeforeValidator

from gridgov.core.errors import DomainError

#: The deepest nesting of arrays and objects a JSON body may have. gridgov's deepest document
#: (a GeoJSON MultiPolygon inside a feature collection) needs 7.
MAX_DEPTH = 32
#: Shown in messages instead of characters that cannot be printed.
_SHOWN = 40
API_PREFIX = "/api/"


class InputRefused(DomainError):
    """Input refused before it reached a view (the status says why)."""


def _not_a_boolean(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a number is expected, not true or false")
    return value


#: A float field that JSON's ``true`` and ``false`` do not pass for (pydantic's lax mode would
#: read them as 1.0 and 0.0: a latitude of ``true`` would become a point near the equator).
Number = Annotated[float, BeforeValidator(_not_a_boolean)]


# --- what is wrong with a value -------------------------------------------------------------


def shown(text: str) -> str:
    """``text`` cut short, its unprintable characters (NUL, surrogates …) written as escapes."""
    return "".join(
        ch if ch.isprintable() and not "\ud800" <= ch <= "\udfff" else f"\\u{ord(ch):04x}"
        for ch in text[:_SHOWN]
    )


def _has_nul(text: str) -> bool:
    return "\x00" in text


def _has_surrogate(text: str) -> bool:
    # Only a lone surrogate can be in a str decoded from JSON (pairs are joined); it has no UTF-8.
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def _string_problem(text: str, where: str) -> InputRefused | None:
    if _has_nul(text):
        return InputRefused(
            _("%(field)s contains a NUL character (\\u0000); no text may hold one")
            % {"field": where},
            status=422,
            detail={"field": where, "problem": "nul"},
        )
    if _has_surrogate(text):
        return InputRefused(
            _(
                "%(field)s contains an unpaired surrogate (such as \\ud800), which is not a "
                "character; send the text as valid UTF-8"
            )
            % {"field": where},
            status=422,
            detail={"field": where, "problem": "surrogate"},
        )
    return None


def _label(path: list[str]) -> str:
    return ".".join(path) if path else _("the request body")


def _walk(data: Any) -> Iterator[tuple[list[str], Any, int]]:
    """Every value of a decoded JSON document with its path and depth, without recursion."""
    stack: list[tuple[list[str], Any, int]] = [([], data, 0)]
    while stack:
        path, value, depth = stack.pop()
        yield path, value, depth
        if isinstance(value, dict):
            for key, item in value.items():
                stack.append(([*path, shown(str(key))], item, depth + 1))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                stack.append(([*path, str(index)], item, depth + 1))


def check_document(data: Any) -> None:
    """InputRefused for a decoded JSON document nested too deeply or holding a NUL or an
    unpaired surrogate in a key or a string."""
    for path, value, depth in _walk(data):
        if depth > MAX_DEPTH:
            raise InputRefused(
                _("the JSON body is nested more than %(limit)s levels deep") % {"limit": MAX_DEPTH},
                status=400,
                detail={"limit": MAX_DEPTH},
            )
        if isinstance(value, dict):
            for key in value:
                problem = _string_problem(key, _("a key in %(field)s") % {"field": _label(path)})
                if problem is not None:
                    raise problem
        elif isinstance(value, str):
            problem = _string_problem(value, _label(path))
            if problem is not None:
                raise problem


def _no_constant(name: str) -> Any:
    raise InputRefused(
        _("the request body is not valid JSON: %(value)s is not a JSON number") % {"value": name},
        status=400,
        detail={"value": name},
    )


def is_json_type(content_type: str) -> bool:
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


def parse_json_body(body: bytes) -> Any:
    """The decoded document, or InputRefused naming what is wrong with the bytes."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputRefused(
            _("the request body is not UTF-8 text (byte %(at)s)") % {"at": exc.start},
            status=400,
            detail={"byte": exc.start},
        ) from None
    try:
        data = json.loads(text.lstrip("\ufeff"), parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise InputRefused(
            _("the request body is not valid JSON: %(problem)s at line %(line)s, column %(column)s")
            % {"problem": exc.msg, "line": exc.lineno, "column": exc.colno},
            status=400,
            detail={"line": exc.lineno, "column": exc.colno},
        ) from None
    except RecursionError:
        raise InputRefused(
            _("the JSON body is nested more than %(limit)s levels deep") % {"limit": MAX_DEPTH},
            status=400,
            detail={"limit": MAX_DEPTH},
        ) from None
    except ValueError:  # an integer of more than 4,300 digits (sys.get_int_max_str_digits)
        raise InputRefused(
            _("the request body holds a number of more than %(limit)s digits")
            % {"limit": f"{sys.get_int_max_str_digits():,}"},
            status=400,
        ) from None
    check_document(data)
    return data


# --- the API's parser -----------------------------------------------------------------------


class JsonParser(Parser):
    """django-ninja's parser with the checks above. ninja wraps whatever ``parse_body`` raises
    in ``HttpError(400, "Cannot parse request body")``; the API's handler of HttpError answers
    the InputRefused it was raised from instead (its status and message)."""

    def parse_body(self, request: HttpRequest) -> Any:
        content_type = request.META.get("CONTENT_TYPE", "")
        if not is_json_type(content_type):
            raise InputRefused(
                _(
                    "this endpoint takes a JSON body: send it with Content-Type: application/json "
                    "(the request said %(type)s)"
                )
                % {
                    "type": repr(shown(content_type.split(";", 1)[0]))
                    if content_type
                    else _("none")
                },
                status=415,
                detail={"content_type": content_type[:100]},
            )
        try:
            body = request.body
        except RawPostDataException:  # already read as a form: it was not JSON
            raise InputRefused(
                _("this endpoint takes a JSON body, not a form"), status=415
            ) from None
        return parse_json_body(body)

    def parse_querydict(
        self, data: MultiValueDict[str, Any], list_fields: list[str], request: HttpRequest
    ) -> dict[str, Any]:
        for key, values in data.lists():
            for text in (key, *(v for v in values if isinstance(v, str))):
                problem = _string_problem(text, shown(str(key)))
                if problem is not None:
                    raise problem
        return super().parse_querydict(data, list_fields, request)


# --- the middleware -------------------------------------------------------------------------


def _request_problem(request: HttpRequest) -> InputRefused | None:
    if _has_nul(request.path):
        return InputRefused(
            _("the address contains a NUL character (%(escape)s)") % {"escape": "%00"},
            status=400,
            detail={"part": "path"},
        )
    for key, values in request.GET.lists():
        if _has_nul(key) or any(_has_nul(v) for v in values):
            name = shown(key)
            return InputRefused(
                _("the query parameter %(name)s contains a NUL character (%(escape)s)")
                % {"name": repr(name), "escape": "%00"},
                status=400,
                detail={"parameter": name},
            )
    for meta_key, value in request.META.items():
        if meta_key.startswith("HTTP_") and isinstance(value, str) and _has_nul(value):
            header = meta_key[5:].replace("_", "-").title()
            return InputRefused(
                _("the header %(name)s contains a NUL character") % {"name": header},
                status=400,
                detail={"header": header},
            )
    return _size_problem(request)


def _size_problem(request: HttpRequest) -> InputRefused | None:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is None:
        return None
    content_type = request.META.get("CONTENT_TYPE", "")
    if content_type.lower().startswith("multipart/"):
        return None  # files stream to disk; each upload endpoint has its own limit
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if length <= limit:
        return None
    return InputRefused(
        _(
            "the request body has %(size)s bytes; at most %(limit)s bytes are accepted "
            "(GRIDGOV_MAX_REQUEST_BYTES)"
        )
        % {"size": f"{length:,}", "limit": f"{limit:,}"},
        status=413,
        detail={"size": length, "limit": limit},
    )


def refusal_response(request: HttpRequest, refused: DomainError) -> HttpResponse:
    if request.path.startswith(API_PREFIX):
        return JsonResponse(
            {"message": refused.message, "detail": refused.detail},
            status=refused.status,
            json_dumps_params={"ensure_ascii": False},
        )
    return HttpResponse(
        refused.message, status=refused.status, content_type="text/plain; charset=utf-8"
    )


class InputGuardMiddleware:
    """Refuses NUL characters in the path, query and headers, and oversized bodies, site-wide.

    Placed after ``LocaleMiddleware`` so that the message is in the user's language, and before
    everything that reads the query, the body or the database."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refused = _request_problem(request)
        if refused is not None:
            return refusal_response(request, refused)
        return self.get_response(request)
