"""Settings for the AMI head-end, read only from the environment (see docs/operations.md)."""

import ipaddress
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from . import capacity
from .config import (
    broker_url_from_env,
    database_from_env,
    env,
    redis_url_from_env,
    replica_from_env,
    system_title_from_env,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env.str("AMI_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is not set (required when DEBUG is off)")
    SECRET_KEY = "insecure-development-key-only-with-DEBUG"

# Months of readings kept online; older monthly partitions are detached (None: keep all).
AMI_RETENTION_MONTHS = env.int("AMI_RETENTION_MONTHS", default=None)

# Fernet keys (comma-separated, newest first) that encrypt meter and vending secrets at rest.
SECRETS_ENCRYPTION_KEYS = env.list("AMI_SECRETS_KEY", default=[])

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "axes",
    "django_otp",
    "django_celery_beat",
    "channels",
    "amisite",  # management commands (db_capacity)
    "accounts",
    "meters",
    "collection",
    "loadcontrol",
    "reports",
    "vending",
    "portal",
]

MIDDLEWARE = [
    "amisite.observability.RequestObservabilityMiddleware",  # request id + timing of every answer
    "amisite.middleware.DatabaseBusyMiddleware",
    "accounts.audit.ProxyHeadersMiddleware",  # before anything asks request.is_secure()
    "django.middleware.security.SecurityMiddleware",
    "amisite.csp.ContentSecurityPolicyMiddleware",
    "amisite.badinput.RejectNulMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.access_cache.AccessCacheMiddleware",  # permissions and scope between requests
    "portal.door.CustomerDoorMiddleware",  # a customer reaches the portal only
    "accounts.two_factor.SecondFactorMiddleware",
    "amisite.dbrouter.ReplicaReadsMiddleware",  # after sign-in: accounts read the primary
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
    "accounts.audit.AuditContextMiddleware",
    "amisite.badinput.BadInputMiddleware",
    "amisite.api_contract.QueryContractMiddleware",
]

ROOT_URLCONF = "amisite.urls"

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
                "portal.door.layout",  # error pages in the layout of who is looking
            ],
            # |when, |quantity, |money...: one way to show times, energy and money.
            "builtins": ["amisite.display_tags", "amisite.nav_tags"],
        },
    },
]

WSGI_APPLICATION = None
ASGI_APPLICATION = "amisite.asgi.application"

DATABASES = {"default": database_from_env(str(VAR_DIR / "ami.sqlite3"))}
# A streaming replica for reads that may be seconds stale (reports, the portal's usage):
# DATABASE_REPLICA_URL; unset, everything reads the default database (amisite/dbrouter.py).
if _replica := replica_from_env():
    DATABASES["replica"] = _replica
DATABASE_ROUTERS = ["amisite.dbrouter.ReplicaRouter"]
# GET requests under these paths read the registry and the store from the replica.
AMI_REPLICA_PATHS = tuple(
    env.list("AMI_REPLICA_PATHS", default=["/reports/", "/api/reports/", "/portal/usage/"])
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# No guardian "AnonymousUser": scoping goes by roles, anonymous visitors see nothing, and that
# user row showed up in every user picker (accounts/migrations/0005 removes an existing one).
ANONYMOUS_USER_NAME = None
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Failed sign-ins are counted per user name across addresses AND per address across user
# names: either reaching the limit locks (guessing one password each for many users from
# one address is throttled, and so is rotating addresses against one user).
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.25)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# The client's address comes from one place (X-Forwarded-For only from AMI_TRUSTED_PROXIES).
AXES_CLIENT_IP_CALLABLE = "accounts.audit.client_ip"
# Reverse proxies whose X-Forwarded-For is believed (addresses or networks, comma-separated);
# empty: nobody's, the peer address is the client.
# API tokens expire this many hours after they are issued.
AMI_TOKEN_HOURS = env.int("AMI_TOKEN_HOURS", default=24 * 30)
# Websockets re-check their user (active, session, roles, password) at least this often.
AMI_WS_RECHECK_SECONDS = env.float("AMI_WS_RECHECK_SECONDS", default=60.0)
# Server-Timing on every answer (amisite/observability.py): for load tests and diagnosis.
AMI_SERVER_TIMING = env.bool("AMI_SERVER_TIMING", default=False)
AMI_TRUSTED_PROXIES = [
    ipaddress.ip_network(entry.strip(), strict=False)
    for entry in env.list("AMI_TRUSTED_PROXIES", default=[])
    if entry.strip()
]
# Not reset by a success: an attacker signing in to its own account between guesses would
# otherwise clear its address's count. Failures age out after the cool-off.
AXES_RESET_ON_SUCCESS = False
AXES_VERBOSE = False
AXES_LOCKOUT_TEMPLATE = "registration/locked.html"  # in the app's layout, not bare text

