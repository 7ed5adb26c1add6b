"""State of the sandbox: batch calls and their recipients, outbound campaigns with their leads and
calls, the campaign clock, and the fault counters.

Times are unix seconds, as in ElevenLabs' JSON; `created_at` and `started_at` keep the
fraction so that ordering and the call timeline are exact. Optional text is NULL when
absent: ElevenLabs' JSON tells `null` from `""`, and so do these columns.
"""

# ruff: noqa: DJ001

from django.db import models


class BatchStatus(models.TextChoices):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RecipientStatus(models.TextChoices):
    PENDING = "pending"
    DISPATCHED = "dispatched"
    INITIATED = "initiated"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    VOICEMAIL = "voicemail"


class Outcome(models.TextChoices):
    """How a recipient's current attempt ends (see `services.outcome_for`)."""

    SUCCESS = "success"
    UNSUCCESSFUL = "unsuccessful"
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    VOICEMAIL = "voicemail"
    # Outbound campaigns only: the person answers and asks not to be called again.
    DO_NOT_CALL = "do-not-call"


class SandboxBatch(models.Model):
    id = models.CharField(primary_key=True, max_length=40)
    name = models.TextField()
    agent_id = models.CharField(max_length=64)
    agent_name = models.TextField()
    phone_number_id = models.CharField(max_length=64, null=True, blank=True)
    phone_provider = models.CharField(max_length=16, null=True, blank=True)
    status = models.CharField(max_length=16, choices=BatchStatus.choices, default=BatchStatus.PENDING)
    created_at = models.FloatField()
    created_at_unix = models.BigIntegerField()
    scheduled_time_unix = models.BigIntegerField()
    timezone = models.TextField(null=True, blank=True)
    branch_id = models.TextField(null=True, blank=True)
    environment = models.TextField(null=True, blank=True)
    telephony_call_config = models.JSONField(default=dict)
    whatsapp_params = models.JSONField(null=True, blank=True)
    target_concurrency_limit = models.IntegerField(null=True, blank=True)
    retry_count = models.IntegerField(default=0)
    total_calls_dispatched = models.IntegerField(default=0)
    total_calls_scheduled = models.IntegerField(default=0)
    total_calls_finished = models.IntegerField(default=0)
    # When the current round of calls starts: recipient i is dispatched at
    # started_at + i * SANDBOX_CALL_SPACING_SECONDS.
    started_at = models.FloatField()
    # started_at of every round so far (the submit, then each retry): a recipient's attempt n
    # is placed in round n, which dates the conversations of its earlier attempts.
    round_starts = models.JSONField(default=list)
    last_updated_at_unix = models.BigIntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="sandbox_batch_newest"),
            models.Index(fields=["agent_id", "-created_at"], name="sandbox_batch_agent_newest"),
            models.Index(fields=["status"], name="sandbox_batch_status"),
        ]

    def __str__(self):
        return f"{self.id} ({self.name})"


class SandboxRecipient(models.Model):
    id = models.CharField(primary_key=True, max_length=40)
    batch = models.ForeignKey(SandboxBatch, on_delete=models.CASCADE, related_name="recipients")
    position = models.IntegerField()
    phone_number = models.TextField(null=True, blank=True)
    whatsapp_user_id = models.TextField(null=True, blank=True)
    # The `id` the client sent for this recipient, if any.
    external_id = models.TextField(null=True, blank=True)
    # The recipient's `conversation_initiation_client_data`, as sent.
    client_data = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=RecipientStatus.choices, default=RecipientStatus.PENDING)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    attempt = models.IntegerField(default=1)
    # conversation_id of attempt n = "conv_" + conversation_key + n as two digits.
    conversation_key = models.CharField(max_length=32)
    conversation_id = models.CharField(max_length=40, null=True, blank=True)
    dispatched = models.BooleanField(default=False)
    created_at_unix = models.BigIntegerField()
    updated_at_unix = models.BigIntegerField()
    # Delivery of the current attempt's post_call_transcription or call_initiation_failure...
    webhook_sent = models.BooleanField(default=False)
    webhook_attempts = models.PositiveSmallIntegerField(default=0)
    # ...and of its post_call_audio (SANDBOX_WEBHOOK_AUDIO), tracked apart.
    audio_sent = models.BooleanField(default=False)
    audio_attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["batch", "position"], name="sandbox_recipient_position_unique"),
        ]
        indexes = [
            models.Index(fields=["status", "webhook_sent"], name="sandbox_recipient_webhook"),
            models.Index(fields=["status", "audio_sent"], name="sandbox_recipient_audio"),
            models.Index(fields=["conversation_key"], name="sandbox_recipient_conversation"),
        ]

    def __str__(self):
        return f"{self.id} ({self.phone_number or self.whatsapp_user_id})"


