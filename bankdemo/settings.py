"""Django settings for the demo project, read from the environment.

DATABASE_URL          unset: a SQLite file next to manage.py (WAL mode); else e.g. postgres://...
DJANGO_DEBUG          unset or 1: the local demo; 0: production (then DJANGO_SECRET_KEY is required)
DJANGO_SECRET_KEY     the secret key; a fixed development key is used only when debugging
DJANGO_ALLOWED_HOSTS  comma-separated host names
DJANGO_DB_POOL_MAX    PostgreSQL connections per process (default 8; 0: no pool), with
                      DJANGO_DB_POOL_MIN (1) and DJANGO_DB_POOL_TIMEOUT (3 s to wait for one)
DJANGO_SECURE_PROXY_SSL_HEADER  with DJANGO_DEBUG=0 behind a TLS proxy: the header it sets to
                      "https" (e.g. X-Forwarded-Proto); unset, no such header is trusted
LEDGER_SIGNING_KEY_FILE the Ed25519 key that signs ledger digests (PEM); or LEDGER_SIGNING_KEY
                      (PEM or base64 text). Debugging: a demo key outside the repository
LEDGER_DIGEST_DIR     where digest files are written (default: next to the demo key)
PERSONAL_DATA_KEY_FILE the master key that wraps each data subject's key (32 bytes, base64); or
                      PERSONAL_DATA_KEY. Debugging: a demo key outside the repository
"""

import os
import re
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be 1 or 0, not {value!r}")


def _header_meta_name(name: str) -> str | None:
    """Return the request.META key of the HTTP header the variable `name` names, or None."""
    header = os.environ.get(name, "").strip()
    if not header:
        return None
    if not re.fullmatch(r"[A-Za-z0-9-]+", header):
        raise ImproperlyConfigured(f"{name} must name an HTTP header, not {header!r}")
    return "HTTP_" + header.upper().replace("-", "_")


DEBUG = _flag("DJANGO_DEBUG", default=True)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG=0")
    SECRET_KEY = "django-insecure-local-demo-key-not-for-production"

ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")
    if host.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "eventsourcing_app",
    "bankdemo.apps.BankDemoConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "eventsourcing_app.middleware.RefuseNulMiddleware",
    "eventsourcing_app.middleware.EventMetadataMiddleware",
    "eventsourcing_app.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

ROOT_URLCONF = "bankdemo.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "bankdemo.wsgi.application"
ASGI_APPLICATION = "bankdemo.asgi.application"


# WAL lets readers work while one writer appends; IMMEDIATE takes the write lock at BEGIN so two
# appends queue instead of failing on a lock upgrade. For every SQLite database, however named.
# synchronous=FULL: an audit store does not lose a committed event. In WAL mode NORMAL skips the
# sync at each commit, so a power cut (not a crash of the process) can lose the last commits,
# which an API client was told had happened; SQLITE_SYNCHRONOUS=NORMAL trades that for speed.
SQLITE_SYNCHRONOUS_SETTINGS = ("FULL", "EXTRA", "NORMAL")


def _sqlite_synchronous() -> str:
    value = os.environ.get("SQLITE_SYNCHRONOUS", "").strip().upper() or "FULL"
    if value not in SQLITE_SYNCHRONOUS_SETTINGS:
        raise ImproperlyConfigured(
            f"SQLITE_SYNCHRONOUS={value!r}: use one of {', '.join(SQLITE_SYNCHRONOUS_SETTINGS)}"
        )
    return value


SQLITE_OPTIONS = {
    "init_command": f"PRAGMA journal_mode=WAL; PRAGMA synchronous={_sqlite_synchronous()};",
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
}


def _database(url: str | None) -> dict:
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR / "db.sqlite3",
            "OPTIONS": dict(SQLITE_OPTIONS),
        }
    config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["OPTIONS"] = {**SQLITE_OPTIONS, **config.get("OPTIONS", {})}
    elif config["ENGINE"] == "django.db.backends.postgresql":
        pool = _pool()
        if pool:
            # A bounded pool per process instead of a persistent connection per thread, which
            # a thread-per-request server (runserver) multiplies past the server's limit.
            config["CONN_MAX_AGE"] = 0
            config["OPTIONS"] = {**config.get("OPTIONS", {}), "pool": pool}
    return config


def _pool() -> dict | None:
    """The connection pool's bounds per process, from the environment (DJANGO_DB_POOL_MAX=0:
    no pool, a persistent connection per thread, e.g. behind PgBouncer)."""
    max_size = int(os.environ.get("DJANGO_DB_POOL_MAX") or 8)
    if max_size <= 0:
        return None
    min_size = min(int(os.environ.get("DJANGO_DB_POOL_MIN") or 1), max_size)
    timeout = float(os.environ.get("DJANGO_DB_POOL_TIMEOUT") or 3)
    return {"min_size": min_size, "max_size": max_size, "timeout": timeout}


