"""The table of the database cache, where the API's rate limits live when CACHE_URL is unset
and DEBUG is off (settings.CACHE_TABLE).

It is created whatever cache the migrating process is configured with: a database migrated
under DEBUG (memory cache) or with CACHE_URL=redis://… may later be served without either.
createcachetable leaves an existing table alone, and also creates the table of any other
database cache CACHE_URL names.
"""

from django.core.management import call_command
from django.db import migrations

TABLE = "voiceable_cache"


def create_cache_tables(apps, schema_editor):
    database = schema_editor.connection.alias
    call_command("createcachetable", TABLE, database=database, verbosity=0)
    call_command("createcachetable", database=database, verbosity=0)


class Migration(migrations.Migration):

    dependencies = [
        ("campaigns", "0009_idempotency"),
    ]

    operations = [
        migrations.RunPython(create_cache_tables, migrations.RunPython.noop),
    ]
