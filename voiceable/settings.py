"""Settings for Voiceable Campaigns.

Every value comes from the environment (or a `.env` file beside `manage.py`) with a safe
default, so the service runs with nothing configured: SQLite, a broker that needs no
server, and the built-in ElevenLabs sandbox. `.env.example` lists every variable.
"""

import secrets
from datetime import timedelta
from pathlib import Path

import certifi
import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

# A development key only when DEBUG is on: production must set its own.
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "csp",
    "django_prometheus",
    "campaigns",
    "campaigns.events",
    "campaigns.health",
    "sandbox",
]

MIDDLEWARE = [
    # Outermost, as django-prometheus asks: request counts and latencies cover every middleware.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # First: every record logged while a request is served carries its id (README: Logs).
    "voiceable.logs.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Times on the staff pages and in the admin are shown in the user's own zone.
    "campaigns.web.middleware.UserTimeZoneMiddleware",
    # Outside django-axes: the response counted is the lockout page when there is one.
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "voiceable.urls"
WSGI_APPLICATION = "voiceable.wsgi.application"

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

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
# A persistent connection is checked before a request reuses it: a restarted database costs no error.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the web process and the workers share one file.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database out of reach fails a connection in seconds, not after TCP's minutes.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5)
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool(
    "DATABASE_PREPARED_STATEMENTS", default=True
):
    # The reads every API request makes (campaigns.sqlrows) are prepared on each connection once
    # run a few times, so PostgreSQL parses and plans them once. Off behind a pooler in
    # transaction mode that cannot keep prepared statements (PgBouncer before 1.21).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The API's rate limits live in the cache, so it must be one every web process shares: Redis
# (CACHE_URL=redis://…) in production, else a table in the database (created by a migration).
# Only DEBUG (`make run`, a single process) keeps it in the process's memory.
CACHE_TABLE = "voiceable_cache"
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://" if DEBUG else f"dbcache://{CACHE_TABLE}")}
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.db.DatabaseCache":
    # Past MAX_ENTRIES a third of the table is dropped, resetting those clients' counts: keep
    # room for every key and address seen within a minute (300 by default).
    CACHES["default"].setdefault("OPTIONS", {}).setdefault("MAX_ENTRIES", 10_000)
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    # Rate limiting asks the cache on every API request and lets requests through when it
    # cannot answer: a Redis that is down or stuck must cost milliseconds, not seconds.
    CACHES["default"].setdefault("OPTIONS", {}).update({"socket_connect_timeout": 0.25, "socket_timeout": 0.25})

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
# Labels on dates and times Django formats itself (the admin): with the zone's abbreviation.
FORMAT_MODULE_PATH = ["voiceable.formats"]

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

# --- Security ----------------------------------------------------------------------------
# Behind a proxy that terminates HTTPS and sets X-Forwarded-Proto and X-Forwarded-For: HTTPS
# only (redirect, HSTS, cookies never sent over plain HTTP), and the client's address is the
# last X-Forwarded-For entry, the one the proxy added. Without it X-Forwarded-For is ignored
# (anyone can send one) and the client is REMOTE_ADDR.
BEHIND_HTTPS_PROXY = env.bool("BEHIND_HTTPS_PROXY", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_HTTPS_PROXY else None
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=BEHIND_HTTPS_PROXY)
SESSION_COOKIE_SECURE = BEHIND_HTTPS_PROXY
CSRF_COOKIE_SECURE = BEHIND_HTTPS_PROXY
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 60 * 60 if BEHIND_HTTPS_PROXY else 0)
# includeSubDomains reaches only the subdomains of the host that sends it (this service's own).
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
# Preloading commits a whole registrable domain to HTTPS for good; hstspreload.org asks that it
# never be on by default, so check --deploy is not asked to recommend it unless it is chosen.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Probes (a load balancer's, Kubernetes') reach the processes directly over plain HTTP: a
# redirect would read as success to them, whatever the checks found.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

# Content-Security-Policy: scripts, styles, images, fonts and requests from this site only, no
# inline script, no <style> element, no style attribute. /api/v1/docs adds what Swagger UI
# needs (campaigns/api/urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# Sign-in protection (django-axes) on the staff and admin sign-in pages: after
# LOGIN_FAILURE_LIMIT wrong passwords for one username from one address, that pair is locked
# out for LOGIN_LOCKOUT_MINUTES (counted from the last failure before the lockout); other
# addresses and other usernames are not. Attempts are kept in the database (admin: Axes), so
# every web process sees them; `manage.py axes_reset_username NAME` lifts a lockout early.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Tries during a lockout do not push its end further away: the page can say when it ends.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "campaigns.client_ip.client_ip"
# No banner on every start of every process; failures and lockouts are still logged.
AXES_VERBOSE = False

