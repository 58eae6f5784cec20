"""Settings: everything that varies between installs is read from the environment here, and only here."""

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

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
# Secrets at rest (provider API keys, webhook secrets) are encrypted with these Fernet keys: the first
# encrypts, all decrypt (`manage.py rotate_encryption_key` re-encrypts with the first). Unset, a key is
# derived from SECRET_KEY (a system check warns about it when DEBUG is off). See monitoring/fields.py.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
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
    "axes",  # sign-in lockout (see "Sign-in lockout" below)
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_otp_webauthn",
    # The core first; every other app is downstream of it (see README, "Layout").
    "monitoring",
    "collectors",
    "publishing",
    "statuspage",
    "anomalies",
    "alerts",
    "subscriptions",
    "demo",
    "accounts",
    "audit",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # CSP, Permissions-Policy and the rest: the same set the edges give (publishing/security_headers.py).
    "publishing.security_headers.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # A signed-in user who has not given a second factor reaches only the two-factor pages.
    "accounts.two_factor.TwoFactorMiddleware",
    # Names the request's user as the one acting, for the audit trail.
    "audit.middleware.ActingRequestMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Turns a locked-out sign-in into the lockout page (axes flags the request in authenticate()).
    "axes.middleware.AxesMiddleware",
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


def _database(url: str, connect_timeout: int | None = None) -> dict:
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
        # psycopg_pool retries a failed connect with a doubling delay (1, 2, 4, 8 s...), one new connection
        # at a time: after 20 s of network faults the web waited 12-16 s for a database that was back.
        # Giving up after a short while lets the next request that needs a connection try again at once.
        pool["reconnect_timeout"] = DATABASE_POOL_RECONNECT_TIMEOUT
        config.setdefault("OPTIONS", {})["pool"] = pool
        # A connect that is never answered (a half-open socket, a frozen server) fails instead of hanging.
        config["OPTIONS"].setdefault("connect_timeout", connect_timeout or DATABASE_CONNECT_TIMEOUT)
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
# How long the pool keeps retrying one failed connect (with its doubling delay) before leaving the next
# try to the next request, and how long a connect may wait for the server (libpq's, whole seconds, >= 2).
DATABASE_POOL_RECONNECT_TIMEOUT = env.float("DATABASE_POOL_RECONNECT_TIMEOUT", default=2.0)
DATABASE_CONNECT_TIMEOUT = env.int("DATABASE_CONNECT_TIMEOUT", default=3)


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
    _config = _database(_replica.url, connect_timeout=REPLICA_CONNECT_TIMEOUT)
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

# Behind this many proxies that append to X-Forwarded-For, the client address is read from it (for
# the sign-in lockout, API throttles and live connect limits); 0: REMOTE_ADDR, the header ignored.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# Sign-in lockout (django-axes): after LOGIN_FAILURE_LIMIT failed sign-ins for one username from one
# address, that pair is refused, right password included, for LOGIN_LOCKOUT_MINUTES (see README,
# "Operators' side": `manage.py axes_reset_username <name>` lifts it sooner).
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
LOGIN_LOCKOUT_MINUTES = env.int("LOGIN_LOCKOUT_MINUTES", default=15)
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "monitoring.client_address.request_address"
AXES_LOCKOUT_CALLABLE = "aistatus.sign_in.lockout_response"
AXES_VERBOSE = False
AUTHENTICATION_BACKENDS = [
    "aistatus.sign_in.LockoutBackend",  # first: refuses a locked-out pair before any password check
    "django.contrib.auth.backends.ModelBackend",
]

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

# Two-factor sign-in to the admin (TOTP, with recovery codes): on unless DEBUG is (see README, "Operators").
REQUIRE_2FA = env.bool("REQUIRE_2FA", default=not DEBUG)
OTP_TOTP_ISSUER = env("SITE_NAME", default="AI model status")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "monitoring.api.authentication.RememberedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["monitoring.api.permissions.StaffWritesOnly"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": [
        "monitoring.api.throttling.AnonymousThrottle",
        "monitoring.api.throttling.TokenThrottle",
    ],
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
# Live connects (WebSocket and SSE) one client address may open per minute, per web process; beyond
# it a WebSocket is closed with code 4429 and SSE answers 429 with Retry-After. 0: no limit.
WS_CONNECTS_PER_MINUTE = env.int("WS_CONNECTS_PER_MINUTE", default=120)

