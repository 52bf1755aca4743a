"""Settings for gridgov, read from the environment (see the table in README.md)."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from gridgov.core.env import env_bool, env_float, env_int, env_list, env_str, persistent_secret

BASE_DIR = Path(__file__).resolve().parent.parent
PACKAGE_DIR = Path(__file__).resolve().parent
VAR_DIR = Path(env_str("GRIDGOV_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

# --- security: the production switch (see "Security" in docs/architecture.md) -------------
# GRIDGOV_ENV=production turns on HTTPS-only cookies, HSTS and the HTTPS redirect, enforces
# two-factor sign-in for the roles in GRIDGOV_2FA_ROLES, and refuses to start on the keys
# generated into var/ for `make run`: every server of a deployment must share them.
GRIDGOV_ENV = env_str("GRIDGOV_ENV", "development").strip().lower() or "development"
if GRIDGOV_ENV not in ("development", "production"):
    raise ImproperlyConfigured(
        f"GRIDGOV_ENV must be development or production, got {GRIDGOV_ENV!r}"
    )
PRODUCTION = GRIDGOV_ENV == "production"
if PRODUCTION:
    _missing = [
        name
        for name in (
            "SECRET_KEY",
            "GRIDGOV_DATA_KEY",
            "GRIDGOV_LOOKUP_KEY",
            "GRIDGOV_ALLOWED_HOSTS",
        )
        if not env_str(name).strip()
    ]
    if _missing:
        raise ImproperlyConfigured(
            "GRIDGOV_ENV=production needs these set in the environment (the development "
            "defaults are not used in production): " + ", ".join(_missing)
        )
    if len(env_str("SECRET_KEY").strip()) < 50:
        raise ImproperlyConfigured(
            "SECRET_KEY must have at least 50 characters in production, e.g. the output of "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
    if env_bool("GRIDGOV_DEBUG", False):
        raise ImproperlyConfigured("GRIDGOV_DEBUG must be off in production")
# `gridgov serve` loads the demo district and its published logins only in development.
GRIDGOV_DEMO = env_bool("GRIDGOV_DEMO", not PRODUCTION)
# --- end of the production switch ----------------------------------------------------------

DEBUG = env_bool("GRIDGOV_DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY") or persistent_secret(VAR_DIR / "secret_key")
ALLOWED_HOSTS = env_list("GRIDGOV_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("GRIDGOV_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "axes",
    "csp",
    "ninja",  # serves Swagger UI from its static files: no CDN, no inline script
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "gridgov.core",
    "gridgov.accounts",
    "gridgov.geo",
    "gridgov.privacy",
    "gridgov.registry",
    "gridgov.notifications",
    "gridgov.cases",
    "gridgov.api",
]

MIDDLEWARE = [
    # request id, access log, latency histogram; answers /healthz, /readyz, /metrics itself
    "gridgov.core.observability.ObservabilityMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    # NUL in the path, query or headers, and oversized bodies: refused before anything reads them
    "gridgov.core.input_guard.InputGuardMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "gridgov.core.security.IdleSessionMiddleware",
    "gridgov.core.security.TwoFactorMiddleware",
    "gridgov.core.security.RateLimitMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "gridgov.urls"
WSGI_APPLICATION = "gridgov.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [PACKAGE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "gridgov.core.context_processors.gridgov",
            ],
        },
    },
]

# Database: SQLite in WAL mode under var/ by default, PostgreSQL through DATABASE_URL.
DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'gridgov.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=env_int("GRIDGOV_DB_CONN_MAX_AGE", 60)
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django's backend with writers queued on a lock instead of SQLite's busy loop. Connections
    # persist (GRIDGOV_DB_CONN_MAX_AGE) as on PostgreSQL: opening one and reading the schema
    # again costs about 0.9 ms per request (bench/RESULTS.md, "Intake").
    DATABASES["default"]["ENGINE"] = "gridgov.core.sqlite"
    DATABASES["default"]["OPTIONS"] = {
        "init_command": (
            "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA busy_timeout=10000;"
            "PRAGMA foreign_keys=ON;"
        ),
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    DATABASES["default"]["TEST"] = {"NAME": env_str("GRIDGOV_TEST_SQLITE", "") or None}
else:
    DATABASES["default"].setdefault("OPTIONS", {})
# SQLite: seconds between two WAL checkpoints in each process's own thread, off the writers'
# path (gridgov/core/sqlite/checkpoint.py); 0: SQLite's automatic checkpoint inside a commit.
GRIDGOV_SQLITE_CHECKPOINT_SECONDS = env_float("GRIDGOV_SQLITE_CHECKPOINT_SECONDS", 0.25)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# --- security (issue 5; "Security" in docs/architecture.md) ---------------------------------
# Passwords: at least GRIDGOV_PASSWORD_MIN_LENGTH characters with letters and digits, not like
# the username, not a common or an all-digit password (MLPS 2.0 / 等保 2.0 complexity).
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env_int("GRIDGOV_PASSWORD_MIN_LENGTH", 10)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "gridgov.accounts.passwords.LettersAndDigitsValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"
# Sessions end GRIDGOV_SESSION_SECONDS after login, or after GRIDGOV_SESSION_IDLE_SECONDS
# without a request (0: no idle limit; gridgov.core.security.IdleSessionMiddleware).
SESSION_COOKIE_AGE = env_int("GRIDGOV_SESSION_SECONDS", 8 * 3600)
GRIDGOV_SESSION_IDLE_SECONDS = env_int("GRIDGOV_SESSION_IDLE_SECONDS", 30 * 60)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True  # forms and htmx carry the token in the page, never read the cookie
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# HTTPS: on by default in production. Behind a proxy that ends TLS, name the header it sets
# (GRIDGOV_PROXY_SSL_HEADER=X-Forwarded-Proto) so Django knows the request came over HTTPS;
# the proxy must overwrite that header from clients. The health checks answer over HTTP too.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("GRIDGOV_SECURE_COOKIES", PRODUCTION)
SECURE_SSL_REDIRECT = env_bool("GRIDGOV_SSL_REDIRECT", PRODUCTION)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
_PROXY_SSL_HEADER = env_str("GRIDGOV_PROXY_SSL_HEADER", "").strip()
if _PROXY_SSL_HEADER:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _PROXY_SSL_HEADER.upper().replace("-", "_"), "https")
SECURE_HSTS_SECONDS = env_int("GRIDGOV_HSTS_SECONDS", 365 * 24 * 3600 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("GRIDGOV_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("GRIDGOV_HSTS_PRELOAD", False)
# Clients behind this many proxies: the client's address is the one the nearest proxy added to
# X-Forwarded-For (0: REMOTE_ADDR). Used by the lock-out and the rate limits.
GRIDGOV_TRUSTED_PROXIES = env_int("GRIDGOV_TRUSTED_PROXIES", 0)

# Lock-out after repeated failed logins (django-axes, gridgov.accounts.throttle): an account
# after GRIDGOV_LOGIN_FAILURE_LIMIT failures, and an address after GRIDGOV_LOGIN_IP_FAILURE_LIMIT
# failures across all usernames (password spraying); a street office shares one NAT address
# among its staff, hence the much higher limit per address.
AXES_FAILURE_LIMIT = env_int("GRIDGOV_LOGIN_FAILURE_LIMIT", 5)
GRIDGOV_LOGIN_IP_FAILURE_LIMIT = env_int("GRIDGOV_LOGIN_IP_FAILURE_LIMIT", 50)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("GRIDGOV_LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_HANDLER = "gridgov.accounts.throttle.LoginThrottleHandler"
AXES_CLIENT_IP_CALLABLE = "gridgov.core.security.client_ip"
# axes.W006 asks for the address among the lock-out parameters: the handler above counts
# addresses itself, with their own limit, instead of locking an address after 5 failures.
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
# models.W040: SQLite has no included (non-key) index columns; the one index that includes a
# column (registry.Person's person_scope_name: the id) needs none there, as SQLite's indexes end
# with the rowid.
SILENCED_SYSTEM_CHECKS.append("models.W040")
if not SECURE_HSTS_PRELOAD:
    # Preloading is a commitment for the whole domain, made by submitting it to the browsers'
    # list; the operator opts in with GRIDGOV_HSTS_PRELOAD=1 (docs/architecture.md, Security).
    SILENCED_SYSTEM_CHECKS.append("security.W021")
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_VERBOSE = False
AXES_ENABLE_ACCESS_FAILURE_LOG = False

# Two-factor sign-in (django-otp: TOTP apps, recovery codes). Users holding one of these roles
# must enrol before anything else; API tokens are unaffected. Default: administrators and
# leaders in production, nobody in development (the demo logins work with a password alone).
GRIDGOV_2FA_ROLES = env_list("GRIDGOV_2FA_ROLES", ["administrator", "leader"] if PRODUCTION else [])
OTP_TOTP_ISSUER = env_str("GRIDGOV_2FA_ISSUER", "gridgov")
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
GRIDGOV_RECOVERY_CODES = 10


# Content security policy (django-csp): nothing inline, nothing from elsewhere but the map tiles.
def _tile_sources(template: str) -> list[str]:
    """The image source of a tile URL template: its scheme and host, a "{s}" subdomain as "*"."""
    from urllib.parse import urlsplit

    parts = urlsplit(template.strip().replace("{s}", "*"))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return []
    return [f"{parts.scheme}://{parts.netloc}"]


CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:", *_tile_sources(env_str("GRIDGOV_TILE_URL", ""))],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'"],
        "manifest-src": ["'self'"],
        "frame-src": ["'none'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "object-src": ["'none'"],
        **(
            {"report-uri": [env_str("GRIDGOV_CSP_REPORT_URI")]}
            if env_str("GRIDGOV_CSP_REPORT_URI")
            else {}
        ),
    }
}

# Rate limits (gridgov.core.security): fixed windows counted in the "ratelimit" cache. Anonymous
# requests (Open311, the login and two-factor forms) per address, residents' reports and photo
# uploads per user; "0" or "off" turns a limit off. GRIDGOV_RATE_CACHE: "file" (default; one
# count per server, shared by its workers), "database" (one count for every server; run
# `gridgov createcachetable` once) or "memory" (one count per process).
GRIDGOV_RATE_ANON = env_str("GRIDGOV_RATE_ANON", "60/min")
GRIDGOV_RATE_RESIDENT = env_str("GRIDGOV_RATE_RESIDENT", "60/hour")
_RATE_CACHE = env_str("GRIDGOV_RATE_CACHE", "file").strip().lower()
_RATE_CACHES: dict[str, dict[str, object]] = {
    "file": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(VAR_DIR / "cache" / "ratelimit"),
        "OPTIONS": {"MAX_ENTRIES": 100_000},
    },
    "database": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "gridgov_cache",
        "OPTIONS": {"MAX_ENTRIES": 100_000},
    },
    "memory": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "gridgov-ratelimit",
        "OPTIONS": {"MAX_ENTRIES": 100_000},
    },
}
if _RATE_CACHE not in _RATE_CACHES:
    raise ImproperlyConfigured(
        f"GRIDGOV_RATE_CACHE must be file, database or memory, got {_RATE_CACHE!r}"
    )
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "ratelimit": _RATE_CACHES[_RATE_CACHE],
}
# --- end of security -------------------------------------------------------------------------

# Internationalisation: Simplified Chinese first, English complete.
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [PACKAGE_DIR / "locale"]
FORMAT_MODULE_PATH = ["gridgov.formats"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [PACKAGE_DIR / "static"]
# Uploaded files (photos): MEDIA_ROOT by default, an S3-compatible bucket with
# GRIDGOV_MEDIA_STORAGE=s3. No URL serves them: views check permission and stream them.
GRIDGOV_MEDIA_STORAGE = env_str("GRIDGOV_MEDIA_STORAGE", "local").strip().lower()
MEDIA_ROOT = Path(env_str("GRIDGOV_MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
if GRIDGOV_MEDIA_STORAGE == "local":
    _MEDIA_STORAGE: dict[str, object] = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
elif GRIDGOV_MEDIA_STORAGE == "s3":
    if not env_str("GRIDGOV_S3_BUCKET"):
        raise ImproperlyConfigured("GRIDGOV_MEDIA_STORAGE=s3 needs GRIDGOV_S3_BUCKET")
    _S3_ENDPOINT = env_str("GRIDGOV_S3_ENDPOINT_URL") or None
    _MEDIA_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("GRIDGOV_S3_BUCKET"),
            "endpoint_url": _S3_ENDPOINT,
            "access_key": env_str("GRIDGOV_S3_ACCESS_KEY") or None,
            "secret_key": env_str("GRIDGOV_S3_SECRET_KEY") or None,
            "region_name": env_str("GRIDGOV_S3_REGION") or None,
            # MinIO and Ceph want path-style requests; AWS, Aliyun OSS, Tencent COS "virtual".
            "addressing_style": env_str(
                "GRIDGOV_S3_ADDRESSING_STYLE", "path" if _S3_ENDPOINT else "auto"
            ),
        },
    }
else:
    raise ImproperlyConfigured(
        f"GRIDGOV_MEDIA_STORAGE must be local or s3, got {GRIDGOV_MEDIA_STORAGE!r}"
    )
STORAGES = {
    "default": _MEDIA_STORAGE,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("GRIDGOV_MAX_REQUEST_BYTES", 20 * 1024 * 1024)

# gridgov's own settings.
GRIDGOV_DISTRICT_CODE = env_str("GRIDGOV_DISTRICT_CODE", "320113")
GRIDGOV_TILE_URL = env_str("GRIDGOV_TILE_URL", "")
GRIDGOV_TILE_ATTRIBUTION = env_str("GRIDGOV_TILE_ATTRIBUTION", "")
GRIDGOV_INDEX_CHECK_SECONDS = env_float("GRIDGOV_INDEX_CHECK_SECONDS", 2.0)
GRIDGOV_LOCATE_BULK_MAX = env_int("GRIDGOV_LOCATE_BULK_MAX", 10000)
GRIDGOV_API_TOKEN_DAYS = env_int("GRIDGOV_API_TOKEN_DAYS", 90)
# How long a write request's outcome is kept for replay under its Idempotency-Key.
GRIDGOV_IDEMPOTENCY_HOURS = env_int("GRIDGOV_IDEMPOTENCY_HOURS", 24)
GRIDGOV_WORKER_INTERVAL_SECONDS = env_float("GRIDGOV_WORKER_INTERVAL_SECONDS", 30.0)
GRIDGOV_UPLOAD_MAX_BYTES = env_int("GRIDGOV_UPLOAD_MAX_BYTES", 20 * 1024 * 1024)
# Photos: refused above this size (MB) or pixel count; kept with at most this longest edge.
GRIDGOV_PHOTO_MAX_MB = env_float("GRIDGOV_PHOTO_MAX_MB", 15.0)
GRIDGOV_PHOTO_MAX_MEGAPIXELS = env_float("GRIDGOV_PHOTO_MAX_MEGAPIXELS", 50.0)
GRIDGOV_PHOTO_MAX_EDGE = env_int("GRIDGOV_PHOTO_MAX_EDGE", 2560)
GRIDGOV_WORKING_HOURS = env_str("GRIDGOV_WORKING_HOURS", "08:30-12:00,13:30-17:30")
# Default step limits of cases in working time ("30m", "4h", "1d"); categories override them.
GRIDGOV_CASE_REGISTER_LIMIT = env_str("GRIDGOV_CASE_REGISTER_LIMIT", "30m")
GRIDGOV_CASE_URGENT_REGISTER_LIMIT = env_str("GRIDGOV_CASE_URGENT_REGISTER_LIMIT", "10m")
GRIDGOV_CASE_VERIFY_LIMIT = env_str("GRIDGOV_CASE_VERIFY_LIMIT", "1h")
GRIDGOV_CASE_SIGN_LIMIT = env_str("GRIDGOV_CASE_SIGN_LIMIT", "24h")
GRIDGOV_CASE_HANDLE_LIMIT = env_str("GRIDGOV_CASE_HANDLE_LIMIT", "1d")
GRIDGOV_CASE_CHECK_LIMIT = env_str("GRIDGOV_CASE_CHECK_LIMIT", "1h")
GRIDGOV_CASE_CLOSE_LIMIT = env_str("GRIDGOV_CASE_CLOSE_LIMIT", "1h")
# A closed case may be reopened for this many calendar days.
GRIDGOV_CASE_REOPEN_DAYS = env_int("GRIDGOV_CASE_REOPEN_DAYS", 7)
GRIDGOV_NAV_TITLE = _("gridgov")
# Notifications: more than this many per user in an hour go out as one digest (a user may
# choose another threshold); how often the header bell asks for the unread count; the SMS
# gateway (a dotted path to a class with send(phone, text)); the site's address for links in
# e-mails and text messages (empty: links are bare paths).
GRIDGOV_NOTIFY_DIGEST_PER_HOUR = env_int("GRIDGOV_NOTIFY_DIGEST_PER_HOUR", 10)
GRIDGOV_NOTIFY_POLL_SECONDS = env_int("GRIDGOV_NOTIFY_POLL_SECONDS", 20)
GRIDGOV_SMS_BACKEND = env_str("GRIDGOV_SMS_BACKEND", "gridgov.notifications.sms.LoggingSmsBackend")
GRIDGOV_SITE_URL = env_str("GRIDGOV_SITE_URL", "")
# The demo's case history (`gridgov demo history`, started in the background by `gridgov serve`):
# how many cases, over how many days before the first load.
GRIDGOV_DEMO_CASES = env_int("GRIDGOV_DEMO_CASES", 20000)
GRIDGOV_DEMO_DAYS = env_int("GRIDGOV_DEMO_DAYS", 90)
# Demo residents: households per grid (scaled by the planned households; 0: none).
GRIDGOV_DEMO_HOUSEHOLDS_PER_GRID = env_int("GRIDGOV_DEMO_HOUSEHOLDS_PER_GRID", 300)
# Ledger files (台账): the largest upload, and the largest unpacked size of an xlsx.
GRIDGOV_LEDGER_MAX_MB = env_int("GRIDGOV_LEDGER_MAX_MB", 200)
GRIDGOV_LEDGER_MAX_UNPACKED_MB = env_int("GRIDGOV_LEDGER_MAX_UNPACKED_MB", 2048)
GRIDGOV_LEDGER_SQLITE_CACHE_MB = env_int("GRIDGOV_LEDGER_SQLITE_CACHE_MB", 1024)
GRIDGOV_LEDGER_WRITER_THREAD = env_bool("GRIDGOV_LEDGER_WRITER_THREAD", True)
# a long ledger's commit reads and checks its rows in a second (forked) process
GRIDGOV_LEDGER_SECOND_PROCESS = env_bool("GRIDGOV_LEDGER_SECOND_PROCESS", True)
# a ledger larger than this is checked and committed by the background worker, not in the request
GRIDGOV_LEDGER_INLINE_MB = env_float("GRIDGOV_LEDGER_INLINE_MB", 2.0)
# a check or commit whose progress has not moved for this long is failed (its process died)
GRIDGOV_LEDGER_STALE_MINUTES = env_float("GRIDGOV_LEDGER_STALE_MINUTES", 30.0)
# "process": each background step in a process of its own; "inline": in the worker (tests)
GRIDGOV_LEDGER_RUNNER = env_str("GRIDGOV_LEDGER_RUNNER", "process")
# Personal data (gridgov.privacy.crypto): the AES key of id and phone numbers at rest (any text
# of at least 32 characters), earlier keys still accepted for decryption (comma-separated; empty
# again once `gridgov privacy rotate-key` has run), and the HMAC key of the look-up hashes. Without
# the environment variables random keys are kept in var/ (mode 600). Back those files up: data
# encrypted under a lost key cannot be read again.
GRIDGOV_DATA_KEY = env_str("GRIDGOV_DATA_KEY") or persistent_secret(VAR_DIR / "data_key")
GRIDGOV_DATA_KEYS_OLD = env_list("GRIDGOV_DATA_KEYS_OLD", [])
GRIDGOV_LOOKUP_KEY = env_str("GRIDGOV_LOOKUP_KEY") or persistent_secret(VAR_DIR / "lookup_key")
# Benchmark-only endpoints (bench/bench_intake.py); never on in production.
GRIDGOV_BENCH_ENDPOINTS = env_bool("GRIDGOV_BENCH_ENDPOINTS", False)

# Hostile input (issue 5, tests/hostile/): the most positions one GeoJSON feature may have
# (imports refuse a larger polygon with a message before building it). NUL characters, bodies
# over GRIDGOV_MAX_REQUEST_BYTES and JSON that is not JSON are refused by gridgov.core.input_guard.
GRIDGOV_GEOJSON_MAX_VERTICES = env_int("GRIDGOV_GEOJSON_MAX_VERTICES", 200_000)

NINJA_PAGINATION_PER_PAGE = 50
NINJA_PAGINATION_MAX_LIMIT = 500

# --- observability (logs, probes, metrics; gridgov.core.logs and gridgov.core.observability) ---
# Logs: plain lines for `make run`, one JSON object per line in production (json). The access log
# (one line per request) and every job run are logged at INFO with json, and stay quiet with
# plain unless GRIDGOV_ACCESS_LOG=1 (the worker prints its jobs' outcomes itself).
GRIDGOV_LOG_FORMAT = env_str("GRIDGOV_LOG_FORMAT", "plain").strip().lower()
if GRIDGOV_LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(
        f"GRIDGOV_LOG_FORMAT must be plain or json, got {GRIDGOV_LOG_FORMAT!r}"
    )
GRIDGOV_ACCESS_LOG = env_bool("GRIDGOV_ACCESS_LOG", GRIDGOV_LOG_FORMAT == "json")
# /metrics and the details of /readyz: these addresses or networks (straight, not through a
# proxy), or `Authorization: Bearer <GRIDGOV_METRICS_TOKEN>`.
GRIDGOV_METRICS_ALLOW = env_list("GRIDGOV_METRICS_ALLOW", ["127.0.0.1", "::1"])
for _allowed in GRIDGOV_METRICS_ALLOW:
    try:
        ipaddress.ip_network(_allowed, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(
            f"GRIDGOV_METRICS_ALLOW: {_allowed!r} is not an address or a network"
        ) from _exc
GRIDGOV_METRICS_TOKEN = env_str("GRIDGOV_METRICS_TOKEN", "")
# /readyz fails when no worker finished a pass for this long (0: the worker is not checked).
GRIDGOV_READY_WORKER_SECONDS = env_int("GRIDGOV_READY_WORKER_SECONDS", 300)
# Backups (gridgov backup / restore, gridgov.core.backup): where they go, and the folder of
# pg_dump and pg_restore (empty: the one matching the server under /usr/lib/postgresql, or PATH).
GRIDGOV_BACKUP_DIR = Path(env_str("GRIDGOV_BACKUP_DIR", str(VAR_DIR / "backups")))
GRIDGOV_PG_BINDIR = env_str("GRIDGOV_PG_BINDIR", "")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "gridgov.core.logs.ContextFilter"},
        "personal_data": {"()": "gridgov.core.logs.PersonalDataFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "gridgov.core.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": GRIDGOV_LOG_FORMAT,
            "filters": ["context", "personal_data"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("GRIDGOV_LOG_LEVEL", "INFO")},
    "loggers": {
        "axes": {"level": "WARNING"},
        "gridgov.access": {"level": "INFO" if GRIDGOV_ACCESS_LOG else "WARNING"},
        "gridgov.jobs": {"level": "INFO" if GRIDGOV_LOG_FORMAT == "json" else "WARNING"},
    },
}
# --- end of observability ---

EMAIL_BACKEND = env_str("GRIDGOV_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