# --- Mail (password reset) ----------------------------------------------------------------
# EMAIL_URL as django-environ reads it: smtp+tls://user:password@smtp.example.com:587 (STARTTLS),
# smtp+ssl://…:465, consolemail:// (printed). With DEBUG on it defaults to the console. With
# DEBUG off and no EMAIL_URL nothing can send mail, so password reset is switched off (its
# pages answer 404 and the sign-in page does not offer it) rather than promise a mail.
EMAIL_URL = env.str("EMAIL_URL", default="") or ("consolemail://" if DEBUG else "")
if EMAIL_URL:
    vars().update(env.email_url_config(EMAIL_URL))
PASSWORD_RESET_ENABLED = bool(EMAIL_URL)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Voiceable <noreply@localhost>")
# A mail server that does not answer must not hold a web worker for long.
EMAIL_TIMEOUT = 10

# --- Recipients files -------------------------------------------------------------------
# Uploads above this many bytes are refused before they are read.
RECIPIENTS_MAX_FILE_BYTES = env.int("RECIPIENTS_MAX_FILE_BYTES", default=20 * 1024 * 1024)
RECIPIENTS_MAX_PER_CAMPAIGN = env.int("RECIPIENTS_MAX_PER_CAMPAIGN", default=100_000)
# How much of a file is read at all, whatever its size: lines or rows (blank ones included),
# columns, characters in one cell, and an .xlsx file's inflated size (also the most text its
# cells may hold once shared strings are written out).
RECIPIENTS_MAX_ROWS = env.int("RECIPIENTS_MAX_ROWS", default=200_000)
RECIPIENTS_MAX_COLUMNS = env.int("RECIPIENTS_MAX_COLUMNS", default=200)
RECIPIENTS_MAX_CELL_CHARS = env.int("RECIPIENTS_MAX_CELL_CHARS", default=10_000)
RECIPIENTS_MAX_XLSX_BYTES = env.int("RECIPIENTS_MAX_XLSX_BYTES", default=100 * 1024 * 1024)
# Django keeps uploads above this size in a temporary file rather than in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# Recipients files kept between the staff form's preview and its create step (one day at most):
# in this folder, unless UPLOADS_STORAGE names a storage every web machine shares, e.g.
# UPLOADS_STORAGE=storages.backends.s3.S3Storage (pip install "django-storages[s3]") with
# UPLOADS_STORAGE_OPTIONS={"bucket_name": "…", "endpoint_url": "…"} (JSON).
WEB_UPLOADS_DIR = Path(env.str("WEB_UPLOADS_DIR", default=str(BASE_DIR / "var" / "uploads")))
if env.str("UPLOADS_STORAGE", default=""):
    STORAGES["uploads"] = {
        "BACKEND": env.str("UPLOADS_STORAGE"),
        "OPTIONS": env.json("UPLOADS_STORAGE_OPTIONS", default={}),
    }

