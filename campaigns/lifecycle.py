"""The personal-data lifecycle: retention of finished campaigns, and erasing one person.

Retention (PERSONAL_DATA_RETENTION_DAYS, off when 0): a campaign in a final status whose last
change is older than that has its recipients' numbers, variables, overrides and summaries, its
calls' transcripts, summaries and collected data, the inbox events and outbound webhook bodies
about them and its import errors erased; counts, statuses and outcomes stay. Its batch calls are
then deleted at ElevenLabs. A recipient's number becomes "erased:<recipient id>": unique in its
campaign as the constraint wants, and plainly no number.

Erasure (`person_erase`): one number out of every campaign of one account, its conversations
deleted at ElevenLabs where they can be, its pending calls taken out where they have not gone to
ElevenLabs yet, and its do-not-call entry kept as a keyed hash (`number_hash`) so that the
number stays blocked. What it did is kept in an `Erasure`, without the number.
"""

import datetime as dt
import json
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import CharField, Max, Min, Q, QuerySet, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from campaigns import elevenlabs, suppressions, tracking
from campaigns.errors import NotFound
from campaigns.events.models import Delivery
from campaigns.models import (
    RECIPIENT_ERASED_PREFIX,
    Call,
    Campaign,
    CampaignBatch,
    Erasure,
    Recipient,
    Suppression,
    WebhookEvent,
)

logger = logging.getLogger(__name__)

S = Campaign.Status
R = Recipient.Status
FINAL_STATUSES = (S.COMPLETED, S.CANCELLED, S.FAILED)
# Rows (by id range) per UPDATE: a 1,000,000-recipient campaign is erased in about 100 short statements.
ERASE_CHUNK = 10_000
# A sweep's claim older than this was left by a worker that died: another may take the campaign.
CLAIM_EXPIRES = dt.timedelta(hours=1)
# Campaigns queued per sweep; the rest wait for the next one.
SWEEP_LIMIT = 100
ERASED_BODY = json.dumps({"erased": True})
ERASED_NOTE = "Personal data erased."
# What an erasure learns only from ElevenLabs, after its own commit.
REPORT_AFTER_COMMIT = (
    "calls_prevented",
    "calls_not_stopped",
    "conversations_deleted",
    "conversations_not_deleted",
    "notes",
)


# --- Bulk erasing, a chunk of ids at a time --------------------------------------------------


def _in_id_chunks(queryset: QuerySet, **changes) -> int:
    """UPDATE `queryset` with `changes`, ERASE_CHUNK ids at a time; returns the rows changed."""
    bounds = queryset.aggregate(low=Min("pk"), high=Max("pk"))
    if bounds["low"] is None:
        return 0
    changed = 0
    for start in range(bounds["low"], bounds["high"] + 1, ERASE_CHUNK):
        changed += queryset.filter(pk__gte=start, pk__lt=start + ERASE_CHUNK).update(**changes)
    return changed


def _erased_number():
    # Computed by the database for every row of the UPDATE: no row is read into Python.
    return Concat(Value(RECIPIENT_ERASED_PREFIX), Cast("pk", CharField()), output_field=CharField())


def _recipients_erase(recipients: QuerySet) -> int:
    return _in_id_chunks(
        recipients.exclude(phone_number__startswith=RECIPIENT_ERASED_PREFIX),
        phone_number=_erased_number(),
        variables={},
        overrides={},
        summary="",
    )


def _calls_erase(calls: QuerySet) -> int:
    # Rows erased already are skipped: a run cut short (a task's time limit) is resumed, not redone.
    erased = {"transcript": [], "summary": "", "data_collection": {}}
    return _in_id_chunks(calls.exclude(**erased), **erased)


def _events_erase(conversation_ids: QuerySet | list[str]) -> int:
    """The inbox events about these conversations keep their type and status, not their body or
    note (which may name the number). One still pending is not applied any more: what it would
    record is erased."""
    events = WebhookEvent.objects.filter(conversation_id__in=conversation_ids).exclude(conversation_id="")
    pending = events.filter(status=WebhookEvent.Status.PENDING).update(
        status=WebhookEvent.Status.IGNORED, note=ERASED_NOTE, payload={}
    )
    return pending + events.exclude(payload={}, note__in=("", ERASED_NOTE)).update(payload={}, note="")


