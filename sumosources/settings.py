"""Settings for Sumo Sources, read from the environment (see .env.example for every variable).

The embedded default needs no variables at all: SQLite in WAL mode and the django-q2 ORM broker,
with the secret key and the encryption keys created in the data folder on first run.
``DATABASE_URL`` switches to PostgreSQL and ``SUMOSOURCES_BROKER_URL`` to the Redis broker.
"""

import importlib.util
import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from sumosources.datafiles import make_data_dir
from sumosources.env import database_from_url, env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("SUMOSOURCES_DATA_DIR", str(BASE_DIR / "var"))).resolve()
# Owner-only: the database in it holds session keys (the check sumosources.W001 reports a wider one).
make_data_dir(DATA_DIR)

DEBUG = env_bool("SUMOSOURCES_DEBUG", False)

# --- secret key -------------------------------------------------------------------------------
# A key that is known to the world (the template's placeholder, Django's "insecure" keys) or easy
# to guess (short, few distinct characters) must never sign production sessions, so production
# mode refuses to start with one. The length and variety rules are Django's own (security.W009).
DEVELOPMENT_KEY_MARKERS = ("django-insecure", "change-me", "dev-secret", "development")
SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_UNIQUE_CHARACTERS = 5


def _read_or_create_secret_key() -> str:
    path = DATA_DIR / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = env_str("SUMOSOURCES_SECRET_KEY") or _read_or_create_secret_key()


def weak_key_reason(key: str) -> str | None:
    """Why ``key`` may not sign production sessions, as a sentence naming the rule; else None."""
    lowered = key.lower()
    marker = next((m for m in DEVELOPMENT_KEY_MARKERS if m in lowered), None)
    if marker:
        return f"it contains {marker!r}, the mark of a development key"
    if len(key) < SECRET_KEY_MIN_LENGTH:
        return f"it has {len(key)} characters; at least {SECRET_KEY_MIN_LENGTH} are needed"
    if (distinct := len(set(key))) < SECRET_KEY_MIN_UNIQUE_CHARACTERS:
        return (
            f"it is made of {distinct} different character{'s' if distinct > 1 else ''}; "
            f"at least {SECRET_KEY_MIN_UNIQUE_CHARACTERS} are needed"
        )
    return None


if not DEBUG and (_reason := weak_key_reason(SECRET_KEY)):
    raise ImproperlyConfigured(
        f"SUMOSOURCES_SECRET_KEY is refused in production mode (SUMOSOURCES_DEBUG is off): "
        f"{_reason}. Set a long random key (python -c 'import secrets; "
        f"print(secrets.token_urlsafe(50))'), or unset it to let Sumo Sources generate one in the "
        f"data folder."
    )

ALLOWED_HOSTS = env_list("SUMOSOURCES_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("SUMOSOURCES_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "sumosources.apps.SumoSourcesConfig",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.forms",
    "crispy_forms",
    "crispy_bootstrap5",
    "bootstrap",
    "django_q",
    "axes",
    "collector",
]

# Source kinds, by the dotted path of their class; nothing else names a kind.
SOURCE_KINDS = env_list(
    "SUMOSOURCES_SOURCE_KINDS", ["collector.kinds.sophos_central.SophosCentralKind"]
)


def _kind_apps(paths: list[str]) -> list[str]:
    """The packages of kinds that ship templates/ or static/, installed as apps so that Django
    finds those folders. Looked up without importing the kind (it may import models)."""
    apps = []
    for path in paths:
        package = path.rpartition(".")[0]
        spec = importlib.util.find_spec(package)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            if any((Path(folder) / name).is_dir() for name in ("templates", "static")):
                apps.append(package)
                break
    return apps


INSTALLED_APPS += _kind_apps(SOURCE_KINDS)

# Destination kinds (receivers of onward delivery), by the dotted path of their class.
DESTINATION_KINDS = env_list(
    "SUMOSOURCES_DESTINATION_KINDS",
    [
        "collector.destinations.syslog.SyslogKind",
        "collector.destinations.splunk_hec.SplunkHECKind",
        "collector.destinations.elastic.ElasticBulkKind",
        "collector.destinations.sumo_http.SumoHTTPKind",
        "collector.destinations.sentinel.SentinelKind",
        "collector.destinations.webhook.WebhookKind",
    ],
)

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "collector.middleware.SecurityHeadersMiddleware",
    "collector.middleware.NoStoreMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "collector.middleware.LoginRequiredMiddleware",
    # Last, as django-axes asks: it turns a throttled login's answer into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# Widgets render through the template engine, so templates/collector/widgets/ is found.