class SandboxFault(models.Model):
    """How many answers one rule of SANDBOX_FAULTS has turned into errors so far.

    In the database so that every web worker draws from the same count.
    """

    # The rule as written in SANDBOX_FAULTS, e.g. "submit=429:2": a changed rule counts afresh.
    rule = models.CharField(primary_key=True, max_length=64)
    used = models.PositiveIntegerField(default=0)

    def __str__(self):
        return f"{self.rule} ({self.used} used)"


class SandboxTickLease(models.Model):
    """Who runs `sandbox_tick` now: one row, taken with a conditional UPDATE until `expires_at`.

    Two ticks never run at once; one killed mid-way holds it only until it expires.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    holder = models.CharField(max_length=32, blank=True, default="")
    # Unix seconds; 0 when nobody holds it.
    expires_at = models.FloatField(default=0)

    def __str__(self):
        return f"tick lease until {self.expires_at}"


# --- Outbound campaigns -----------------------------------------------------------------


class CampaignStatus(models.TextChoices):
    ACTIVE = "active"
    PAUSED = "paused"
    STOPPING = "stopping"
    STOPPED = "stopped"
    COMPLETED = "completed"


class CampaignCallStatus(models.TextChoices):
    QUEUED = "queued"
    SUBMITTED = "submitted"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class SandboxClock(models.Model):
    """The campaign clock: where calling windows and retry delays are read (see `sandbox.outbound`).

    One row. It reads `campaign_anchor` at the real moment `real_anchor` and runs `speed`
    times faster than real time; it is anchored again whenever SANDBOX_CLOCK_SPEED or
    SANDBOX_CLOCK_START change, so every web worker reads the same campaign time.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    speed = models.FloatField()
    start = models.TextField(blank=True, default="")
    real_anchor = models.FloatField()
    campaign_anchor = models.FloatField()

    def __str__(self):
        return f"campaign clock x{self.speed}"


class SandboxCampaign(models.Model):
    id = models.CharField(primary_key=True, max_length=40)
    name = models.TextField()
    agent_id = models.CharField(max_length=64)
    agent_name = models.TextField()
    phone_number_id = models.CharField(max_length=64)
    phone_provider = models.CharField(max_length=16)
    # channel_config.mode_config as submitted (PhoneVoiceConfigInput), or NULL.
    mode_config = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=CampaignStatus.choices, default=CampaignStatus.ACTIVE)
    variant = models.CharField(max_length=16)
    # The full policy the campaign took at creation (CampaignPolicySnapshot).
    policy = models.JSONField()
    created_at = models.FloatField()
    created_at_unix = models.BigIntegerField()
    scheduled_time_unix = models.BigIntegerField(null=True, blank=True)
    updated_at_unix = models.BigIntegerField()
    branch_id = models.TextField(null=True, blank=True)
    environment = models.TextField(null=True, blank=True)
    target_concurrency_limit = models.IntegerField(null=True, blank=True)
    # A repeated submit finds its campaign by either.
    idempotency_key = models.TextField(null=True, blank=True, unique=True)
    body_hash = models.CharField(max_length=64, db_index=True)
    # The simulation has been played up to this real moment...
    advanced_to = models.FloatField()
    # ...and placed its last call at this one (calls go out SANDBOX_CALL_SPACING_SECONDS apart).
    last_dispatch_at = models.FloatField(null=True, blank=True)
    # Calls created so far: orders the call list, newest first.
    calls_created = models.IntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="sandbox_campaign_newest"),
            models.Index(fields=["status"], name="sandbox_campaign_status"),
        ]

    def __str__(self):
        return f"{self.id} ({self.name})"


