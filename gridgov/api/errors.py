"""The API's one error shape, and the error answers that every operation documents.

Every error answers ``{"message": ..., "detail": {...}}`` (``gridgov/api/main.py`` turns
``DomainError``, validation, authentication and ninja's own errors into it). Rather than repeat
the same error responses on a hundred routes, :func:`document_errors` adds the usual ones to each
operation of the OpenAPI document once, from what the operation is:

=====  ==========================================================  ==========================
code   meaning                                                     documented on
=====  ==========================================================  ==========================
400    a rule of the domain refused the request                    every operation
401    no valid API token or session                               operations that need one
403    not allowed for this user, or outside their scope           operations that need auth
404    an object named in the path, query or body does not exist   operations with input
       or is not visible to this user
409    stale version, or the same Idempotency-Key still running    writes
413    the body is larger than the limit                           operations with a body
415    the body is not of the declared type (JSON, multipart)      operations with a body
422    invalid input; ``detail.errors`` lists each problem         operations with input, writes
429    too many requests; retry later                              every operation
=====  ==========================================================  ==========================

A route may still declare an error itself, for a code outside this list or to say more
(``response={201: CaseOut, **error_responses(410)}``); what a route declares is kept as it is.
"""

from __future__ import annotations

from typing import Any

from ninja import Field, Schema

WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})
HTTP_METHODS = frozenset({"get", "head", "options", "trace", *WRITE_METHODS})

#: code -> the description the OpenAPI document gives the error answer (English, like the rest
#: of the document).
ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "The request cannot be carried out (a rule of the domain refused it); nothing changed.",
    401: "Authentication required: send a valid API token or log in.",
    403: "Not allowed for this user, or outside the regions and units they serve.",
    404: "An object named in the request does not exist or is not visible to this user.",
    409: (
        "Conflict: the object changed since it was read (a stale version), or a request with "
        "the same Idempotency-Key is still running; nothing changed."
    ),
    413: "The request body or its file is larger than the limit.",
    415: "The body is not of the type the operation takes (JSON, or a multipart form).",
    422: "Invalid input: `detail.errors` lists each problem with its location.",
    429: "Too many requests: wait and retry.",
}

ERROR_SCHEMA_NAME = "ErrorOut"
ERROR_REF = f"#/components/schemas/{ERROR_SCHEMA_NAME}"


class ErrorOut(Schema):
    """The body of every error answer."""

    message: str = Field(description="What went wrong, in the request's language.")
    detail: dict[str, Any] = Field(
        description="Machine-readable particulars: the field, the object, `errors` for invalid "
        "input."
    )


def error_responses(*codes: int) -> dict[int, type[ErrorOut]]:
    """``response={...}`` entries for error answers a route declares itself."""
    return dict.fromkeys(codes, ErrorOut)


def usual_errors(method: str, operation: dict[str, Any]) -> list[int]:
    """The error codes an operation of the OpenAPI document can answer (see the module's table)."""
    has_body = "requestBody" in operation
    has_input = bool(operation.get("parameters")) or has_body
    authenticated = bool(operation.get("security"))
    write = method in WRITE_METHODS
    codes = [400]
    if authenticated:
        codes += [401, 403]
    if has_input:
        codes.append(404)
    if write:
        codes.append(409)
    if has_body:
        codes += [413, 415]
    if has_input or write:
        codes.append(422)
    codes.append(429)
    return codes


def _error_response(code: int) -> dict[str, Any]:
    return {
        "description": ERROR_DESCRIPTIONS.get(code, "Error"),
        "content": {"application/json": {"schema": {"$ref": ERROR_REF}}},
    }


def document_errors(spec: dict[str, Any]) -> dict[str, Any]:
    """Add the usual error answers to every operation of ``spec`` (an OpenAPI document as ninja
    builds it), and the ``ErrorOut`` schema they refer to. Changes ``spec`` and returns it."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault(
        ERROR_SCHEMA_NAME, ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    )
    for path_item in spec.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in HTTP_METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for code in usual_errors(method, operation):
                # ninja writes status codes as ints; a document read back from JSON has strings
                if code not in responses and str(code) not in responses:
                    responses[code] = _error_response(code)
    return spec