def _deliveries_erase(deliveries: QuerySet) -> int:
    """Outbound webhook bodies keep their type; one not sent yet never goes."""
    changed = _in_id_chunks(
        deliveries.filter(status=Delivery.Status.PENDING),
        body=ERASED_BODY,
        status=Delivery.Status.FAILED,
        last_error="Erased before it was delivered.",
    )
    return changed + _in_id_chunks(deliveries.exclude(body=ERASED_BODY), body=ERASED_BODY)


# --- Retention -------------------------------------------------------------------------------


def _retention_cutoff(now: dt.datetime) -> dt.datetime | None:
    days = settings.PERSONAL_DATA_RETENTION_DAYS
    return now - dt.timedelta(days=days) if days and days > 0 else None


def _due(now: dt.datetime) -> QuerySet[Campaign] | None:
    cutoff = _retention_cutoff(now)
    if cutoff is None:
        return None
    # The last change of a finished campaign is the one to its final status; a later rename
    # only postpones its erasure. Done locally, a campaign stays due while ElevenLabs still
    # holds one of its batch calls.
    remote_left = CampaignBatch.objects.filter(elevenlabs_batch_call_id__isnull=False, deleted_at__isnull=True)
    return (
        Campaign.objects.filter(status__in=FINAL_STATUSES, updated_at__lt=cutoff)
        .filter(Q(personal_data_erased_at__isnull=True) | Q(pk__in=remote_left.values("campaign_id")))
        .filter(Q(personal_data_claimed_at__isnull=True) | Q(personal_data_claimed_at__lt=now - CLAIM_EXPIRES))
    )


def campaigns_due_for_erasure(*, now: dt.datetime | None = None) -> list[int]:
    """Finished campaigns past the retention period with personal data left here or at ElevenLabs."""
    due = _due(now or timezone.now())
    if due is None:
        return []
    return list(due.order_by("pk").values_list("pk", flat=True)[:SWEEP_LIMIT])


def campaign_personal_data_erase(*, campaign_id: int, client=None, now: dt.datetime | None = None) -> bool:
    """Erase a finished campaign's personal data past retention, then delete its batch calls at
    ElevenLabs. Safe to run twice, or at once in two workers: the campaign is claimed with one
    conditional UPDATE. A batch ElevenLabs did not delete (5xx, 429, timeout) is tried again by
    the next sweep; a 404 means it is gone already. Returns whether everything is erased."""
    now = now or timezone.now()
    due = _due(now)
    if due is None or not due.filter(pk=campaign_id).update(personal_data_claimed_at=now):
        return False
    try:
        campaign = Campaign.objects.get(pk=campaign_id)
        if campaign.personal_data_erased_at is None:
            _campaign_local_erase(campaign)
            Campaign.objects.filter(pk=campaign_id).update(personal_data_erased_at=timezone.now())
        return _batches_delete(campaign_id=campaign_id, client=client)
    finally:
        Campaign.objects.filter(pk=campaign_id, personal_data_claimed_at=now).update(personal_data_claimed_at=None)


def _campaign_local_erase(campaign: Campaign) -> None:
    recipients = _recipients_erase(Recipient.objects.filter(campaign_id=campaign.pk))
    calls = Call.objects.filter(campaign_id=campaign.pk)
    bounds = calls.aggregate(low=Min("pk"), high=Max("pk"))
    events = 0
    if bounds["low"] is not None:
        for start in range(bounds["low"], bounds["high"] + 1, ERASE_CHUNK):
            chunk = calls.filter(pk__gte=start, pk__lt=start + ERASE_CHUNK)
            events += _events_erase(chunk.values("conversation_id"))
    # Events about a recipient's conversation that no call was recorded for.
    events += _events_erase(
        Recipient.objects.filter(campaign_id=campaign.pk).exclude(conversation_id="").values("conversation_id")
    )
    _calls_erase(calls)
    deliveries = _deliveries_erase(
        Delivery.objects.filter(
            endpoint__user_id=campaign.user_id,
            ordering_key=f"campaign:{campaign.pk}",
            event_type="recipient.call_finished",
        )
    )
    # Rows of the file quoted in words ("Line 4: +1415… is not a valid number").
    Campaign.objects.filter(pk=campaign.pk).update(import_errors=[])
    logger.info(
        "Campaign %s: personal data erased (%s recipients, %s inbox events, %s webhook deliveries)",
        campaign.pk,
        recipients,
        events,
        deliveries,
    )