DATABASES = {"default": _database(os.environ.get("DATABASE_URL"))}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# collectstatic's target, when a deployment wants one (the app serves its files either way).
STATIC_ROOT = os.environ.get("DJANGO_STATIC_ROOT") or None
# The app serves its own static files (admin, API docs): no CDN, no web server to configure.
WHITENOISE_USE_FINDERS = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "bankdemo.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["bankdemo.api.permissions.BankStaff"],
    # JSON, and the browsable API in a browser (bankdemo/api/renderers.py).
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "bankdemo.api.renderers.SafeBrowsableAPIRenderer",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PARSER_CLASSES": [
        "bankdemo.api.parsers.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "bankdemo.api.errors.handle",
    # 429 with Retry-After past these (see bankdemo/api/throttles.py): token requests per
    # client address, commands per user.
    "DEFAULT_THROTTLE_RATES": {
        "token": os.environ.get("DJANGO_TOKEN_THROTTLE_RATE") or "20/minute",
        "commands": os.environ.get("DJANGO_COMMAND_THROTTLE_RATE") or "1200/minute",
    },
}

# Content-Security-Policy on every page (django-csp): scripts, styles and everything else from
# this origin only, no inline code, no framing. The API docs use the Swagger view that serves
# its set-up script as a file.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Admin logins: after AXES_FAILURE_LIMIT wrong passwords for one username, or from one address,
# the admin login refuses it (429) for AXES_COOLOFF_TIME hours (django-axes, which records the
# attempts in the database). The API's token endpoint has its own throttle.
AXES_ONLY_ADMIN_SITE = True
AXES_FAILURE_LIMIT = int(os.environ.get("DJANGO_LOGIN_FAILURE_LIMIT") or 5)
AXES_COOLOFF_TIME = float(os.environ.get("DJANGO_LOGIN_COOLOFF_HOURS") or 0.25)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one, past the limit
AXES_RESET_ON_SUCCESS = True
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

SPECTACULAR_SETTINGS = {
    "TITLE": "Bank demo API",
    "DESCRIPTION": "Commands and audit reads over an append-only, tamper-evident event store.",
    "VERSION": "1.0.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_INCLUDE_SCHEMA": False,
}

# The event store's settings; see eventsourcing_app/conf.py for every key and its default.
# The demo's ledger signing key and digest files live outside the repository and the database
# (`make run` makes the key once); a deployment sets LEDGER_SIGNING_KEY_FILE (or
# LEDGER_SIGNING_KEY) and LEDGER_DIGEST_DIR in the environment, which win.
DEMO_DATA = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local/share") / "bankdemo"

EVENTSOURCING = {
    "SNAPSHOT_INTERVAL": 100,
    "LEDGER_SIGNING_KEY_FILE": str(DEMO_DATA / "ledger-signing-key.pem") if DEBUG else None,
    "LEDGER_DIGEST_DIR": str(DEMO_DATA / "ledger-digests"),
    # The master key of personal data: the demo's, made once by `make run`; a deployment sets
    # PERSONAL_DATA_KEY_FILE (or PERSONAL_DATA_KEY) in the environment.
    "PERSONAL_DATA_KEY_FILE": str(DEMO_DATA / "personal-data-key") if DEBUG else None,
    # The KAFKA_BOOTSTRAP_SERVERS environment variable overrides this.
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
    "KAFKA_TOPIC": "bank-events",
    # What leaves the bank, under public names; the saga's internal steps stay private.
    "PUBLIC_EVENT_TYPES": {
        "bank.AccountOpened": "bank.account-opened",
        "bank.MoneyDeposited": "bank.money-deposited",
        "bank.MoneyWithdrawn": "bank.money-withdrawn",
        "bank.AccountClosed": "bank.account-closed",
        "bank.TransferCompleted": "bank.transfer-completed",
        "bank.TransferFailed": "bank.transfer-failed",
    },
}

# To stderr: the store's own messages, and every server error with its traceback and the
# request's correlation id (Django alone would only mail them to ADMINS when DEBUG is off).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"correlation": {"()": "eventsourcing_app.middleware.CorrelationIdFilter"}},
    "formatters": {
        "plain": {
            "format": "%(asctime)s %(levelname)s %(name)s [correlation %(correlation_id)s]: "
            "%(message)s"
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["correlation"],
        }
    },
    "loggers": {
        "eventsourcing": {"handlers": ["console"], "level": "INFO"},
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}

_PROXY_SSL_HEADER = _header_meta_name("DJANGO_SECURE_PROXY_SSL_HEADER")

if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # Trust a TLS-terminating proxy's header only when the deployment says there is one
    # (DJANGO_SECURE_PROXY_SSL_HEADER=X-Forwarded-Proto): a client that reaches the app
    # directly could otherwise claim HTTPS with that header.
    if _PROXY_SSL_HEADER:
        SECURE_PROXY_SSL_HEADER = (_PROXY_SSL_HEADER, "https")
    SECURE_SSL_REDIRECT = _flag("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "3600"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = _flag("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=False)
    SECURE_HSTS_PRELOAD = _flag("DJANGO_HSTS_PRELOAD", default=False)
