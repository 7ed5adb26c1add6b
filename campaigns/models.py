import hashlib

from django.conf import settings
from django.db import models
from django.db.models import Q


class TimestampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Profile(models.Model):
    """Per-user preferences that apply when a request does not say otherwise."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    timezone = models.CharField(max_length=64, default="UTC", help_text="IANA time zone, e.g. Europe/Berlin.")

    def __str__(self):
        return f"{self.user} ({self.timezone})"


class Agent(TimestampedModel):
    """An ElevenLabs conversational agent the user may call with."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agents")
    elevenlabs_agent_id = models.CharField(max_length=128)
    name = models.CharField(max_length=255)
    # Which per-call overrides the agent accepts (platform_settings.overrides, read at sync):
    # {"language": bool, "first_message": bool, "system_prompt": bool, "voice_id": bool}.
    # NULL until read: a file's override columns are then not checked before submit.
    override_permissions = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "elevenlabs_agent_id"], name="agent_unique_per_user"),
        ]

    def __str__(self):
        return f"{self.name} ({self.elevenlabs_agent_id})"


class PhoneNumber(TimestampedModel):
    """An ElevenLabs phone number the user's calls go out from."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="phone_numbers")
    elevenlabs_phone_number_id = models.CharField(max_length=128)
    phone_number = models.CharField(max_length=32, help_text="E.164, as ElevenLabs reports it.")
    label = models.CharField(max_length=255, blank=True)
    provider = models.CharField(max_length=32, blank=True)
    supports_outbound = models.BooleanField(default=True, help_text="ElevenLabs can place calls from it.")

    class Meta:
        ordering = ["label", "id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "elevenlabs_phone_number_id"], name="phone_number_unique_per_user"),
        ]

    def __str__(self):
        return f"{self.label or self.phone_number} ({self.phone_number})"


class Campaign(TimestampedModel):
    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        PENDING = "pending", "Pending"
        IN_PROGRESS = "in_progress", "In progress"
        # Cancel accepted; ElevenLabs has not yet confirmed it for every batch.
        CANCELLING = "cancelling", "Cancelling"
        PAUSED = "paused", "Paused"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="campaigns")
    name = models.CharField(max_length=255)
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="campaigns")
    phone_number = models.ForeignKey(PhoneNumber, on_delete=models.PROTECT, related_name="campaigns")
    status = models.CharField(max_length=16, choices=Status.choices)
    send_immediately = models.BooleanField()
    scheduled_at = models.DateTimeField(null=True, blank=True, help_text="UTC instant the campaign is due.")
    timezone = models.CharField(max_length=64, default="UTC", help_text="IANA zone the schedule was given in.")
    # NULL, not "", until submitted: the API documents null.
    elevenlabs_batch_call_id = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001
    error = models.TextField(blank=True, help_text="Why the campaign failed, in words a person can read.")

    # Set once, atomically, by the worker that wins the right to submit the campaign.
    dispatch_claimed_at = models.DateTimeField(null=True, blank=True)
    # Set once by the accepted cancel: from then on no batch is claimed or submitted.
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    # A worker polling the campaign holds it until then: one poll of a campaign at a time.
    poll_lease_until = models.DateTimeField(null=True, blank=True)
    # Set by a pause, cleared by the resume: while set, nothing new is submitted or called.
    paused_at = models.DateTimeField(null=True, blank=True)
    pause_confirmed = models.BooleanField(default=False, help_text="ElevenLabs holds every part that was sent.")
    calls_dispatched = models.PositiveIntegerField(default=0)
    calls_finished = models.PositiveIntegerField(default=0)

    recipients_count = models.PositiveIntegerField(default=0)
    duplicates_merged = models.PositiveIntegerField(default=0)
    invalid_rows_skipped = models.PositiveIntegerField(default=0)
    # The first problems found in the file when invalid rows were skipped.
    import_errors = models.JSONField(default=list, blank=True)
    # The staff form's kept upload it was created from: unique, so one preview makes one campaign.
    source_upload = models.CharField(max_length=32, null=True, blank=True, unique=True)
    suppressed_count = models.PositiveIntegerField(default=0, help_text="Numbers left out: on the do-not-call list.")
    # Recipients by the zone their calls are timed in: {"America/New_York": 412, ...}.
    time_zones = models.JSONField(default=dict, blank=True)

    # The calling policy (campaigns/policy.py). With calling hours or more than one attempt,
    # ElevenLabs' outbound-campaigns engine places the calls; without, batch calling does.
    calling_hours = models.CharField(max_length=200, blank=True, help_text='Local windows, "09:00-12:00,14:00-20:00".')
    calling_days = models.CharField(max_length=27, blank=True, help_text='"mon,tue,wed,thu,fri"; empty: every day.')
    calling_timezone = models.CharField(
        max_length=64, blank=True, help_text='"recipient" (each one\'s own zone) or an IANA zone for everyone.'
    )
    max_attempts = models.PositiveSmallIntegerField(default=1, help_text="Calls per recipient, the first included.")
    retry_delay_minutes = models.PositiveIntegerField(default=60)
    max_concurrent_calls = models.PositiveIntegerField(null=True, blank=True)

    # Retention (campaigns/lifecycle.py): when a sweep claimed the finished campaign for erasure,
    # and when its personal data was erased for good (its batches deleted at ElevenLabs too).
    personal_data_claimed_at = models.DateTimeField(null=True, blank=True)
    personal_data_erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="campaign_user_created"),
            models.Index(fields=["scheduled_at"], name="campaign_due", condition=Q(status="scheduled")),
            models.Index(fields=["elevenlabs_batch_call_id"], name="campaign_batch_id"),
        ]

    def __str__(self):
        return self.name


# What an erased recipient's number becomes, followed by its id (campaigns/lifecycle.py).
RECIPIENT_ERASED_PREFIX = "erased:"

# A part nothing was sent for yet (neither a batch call nor an outbound campaign), and one that was.
BATCH_UNSENT = Q(elevenlabs_batch_call_id__isnull=True, elevenlabs_campaign_id__isnull=True)
BATCH_SENT = Q(elevenlabs_batch_call_id__isnull=False) | Q(elevenlabs_campaign_id__isnull=False)


class CampaignBatch(models.Model):
    """One ElevenLabs submission carrying a slice of a campaign's recipients (ordered by id): a
    batch call, or for a campaign with a calling policy an outbound campaign of one time zone."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="batches")
    part = models.PositiveSmallIntegerField(help_text="1-based.")
    # An outbound campaign's zone: it carries the recipients of that zone only.
    timezone = models.CharField(max_length=64, blank=True, default="")
    # The batch carries the campaign's recipients (of its zone) [offset, offset + size) in id order.
    offset = models.PositiveIntegerField()
    size = models.PositiveIntegerField()
    # Written into call_name so the batch can be recognised in ElevenLabs' workspace list
    # when a worker died between ElevenLabs accepting it and the id being saved here.
    token = models.CharField(max_length=40, unique=True)
    elevenlabs_batch_call_id = models.CharField(max_length=128, null=True, blank=True, unique=True)
    elevenlabs_campaign_id = models.CharField(max_length=128, null=True, blank=True, unique=True)
    # Its share of the campaign's max_concurrent_calls (target_concurrency_limit).
    concurrency_limit = models.PositiveIntegerField(null=True, blank=True)
    # Outbound campaigns: when ElevenLabs calls next (a window that has not opened yet, a retry),
    # and the progress last read, so leads and calls are read again only once it moved.
    next_call_at = models.DateTimeField(null=True, blank=True)
    progress_signature = models.TextField(blank=True, default="")
    # A part made by a resume carries exactly these recipients (not an offset/size slice).
    recipient_ids = models.JSONField(null=True, blank=True)
    # A batch call stopped by a pause whose never-dialled recipients a resume handed to a new part.
    superseded_at = models.DateTimeField(null=True, blank=True)
    # As ElevenLabs reports it (cut to the column: an unknown, longer value must not break a write).
    status = models.CharField(max_length=32, blank=True, help_text="As ElevenLabs reports it.")
    submit_started_at = models.DateTimeField(null=True, blank=True, help_text="A worker is submitting it.")
    submit_attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    calls_dispatched = models.PositiveIntegerField(default=0)
    calls_finished = models.PositiveIntegerField(default=0)
    retry_count = models.PositiveSmallIntegerField(default=0)
    polled_at = models.DateTimeField(null=True, blank=True)
    poll_failures = models.PositiveSmallIntegerField(default=0, help_text="Failed polls in a row.")
    # ElevenLabs confirmed the cancel (or the batch was never sent, or had already ended).
    cancel_confirmed_at = models.DateTimeField(null=True, blank=True)
    # ElevenLabs reports the batch and every call in it finished: nothing left to follow.
    settled_at = models.DateTimeField(null=True, blank=True)
    # Retention: ElevenLabs deleted the batch call (or answered 404: it was gone already).
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["campaign_id", "part"]
        constraints = [models.UniqueConstraint(fields=["campaign", "part"], name="batch_part_unique")]
        verbose_name_plural = "campaign batches"

    def __str__(self):
        return f"{self.campaign_id}/{self.part} {self.elevenlabs_batch_call_id or '(not submitted)'}"