def _batches_delete(*, campaign_id: int, client=None) -> bool:
    """Delete the campaign's batch calls at ElevenLabs; True when none is left there.

    Outbound campaigns (the calling-policy engine) have no delete in ElevenLabs' API: what
    they hold stays there (README: Personal data)."""
    left = CampaignBatch.objects.filter(
        campaign_id=campaign_id, elevenlabs_batch_call_id__isnull=False, deleted_at__isnull=True
    )
    done = True
    for batch_id, remote_id in left.values_list("pk", "elevenlabs_batch_call_id"):
        client = client or elevenlabs.client_from_settings()
        try:
            client.delete_batch(remote_id)
        except elevenlabs.ElevenLabsNotFound:
            pass  # deleted already (by an earlier sweep whose answer was lost, or by hand)
        except elevenlabs.ElevenLabsError as exc:
            logger.warning("Campaign %s: ElevenLabs did not delete batch %s: %s", campaign_id, remote_id, exc)
            done = False
            continue
        CampaignBatch.objects.filter(pk=batch_id).update(deleted_at=timezone.now())
    return done


def campaign_retention_state(*, campaign: Campaign, now: dt.datetime | None = None) -> str:
    """Where the campaign stands in retention, in words (the campaign's admin page)."""
    if campaign.personal_data_erased_at is not None:
        held = CampaignBatch.objects.filter(
            campaign=campaign, elevenlabs_batch_call_id__isnull=False, deleted_at__isnull=True
        ).count()
        erased = f"Personal data erased {campaign.personal_data_erased_at:%Y-%m-%d %H:%M} UTC"
        if held:
            return f"{erased}; {held} batch call{'s' if held != 1 else ''} still to delete at ElevenLabs."
        return f"{erased}; nothing left at ElevenLabs to delete."
    days = settings.PERSONAL_DATA_RETENTION_DAYS
    if not days or days <= 0:
        return "Kept: retention is off (PERSONAL_DATA_RETENTION_DAYS)."
    if campaign.status not in FINAL_STATUSES:
        return f"Kept while it runs; erased {days} days after it ends."
    due = campaign.updated_at + dt.timedelta(days=days)
    if due > (now or timezone.now()):
        return f"Erased after {due:%Y-%m-%d %H:%M} UTC ({days} days after it ended)."
    return "Due: the next retention sweep erases it."


# --- Erasing one person ----------------------------------------------------------------------


