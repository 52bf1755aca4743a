"""The JSON API: one NinjaAPI, one router per app, one error shape."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.openapi.schema import OpenAPISchema
from ninja.security import APIKeyHeader, HttpBearer, SessionAuth
from ninja.utils import check_csrf

from gridgov.accounts.actions import token_lookup
from gridgov.accounts.selectors import restrict_to_scopes, scope_needed
from gridgov.api.errors import document_errors
from gridgov.core.errors import DomainError, PermissionDenied
from gridgov.core.input_guard import JsonParser
from gridgov.core.security import RateLimited, throttle_api


def _token_user(request: HttpRequest, raw: str) -> Any:
    """The user of a valid token, if the token's scopes allow the request (else 403); the
    request then acts with the token's scopes (``admin``: the administrator role) and counts
    against its rate limit."""
    token = token_lookup(raw)
    if token is None:
        return None
    needed = scope_needed(request.method or "GET", request.path_info)
    if needed not in token.scopes:
        raise PermissionDenied(
            _("this API token lacks the scope %(scope)s") % {"scope": needed},
            detail={"scope": needed, "token_scopes": list(token.scopes)},
        )
    user = token.user
    restrict_to_scopes(user, list(token.scopes))
    request.user = user
    request.api_token = token  # type: ignore[attr-defined]
    throttle_api(request, user)
    return user


class TokenAuth(HttpBearer):
    """``Authorization: Bearer ggt_…``."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        return _token_user(request, token)


class TokenHeaderAuth(APIKeyHeader):
    """``X-API-Token: ggt_…`` for clients that cannot set Authorization."""

    param_name = "X-API-Token"

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        if not key:
            return None
        return _token_user(request, key)


class WebSessionAuth(SessionAuth):
    """The web session's cookie; every request but GET, HEAD and OPTIONS must carry the CSRF
    token (``X-CSRFToken``), so another site cannot write through a user's browser."""

    def _get_key(self, request: HttpRequest) -> str | None:
        if check_csrf(request):
            raise PermissionDenied(
                _("CSRF check failed: send the page's CSRF token in the X-CSRFToken header"),
                detail={"csrf": "missing or wrong"},
            )
        return request.COOKIES.get(self.param_name)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = super().authenticate(request, key)
        if user:
            throttle_api(request, user)
        return user


class GridgovAPI(NinjaAPI):
    """The API; its OpenAPI document names the error answers of every operation
    (``gridgov/api/errors.py``).

    The document is built once per language and mount point and then served from memory:
    building it walks every operation's schemas (about 0.2 s of CPU), and
    ``/api/v1/openapi.json`` needs no sign-in. Routes are fixed once the process has imported
    them, so the document cannot go stale; callers must not change the returned dict."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._openapi_cache: dict[tuple[str, str | None, tuple[tuple[str, str], ...]], Any] = {}

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        key = (
            get_language() or "",
            path_prefix,
            tuple(sorted((str(k), str(v)) for k, v in (path_params or {}).items())),
        )
        cache = self._openapi_cache
        schema = cache.get(key)
        if schema is None:
            schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
            document_errors(schema)
            cache[key] = schema
        return schema


api = GridgovAPI(
    title="gridgov API",
    version="1",
    description=(
        "Regions and grids, units and people in roles. Authenticate with "
        "`Authorization: Bearer <token>` (create a token on the web under API tokens, or with "
        "`gridgov accounts token-create`), or with the web session and its CSRF token. "
        'Errors answer `{"message": ..., "detail": {...}}` with a 4xx status.\n\n'
        "**Idempotency.** Every write endpoint accepts an `Idempotency-Key` header (1 to 200 "
        "printable characters; send a fresh UUID per request). A retry with the same key, method, "
        "path and body answers the first request's stored status and body, with the header "
        "`Idempotent-Replayed: true`, and changes nothing; the same key with a different request "
        "answers 422; a retry while the first request is still running waits for it, or answers "
        "409. Error responses are not stored, so a corrected retry may reuse the key. Keys are "
        "per user and remembered for `GRIDGOV_IDEMPOTENCY_HOURS` (24 by default); anonymous "
        "requests ignore the header."
    ),
    auth=[TokenAuth(), TokenHeaderAuth(), WebSessionAuth()],
    urls_namespace="api",
    docs_url="/docs",
    parser=JsonParser(),  # gridgov.core.input_guard: JSON bodies only, no NUL, not too deep
)


def _error(
    request: HttpRequest, message: str, status: int, detail: dict[str, Any] | None = None
) -> HttpResponse:
    return api.create_response(request, {"message": message, "detail": detail or {}}, status=status)


@api.exception_handler(DomainError)
def on_domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    return _error(request, exc.message, exc.status, exc.detail)


@api.exception_handler(RateLimited)
def on_rate_limited(request: HttpRequest, exc: RateLimited) -> HttpResponse:
    response = _error(request, exc.message, exc.status, exc.detail)
    response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(NinjaValidationError)
def on_validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    problems = []
    for err in exc.errors:
        loc = ".".join(
            str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "payload")
        )
        where = loc or _("input")
        what = err.get("msg") or _("invalid")
        problems.append(f"{where}: {what}")
    message = _("invalid input: %(problems)s") % {"problems": "; ".join(problems[:5])}
    return _error(
        request,
        message,
        422,
        {
            "errors": [
                {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
                for e in exc.errors
            ]
        },
    )


@api.exception_handler(AuthenticationError)
def on_auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _error(request, _("authentication required: send a valid API token or log in"), 401)


@api.exception_handler(Http404)
def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, _("not found"), 404)


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if isinstance(exc.__cause__, DomainError):  # a body refused by JsonParser (input_guard)
        return _error(request, exc.__cause__.message, exc.__cause__.status, exc.__cause__.detail)
    return _error(request, str(exc.message), exc.status_code)


def register_routers() -> None:
    from gridgov.accounts.api import router as accounts_router
    from gridgov.cases.api import router as cases_router
    from gridgov.cases.api_categories import router as categories_router
    from gridgov.core.api import router as core_router
    from gridgov.geo.api import router as geo_router
    from gridgov.notifications.api import router as notifications_router

    api.add_router("/geo", geo_router, tags=["geo"])
    api.add_router("/cases", cases_router, tags=["cases"])
    api.add_router("/categories", categories_router, tags=["categories"])
    api.add_router("/accounts", accounts_router, tags=["accounts"])
    api.add_router("/core", core_router, tags=["calendar"])
    api.add_router("/notifications", notifications_router, tags=["notifications"])
    api.add_router(
        "/registry/ledger", "gridgov.registry.api_ledger.router", tags=["registry ledger"]
    )
    api.add_router("/registry", "gridgov.registry.api.router", tags=["registry"])
    api.add_router("/privacy", "gridgov.privacy.api.router", tags=["privacy"])


register_routers()
