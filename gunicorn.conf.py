"""Gunicorn reads this file from the folder it starts in (the project's, in the Procfile and the
Dockerfile). In JSON mode (settings.LOG_FORMAT) its own lines, start-up and access log alike,
are written as the service's are: one JSON object a line on stdout."""

from voiceable.settings import LOG_FORMAT, LOG_LEVEL

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