def person_erase(*, user, phone_number: str, requested_by: str = "", client=None) -> Erasure:
    """Erase `phone_number` from every campaign of `user`'s account, and from ElevenLabs where it can.

    Raises ValidationFailed for a value that is not a phone number (read as the do-not-call list
    reads one). The number's recipients lose their number, variables, overrides and summary; their
    calls their transcripts, summaries and collected data; inbox events and outbound webhook bodies
    about them their body. A recipient still pending and not yet handed to ElevenLabs is never
    called (an outbound campaign's lead is removed there); one already handed over may still be.
    The do-not-call entry, if any, keeps blocking the number as its keyed hash. Returns the
    Erasure that records what was done, without the number.
    """
    e164 = suppressions.phone_number_normalise(phone_number)
    digest = suppressions.number_hash(e164)
    notes: list[str] = []
    with transaction.atomic():
        recipients = list(
            # By subquery, not a join: only the recipients are locked, never their campaigns.
            Recipient.objects.select_for_update()
            .filter(campaign_id__in=Campaign.objects.filter(user=user).values("pk"), phone_number=e164)
            .values("pk", "campaign_id", "status", "elevenlabs_lead_id", "conversation_id")
        )
        recipient_ids = [row["pk"] for row in recipients]
        calls = Call.objects.filter(recipient_id__in=recipient_ids)
        conversation_ids = set(calls.values_list("conversation_id", flat=True))
        conversation_ids.update(row["conversation_id"] for row in recipients if row["conversation_id"])
        prevented, not_stopped, leads = _pending_calls_stop(recipients)

        erased = _recipients_erase(Recipient.objects.filter(pk__in=recipient_ids))
        calls_erased = _calls_erase(calls)
        _events_erase(sorted(conversation_ids))
        _deliveries_erase(Delivery.objects.filter(endpoint__user=user, body__contains=f'"{e164}"'))
        kept = _suppression_hash(user=user, e164=e164, digest=digest)
        campaign_ids = {row["campaign_id"] for row in recipients}
        held = CampaignBatch.objects.filter(
            campaign_id__in=campaign_ids, elevenlabs_batch_call_id__isnull=False, deleted_at__isnull=True
        ).count()
        if held:
            notes.append(
                f"{held} batch call{'s' if held != 1 else ''} at ElevenLabs still list the number among "
                "their recipients: ElevenLabs deletes a batch call only whole, with everyone in it; "
                "retention deletes it once its campaign's period is over."
            )
        erasure = Erasure.objects.create(
            user=user,
            number_hash=digest,
            requested_by=requested_by[:255],
            recipients_erased=erased,
            campaigns_touched=len(campaign_ids),
            calls_erased=calls_erased,
            calls_prevented=prevented,
            calls_not_stopped=not_stopped,
            do_not_call_kept=kept,
        )

    # At ElevenLabs once the erasure here is committed: a request there may take seconds.
    if client is None and (leads or conversation_ids):
        client = elevenlabs.client_from_settings()
    still_going = _leads_remove(leads, client=client)
    if still_going:
        erasure.calls_prevented -= still_going
        erasure.calls_not_stopped += still_going
    deleted, not_deleted = _conversations_delete(sorted(conversation_ids), client=client)
    if not_stopped or still_going:
        notes.append(
            "Calls already handed to ElevenLabs cannot be taken out of a running batch call: "
            "they may still be placed. Polls match recipients by number, so their outcome may "
            "not be recorded here: the recipient keeps its last known status."
        )
    erasure.conversations_deleted = deleted
    erasure.conversations_not_deleted = not_deleted
    erasure.notes = notes
    erasure.save(update_fields=[*REPORT_AFTER_COMMIT])
    logger.info(
        "Erasure %s: %s recipients in %s campaigns erased, %s conversations deleted, %s not",
        erasure.pk,
        erased,
        len(campaign_ids),
        deleted,
        len(not_deleted),
    )
    return erasure


def _pending_calls_stop(recipients: list[dict]) -> tuple[int, int, list[tuple[int, str, str]]]:
    """Take the number's calls not yet placed out: (prevented, not stoppable, outbound leads to remove).

    A pending recipient whose part was not sent is marked cancelled ("erased"): the send leaves
    erased numbers out. The part is locked meanwhile, so a worker cannot claim it between the
    check and the commit. A lead of an outbound campaign is removed at ElevenLabs after the
    commit. A recipient in a batch call already sent stays with ElevenLabs.
    """
    prevented = not_stopped = 0
    leads: list[tuple[int, str, str]] = []
    cancel: list[int] = []
    for row in recipients:
        if row["status"] in tracking.TERMINAL_RECIPIENT_STATUSES:
            continue
        batches = CampaignBatch.objects.select_for_update().filter(campaign_id=row["campaign_id"]).order_by("part")
        batch = next(
            (part for part in batches if tracking.batch_recipients(batch=part).filter(pk=row["pk"]).exists()), None
        )
        unsent = batch is None or (
            batch.elevenlabs_batch_call_id is None
            and batch.elevenlabs_campaign_id is None
            and batch.submit_started_at is None
        )
        if row["status"] == R.PENDING and unsent:
            cancel.append(row["pk"])
            prevented += 1
        elif batch is not None and batch.elevenlabs_campaign_id and row["elevenlabs_lead_id"]:
            leads.append((row["pk"], batch.elevenlabs_campaign_id, row["elevenlabs_lead_id"]))
            prevented += 1
        else:
            not_stopped += 1
    if cancel:
        Recipient.objects.filter(pk__in=cancel).update(
            status=R.CANCELLED, disposition="erased", next_call_at=None, status_updated_at=timezone.now()
        )
    return prevented, not_stopped, leads


