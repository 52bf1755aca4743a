"""Settings for gridgov, read from the environment (see the table in README.md)."""

from __future__ import annotations

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
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
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
    # Django's backend with writers queued on a lock instead of SQLite's busy loop
    DATABASES["default"]["ENGINE"] = "gridgov.core.sqlite"
    DATABASES["default"]["CONN_MAX_AGE"] = 0
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
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"
SESSION_COOKIE_AGE = env_int("GRIDGOV_SESSION_SECONDS", 8 * 3600)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Lock-out after repeated failed logins (django-axes).
AXES_FAILURE_LIMIT = env_int("GRIDGOV_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("GRIDGOV_LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username"]
# Accounts are locked, not addresses: a street office shares one NAT address among all its
# staff. Per-address throttling belongs to the rate limiter, not to the lock-out.
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_VERBOSE = False
AXES_ENABLE_ACCESS_FAILURE_LOG = False

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
GRIDGOV_API_TOKEN_DAYS = env_int("GRIDGOV_API_TOKEN_DAYS", 365)
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

NINJA_PAGINATION_PER_PAGE = 50
NINJA_PAGINATION_MAX_LIMIT = 500

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("GRIDGOV_LOG_LEVEL", "INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}

EMAIL_BACKEND = env_str("GRIDGOV_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