LANGUAGE_CODE = "en"
TIME_ZONE = env.str("AMI_TIME_ZONE", default="UTC")  # the utility's local time zone
USE_I18N = True
USE_TZ = True
# A date or time printed without a filter still shows the zone (amisite/formats/en).
FORMAT_MODULE_PATH = ["amisite.formats"]

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
MEDIA_ROOT = VAR_DIR / "media"
WHITENOISE_USE_FINDERS = True  # serve from the apps' folders without collectstatic

# --- Redis: Celery broker, channel layer, cache -------------------------------------------
REDIS_URL = redis_url_from_env()
CELERY_BROKER_URL = broker_url_from_env(REDIS_URL)
CHANNEL_LAYER_URL = env.str("CHANNEL_LAYER_URL", default=REDIS_URL)

if CHANNEL_LAYER_URL:
    CHANNEL_LAYER_READ_TIMEOUT = env.float("CHANNEL_LAYER_READ_TIMEOUT", default=30.0)
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "amisite.channel_layer.WaitingRedisChannelLayer",
            "CONFIG": {
                # redis-py waits 5 s for any answer by default, exactly as long as the
                # layer's blocking pop (BZPOPMIN, 5 s): on a busy machine the read timed out
                # first, killing the process's receive loop, and no socket heard anything
                # more (bench/web_load.py). Reads may take longer than the pop.
                # redis-py's pool refuses a 101st connection at once (MaxConnectionsError): a
                # thousand sockets of one process joining or leaving their groups together
                # (browsers back after a restart, bench/web_load.py) were closed with 1013.
                # Past max_connections a command now waits for a free one, up to pool_wait
                # seconds (amisite/channel_layer.py): 2,000 closing at once lost ~490.
                "hosts": [
                    {
                        "address": CHANNEL_LAYER_URL,
                        "socket_timeout": CHANNEL_LAYER_READ_TIMEOUT,
                        "max_connections": env.int("CHANNEL_LAYER_MAX_CONNECTIONS", default=1000),
                        "pool_wait": env.float("CHANNEL_LAYER_POOL_WAIT", default=10.0),
                    }
                ],
                "prefix": env.str("AMI_CHANNEL_PREFIX", "ami"),
            },
        }
    }
else:  # only for one-process tools; make run always has Redis
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "amisite.cache.SharedPoolRedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# A signed-in user's permissions and organisation scope are kept this long in the cache
# (accounts/access_cache.py); only with Redis, which every web process shares.
AMI_ACCESS_CACHE_SECONDS = env.int("AMI_ACCESS_CACHE_SECONDS", default=60) if REDIS_URL else 0

# Fleet-wide dashboard roll-ups (map cells, grid tree) are cached this long per user scope.
DASHBOARD_ROLLUP_SECONDS = env.int("DASHBOARD_ROLLUP_SECONDS", default=15)

# Sessions live in PostgreSQL; with Redis, requests read them from it for up to
# AMI_SESSION_CACHE_SECONDS (accounts/session_store.py: why not longer, and not without Redis).
SESSION_ENGINE = "accounts.session_store" if REDIS_URL else "django.contrib.sessions.backends.db"
AMI_SESSION_CACHE_SECONDS = env.int("AMI_SESSION_CACHE_SECONDS", default=60)

