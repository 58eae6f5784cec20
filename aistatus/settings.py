"""Settings: everything that varies between installs is read from the environment here, and only here."""

from pathlib import Path

import environ

from aistatus.replica_settings import parse_max_lag, parse_replicas

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# `make run` writes a generated SECRET_KEY and ALLOW_SQLITE=1 here once, so that every manage.py
# command on the same machine finds them; the environment wins over the file. ENV_FILE="" reads none.
ENV_FILE = env("ENV_FILE", default=str(VAR_DIR / ".env"))
if ENV_FILE and Path(ENV_FILE).is_file():
    environ.Env.read_env(ENV_FILE)

DEBUG = env.bool("DEBUG", default=False)
# A fixed development key is acceptable only with DEBUG on; production must set SECRET_KEY.
SECRET_KEY = env("SECRET_KEY", default="insecure-dev-key-set-SECRET_KEY-in-production" if DEBUG else "")
if not SECRET_KEY:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "SECRET_KEY must be set when DEBUG is off (`make run` writes one to var/.env; "
        "or set SECRET_KEY, or DEBUG=1 for local development)."
    )
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Marks a deliberate single-machine install that accepts SQLite with DEBUG off.
ALLOW_SQLITE = env.bool("ALLOW_SQLITE", default=False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc, served from here (no CDN)
    # The core first; every other app is downstream of it (see README, "Layout").
    "monitoring",
    "collectors",
    "publishing",
    "statuspage",
    "alerts",
    "subscriptions",
    "demo",
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
    # Last: it runs the view itself, so that a replica failing mid-request is retried elsewhere.
    "aistatus.read_routing.PublicReadMiddleware",
]

ROOT_URLCONF = "aistatus.urls"
WSGI_APPLICATION = "aistatus.wsgi.application"
ASGI_APPLICATION = "aistatus.asgi.application"

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
                "statuspage.context_processors.site",
            ],
        },
    },
]


def _database(url: str) -> dict:
    # django-environ does not know django-timescaledb's engine: a timescale:// URL is a
    # PostgreSQL URL whose engine is swapped, so the TimescaleDB path stays one setting away.
    if url.startswith(("timescale://", "timescaledb://")):
        config = environ.Env.db_url_config("postgres://" + url.split("://", 1)[1])
        config["ENGINE"] = "collectors.timescale_backend"
    else:
        config = environ.Env.db_url_config(url)
    if config["ENGINE"].endswith("sqlite3"):
        config.setdefault("CONN_MAX_AGE", 0)
    elif DATABASE_POOL_SIZE:
        config["CONN_MAX_AGE"] = 0  # a pooled connection goes back to the pool after each request
        pool = {"min_size": 1, "max_size": DATABASE_POOL_SIZE, "timeout": DATABASE_POOL_TIMEOUT}
        config.setdefault("OPTIONS", {})["pool"] = pool
    else:
        config.setdefault("CONN_MAX_AGE", 60)
    # Pooled or not, a connection the database dropped is replaced rather than failing a request.
    config.setdefault("CONN_HEALTH_CHECKS", True)
    return config


# Under ASGI, Django runs each request's synchronous part on a thread started for that request, so a
# connection kept per thread (CONN_MAX_AGE) is never reused: they pile up until PostgreSQL refuses
# clients. The ASGI entry point therefore asks for a pool: at most DATABASE_POOL_SIZE connections
# shared by the process, a request waiting up to DATABASE_POOL_TIMEOUT seconds for one. Celery
# workers keep one persistent connection per thread (0: no pool).
DATABASE_POOL_SIZE = env.int("DATABASE_POOL_SIZE", default=0)
# Threads of the web process that run Django's synchronous request path (aistatus.request_path);
# each holds at most one pooled connection, so no more than the pool's size.
WEB_THREADS = env.int("WEB_THREADS", default=min(8, DATABASE_POOL_SIZE or 8))
DATABASE_POOL_TIMEOUT = env.float("DATABASE_POOL_TIMEOUT", default=3.0)


