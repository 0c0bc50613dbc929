"""Django settings for Pairwise. Every deployment knob comes from the environment.

Environment variables (all optional; the defaults give the embedded SQLite set-up):

- ``DEBUG``: ``1`` for development (default ``0``).
- ``SECRET_KEY``: the signing key. When unset, a random key is generated once and kept in
  ``$PAIRWISE_DATA_DIR/secret_key`` so a fresh install is never left with a known key.
- ``ALLOWED_HOSTS``: comma-separated host names (default ``127.0.0.1,localhost``).
- ``CSRF_TRUSTED_ORIGINS``: comma-separated origins behind a proxy.
- ``DATABASE_URL``: e.g. ``postgres://user@host:5432/db``; default: SQLite in the data dir.
- ``CONN_MAX_AGE``: seconds a database connection is kept between requests (default 60, SQLite
  included; ``0`` opens one per request). Always 0 under ``runserver`` (see below).
- ``PAIRWISE_SQLITE_WRITE_LOCK``: ``0`` turns off the SQLite writers' fair lock (default on).
- ``PAIRWISE_DATA_DIR``: where the database, models, checkpoints and exports live (default ``var/``).
- ``PAIRWISE_HTTPS``: ``1`` (default when not DEBUG) turns on HSTS, secure cookies, SSL redirect.
- ``PAIRWISE_LAUNCHER``: ``python`` (default) or ``accelerate`` for multi-GPU training steps.
- ``PAIRWISE_MAX_UPLOAD_MB``: the largest import file accepted (default 50).
- ``PAIRWISE_TASK_QUEUE``: the worker queue of training steps (default: ``gpu`` when configured).
- ``PAIRWISE_STEP_QUEUES``: per-step queues, e.g. ``reward=default,evaluate=default``.
- ``PAIRWISE_HEARTBEAT_S`` / ``PAIRWISE_HEARTBEAT_STALE_S``: step heartbeat and reaping (5 / 60).
- ``PAIRWISE_PROMOTION_MIN_LOWER_BOUND``: promotion needs the 95% lower bound of the candidate's
  human win-rate vs the champion above this (default 0.5); admins can force.
- ``PAIRWISE_MIN_SNAPSHOT``: a round needs at least this many training rows (default 50).
- ``PAIRWISE_KL_WARN``: the round page warns when the new policy's KL to its parent exceeds it (1.0).
- ``PAIRWISE_FLUENCY_RATIO`` / ``PAIRWISE_FLUENCY_SAMPLED_RATIO``: the promotion gate holds back a
  candidate whose greedy answers read over this many times worse (the base model's perplexity)
  than its parent's (or the base model's own samples, where those read worse), or whose sampled
  answers read over this many times worse than the base model's own samples (2.0 / 3.5, measured
  on the built-in toy policy: set your model's own); or whose answers read so much worse than the
  base model's own of the same lengths, however long.
- ``PAIRWISE_FLUENCY_BREVITY_RATIO``: ... but not when the answers read at most this many times
  the base model's own answers of the same lengths: a short answer's perplexity is higher (2.0).
- ``PAIRWISE_LOGIN_FAILURE_LIMIT`` / ``PAIRWISE_LOGIN_COOLOFF_MINUTES``: django-axes locks a
  username+IP pair out of the login page and the Django admin after this many wrong passwords,
  for this long (5 / 15).
- ``PAIRWISE_THROTTLE_AUTH`` / ``PAIRWISE_THROTTLE_SUBMIT`` / ``PAIRWISE_THROTTLE_EXPORT``: API
  rates (DRF syntax, ``N/second|minute|hour|day``): invalid API tokens per client IP (after which
  every token from that IP waits), judgments per user, exports per user (30/minute, 600/minute,
  30/minute).
- ``PAIRWISE_PROXY_COUNT``: the number of reverse proxies in front of the web processes; the
  lockout and the throttles then take the client's address from ``X-Forwarded-For``.
- ``PAIRWISE_GOLD_MIN_ACCURACY``: annotators whose gold accuracy is surely (95% interval) under it
  are flagged (default 0.7).
"""

import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