# --- Celery ----------------------------------------------------------------------------------
CELERY_TIMEZONE = TIME_ZONE
CELERY_ENABLE_UTC = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "collection.read_batch": {"queue": "collect"},
    "collection.probe_concentrators": {"queue": "collect"},
    "collection.execute_commands": {"queue": "collect"},
    "collection.execute_command_batch": {"queue": "collect"},
}
CELERY_TASK_ACKS_LATE = True  # a killed worker's task is redelivered, not lost
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Prefork children: AMI_WORKER_CONCURRENCY, default the cores (amisite/capacity.py).
CELERY_WORKER_CONCURRENCY = capacity.worker_concurrency()
CELERY_TASK_TRACK_STARTED = True
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", 3600)}
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Record each entry's last run right after sending it: a standby that takes over (amisite/beat.py)
# neither sends a slot again nor skips one.
CELERY_BEAT_SYNC_EVERY = 1
# Static entries (django-celery-beat copies them into its tables at start).
CELERY_BEAT_SCHEDULE = {
    "meters-maintain-partitions": {
        "task": "meters.maintain_partitions",
        "schedule": 6 * 3600.0,  # seconds; creating a month ahead is idempotent
        "options": {"queue": "default"},
    },
    "meters-compact-store": {
        "task": "meters.compact_store",
        "schedule": 24 * 3600.0,  # closed months only; idempotent, resumable per chunk
        "options": {"queue": "default", "expires": 6 * 3600},
    },
    "collection-heartbeat": {
        "task": "collection.heartbeat",
        "schedule": 60.0,
        "options": {"queue": "default", "expires": 60},
    },
    "meters-derive-alarm-events": {
        "task": "meters.derive_alarm_events",
        "schedule": 900.0,
        "options": {"queue": "default", "expires": 900},
    },
    "collection-expire-commands": {
        "task": "collection.expire_commands",
        "schedule": 60.0,
        "options": {"queue": "default", "expires": 60},
    },
    "loadcontrol-run-schedules": {
        "task": "loadcontrol.run_schedules",
        "schedule": 60.0,
        "options": {"queue": "default", "expires": 60},
    },
    "loadcontrol-prepaid-check": {
        "task": "loadcontrol.prepaid_check",
        "schedule": 900.0,
        "options": {"queue": "default", "expires": 900},
    },
    "collection-requeue-lost-commands": {
        "task": "collection.requeue_lost_commands",
        "schedule": 60.0,
        "options": {"queue": "default", "expires": 60},
    },
    "collection-probe-concentrators": {
        "task": "collection.probe_concentrators",
        "schedule": 900.0,
        "options": {"queue": "collect", "expires": 900},
    },
    "collection-expire-runs": {
        "task": "collection.expire_runs",
        "schedule": 300.0,
        "options": {"queue": "default", "expires": 300},
    },
    "portal-notify-planned-work": {
        "task": "portal.notify_planned_work",
        "schedule": 900.0,  # quiet hours end on a quarter hour at most this late
        "options": {"queue": "default", "expires": 900},
    },
    "portal-compute-similar-homes": {
        "task": "portal.compute_similar_homes",
        "schedule": 3600.0,  # the usage views show its "as of"; recent days are redone each run
        "options": {"queue": "default", "expires": 3600},
    },
    "reports-exchange-import": {
        "task": "reports.exchange_import",
        "schedule": 60.0,  # MeterConfig drops in every target's incoming/ (reports/exchange/)
        "options": {"queue": "default", "expires": 60},
    },
    "portal-issue-bills": {
        "task": "portal.issue_bills",
        "schedule": 6 * 3600.0,  # a no-op but on the month's issue day (portal/bills.py)
        "options": {"queue": "default", "expires": 6 * 3600},
    },
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- REST API --------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first, so a bad or missing token is answered 401 with WWW-Authenticate.
        "accounts.tokens.TokenAuthentication",  # expiring, revocable (accounts/tokens.py)
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "amisite.pagination.Pagination",
    # Bad input is a 400 whichever view it reaches (amisite/badinput.py).
    "EXCEPTION_HANDLER": "amisite.badinput.api_exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "amisite.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": [
        "accounts.api.filters.ScopedFilterBackend",  # choices through restrict()
        "rest_framework.filters.SearchFilter",
        "amisite.filters.OrderingFilter",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "AMI head-end API",
    "DESCRIPTION": "Grid, meters, readings, commands and vending of one utility.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema maps every door of the system: only signed-in users (or tokens) get it.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI served from our own static files: the app must work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Fields of the same name with different choices ("kind", "state") get a name each.
    "ENUM_NAME_OVERRIDES": {
        "BaseDateEnum": "vending.choices.BaseDate",
        "CommandKindEnum": "collection.commands.models.CommandKind",
        "CommandStateEnum": "collection.commands.models.CommandState",
        "BulkStateEnum": "loadcontrol.models.BulkState",
        "ScheduleStateEnum": "loadcontrol.models.ScheduleState",
        "SlotStateEnum": "loadcontrol.models.SlotState",
        "StationKindEnum": "vending.choices.StationKind",
        "RunKindEnum": "collection.choices.RunKind",
        "TariffKindEnum": "vending.choices.TariffKind",
        "MovementKindEnum": "vending.choices.MovementKind",
    },
}