class Recipient(models.Model):
    """One person to call in a campaign: stored once per phone number."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DISPATCHED = "dispatched", "Dispatched"
        INITIATED = "initiated", "Initiated"
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        VOICEMAIL = "voicemail", "Voicemail"

    # No index of its own: the unique (campaign, phone_number) and the (campaign, status) indexes
    # both start with it, and a third index on every recipient slows the create's COPY.
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="recipients", db_index=False)
    # E.164, or RECIPIENT_ERASED_PREFIX and its id once erased: unique in the campaign, and no number.
    phone_number = models.CharField(max_length=24, help_text="E.164.")
    line = models.PositiveIntegerField(help_text="Line (or spreadsheet row) of the file it came from.")
    variables = models.JSONField(default=dict, blank=True, help_text="ElevenLabs dynamic_variables.")
    overrides = models.JSONField(
        default=dict, blank=True, help_text="language, first_message, system_prompt, voice_id."
    )
    # IANA zone its calling hours are read in: from the number, the file's timezone column, or
    # the campaign's zone when the number's area spans several.
    timezone = models.CharField(max_length=64, blank=True, default="", db_default="")

    # Database defaults: recipients are written with a bulk COPY/INSERT of the columns above.
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_default=Status.PENDING)
    conversation_id = models.CharField(max_length=128, blank=True, default="", db_default="")
    call_successful = models.CharField(
        max_length=16, blank=True, default="", db_default="", help_text="success, failure or unknown."
    )
    failure_reason = models.CharField(
        max_length=64, blank=True, default="", db_default="", help_text="busy, no-answer, ..."
    )
    summary = models.TextField(blank=True, default="", db_default="")
    call_result = models.CharField(
        max_length=16, blank=True, default="", db_default="", help_text="answered, voicemail, busy, no_answer, failed."
    )
    status_updated_at = models.DateTimeField(null=True, blank=True)
    # 1 for the first call; each retry adds one. Events about an earlier attempt never
    # overwrite what the recipient shows.
    attempt = models.PositiveSmallIntegerField(default=1, db_default=1)
    retried_at = models.DateTimeField(null=True, blank=True)
    # Outbound campaigns: ElevenLabs' lead, when it calls next, and why it stopped calling.
    elevenlabs_lead_id = models.CharField(max_length=128, blank=True, default="", db_default="")
    next_call_at = models.DateTimeField(null=True, blank=True)
    disposition = models.CharField(
        max_length=32, blank=True, default="", db_default="", help_text="completed, attempt_ceiling_reached, ..."
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "phone_number"], name="recipient_unique_per_campaign"),
        ]
        indexes = [
            models.Index(fields=["campaign", "status"], name="recipient_campaign_status"),
        ]

    def __str__(self):
        return self.phone_number


class Call(models.Model):
    """One call placed to a recipient: an ElevenLabs conversation, with its outcome and transcript."""

    recipient = models.ForeignKey(Recipient, on_delete=models.CASCADE, related_name="calls")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="calls")
    attempt = models.PositiveSmallIntegerField()
    conversation_id = models.CharField(max_length=128, unique=True)
    status = models.CharField(max_length=16, blank=True, default="", db_default="")
    call_result = models.CharField(max_length=16, blank=True, default="", db_default="")
    call_successful = models.CharField(max_length=16, blank=True, default="", db_default="")
    failure_reason = models.CharField(max_length=64, blank=True, default="", db_default="")
    # The telephony provider's own words for a failed call: Twilio's CallStatus and
    # SipResponseCode, or a SIP trunk's error_reason and sip_status_code.
    provider = models.CharField(max_length=16, blank=True, default="", db_default="")
    provider_status = models.CharField(max_length=64, blank=True, default="", db_default="")
    provider_code = models.CharField(max_length=16, blank=True, default="", db_default="")
    summary = models.TextField(blank=True, default="", db_default="")
    transcript = models.JSONField(default=list, blank=True)
    # The agent's data collection (analysis.data_collection_results of the post-call webhook):
    # {"appointment_confirmed": {"value": true, "rationale": "..."}}. A database default too:
    # polls record calls with a bulk INSERT that names only the columns they know.
    data_collection = models.JSONField(
        default=dict, blank=True, db_default=models.Value({}, output_field=models.JSONField())
    )
    duration_secs = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_default=models.functions.Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=models.functions.Now())

    class Meta:
        ordering = ["recipient_id", "attempt", "id"]
        indexes = [models.Index(fields=["recipient", "attempt"], name="call_recipient_attempt")]

    def __str__(self):
        return f"{self.conversation_id} (attempt {self.attempt})"


class WebhookEvent(models.Model):
    """A verified ElevenLabs webhook, stored before it is applied (the inbox).

    Nothing verified is dropped: an event about a call we cannot match yet stays pending
    and is applied when a poll (or a conversation lookup) tells us whose call it was.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPLIED = "applied", "Applied"
        IGNORED = "ignored", "Ignored (a type we do not record)"

    digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the body: one row per event.")
    event_type = models.CharField(max_length=64)
    event_timestamp = models.DateTimeField(null=True, blank=True)
    conversation_id = models.CharField(max_length=128, blank=True, default="")
    agent_id = models.CharField(max_length=128, blank=True, default="")
    payload = models.JSONField(default=dict, blank=True, help_text="The event, without its audio.")
    body_bytes = models.PositiveBigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    note = models.TextField(blank=True, help_text="Why it is not applied yet.")
    attempts = models.PositiveIntegerField(default=0)
    looked_up_at = models.DateTimeField(null=True, blank=True, help_text="ElevenLabs was asked about the call.")
    call = models.ForeignKey(Call, on_delete=models.SET_NULL, null=True, blank=True, related_name="events")
    received_at = models.DateTimeField(auto_now_add=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["status", "received_at"], name="webhook_event_status"),
            models.Index(fields=["conversation_id"], name="webhook_event_conversation"),
        ]

    def __str__(self):
        return f"{self.event_type} {self.conversation_id or ''} ({self.status})"