PAIRWISE_DATA_DIR = Path(os.environ.get("PAIRWISE_DATA_DIR", BASE_DIR / "var")).resolve()
PAIRWISE_DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    if key := os.environ.get("SECRET_KEY"):
        return key
    key_file = PAIRWISE_DATA_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_htmx",
    "template_partials",
    "django_tasks",
    "django_tasks_db",
    "axes",
    "labeling",
    "rlhf",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "labeling.middleware.ApiErrorsAsJson",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "labeling.middleware.PageFormErrorStatus",
    "labeling.middleware.RefuseUnstorableText",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
            "builtins": ["template_partials.templatetags.partials"],
        },
    },
]

# --- deploy: no persistent connections under runserver ---------------------------------------
# runserver serves each HTTP connection in a new thread and never closes that thread's database
# connection: with CONN_MAX_AGE > 0 every request left one open (SQLite: 3 files plus the write
# lock's) until "Too many open files". gunicorn's gthread workers (manage.py serve) pool their
# threads, so there a kept connection is reused and the count stays bounded.
RUNSERVER = sys.argv[1:2] == ["runserver"]
CONN_MAX_AGE = 0 if RUNSERVER else int(os.environ.get("CONN_MAX_AGE", "60"))
# --- end deploy ----------------------------------------------------------------------------------

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{PAIRWISE_DATA_DIR / 'pairwise.sqlite3'}",
        # Persistent connections (SQLite too): opening one per request, with its PRAGMAs, cost
        # more CPU than a queue call's queries.
        conn_max_age=CONN_MAX_AGE,
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django's SQLite backend plus a fair write lock (see config/sqlite_backend/base.py);
    # PAIRWISE_SQLITE_WRITE_LOCK=0 gives plain Django (SQLite's busy handler alone).
    if env_bool("PAIRWISE_SQLITE_WRITE_LOCK", True):
        DATABASES["default"]["ENGINE"] = "config.sqlite_backend"
    DATABASES["default"]["OPTIONS"] = {
        # Writers take the lock at BEGIN, so concurrent claims serialize instead of failing.
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;"
        ),
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = PAIRWISE_DATA_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_MANIFEST_STRICT = False

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

