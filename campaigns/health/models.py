from django.db import models


class Heartbeat(models.Model):
    """When a periodic task last ran, one row per name ("beat").

    In the database rather than the cache: every web machine reads the same row whatever
    CACHE_URL is (with DEBUG the cache is each process's own memory), and a cache that is
    flushed or culls its keys cannot make a running beat look dead.
    """

    name = models.CharField(max_length=32, primary_key=True)
    at = models.DateTimeField()

    def __str__(self):
        return f"{self.name} at {self.at.isoformat()}"