class SandboxLead(models.Model):
    id = models.CharField(primary_key=True, max_length=40)
    campaign = models.ForeignKey(SandboxCampaign, on_delete=models.CASCADE, related_name="leads")
    position = models.IntegerField()
    phone_number = models.TextField()
    # The recipient's further numbers (`phone_numbers`), as sent.
    phone_numbers = models.JSONField(null=True, blank=True)
    # The recipient's `id`, echoed as `recipient_id`.
    external_id = models.TextField(null=True, blank=True)
    client_data = models.JSONField(null=True, blank=True)
    attempt_count = models.IntegerField(default=0)
    failure_count = models.IntegerField(default=0)
    do_not_call = models.BooleanField(default=False)
    terminal_disposition = models.CharField(max_length=32, null=True, blank=True)
    # conversation_id of call n = "conv_" + conversation_key + n as two digits.
    conversation_key = models.CharField(max_length=32)
    created_at_unix = models.BigIntegerField()
    updated_at_unix = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "position"], name="sandbox_lead_position_unique"),
        ]
        indexes = [
            models.Index(fields=["conversation_key"], name="sandbox_lead_conversation"),
            models.Index(fields=["campaign", "terminal_disposition"], name="sandbox_lead_disposition"),
        ]

    def __str__(self):
        return f"{self.id} ({self.phone_number})"


class SandboxCampaignCall(models.Model):
    """One call of a lead: its first call, then each retry."""

    id = models.CharField(primary_key=True, max_length=40)
    campaign = models.ForeignKey(SandboxCampaign, on_delete=models.CASCADE, related_name="calls")
    lead = models.ForeignKey(SandboxLead, on_delete=models.CASCADE, related_name="calls")
    # Creation order within the campaign.
    sequence = models.IntegerField()
    # 1 for the lead's first call, +1 per retry.
    number = models.IntegerField()
    status = models.CharField(max_length=16, choices=CampaignCallStatus.choices, default=CampaignCallStatus.QUEUED)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    # Real unix times: when the call is due, when it was placed, when it ended.
    scheduled_at = models.FloatField()
    placed_at = models.FloatField(null=True, blank=True)
    ended_at = models.FloatField(null=True, blank=True)
    # What the campaign did after the call (DecisionDisposition), once it has decided.
    decision = models.CharField(max_length=32, null=True, blank=True)
    updated_at_unix = models.BigIntegerField()
    webhook_sent = models.BooleanField(default=False)
    webhook_attempts = models.PositiveSmallIntegerField(default=0)
    audio_sent = models.BooleanField(default=False)
    audio_attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "sequence"], name="sandbox_call_sequence_unique"),
            models.UniqueConstraint(fields=["lead", "number"], name="sandbox_call_number_unique"),
        ]
        indexes = [
            models.Index(fields=["campaign", "status", "scheduled_at"], name="sandbox_call_queue"),
            models.Index(fields=["status", "webhook_sent"], name="sandbox_call_webhook"),
            models.Index(fields=["status", "audio_sent"], name="sandbox_call_audio"),
        ]

    def __str__(self):
        return f"{self.id} (call {self.number} of {self.lead_id})"


class SandboxDeletedConversation(models.Model):
    """A conversation deleted through the API: from then on it answers 404, as a deleted one does."""

    conversation_id = models.CharField(max_length=40, unique=True)
    deleted_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.conversation_id