# --- API ---------------------------------------------------------------------------------
API_RATE_LIMIT = env.str("API_RATE_LIMIT", default="120/min")
# Requests with a missing or wrong API key allowed per client address; past it, 429.
API_BAD_KEY_RATE_LIMIT = env.str("API_BAD_KEY_RATE_LIMIT", default="20/min")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["campaigns.api.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["campaigns.api.throttling.ApiKeyRateThrottle"],
    # No DEFAULT_THROTTLE_RATES: the throttles read API_RATE_LIMIT and API_BAD_KEY_RATE_LIMIT
    # on each request (a rate fixed here would only change with a new process).
    # The client address for per-address limits: the last X-Forwarded-For entry behind our
    # proxy, REMOTE_ADDR otherwise (campaigns/client_ip.py does the same for sign-in).
    "NUM_PROXIES": 1 if BEHIND_HTTPS_PROXY else 0,
    "DEFAULT_RENDERER_CLASSES": ["campaigns.api.renderers.ApiJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.JSONParser",
    ],
    "EXCEPTION_HANDLER": "campaigns.api.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Voiceable Campaigns API",
    "DESCRIPTION": "Outbound AI voice-call campaigns on ElevenLabs.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Request bodies get components of their own: an upload is a binary file part (not a URL
    # string) and a required text field says it may not be empty.
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["campaigns.api.schema.documented_paths"],
    # Setting this list replaces drf-spectacular's default, so its enum hook is listed again.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "campaigns.api.idempotency_schema.idempotency_key_documented",
        "campaigns.api.schema.envelope_documented",
        "campaigns.api.schema.text_fields_documented",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- ElevenLabs --------------------------------------------------------------------------
# Where this service can be reached, for links and for the sandbox's webhooks to find it.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
ELEVENLABS_API_KEY = env.str("ELEVENLABS_API_KEY", default="")
# The built-in fake of ElevenLabs, for demos and development: on in development when no real
# key is set, and outside DEBUG only when asked for (and then only with its own key and
# webhook secret, checked below).
ELEVENLABS_SANDBOX = env.bool("ELEVENLABS_SANDBOX", default=DEBUG and not ELEVENLABS_API_KEY)
# The one key the sandbox accepts (xi-api-key): "sandbox" in development. Outside DEBUG with
# the sandbox off, a random key nobody knows, should anything turn the sandbox on.
SANDBOX_API_KEY_MIN_CHARS = 32
_sandbox_api_key = env.str("SANDBOX_API_KEY", default="")
ELEVENLABS_SANDBOX_API_KEY = _sandbox_api_key or ("sandbox" if DEBUG else secrets.token_urlsafe(32))
if ELEVENLABS_SANDBOX and not ELEVENLABS_API_KEY:
    ELEVENLABS_API_KEY = ELEVENLABS_SANDBOX_API_KEY
ELEVENLABS_BASE_URL = env.str(
    "ELEVENLABS_BASE_URL",
    default=f"{SITE_URL}/sandbox/elevenlabs" if ELEVENLABS_SANDBOX else "https://api.elevenlabs.io",
)
ELEVENLABS_TIMEOUT_SECONDS = (
    env.float("ELEVENLABS_CONNECT_TIMEOUT", default=5),
    env.float("ELEVENLABS_READ_TIMEOUT", default=30),
)
# ElevenLabs' documented limit of recipients per batch; bigger campaigns go out as several.
ELEVENLABS_BATCH_MAX_RECIPIENTS = env.int("ELEVENLABS_BATCH_MAX_RECIPIENTS", default=10_000)
# Secret of the post-call webhook (ElevenLabs-Signature HMAC). The sandbox signs with it too;
# only in development does it have a default.
SANDBOX_DEV_WEBHOOK_SECRET = "sandbox-webhook-secret"
ELEVENLABS_WEBHOOK_SECRET = env.str(
    "ELEVENLABS_WEBHOOK_SECRET", default=SANDBOX_DEV_WEBHOOK_SECRET if ELEVENLABS_SANDBOX and DEBUG else ""
)
if ELEVENLABS_SANDBOX and not DEBUG:
    # Outside DEBUG the sandbox is reachable by whoever reaches this service: a known key
    # would let anyone read and cancel its batches, a known secret forge call outcomes.
    _missing = []
    if len(_sandbox_api_key) < SANDBOX_API_KEY_MIN_CHARS:
        _missing.append(f"SANDBOX_API_KEY to a random key of at least {SANDBOX_API_KEY_MIN_CHARS} characters")
    if ELEVENLABS_WEBHOOK_SECRET in ("", SANDBOX_DEV_WEBHOOK_SECRET):
        _missing.append("ELEVENLABS_WEBHOOK_SECRET to a secret of your own")
    if _missing:
        raise ImproperlyConfigured(
            f"The ElevenLabs sandbox is on (ELEVENLABS_SANDBOX) with DEBUG off: set {' and '.join(_missing)} "
            '(python -c "import secrets; print(secrets.token_urlsafe(32))" makes one), or turn the sandbox '
            "off; it is for demos and development, never for real data."
        )
ELEVENLABS_WEBHOOK_TOLERANCE_SECONDS = env.int("ELEVENLABS_WEBHOOK_TOLERANCE_SECONDS", default=30 * 60)
# Largest webhook body read; post-call audio events carry the whole recording in base64.
ELEVENLABS_WEBHOOK_MAX_BYTES = env.int("ELEVENLABS_WEBHOOK_MAX_BYTES", default=100 * 1024 * 1024)
SANDBOX_WEBHOOK_URL = env.str("SANDBOX_WEBHOOK_URL", default=f"{SITE_URL}/webhooks/elevenlabs")
SANDBOX_CALL_SPACING_SECONDS = env.float("SANDBOX_CALL_SPACING_SECONDS", default=0.5)
SANDBOX_STEP_SECONDS = env.float("SANDBOX_STEP_SECONDS", default=2.0)
SANDBOX_SUBMIT_DELAY_SECONDS = env.float("SANDBOX_SUBMIT_DELAY_SECONDS", default=0)
# Sandbox fault injection, read on every request: a delay before every answer, and
# "ENDPOINT=STATUS:COUNT,..." answers (e.g. "submit=429:2,get=503:3"; see sandbox/faults.py).
SANDBOX_LATENCY_SECONDS = env.float("SANDBOX_LATENCY_SECONDS", default=0)
SANDBOX_FAULTS = env.str("SANDBOX_FAULTS", default="")
# The clock outbound campaigns' calling windows and retry delays run on: SANDBOX_CLOCK_SPEED
# times real time (3600: an hour a second), reading SANDBOX_CLOCK_START (unix seconds or ISO
# 8601) when first used; empty starts at the real time. For demos and tests of windows.
SANDBOX_CLOCK_SPEED = env.float("SANDBOX_CLOCK_SPEED", default=1.0)
SANDBOX_CLOCK_START = env.str("SANDBOX_CLOCK_START", default="")
# Refuse a submit whose conversation_config_override sets a field the agent does not allow.
SANDBOX_REFUSE_OVERRIDES = env.bool("SANDBOX_REFUSE_OVERRIDES", default=True)
# Also send post_call_audio webhooks (ElevenLabs does when the workspace enables audio), of this many bytes.
SANDBOX_WEBHOOK_AUDIO = env.bool("SANDBOX_WEBHOOK_AUDIO", default=False)
SANDBOX_WEBHOOK_AUDIO_BYTES = env.int("SANDBOX_WEBHOOK_AUDIO_BYTES", default=65536)
# The sandbox's tick POSTs this many webhooks at once, and claims no more after this many seconds
# (what is left is the next tick's): well within CELERY_TASK_SOFT_TIME_LIMIT.
SANDBOX_WEBHOOK_CONCURRENCY = env.int("SANDBOX_WEBHOOK_CONCURRENCY", default=8)
SANDBOX_TICK_BUDGET_SECONDS = env.float("SANDBOX_TICK_BUDGET_SECONDS", default=60.0)

# --- Web server (gunicorn.conf.py) ----------------------------------------------------------
# Read by gunicorn.conf.py, so the Procfile, the Dockerfile and docker-compose.yml serve alike.
# PORT is the one a platform that reads the Procfile hands the web process.
WEB_PORT = env.int("PORT", default=8000)
# Worker processes, and threads in each: the requests one web process serves at once.
WEB_CONCURRENCY = env.int("WEB_CONCURRENCY", default=3)
WEB_THREADS = env.int("WEB_THREADS", default=4)
# Seconds a request may take before gunicorn restarts its worker: a large campaign's .xlsx
# export takes more than gunicorn's own 30.
WEB_TIMEOUT = env.int("WEB_TIMEOUT", default=120)

# --- Celery ------------------------------------------------------------------------------
# Kombu's filesystem transport needs no server; production and CI use Redis.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
BROKER_FILESYSTEM_DIR = Path(env.str("BROKER_FILESYSTEM_DIR", default=str(BASE_DIR / "var" / "broker")))
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_FILESYSTEM_DIR / "queue"),
        "data_folder_out": str(BROKER_FILESYSTEM_DIR / "queue"),
        "control_folder": str(BROKER_FILESYSTEM_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The sandbox's work has a queue of its own, consumed by a worker of its own
# (`celery -A voiceable worker -Q sandbox`): however busy, it never delays the product's tasks,
# which stay on the default queue `celery`.
CELERY_TASK_ROUTES = {"sandbox.tasks.*": {"queue": "sandbox"}}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing from a web request must not hang when the broker is down: the beat sweep
# picks up anything whose message was never sent.
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5}
CELERY_BEAT_SCHEDULE_FILENAME = env.str(
    "CELERY_BEAT_SCHEDULE_FILENAME", default=str(BASE_DIR / "var" / "celerybeat-schedule")
)

