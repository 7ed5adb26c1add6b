"""Each call keeps the agent's data collection from its post-call webhook.

Calls recorded before this keep theirs too: the inbox has every applied webhook, so their
`analysis.data_collection_results` are read back from it (without the transcripts), a chunk
of events at a time.
"""

from django.db import migrations, models

CHUNK = 1000


def data_collection_from_recorded_events(apps, schema_editor):
    from campaigns.inbox import data_collection_results

    WebhookEvent = apps.get_model("campaigns", "WebhookEvent")
    Call = apps.get_model("campaigns", "Call")
    events = WebhookEvent.objects.filter(
        event_type="post_call_transcription", status="applied", call__isnull=False
    ).order_by("pk")
    last = 0
    while True:
        chunk = list(
            events.filter(pk__gt=last).values_list("pk", "call_id", "payload__data__analysis__data_collection_results")[
                :CHUNK
            ]
        )
        if not chunk:
            return
        last = chunk[-1][0]
        # A later event about the same call wins, as it did when the events were applied.
        found = {call_id: data_collection_results(results) for _, call_id, results in chunk}
        calls = [Call(pk=call_id, data_collection=kept) for call_id, kept in found.items() if kept]
        Call.objects.bulk_update(calls, ["data_collection"])


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0010_rate_limit_cache_table'),
    ]

    operations = [
        migrations.AddField(
            model_name='call',
            name='data_collection',
            field=models.JSONField(blank=True, db_default=models.Value({}, output_field=models.JSONField()), default=dict),
        ),
        migrations.RunPython(data_collection_from_recorded_events, migrations.RunPython.noop),
    ]