DATABASE_URL = env("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
DATABASES = {"default": _database(DATABASE_URL)}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    VAR_DIR.mkdir(exist_ok=True)
    # WAL lets the web process read while a collector writes.
    DATABASES["default"].setdefault("OPTIONS", {})["init_command"] = "PRAGMA journal_mode=WAL;"
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
    DATABASES["default"]["OPTIONS"]["timeout"] = 20

# Read replicas (see README, "Read replicas"). DATABASE_REPLICAS lists region=url pairs;
# DATABASE_REPLICA_URLS lists replicas with no region. REGION is where this process runs: its
# region's replicas are read first, then the others by measured round trip, then the primary.
# Only public reads go to a replica; a replica behind by more than REPLICA_MAX_LAG (a time, a size,
# or both) is skipped until it catches up.
DATABASE_REPLICAS = env.list("DATABASE_REPLICAS", default=[])
DATABASE_REPLICA_URLS = env.list("DATABASE_REPLICA_URLS", default=[])
REGION = env("REGION", default="")
REPLICA_MAX_LAG = parse_max_lag(env("REPLICA_MAX_LAG", default="2s,16MB"))
# How often each web process measures its replicas (lag, round trip, recovery state).
REPLICA_CHECK_INTERVAL = env.float("REPLICA_CHECK_INTERVAL", default=0.5)
# A public read waits this long for a replica's connection, and its statements this long, before
# the next replica (or the primary) answers instead.
REPLICA_CONNECT_TIMEOUT = env.int("REPLICA_CONNECT_TIMEOUT", default=1)
REPLICA_STATEMENT_TIMEOUT_MS = env.int("REPLICA_STATEMENT_TIMEOUT_MS", default=2000)
# A staff user's own writes are read back from the primary for this long.
READ_YOUR_WRITES_SECONDS = env.int("READ_YOUR_WRITES_SECONDS", default=30)
REPLICAS = parse_replicas(DATABASE_REPLICAS, DATABASE_REPLICA_URLS, DATABASE_URL)
for _replica in REPLICAS:
    _config = _database(_replica.url)
    _options = _config.setdefault("OPTIONS", {})
    _options.setdefault("connect_timeout", REPLICA_CONNECT_TIMEOUT)
    # Shown in the replica's pg_stat_activity: which region's process is reading.
    _options.setdefault("application_name", f"aistatus@{REGION or 'any'}")
    _options["options"] = f"-c statement_timeout={REPLICA_STATEMENT_TIMEOUT_MS} " + _options.get("options", "")
    if "pool" in _options:
        _options["pool"] = {**_options["pool"], "timeout": float(REPLICA_CONNECT_TIMEOUT)}
    _config["TEST"] = {"MIRROR": "default"}
    DATABASES[_replica.alias] = _config
DATABASE_ROUTERS = ["aistatus.db_router.ReplicaRouter"] if REPLICAS else []

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="aistatus"),
            "TIMEOUT": 300,
            # A frozen Redis (stopped, or its host unreachable) must fail a cache call quickly, not
            # hold the page's snapshot refresh, and every reader waiting on it, for good.
            "OPTIONS": {
                "socket_timeout": env.float("CACHE_SOCKET_TIMEOUT", default=0.5),
                "socket_connect_timeout": env.float("CACHE_SOCKET_TIMEOUT", default=0.5),
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: Redis (or any broker URL) in production; without one, a filesystem broker under var/
# so that `make run` needs no server.
# (The host names nothing for this transport; given, kombu does not warn on every connection.)
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://localhost/")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    (_broker_dir / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),  # else ./control in whatever folder a process runs
        "store_processed": False,
    }
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = env("LANGUAGE_CODE", default="en")
LANGUAGES = [("ko", "한국어"), ("en", "English"), ("ja", "日本語")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Without collectstatic (make run, tests) files are served from the apps' folders directly.
WHITENOISE_USE_FINDERS = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["monitoring.api.permissions.StaffWritesOnly"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "aistatus.openapi.AIStatusSchema",
    "DEFAULT_PARSER_CLASSES": [
        "monitoring.api.parsers.LimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}
# JSON from outside (API bodies, pushed results, WebSocket messages) is refused above these: a body
# this large, or arrays and objects nested this deep (Python's parser would otherwise recurse until
# it fails). A WebSocket message has its own, smaller size limit.
JSON_MAX_BYTES = env.int("JSON_MAX_BYTES", default=5 * 1024 * 1024)
JSON_MAX_DEPTH = env.int("JSON_MAX_DEPTH", default=32)
REALTIME_MAX_MESSAGE_BYTES = env.int("REALTIME_MAX_MESSAGE_BYTES", default=16384)
SPECTACULAR_SETTINGS = {
    "TITLE": "AI model status API",
    "DESCRIPTION": "Evidence-based status of AI models. A model without fresh evidence is `unknown`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One name per choice set where several fields share it.
    "ENUM_NAME_OVERRIDES": {
        "ModelStatusEnum": "monitoring.status.Status",
        "ManualStatusEnum": "monitoring.api.model_records.MANUAL_CHOICES",
        "ModelKindEnum": "monitoring.models.ModelKind",
        "IncidentStateEnum": "monitoring.models.Incident.State",
        "ChannelKindEnum": "alerts.models.Channel.Kind",
    },
}

# Collectors. A worker serves the regions whose queues it consumes (probes.<region>); beat schedules
# a probing round for every region listed here.
COLLECTOR_REGIONS = env.list("COLLECTOR_REGIONS", default=["default"])
COLLECTOR_CONCURRENCY = env.int("COLLECTOR_CONCURRENCY", default=1000)
COLLECTOR_BATCH_LIMIT = env.int("COLLECTOR_BATCH_LIMIT", default=5000)
COLLECTOR_SPOOL_DIR = env.path("COLLECTOR_SPOOL_DIR", default=VAR_DIR / "spool")
# Remote agents: a batch sent by a clock this far off the site's is flagged and placed by the receive time;
# a result dated this far after its receipt is rejected.
AGENT_CLOCK_SKEW_LIMIT_S = env.float("AGENT_CLOCK_SKEW_LIMIT_S", default=10.0)
AGENT_MAX_FUTURE_S = env.float("AGENT_MAX_FUTURE_S", default=60.0)
# Pushed batches that arrive within this many seconds are derived together (0: each at once, in its request).
AGENT_EVALUATION_DELAY_S = env.float("AGENT_EVALUATION_DELAY_S", default=0.25)
# How often agents ask for their assignment again without a hint of a change (seconds).
AGENT_ASSIGNMENT_REFRESH_S = env.float("AGENT_ASSIGNMENT_REFRESH_S", default=30.0)
RESULT_RETENTION_DAYS = env.int("RESULT_RETENTION_DAYS", default=14)
MINUTE_ROLLUP_RETENTION_DAYS = env.int("MINUTE_ROLLUP_RETENTION_DAYS", default=7)
HOUR_ROLLUP_RETENTION_DAYS = env.int("HOUR_ROLLUP_RETENTION_DAYS", default=90)
DAY_ROLLUP_RETENTION_DAYS = env.int("DAY_ROLLUP_RETENTION_DAYS", default=400)
ROLLUP_GRACE_SECONDS = env.int("ROLLUP_GRACE_SECONDS", default=120)

# Live updates: how often each server process reads the event log (with a working Redis
# subscription, and without one), and how many live connections one process accepts.
REALTIME_POLL_SECONDS = env.float("REALTIME_POLL_SECONDS", default=5.0)
REALTIME_FALLBACK_POLL_SECONDS = env.float("REALTIME_FALLBACK_POLL_SECONDS", default=1.0)
REALTIME_MAX_CONNECTIONS = env.int("REALTIME_MAX_CONNECTIONS", default=20000)
REALTIME_HEARTBEAT_SECONDS = env.float("REALTIME_HEARTBEAT_SECONDS", default=15.0)

# The public page's name, shown in its title and feeds.
SITE_NAME = env("SITE_NAME", default="AI model status")

# How many probe intervals may pass without a result before a status is no longer trusted.
STALE_AFTER_INTERVALS = env.int("STALE_AFTER_INTERVALS", default=3)
# The simulator's address: the demo models point at it.
SIMULATOR_URL = env("SIMULATOR_URL", default="http://127.0.0.1:8900")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}

# Alerts. The public address of the site (links in messages), the hosts on private or loopback
# addresses that webhooks may reach, delivery retries with exponential backoff, flap damping and
# the automatic resolution of incidents.
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")
WEBHOOK_ALLOWED_HOSTS = env.list("WEBHOOK_ALLOWED_HOSTS", default=[])
ALERT_TIMEOUT_SECONDS = env.float("ALERT_TIMEOUT_SECONDS", default=10.0)
ALERT_MAX_ATTEMPTS = env.int("ALERT_MAX_ATTEMPTS", default=6)
ALERT_RETRY_BASE_SECONDS = env.float("ALERT_RETRY_BASE_SECONDS", default=10.0)
ALERT_RETRY_MAX_SECONDS = env.float("ALERT_RETRY_MAX_SECONDS", default=3600.0)
ALERT_CHANNEL_DISABLE_AFTER = env.int("ALERT_CHANNEL_DISABLE_AFTER", default=20)
ALERT_FLAP_CHANGES = env.int("ALERT_FLAP_CHANGES", default=5)
ALERT_FLAP_MINUTES = env.int("ALERT_FLAP_MINUTES", default=10)
INCIDENT_RESOLVE_AFTER_SECONDS = env.int("INCIDENT_RESOLVE_AFTER_SECONDS", default=300)
# Queue an alerts round the moment status changes commit (the periodic round runs every second anyway).
ALERTS_WAKE_ON_CHANGE = env.bool("ALERTS_WAKE_ON_CHANGE", default=True)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="status@localhost")
# Django's own email settings, or the backend from one URL (EMAIL_URL wins), for example
# smtp+tls://user:password@smtp.example.com:587.
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", default=10.0)
if env("EMAIL_URL", default=""):
    globals().update(env.email_url("EMAIL_URL"))

# Visitors' subscriptions. Confirmation links last a day (and unconfirmed sign-ups with them); an
# address gets at most a few confirmation mails a day and an IP address a few sign-ups an hour;
# status flips go to subscribers only when turned on here (incidents and maintenance always do);
# a subscription is paused after this many failed deliveries in a row.
SUBSCRIPTIONS_CONFIRM_HOURS = env.int("SUBSCRIPTIONS_CONFIRM_HOURS", default=24)
SUBSCRIPTIONS_CONFIRMATIONS_PER_ADDRESS_PER_DAY = env.int("SUBSCRIPTIONS_CONFIRMATIONS_PER_ADDRESS_PER_DAY", default=3)
SUBSCRIPTIONS_SIGNUPS_PER_IP_PER_HOUR = env.int("SUBSCRIPTIONS_SIGNUPS_PER_IP_PER_HOUR", default=20)
SUBSCRIPTIONS_STATUS_CHANGES = env.bool("SUBSCRIPTIONS_STATUS_CHANGES", default=False)
SUBSCRIPTIONS_PAUSE_AFTER = env.int("SUBSCRIPTIONS_PAUSE_AFTER", default=5)
SUBSCRIPTIONS_MAX_ATTEMPTS = env.int("SUBSCRIPTIONS_MAX_ATTEMPTS", default=12)
# Messages sent per claim, over one SMTP connection.
SUBSCRIPTIONS_BATCH = env.int("SUBSCRIPTIONS_BATCH", default=500)
# Web Push: the VAPID private key (base64url raw or PEM; `manage.py vapid_keys` makes one) and the
# contact push services may write to. Without a key the page offers no browser notifications.
VAPID_PRIVATE_KEY = env("VAPID_PRIVATE_KEY", default="")
VAPID_SUBJECT = env("VAPID_SUBJECT", default=f"mailto:{DEFAULT_FROM_EMAIL}")