# How often beat runs each periodic task (seconds).
DISPATCH_DUE_EVERY = env.float("DISPATCH_DUE_EVERY", default=5.0)
POLL_ACTIVE_EVERY = env.float("POLL_ACTIVE_EVERY", default=10.0)
# A poll of one campaign starts no further batch after this long (the rest are the next poll's,
# least recently polled first), well within CELERY_TASK_SOFT_TIME_LIMIT; it holds the campaign
# twice this long at most, so a poll killed mid-way leaves it to the next one soon after.
POLL_BUDGET_SECONDS = env.int("POLL_BUDGET_SECONDS", default=120)
# A submit that started this long ago without saving a batch id is presumed dead and reconciled.
DISPATCH_STALE_AFTER_SECONDS = env.int("DISPATCH_STALE_AFTER_SECONDS", default=120)
DISPATCH_MAX_ATTEMPTS = env.int("DISPATCH_MAX_ATTEMPTS", default=5)
# An immediate campaign still unclaimed this long after creation lost its message (broker down).
DISPATCH_LOST_AFTER_SECONDS = env.int("DISPATCH_LOST_AFTER_SECONDS", default=30)
# A batch ElevenLabs answers 404 for on this many polls in a row is no longer followed.
BATCH_LOST_AFTER_POLLS = env.int("BATCH_LOST_AFTER_POLLS", default=5)
# A batch that ended at ElevenLabs but still lists open calls is final after this much silence.
BATCH_FOLLOW_AFTER_END_SECONDS = env.int("BATCH_FOLLOW_AFTER_END_SECONDS", default=2 * 60 * 60)
# How often beat applies webhook events still waiting in the inbox and looks their calls up.
WEBHOOK_INBOX_EVERY = env.float("WEBHOOK_INBOX_EVERY", default=30.0)
# How often beat deletes the staff form's uploads older than a day (a crash or an abandoned preview).
UPLOADS_SWEEP_EVERY = env.float("UPLOADS_SWEEP_EVERY", default=60 * 60.0)
IDEMPOTENCY_SWEEP_EVERY = env.float("IDEMPOTENCY_SWEEP_EVERY", default=60 * 60.0)
# Personal data of campaigns finished longer ago than this many days is erased (README: Personal
# data); 0, the default, keeps it. The sweep runs this often (seconds).
PERSONAL_DATA_RETENTION_DAYS = env.int("PERSONAL_DATA_RETENTION_DAYS", default=0)
PERSONAL_DATA_SWEEP_EVERY = env.float("PERSONAL_DATA_SWEEP_EVERY", default=60 * 60.0)
SANDBOX_TICK_EVERY = env.float("SANDBOX_TICK_EVERY", default=2.0)
# Beat's heartbeat (README: Health and metrics): a task that records when it ran, and the age
# past which /readyz says beat (or every worker) is not running.
BEAT_HEARTBEAT_EVERY = env.float("BEAT_HEARTBEAT_EVERY", default=30.0)
BEAT_HEARTBEAT_MAX_AGE_SECONDS = env.int("BEAT_HEARTBEAT_MAX_AGE_SECONDS", default=120)