FORM_RENDERER = "django.forms.renderers.TemplatesSetting"

ROOT_URLCONF = "sumosources.urls"
WSGI_APPLICATION = "sumosources.wsgi.application"

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

# --- database ---------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": database_from_url(DATABASE_URL)}
else:
    DATABASES = {
        "default": {
            # Django's SQLite backend, creating the database files owner-only (0600).
            "ENGINE": "sumosources.sqlite",
            "NAME": DATA_DIR / "sumosources.sqlite3",
            "OPTIONS": {
                # IMMEDIATE takes the write lock when a transaction begins, so two writers queue on
                # the busy timeout instead of failing with "database is locked" halfway through.
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": (
                    "PRAGMA journal_mode=WAL;"
                    "PRAGMA synchronous=NORMAL;"
                    "PRAGMA foreign_keys=ON;"
                    "PRAGMA temp_store=MEMORY;"
                    "PRAGMA cache_size=-65536;"
                    # Checkpoint the WAL every ~64 MB instead of every 4 MB: one page of items
                    # is about 1.5 MB, and each checkpoint costs an fsync.
                    "PRAGMA wal_autocheckpoint=16384;"
                ),
            },
            # A file, not memory, so that django-q2 cluster processes started by the tests see
            # the same test database as the test itself.
            "TEST": {"NAME": str(DATA_DIR / "test-sumosources.sqlite3")},
        }
    }
# Processes started by the test suite (a django-q2 cluster, the `make run` smoke test's children)
# must use the database the tests created, not the real one.
if env_bool("SUMOSOURCES_USE_TEST_DB", False):
    _db = DATABASES["default"]
    _db["NAME"] = _db.get("TEST", {}).get("NAME") or f"test_{_db['NAME']}"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The database cache is shared by every process, so django-q2's cluster status (Stat) written by
# the cluster is visible to the web process's health page and to `manage.py qinfo`.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "sumosources_cache",
    }
}

# --- auth -------------------------------------------------------------------------------------
# Applied to passwords set in the admin and to SUMOSOURCES_ADMIN_PASSWORD (bootstrap).
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # First: a throttled user name or address is refused before the password hash is computed.
    "collector.auth.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Login throttling (django-axes): after SUMOSOURCES_LOGIN_FAILURE_LIMIT wrong passwords for one
# user name, or from one client address, its logins are refused for the cool-off time. Counts live
# in the database cache, so every web worker sees the same ones.
AXES_ENABLED = True
AXES_HANDLER = "axes.handlers.cache.AxesCacheHandler"
AXES_CACHE = "default"
AXES_FAILURE_LIMIT = env_int("SUMOSOURCES_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(
    minutes=env_int("SUMOSOURCES_LOGIN_COOLOFF_MINUTES", 15, minimum=1, maximum=24 * 60)
)
# Two separate limits (a list of names, not a combination): one user name from any address, and
# one address whatever the user names.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# Attempts during a lock neither count nor extend it: it ends one cool-off after it began, however
# hard someone keeps trying the admin's name, and they get no guesses meanwhile.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "collector.auth.login_locked_out"
# The cache handler keeps no rows, so the admin pages of axes would only ever be empty.
AXES_ENABLE_ADMIN = False
# No "AXES: BEGIN" line at every start of every command.
AXES_VERBOSE = False
if env_bool("SUMOSOURCES_BEHIND_TLS_PROXY", False):
    # Behind a proxy every client arrives from the proxy's address: take the one it appended.
    AXES_CLIENT_IP_CALLABLE = "collector.auth.login_client_ip"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "collector:collection"
LOGOUT_REDIRECT_URL = "login"
# Paths that answer without a session: the login page, static files, and the API (which
# authenticates with access keys itself).
LOGIN_EXEMPT_PREFIXES = ("/accounts/login/", "/static/", "/api/", "/favicon.ico")

# --- i18n and static --------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or "pytest" in sys.modules
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG or "pytest" in sys.modules

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# --- security headers -------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("SUMOSOURCES_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# Behind a TLS-terminating proxy: trust its X-Forwarded-Proto, redirect plain HTTP, send HSTS.
if env_bool("SUMOSOURCES_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SUMOSOURCES_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SUMOSOURCES_HSTS_SECONDS", 0, minimum=0)
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'self'; object-src 'none'"
)
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

