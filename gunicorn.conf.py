"""Gunicorn's configuration, for every way the service is deployed: the Procfile, the Dockerfile
and docker-compose.yml all run `gunicorn voiceable.wsgi --config gunicorn.conf.py`, so the
workers, threads, timeout and port come from the settings (PORT, WEB_CONCURRENCY, WEB_THREADS,
WEB_TIMEOUT) and from nowhere else. In JSON mode (settings.LOG_FORMAT) its own lines, start-up
and access log alike, are written as the service's are: one JSON object a line on stdout."""

from voiceable.settings import LOG_FORMAT, LOG_LEVEL, WEB_CONCURRENCY, WEB_PORT, WEB_THREADS, WEB_TIMEOUT

bind = f"0.0.0.0:{WEB_PORT}"
workers = WEB_CONCURRENCY
# Threaded workers: a sync worker silent for WEB_TIMEOUT is killed mid-request.
threads = WEB_THREADS
timeout = WEB_TIMEOUT
accesslog = "-"

if LOG_FORMAT == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "voiceable.logs.JsonFormatter"}},
        "handlers": {"json": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}},
        "root": {"handlers": ["json"], "level": LOG_LEVEL},
        "loggers": {
            "gunicorn.error": {"handlers": ["json"], "level": "INFO", "propagate": False},
            "gunicorn.access": {"handlers": ["json"], "level": "INFO", "propagate": False},
        },
    }
    # The access line is written once the request's context is gone: it names the request's id itself.
    access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms request_id=%({x-request-id}o)s'