CELERY_BEAT_SCHEDULE = {
    "dispatch-due-campaigns": {"task": "campaigns.tasks.campaigns_dispatch_due", "schedule": DISPATCH_DUE_EVERY},
    "poll-active-campaigns": {"task": "campaigns.tasks.campaigns_poll_active", "schedule": POLL_ACTIVE_EVERY},
    "webhook-inbox": {"task": "campaigns.tasks.webhook_events_sweep", "schedule": WEBHOOK_INBOX_EVERY},
    "uploads-sweep": {"task": "campaigns.tasks.uploads_sweep", "schedule": UPLOADS_SWEEP_EVERY},
    "idempotency-sweep": {"task": "campaigns.tasks.idempotency_records_sweep", "schedule": IDEMPOTENCY_SWEEP_EVERY},
    "personal-data-sweep": {"task": "campaigns.tasks.personal_data_sweep", "schedule": PERSONAL_DATA_SWEEP_EVERY},
    # A heartbeat still queued when the next is due is dropped: one run late says nothing of now.
    "beat-heartbeat": {
        "task": "campaigns.tasks.beat_heartbeat",
        "schedule": BEAT_HEARTBEAT_EVERY,
        "options": {"expires": BEAT_HEARTBEAT_EVERY},
    },
}
if ELEVENLABS_SANDBOX:
    # Ticks do not pile up behind a long one: a tick still queued when the next is due is dropped
    # (and one that finds another running returns at once, `sandbox.delivery.tick_lease`).
    CELERY_BEAT_SCHEDULE["sandbox-tick"] = {
        "task": "sandbox.tasks.sandbox_tick",
        "schedule": SANDBOX_TICK_EVERY,
        "options": {"expires": SANDBOX_TICK_EVERY},
    }