PAIRWISE_MAX_UPLOAD_MB = int(os.environ.get("PAIRWISE_MAX_UPLOAD_MB", "50"))
DATA_UPLOAD_MAX_MEMORY_SIZE = PAIRWISE_MAX_UPLOAD_MB * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
PAIRWISE_LAUNCHER = os.environ.get("PAIRWISE_LAUNCHER", "python")
# The worker queue of the model steps (empty: "gpu" when the task backend lists it).
PAIRWISE_TASK_QUEUE = os.environ.get("PAIRWISE_TASK_QUEUE", "")
# A running step writes a heartbeat every PAIRWISE_HEARTBEAT_S seconds; a step silent for
# PAIRWISE_HEARTBEAT_STALE_S is reaped as failed.
PAIRWISE_HEARTBEAT_S = float(os.environ.get("PAIRWISE_HEARTBEAT_S", "5"))
PAIRWISE_HEARTBEAT_STALE_S = float(os.environ.get("PAIRWISE_HEARTBEAT_STALE_S", "60"))
PAIRWISE_ACCELERATE_CONFIG = os.environ.get("PAIRWISE_ACCELERATE_CONFIG", "")
# --- deploy: per-step worker queues ------------------------------------------------------------
# e.g. "reward=default,evaluate=default": those round steps go to CPU hosts' workers, the others
# to PAIRWISE_TASK_QUEUE (docs/deploy.md). Steps: reward, policy, evaluate, generate.
PAIRWISE_STEP_QUEUES = dict(
    item.split("=", 1) for item in env_list("PAIRWISE_STEP_QUEUES", "") if "=" in item
)
# --- end deploy ----------------------------------------------------------------------------------
# Promotion gate: the Wilson 95% lower bound of the human win-rate vs the champion must exceed it.
PAIRWISE_PROMOTION_MIN_LOWER_BOUND = float(
    os.environ.get("PAIRWISE_PROMOTION_MIN_LOWER_BOUND", "0.5")
)
# round_launch refuses a snapshot of fewer training rows than this (too few to learn anything).
PAIRWISE_MIN_SNAPSHOT = int(os.environ.get("PAIRWISE_MIN_SNAPSHOT", "50"))
# The round page flags a new policy whose KL estimate to its parent is above this (or negative).
PAIRWISE_KL_WARN = float(os.environ.get("PAIRWISE_KL_WARN", "1.0"))
# The fluency flag (rlhf.signals; it blocks promotion), measured on the built-in toy policy: a
# deployment on a real model sets its own from its rounds' figures. Greedy answers: the base
# model's perplexity on them over their parent's. Sampled answers: over the base model's own
# samples, not the champion's at 2x: on benchmarks/loop.py (2 seeds x 5 rules, 2026-12-05)
# candidates that read as their parents did were at 1.4-3.0x the base's own samples (a round-1
# policy's samples already reach 2.3x its parent's), word salad at 3.9-5.9x (polite's round 3 at
# 15.5 vs 2.8, while its greedy answers read 2.8 vs its parent's 2.6).
PAIRWISE_FLUENCY_RATIO = float(os.environ.get("PAIRWISE_FLUENCY_RATIO", "2.0"))
PAIRWISE_FLUENCY_SAMPLED_RATIO = float(os.environ.get("PAIRWISE_FLUENCY_SAMPLED_RATIO", "3.5"))
# ... unless the answers read at most this many times the base model's own answers of the same
# lengths (rlhf.training.fluency): then the rise is brevity. The built-in policy's own answers of
# at most 3 words read 4.55x its overall perplexity and 1.33x length-matched; concise seed 2's
# round 3 (a third of its answers word salad) 3.74x and 2.92x (benchmarks/fluency.py).
PAIRWISE_FLUENCY_BREVITY_RATIO = float(os.environ.get("PAIRWISE_FLUENCY_BREVITY_RATIO", "2.0"))
PAIRWISE_GOLD_MIN_ACCURACY = float(os.environ.get("PAIRWISE_GOLD_MIN_ACCURACY", "0.7"))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "labeling.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "labeling.api.schema.AutoSchema",
    "DEFAULT_PARSER_CLASSES": [
        "labeling.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "labeling.api.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "labeling.api.errors.exception_handler",
    # Scoped throttles (labeling.api.throttles); rates in the "Safe by default" block below.
    "DEFAULT_THROTTLE_RATES": {},
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Pairwise API",
    "DESCRIPTION": "Pairwise preference labeling, tuning rounds and dataset export.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "PATH_CONVERTER_OVERRIDES": {"id": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}},
}

TASKS = {
    "default": {
        "BACKEND": os.environ.get("TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default", "gpu"],
    }
}

HTTPS = env_bool("PAIRWISE_HTTPS", not DEBUG)
if HTTPS:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- Safe by default: login lockout, API throttles, Content-Security-Policy ----------------------
# django-axes: wrong passwords at the login page and the Django admin lock that username from that
# IP out for a while (the lockout page says for how long); `manage.py axes_reset` lifts it.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("PAIRWISE_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("PAIRWISE_LOGIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
# The client's address for the lockout and the throttles: REMOTE_ADDR, or behind N reverse proxies
# the Nth address from the right of X-Forwarded-For (never a client-chosen one).
REST_FRAMEWORK["NUM_PROXIES"] = int(os.environ.get("PAIRWISE_PROXY_COUNT", "0"))
AXES_CLIENT_IP_CALLABLE = "labeling.api.throttles.client_address"
# Django's cache holds the throttles' counts (and the stats page's annotator reliability): on disk
# under the data dir, so every web process of `manage.py serve` (gunicorn, one per core) counts
# against the same limit. The local-memory default counted per process: N workers allowed N times
# each rate, and N times the guesses at a token.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(PAIRWISE_DATA_DIR / "cache"),
        "OPTIONS": {"MAX_ENTRIES": 20_000},
    }
}
# DRF: invalid tokens per client IP, judgments and exports per user (labeling.api.throttles).
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
    "auth": os.environ.get("PAIRWISE_THROTTLE_AUTH", "30/minute"),
    "submit": os.environ.get("PAIRWISE_THROTTLE_SUBMIT", "600/minute"),
    "export": os.environ.get("PAIRWISE_THROTTLE_EXPORT", "30/minute"),
}
# Pages run only the app's own files: no inline script, no inline style, no eval.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# --- end of safe by default ---------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}