class ApiKey(models.Model):
    """A user's API key. Only a SHA-256 hash is kept; the key is shown once, at creation."""

    PREFIX_LENGTH = 11  # "vk_" and the first eight characters of the secret part

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, help_text="The key's first characters, to tell keys apart.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API key"

    def __str__(self):
        return f"{self.name or 'API key'} ({self.prefix}…)"

    @property
    def is_active(self):
        return self.revoked_at is None

    @staticmethod
    def hash_key(raw_key: str) -> str:
        # Keys carry 256 random bits, so a fast hash is enough and keeps lookups to one query.
        return hashlib.sha256(raw_key.encode()).hexdigest()


class Suppression(models.Model):
    """A number on an account's do-not-call list: never called by any of its campaigns."""

    class Source(models.TextChoices):
        API = "api", "API"
        STAFF = "staff", "Staff page"
        ADMIN = "admin", "Admin"
        ELEVENLABS = "elevenlabs", "Asked on a call"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="suppressions")
    # NULL once the number was erased: number_hash then keeps it blocked (campaigns/lifecycle.py).
    # NULL rather than "": the unique (user, phone_number) index stays a plain one, which the
    # lookups by number can use (a partial index's condition is not provable from them).
    phone_number = models.CharField(max_length=16, null=True, blank=True, help_text="E.164.")  # noqa: DJ001
    number_hash = models.CharField(  # noqa: DJ001
        max_length=64, null=True, blank=True, help_text="HMAC of an erased number."
    )
    reason = models.CharField(max_length=255, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.API)
    # The campaign whose call taught it (source "elevenlabs").
    campaign = models.ForeignKey(
        Campaign, on_delete=models.SET_NULL, null=True, blank=True, related_name="suppressions_learned"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # NULLs are distinct: any number of erased entries, each once by its hash.
            models.UniqueConstraint(fields=["user", "phone_number"], name="suppression_unique_per_user"),
            models.UniqueConstraint(fields=["user", "number_hash"], name="suppression_hash_unique_per_user"),
        ]
        verbose_name = "do-not-call entry"
        verbose_name_plural = "do-not-call list"

    def __str__(self):
        return self.phone_number or "erased number"

    @property
    def erased(self) -> bool:
        return not self.phone_number


