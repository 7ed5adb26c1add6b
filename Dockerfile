FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# Static files are collected at build time; the key only signs nothing here.
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput

# var/uploads exists in the image so that a volume mounted there (docker-compose.yml) is the user's.
RUN useradd --create-home voiceable && mkdir -p /app/var/uploads && chown -R voiceable /app/var
USER voiceable
EXPOSE 8000
# Port, workers, threads and timeout: gunicorn.conf.py, from PORT, WEB_CONCURRENCY, WEB_THREADS, WEB_TIMEOUT.
CMD ["gunicorn", "voiceable.wsgi", "--config", "gunicorn.conf.py"]