# --- Map ---------------------------------------------------------------------------------------
# Leaflet is vendored in static/vendor/leaflet; tiles come from a configurable server.
MAP_TILES_URL = env.str("AMI_MAP_TILES", default="https://tile.openstreetmap.org/{z}/{x}/{y}.png")

# --- E-mail ----------------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
globals().update(EMAIL_CONFIG)  # EMAIL_BACKEND, EMAIL_HOST, ... from one URL
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="ami@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Security --------------------------------------------------------------------------------
# Believed only from AMI_TRUSTED_PROXIES (accounts.audit.ProxyHeadersMiddleware drops it
# from any other peer).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        # LOG_FORMAT=json: one JSON object per line with the request and task ids
        # (amisite/observability.py), for a log shipper.
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(task_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    # 404s unlogged, other 4xx one line without a traceback (amisite/log_filters.py).
    "filters": {"client_errors": {"()": "amisite.log_filters.ClientErrors"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": env.str("LOG_FORMAT", default="plain"),
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # SFTP exchange (reports/exchange/sftp.py): asyncssh tells every channel open and close
        # at INFO, a dozen lines per poll and target; our own lines say what happened.
        "asyncssh": {"level": "WARNING"},
        "django.request": {"filters": ["client_errors"]},
    },
}

# Panels other apps serve on the registry's pages, by slot, in order (meters/panels.py):
# meters names the places, the app that owns the data fills them.
AMI_PANELS = {
    "meter-detail:instruments": ("collection.panels.phasors",),
    "meter-detail:history": ("collection.panels.meter_runs",),
    "meter-detail:actions": (
        "collection.panels.read_now",
        "loadcontrol.panels.relay_control",
        "loadcontrol.config_views.configuration_panel",
    ),
    "meter-list:bulk": ("loadcontrol.panels.switch_supply", "collection.panels.add_to_read_job"),
    "grid-tree:overlay": ("reports.panels.grid_losses",),
    "map:overlay": ("reports.panels.map_losses",),
}

# Prometheus scrapes /metrics with `Authorization: Bearer <this>` (empty: superusers only).
AMI_METRICS_TOKEN = env.str("AMI_METRICS_TOKEN", default="")

# --- Alarms and notifications (meters/alarms/) ---
# SMS backend by URL: console://, file:///path.jsonl, smpp://id:pw@host:2775?source=AMI,
# http(s)://gateway/send (bearer token AMI_SMS_TOKEN). See meters/alarms/sms.py.
AMI_SMS_URL = env.str("AMI_SMS_URL", default="console://")
AMI_SMS_TOKEN = env.str("AMI_SMS_TOKEN", default="")
# The customer portal's online top-up (portal/payments): "sandbox" (demo, tests) or "stripe";
# AMI_PORTAL_PAYER names the payment integration identity the sales are made as.
AMI_PORTAL_PAYMENT_PROVIDER = env.str("AMI_PORTAL_PAYMENT_PROVIDER", default="sandbox")
AMI_PORTAL_PAYER = env.str("AMI_PORTAL_PAYER", default="")
AMI_STRIPE_API = env.str("AMI_STRIPE_API", default="https://api.stripe.com")
AMI_STRIPE_SECRET_KEY = env.str("AMI_STRIPE_SECRET_KEY", default="")
AMI_STRIPE_WEBHOOK_SECRET = env.str("AMI_STRIPE_WEBHOOK_SECRET", default="")
# A month's bill is issued (stored, final) this many days after the month's last day.
AMI_PORTAL_BILL_GRACE_DAYS = env.int("AMI_PORTAL_BILL_GRACE_DAYS", default=2)
# Whom the alarms' customer outage messages go to, and how (the portal's preferences).
AMI_CUSTOMER_CONTACTS = "portal.outages.contacts"
AMI_NOTIFY_PER_USER_PER_HOUR = env.int("AMI_NOTIFY_PER_USER_PER_HOUR", default=20)
AMI_NOTIFY_MAX_ATTEMPTS = env.int("AMI_NOTIFY_MAX_ATTEMPTS", default=5)
# Meter commands: first retry of a retryable failure after this, doubled per attempt.
AMI_COMMAND_RETRY_BACKOFF_S = env.float("AMI_COMMAND_RETRY_BACKOFF_S", default=5.0)
# The protocol the push listener decodes (`listen_push --protocol`; a driver with a push
# decoder, collection.protocols.registry.push_protocols()).
AMI_PUSH_PROTOCOL = env.str("AMI_PUSH_PROTOCOL", default="dlms")
# A command sent this long ago and unfinished lost its task (worker and broker message gone):
# it is requeued under its own claim (read back first). Longer than any command session.
AMI_COMMAND_LOST_AFTER_S = env.int("AMI_COMMAND_LOST_AFTER_S", default=600)
# Bulk commands run as batch tasks of this many meters, this many sessions at once per task.
AMI_COMMAND_BATCH_SIZE = env.int("AMI_COMMAND_BATCH_SIZE", default=500)
# Shared lines between processes (collection/linelock.py): a session's lease on its line
# lasts this long unless renewed (a killed worker's is free again after it), and a meter
# waits at most this long for a line other processes keep busy (then: LineBusy).
AMI_LINE_LOCK_TTL_S = env.float("AMI_LINE_LOCK_TTL_S", default=20.0)
AMI_LINE_WAIT_S = env.float("AMI_LINE_WAIT_S", default=300.0)
AMI_COMMAND_BATCH_CONCURRENCY = env.int("AMI_COMMAND_BATCH_CONCURRENCY", default=100)
# Prepaid link (loadcontrol/prepaid.py): the head-end disconnects an account out of credit and
# reconnects it when topped up. Off: the STS meter enforces its own credit.
AMI_PREPAID_RELAY = env.bool("AMI_PREPAID_RELAY", default=False)
# A bulk command for more meters than this waits for a second person's approval.
AMI_COMMAND_APPROVAL_THRESHOLD = env.int("AMI_COMMAND_APPROVAL_THRESHOLD", default=100)
AMI_NOTIFY_RETRY_BASE_S = env.int("AMI_NOTIFY_RETRY_BASE_S", default=30)
# Customers of affected service points hear of outages only when this is on.
AMI_NOTIFY_CUSTOMERS_OF_OUTAGES = env.bool("AMI_NOTIFY_CUSTOMERS_OF_OUTAGES", default=False)
# What a new organisation gets when it is created (accounts.actions.create_organisation).
AMI_ORGANISATION_SETUP = ("meters.alarms.defaults.install_default_rules",)
# Scheduled reports (reports/delivery.py): the site's address for links in mails, the
# largest file attached (else a link), mail attempts and the first retry's delay.
AMI_SITE_URL = env.str("AMI_SITE_URL", default="http://localhost:8000")
AMI_REPORT_ATTACH_MAX_BYTES = env.int("AMI_REPORT_ATTACH_MAX_BYTES", default=5 * 1024 * 1024)
AMI_REPORT_MAIL_ATTEMPTS = env.int("AMI_REPORT_MAIL_ATTEMPTS", default=5)
AMI_REPORT_MAIL_RETRY_S = env.int("AMI_REPORT_MAIL_RETRY_S", default=60)
# File exchange (reports/exchange/, docs/operations.md "File exchange"): one folder per target.
AMI_EXCHANGE_ROOT = Path(env.str("AMI_EXCHANGE_ROOT", default=str(VAR_DIR / "exchange")))
AMI_EXCHANGE_SETTLE_S = env.float("AMI_EXCHANGE_SETTLE_S", default=10.0)
AMI_EXCHANGE_ATTEMPTS = env.int("AMI_EXCHANGE_ATTEMPTS", default=5)
AMI_EXCHANGE_RETRY_S = env.int("AMI_EXCHANGE_RETRY_S", default=60)
AMI_EXCHANGE_LOCK_S = env.int("AMI_EXCHANGE_LOCK_S", default=600)
AMI_EXCHANGE_STALE_S = env.int("AMI_EXCHANGE_STALE_S", default=3600)
AMI_EXCHANGE_SFTP_TIMEOUT_S = env.float("AMI_EXCHANGE_SFTP_TIMEOUT_S", default=30.0)
# The other apps' parts of the demo utility (meters/demo.py), in order.
AMI_DEMO_PARTS = (
    "collection.demo.load_demo_collection",
    "vending.demo.load_demo_vending",
    "accounts.demo.load_demo_two_factor",
    "reports.demo.load_demo_reports",
    "portal.demo.load_demo_portal",  # after vending's: its customer logins and accounts
)
# Derived events: thresholds (meters/alarms/engine.py, "derived events").
AMI_ALARM_UNREACHABLE_FAILURES = env.int("AMI_ALARM_UNREACHABLE_FAILURES", default=3)
AMI_ALARM_CLOCK_DRIFT_S = env.float("AMI_ALARM_CLOCK_DRIFT_S", default=60.0)
AMI_ALARM_ZERO_DAYS = env.int("AMI_ALARM_ZERO_DAYS", default=3)
# Import this long after a relay disconnection is consumption while disconnected.
AMI_ALARM_DISCONNECTED_GRACE_S = env.int("AMI_ALARM_DISCONNECTED_GRACE_S", default=1800)
AMI_ALARM_NOMINAL_V = env.float("AMI_ALARM_NOMINAL_V", default=230.0)
AMI_ALARM_VOLTAGE_BAND = env.float("AMI_ALARM_VOLTAGE_BAND", default=0.10)
# Per meter model event codes over the DLMS standard table (meters/alarms/events.py), e.g.
# {"Acme AM550": {"201": "terminal_cover_open"}}, as JSON.
AMI_EVENT_CODES = env.json("AMI_EVENT_CODES", default={})
# The head-end's own DLMS system title (HLS: the client's AP title and GCM nonce), 16 hex
# digits; "AMI" + 0000000001 unless the utility was given another. A meter may override it.
AMI_CLIENT_SYSTEM_TITLE = system_title_from_env("AMI_CLIENT_SYSTEM_TITLE", "414D490000000001")
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].update(
    {
        "EventKindEnum": "meters.alarms.events.EventKind",
        "SeverityEnum": "meters.alarms.models.Severity",
        "AlarmStateEnum": "meters.alarms.models.AlarmState",
        "DeliveryStatusEnum": "meters.alarms.models.DeliveryStatus",
    }
)
# --- end of alarms and notifications -------------------------------------------------------