def _leads_remove(leads: list[tuple[int, str, str]], *, client) -> int:
    """Remove the leads at ElevenLabs; returns how many may still be called."""
    still_going = 0
    for recipient_id, campaign_id, lead_id in leads:
        try:
            removal = client.delete_campaign_lead(campaign_id, lead_id)
        except elevenlabs.ElevenLabsNotFound:
            removal = None
        except elevenlabs.ElevenLabsError as exc:
            logger.warning("Erasure: ElevenLabs did not remove lead %s of %s: %s", lead_id, campaign_id, exc)
            still_going += 1
            continue
        if removal is not None and removal.has_calls_in_flight:
            still_going += 1
        Recipient.objects.filter(pk=recipient_id).exclude(status__in=tracking.TERMINAL_RECIPIENT_STATUSES).update(
            status=R.CANCELLED, disposition="erased", next_call_at=None, status_updated_at=timezone.now()
        )
    return still_going


def _conversations_delete(conversation_ids: list[str], *, client) -> tuple[int, list[dict]]:
    deleted = 0
    not_deleted: list[dict] = []
    for conversation_id in conversation_ids:
        try:
            client.delete_conversation(conversation_id)
        except elevenlabs.ElevenLabsNotFound:
            pass  # gone already
        except elevenlabs.ElevenLabsError as exc:
            reason = str(exc)[:300]
            not_deleted.append({"conversation_id": conversation_id, "reason": reason})
            continue
        deleted += 1
    return deleted, not_deleted


def _suppression_hash(*, user, e164: str, digest: str) -> bool:
    """Keep the number's do-not-call entry, if any, as its hash; True when there is one."""
    if Suppression.objects.filter(user=user, phone_number=e164).update(phone_number=None, number_hash=digest):
        return True
    return Suppression.objects.filter(user=user, number_hash=digest).exists()


def erasures_list(*, user) -> QuerySet[Erasure]:
    return Erasure.objects.filter(user=user).order_by("-created_at", "-id")


def erasure_get(*, user, erasure_id) -> Erasure:
    """One of the user's erasures; another account's is missing, like one that never was."""
    erasure_id = str(erasure_id)
    # Any path segment reaches here: only a whole number a bigint holds is looked up.
    erasure = None
    if erasure_id.isdigit() and len(erasure_id) < 19:
        erasure = erasures_list(user=user).filter(pk=int(erasure_id)).first()
    if erasure is None:
        raise NotFound(f"Erasure not found: there is no erasure {erasure_id} in your account.")
    return erasure


def erasure_summary(erasure: Erasure) -> str:
    """What an erasure did, in one line."""

    def count(number: int, noun: str) -> str:
        return f"{number:,} {noun}{'' if number == 1 else 's'}"

    parts = [
        f"{count(erasure.recipients_erased, 'recipient')} erased in {count(erasure.campaigns_touched, 'campaign')}",
        f"{count(erasure.conversations_deleted, 'conversation')} deleted at ElevenLabs",
    ]
    if erasure.conversations_not_deleted:
        parts.append(f"{len(erasure.conversations_not_deleted):,} could not be deleted")
    if erasure.calls_prevented:
        parts.append(f"{count(erasure.calls_prevented, 'pending call')} stopped")
    if erasure.calls_not_stopped:
        parts.append(f"{count(erasure.calls_not_stopped, 'call')} already with ElevenLabs")
    if erasure.do_not_call_kept:
        parts.append("the do-not-call entry kept as a hash")
    return ", ".join(parts)