class IdempotencyRecord(models.Model):
    """A POST sent with an Idempotency-Key: claimed while it runs, then its answer, replayed to repeats.

    One row per user and key, so the INSERT that claims a key is decided by the unique constraint:
    of two requests at once, exactly one runs.
    """

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="idempotency_records")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the method, path and body.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_PROGRESS)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    # The answer as sent, byte for byte (a JSON column would reorder its keys).
    body = models.TextField(blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_unique_per_user"),
        ]

    def __str__(self):
        return f"{self.key} ({self.state})"


class PersonalDataKey(models.Model):
    """The key erased numbers are hashed with (HMAC-SHA256): made once, kept in the database so
    that it outlives a SECRET_KEY rotation; a new key would unblock every erased number."""

    key = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"Personal data key of {self.created_at:%Y-%m-%d}"


class Erasure(models.Model):
    """What one "erase this person" did, kept without the number (only its keyed hash)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="erasures")
    number_hash = models.CharField(max_length=64, help_text="HMAC of the erased number.")
    requested_by = models.CharField(max_length=255, blank=True, help_text="Who asked: an API key or a staff user.")
    recipients_erased = models.PositiveIntegerField(default=0)
    campaigns_touched = models.PositiveIntegerField(default=0)
    calls_erased = models.PositiveIntegerField(default=0)
    calls_prevented = models.PositiveIntegerField(default=0, help_text="Pending calls taken out before they went.")
    calls_not_stopped = models.PositiveIntegerField(default=0, help_text="Already with ElevenLabs: may still go.")
    conversations_deleted = models.PositiveIntegerField(default=0)
    # [{"conversation_id": ..., "reason": ...}] for each one ElevenLabs did not delete.
    conversations_not_deleted = models.JSONField(default=list, blank=True)
    do_not_call_kept = models.BooleanField(default=False, help_text="Its do-not-call entry was kept as a hash.")
    notes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"Erasure {self.pk} ({self.created_at:%Y-%m-%d %H:%M} UTC)"