# --- django-q2 --------------------------------------------------------------------------------
BROKER_URL = env_str("SUMOSOURCES_BROKER_URL")
TASK_TIMEOUT = env_int("SUMOSOURCES_TASK_TIMEOUT", 300, minimum=10)
# A claim not renewed for CLAIM_TTL seconds belongs to a dead worker and may be taken over; a task
# queued QUEUE_TTL seconds ago and never started was lost by the broker and is queued again. A short
# value only wastes work, never duplicates it: every page write re-checks the claim.
CLAIM_TTL = env_int("SUMOSOURCES_CLAIM_TTL", TASK_TIMEOUT + 30, minimum=1)
QUEUE_TTL = env_int("SUMOSOURCES_QUEUE_TTL", 2 * TASK_TIMEOUT + 60, minimum=1)
Q_CLUSTER = {
    "name": env_str("SUMOSOURCES_Q_NAME", "sumosources"),
    "workers": env_int("SUMOSOURCES_WORKERS", 2, minimum=1, maximum=64),
    "recycle": 500,
    # timeout < retry: a task is killed before the broker hands it to another worker, so one
    # task never runs twice at once because it was slow.
    "timeout": TASK_TIMEOUT,
    "retry": TASK_TIMEOUT + 60,
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    "save_limit": 1000,
    "label": "Django Q2",
    "poll": 0.2,
}
if BROKER_URL:
    if not BROKER_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured("SUMOSOURCES_BROKER_URL must be a redis:// URL")
    Q_CLUSTER["redis"] = BROKER_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- product settings -------------------------------------------------------------------------
ENCRYPTION_KEYS = env_list("SUMOSOURCES_ENCRYPTION_KEYS")
ENCRYPTION_KEY_FILE = DATA_DIR / "encryption.keys"

POLLING_INTERVAL_MIN = 60
POLLING_INTERVAL_MAX = 86400
POLLING_INTERVAL_DEFAULT = 300
RETRY_GIVE_UP_MINUTES = env_int("SUMOSOURCES_RETRY_GIVE_UP_MINUTES", 90, minimum=1)
MESSAGE_RETENTION_DAYS = env_int("SUMOSOURCES_MESSAGE_RETENTION_DAYS", 30, minimum=1)
RUN_RETENTION_DAYS = env_int("SUMOSOURCES_RUN_RETENTION_DAYS", 14, minimum=1)
# Retention waits for every destination's backlog, except past this hard cap (0: no cap), when a
# data-loss Error names the destination, the period and the count.
DELIVERY_HARD_CAP_DAYS = env_int("SUMOSOURCES_DELIVERY_HARD_CAP_DAYS", 0, minimum=0)
# A delivery run reads this many stored messages at a time after its cursor.
# (a multiple of the kinds' batch sizes, so that a window ends on a full batch).
DELIVERY_WINDOW = env_int("SUMOSOURCES_DELIVERY_WINDOW", 4000, minimum=100)
SEARCH_TIMEOUT_SECONDS = env_int("SUMOSOURCES_SEARCH_TIMEOUT_SECONDS", 5, minimum=1)

# --- logging ----------------------------------------------------------------------------------
LOG_LEVEL = env_str("SUMOSOURCES_LOG_LEVEL", "INFO").upper()


def _client_error_in_one_line(record) -> bool:
    """A 4xx answer (a refused permission, a bad request) is the client's doing, not a bug: keep
    its one line and drop the traceback Django attaches. 5xx records keep theirs."""
    if getattr(record, "status_code", 500) < 500:
        record.exc_info = None
        record.exc_text = None
    return True


LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {
        "client_errors_in_one_line": {
            "()": "django.utils.log.CallbackFilter",
            "callback": _client_error_in_one_line,
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            # On the handler too: django.security.<Exception> records come from child loggers,
            # which a filter on the django.security logger itself would not see.
            "filters": ["client_errors_in_one_line"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # On the logger, so every handler (and a test's log capture) gets the one-line record.
        "django.request": {"filters": ["client_errors_in_one_line"]},
        # urllib3 logs request lines at DEBUG; keep them out even when the level is lowered.
        "urllib3": {"level": "WARNING"},
        "django_q": {"level": env_str("SUMOSOURCES_Q_LOG_LEVEL", "WARNING").upper()},
        # django-axes logs each failed login with the user name and address masked: no help to
        # anyone. A refused login is logged once, readably, by collector.auth.login_locked_out.
        "axes": {"level": "ERROR"},
    },
}