# API throttles (DRF rates such as "300/min"; "off" or empty: none). Anonymous clients per address,
# signed-in ones (token or session) per user. Public reads served by the snapshot edge never reach
# Django, so they are not counted.
API_THROTTLE_ANON = env("API_THROTTLE_ANON", default="300/min")
API_THROTTLE_TOKEN = env("API_THROTTLE_TOKEN", default="3000/min")
# Token checks and model list pages kept in memory while PostgreSQL's notices say the database still holds
# them (monitoring.api.registry_changes); off, every request reads the database.
API_READ_CACHE = env.bool("API_READ_CACHE", default=True)

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
# Cookies over HTTPS: Secure when the site is served over HTTPS (HTTPS=1, or SITE_URL starting with
# https://); HttpOnly session cookie and SameSite=Lax always. Behind a proxy that ends TLS, set
# SECURE_PROXY_SSL_HEADER=X-Forwarded-Proto (the header the proxy sets, overwriting the client's).
HTTPS = env.bool("HTTPS", default=SITE_URL.startswith("https://"))
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = LANGUAGE_COOKIE_SECURE = HTTPS
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = LANGUAGE_COOKIE_SAMESITE = "Lax"
if env("SECURE_PROXY_SSL_HEADER", default=""):
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + env("SECURE_PROXY_SSL_HEADER").upper().replace("-", "_"), "https")
# Passkeys (WebAuthn) as a second factor are bound to a host name and checked against the page's
# origin; browsers offer them only over HTTPS or on localhost (never on an IP address). SITE_URL's
# host and origin when it is such a site, else localhost on SITE_URL's port; WEBAUTHN_RP_ID and
# WEBAUTHN_ORIGINS say otherwise.
_site = urlsplit(SITE_URL)
_passkey_site = _site.scheme == "https" or _site.hostname == "localhost"
OTP_WEBAUTHN_RP_ID = env("WEBAUTHN_RP_ID", default=_site.hostname if _passkey_site else "localhost")
OTP_WEBAUTHN_ALLOWED_ORIGINS = env.list(
    "WEBAUTHN_ORIGINS",
    default=[f"{_site.scheme}://{_site.netloc}" if _passkey_site else f"http://localhost:{_site.port or 8000}"],
)
OTP_WEBAUTHN_RP_NAME = SITE_NAME
# A passkey is the second step after the password, never a way around it.
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False
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
# Messages claimed (and settled) at once, and the SMTP connections one sender keeps busy at once for them.
SUBSCRIPTIONS_BATCH = env.int("SUBSCRIPTIONS_BATCH", default=500)
SUBSCRIPTIONS_SMTP_CONNECTIONS = env.int("SUBSCRIPTIONS_SMTP_CONNECTIONS", default=16)
# Web Push: the VAPID private key (base64url raw or PEM; `manage.py vapid_keys` makes one) and the
# contact push services may write to. Without a key the page offers no browser notifications.
VAPID_PRIVATE_KEY = env("VAPID_PRIVATE_KEY", default="")
VAPID_SUBJECT = env("VAPID_SUBJECT", default=f"mailto:{DEFAULT_FROM_EMAIL}")

# Anomaly detection (anomalies/): a run every ANOMALY_RUN_SECONDS feeds new results to each series'
# detector. An anomaly opens when a point scores at least ANOMALY_THRESHOLD (0.5 is the detector's
# alert level) and closes once the series has been quiet (no point over the threshold or outside the
# expected range) for ANOMALY_QUIET_SECONDS. Results arriving later than ANOMALY_LATE_SECONDS after
# the run that could have read them are not fed. A database without detector state starts from the
# last ANOMALY_HISTORY_HOURS of stored results. The error ratio is over the last ANOMALY_ERROR_WINDOW
# results of a series.
ANOMALY_RUN_SECONDS = env.float("ANOMALY_RUN_SECONDS", default=2.0)
ANOMALY_THRESHOLD = env.float("ANOMALY_THRESHOLD", default=0.5)
ANOMALY_QUIET_SECONDS = env.int("ANOMALY_QUIET_SECONDS", default=600)
ANOMALY_LATE_SECONDS = env.int("ANOMALY_LATE_SECONDS", default=30)
ANOMALY_HISTORY_HOURS = env.int("ANOMALY_HISTORY_HOURS", default=24)
ANOMALY_ERROR_WINDOW = env.int("ANOMALY_ERROR_WINDOW", default=20)
ANOMALY_BATCH = env.int("ANOMALY_BATCH", default=50000)

# Service level objectives (anomalies/slo*.py): every SLO_RUN_SECONDS the results are counted into
# good and bad events per model and minute (minutes older than SLO_MINUTES_KEPT_HOURS are folded into
# hours), the error budget over SLO_WINDOW_DAYS is worked out, and burn-rate alerts are opened and
# closed: fast when both 1 h and 5 min burn at SLO_FAST_BURN times the budget or more, slow when both
# 6 h and 30 min burn at SLO_SLOW_BURN or more (the Google SRE workbook's multiwindow rule). Results
# arriving more than SLO_LATE_SECONDS (or the longest enabled timeout + SLO_RUN_SECONDS + 60 s, if
# more) after their time are not counted. The latency forecast reads
# FORECAST_HISTORY_DAYS of hourly rollups.
SLO_RUN_SECONDS = env.float("SLO_RUN_SECONDS", default=30.0)
SLO_WINDOW_DAYS = env.int("SLO_WINDOW_DAYS", default=30)
SLO_LATE_SECONDS = env.int("SLO_LATE_SECONDS", default=120)
SLO_MINUTES_KEPT_HOURS = env.int("SLO_MINUTES_KEPT_HOURS", default=7)
SLO_FAST_BURN = env.float("SLO_FAST_BURN", default=14.4)
SLO_SLOW_BURN = env.float("SLO_SLOW_BURN", default=6.0)
# A burn alert also takes this many bad events in its long window (or the model's failures_to_confirm,
# whichever is more): at a probe a minute one failure burns an hour of a 99.9 % budget at 16.7 times.
SLO_MIN_BAD_EVENTS = env.int("SLO_MIN_BAD_EVENTS", default=2)
FORECAST_HISTORY_DAYS = env.int("FORECAST_HISTORY_DAYS", default=8)
