"""Render a response the way the API renders a handler's result, from inside the handler."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Schema


def render(request: HttpRequest, schema: type[Schema], data: Any, *, status: int) -> HttpResponse:
    """``data`` validated by ``schema`` and encoded by the API's renderer: the bytes ninja would
    send for a handler returning ``Status(status, data)`` with ``response={status: schema}``.

    For handlers that must know their exact answer before they write (``write_phase``)."""
    from gridgov.api.main import api

    body = schema.model_validate(data, context={"request": request}).model_dump()
    return api.create_response(request, body, status=status)