# --- Metrics (README: Health and metrics) -------------------------------------------------
# The Bearer token /metrics asks for; unset, /metrics answers 404.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# --- Event webhooks (campaigns/events) ---------------------------------------------------
# Programs register URLs (POST /api/v1/webhook_endpoints) and get signed events there.
# Plain http URLs are refused unless this is on (for local development).
OUTBOUND_WEBHOOKS_ALLOW_HTTP = env.bool("OUTBOUND_WEBHOOKS_ALLOW_HTTP", default=False)
# URLs whose host resolves to a loopback, private, link-local, multicast or reserved address
# are refused, at registration and at every send, unless this is on (default: only with DEBUG).
OUTBOUND_WEBHOOKS_ALLOW_PRIVATE_NETWORKS = env.bool("OUTBOUND_WEBHOOKS_ALLOW_PRIVATE_NETWORKS", default=DEBUG)
# The certificate authorities an https receiver's certificate must chain to: Mozilla's, as
# certifi ships them, unless a file of PEM certificates is named (a company's own CA).
OUTBOUND_WEBHOOKS_CA_BUNDLE = env.str("OUTBOUND_WEBHOOKS_CA_BUNDLE", default="") or certifi.where()
# Seconds to connect to a receiver and to wait for its answer: a slow one holds one worker briefly.
OUTBOUND_WEBHOOKS_CONNECT_TIMEOUT = env.int("OUTBOUND_WEBHOOKS_CONNECT_TIMEOUT", default=3)
OUTBOUND_WEBHOOKS_READ_TIMEOUT = env.int("OUTBOUND_WEBHOOKS_READ_TIMEOUT", default=10)
# How long (s) a worker holds a delivery it is sending, well above the connect and read
# timeouts: a worker that dies mid-send delays that delivery (and the later events of its
# campaign to that endpoint) this long, after which another worker sends it.
OUTBOUND_WEBHOOKS_CLAIM_SECONDS = env.int("OUTBOUND_WEBHOOKS_CLAIM_SECONDS", default=120)
# An endpoint whose every delivery failed for this many days is disabled.
OUTBOUND_WEBHOOKS_DISABLE_AFTER_DAYS = env.int("OUTBOUND_WEBHOOKS_DISABLE_AFTER_DAYS", default=3)
# How often (s) beat queues deliveries whose retry is due (or whose message was lost).
OUTBOUND_WEBHOOKS_SWEEP_EVERY = env.int("OUTBOUND_WEBHOOKS_SWEEP_EVERY", default=5)
CELERY_BEAT_SCHEDULE["outbound-webhooks-due"] = {
    "task": "campaigns.events.tasks.deliveries_due",
    "schedule": OUTBOUND_WEBHOOKS_SWEEP_EVERY,
}

# --- Logs (README: Logs) -------------------------------------------------------------------
# json: one JSON object a line on stdout, with the request, task, campaign and batch it is
# about, for a log search to read. text: the lines `make run` shows a person (and filters).
LOG_FORMAT = env.str("LOG_FORMAT", default="text" if DEBUG else "json").lower()
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, not {LOG_FORMAT!r}.")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "voiceable.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "json": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
    },
    "root": {"handlers": ["json" if LOG_FORMAT == "json" else "console"], "level": LOG_LEVEL},
}

# --- Error reporting (README: Logs) --------------------------------------------------------
# Sentry, only when a DSN is set: unset, sentry-sdk is not even imported.
SENTRY_DSN = env.str("SENTRY_DSN", default="")
SENTRY_ENVIRONMENT = env.str("SENTRY_ENVIRONMENT", default="development" if DEBUG else "production")
SENTRY_RELEASE = env.str("SENTRY_RELEASE", default="")
SENTRY_TRACES_SAMPLE_RATE = env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0)
if SENTRY_DSN:
    from voiceable import sentry

    sentry.init(
        dsn=SENTRY_DSN,
        environment=SENTRY_ENVIRONMENT,
        release=SENTRY_RELEASE,
        traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE,
    )
