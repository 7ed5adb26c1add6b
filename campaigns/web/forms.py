"""Forms of the staff pages: they read what was typed and hand it to the services, nothing more."""

import contextlib
import dataclasses
import functools
import re
from zoneinfo import available_timezones

from django import forms
from django.conf import settings

from campaigns import policy, selectors, services
from campaigns.errors import ApplicationError, NotFound, PayloadTooLarge
from campaigns.models import Campaign, Recipient
from campaigns.recipients import RecipientsFileError, lacks_country_code

from . import files, uploads

# Zones a person would pick; the tz database's aliases such as Etc/GMT+5 or SystemV/ stay out.
_LEGACY_ZONE_PREFIXES = ("Etc/", "SystemV/", "US/", "posix/", "right/")


@functools.cache
def timezone_choices() -> list[tuple[str, str]]:
    zones = sorted(name for name in available_timezones() if "/" in name and not name.startswith(_LEGACY_ZONE_PREFIXES))
    return [("UTC", "UTC"), *((name, name.replace("_", " ")) for name in zones)]


class CampaignFilterForm(forms.Form):
    status = forms.ChoiceField(choices=[("", "All statuses"), *Campaign.Status.choices], required=False)
    q = forms.CharField(label="Search by name", required=False, max_length=255)

    def filters(self) -> dict:
        if not self.is_valid():
            return {}
        return {"status": self.cleaned_data["status"] or None, "search": self.cleaned_data["q"] or None}


class RecipientFilterForm(forms.Form):
    status = forms.ChoiceField(choices=[("", "All statuses"), *Recipient.Status.choices], required=False)
    q = forms.CharField(label="Search by number", required=False, max_length=32)

    def filters(self) -> dict:
        if not self.is_valid():
            return {}
        return {"status": self.cleaned_data["status"] or None, "search": self.cleaned_data["q"] or None}


DAY_CHOICES = [(day, day.capitalize()) for day in policy.DAYS]
CLOCK_RECIPIENT = "recipient"
CLOCK_ONE_ZONE = "zone"

# The calling policy's refusals name the API's fields; the form says the same in its own words:
# these rewrites first, then any API name left becomes the label of the input it is about.
_POLICY_WORDS = [
    (
        re.compile(r"^calling_timezone says whose clock.*", re.S),
        "One time zone for everyone applies to calling hours: give a time window or tick the days to call "
        "too, or choose each person's own time zone.",
    ),
    (re.compile(r"^calling_timezone '(.*)' is neither.*", re.S), r"“\1” is not a time zone; choose one from the list."),
    (re.compile(r"^calling_hours windows\b"), "The windows"),
    (re.compile(r"^calling_hours has (\d+) windows"), r"There are \1 windows"),
    (re.compile(r"^calling_hours '"), "The window '"),
    (
        re.compile(r'\(write "21:00-24:00,00:00-08:00" for a night\)'),
        "(for a night, call from 21:00 to 00:00 and then from 00:00 to 08:00)",
    ),
    (re.compile(r"^calling_days '"), "The day '"),
]
_POLICY_LABELS = {
    "calling_hours": "the calling hours",
    "calling_days": "the days to call",
    "calling_timezone": "the time zone",
    "max_attempts": "attempts per person",
    "retry_delay_minutes": "minutes between attempts",
    "max_concurrent_calls": "most calls at once",
}
_POLICY_NAME = re.compile("|".join(_POLICY_LABELS))


def policy_error_in_words(message: str) -> str:
    """A calling-policy refusal as the staff form words it: its inputs' labels, not the API's names."""
    for pattern, words in _POLICY_WORDS:
        message = pattern.sub(words, message)
    message = _POLICY_NAME.sub(lambda match: _POLICY_LABELS[match.group()], message)
    return message[:1].upper() + message[1:]


# The other refusals, worded for API clients, name request fields in their fixes. The forms say
# what to do on the page instead: these rewrites first, then any API name left becomes the
# label of its input (see in_staff_words).
_STAFF_WORDS = [
    (re.compile(r"or give a default country \(default_country\)"), "or type the country in Default country"),
    (re.compile(r"\bsend skip_invalid_rows=true\b"), "tick Skip invalid rows"),
    (re.compile(r"^Unknown default_country '(.*?)': "), r"“\1” is not a country code: "),
    (re.compile(r"\bwhen send_immediately is false\b"), "for a campaign scheduled for later"),
]
# The one step that fixes rows refused only for want of a country code.
COUNTRY_FIX = "The numbers have no country code. Type the country in Default country and {again}."


def in_staff_words(message: str, labels: dict[str, str]) -> str:
    """A service's message as a staff form words it: `labels` maps the API names it may use to inputs' labels.

    The API's own messages stay as they are; only the page says them differently.
    """
    for pattern, words in _STAFF_WORDS:
        message = pattern.sub(words, message)
    if labels:
        names = re.compile(r"\b(" + "|".join(map(re.escape, labels)) + r")\b")
        message = names.sub(lambda match: labels[match.group()], message)
    return message


def country_would_fix(exc: ApplicationError) -> bool:
    """Whether every row a service lists as invalid lacks only a country code (a default country fixes them)."""
    rows = [error for error in exc.errors if error.startswith("Line ")]
    return bool(rows) and all(lacks_country_code(row) for row in rows)


def file_refused(exc: ApplicationError) -> bool:
    """Whether a service refused the file itself (its size or what it holds as a whole), not a choice
    made on the form: such a file is never offered again.

    The services raise their error `from None` while handling the reader's RecipientsFileError:
    the traceback hides it, but it stays the error's __context__.
    """
    return isinstance(exc, PayloadTooLarge) or isinstance(exc.__context__, RecipientsFileError)


class UploadForm(forms.Form):
    """A file the page uploads by itself, with a progress bar, before it posts its form (upload.js).

    It is checked as the forms check a file before reading it, then kept: the form that follows
    names it by its token, as after a preview.
    """

    file = forms.FileField(allow_empty_file=True, error_messages={"required": "Choose a file."})
    # The token of the file this one replaces, which is then deleted.
    replaces = forms.CharField(required=False, max_length=1_000)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        # The HTTP status of a refusal: 413 for a file too large, 415 for a kind not read, else 422.
        self.refusal_status = 422

    def clean_file(self):
        upload = self.cleaned_data["file"]
        problem = files.refusal(upload.name, upload.size, max_bytes=settings.RECIPIENTS_MAX_FILE_BYTES)
        if problem:
            self.refusal_status = 415 if files.extension(upload.name) not in files.READABLE else 413
            raise forms.ValidationError(problem)
        return upload

    def keep(self) -> uploads.KeptUpload:
        replaced = uploads.upload_get(user=self.user, token=self.cleaned_data["replaces"])
        if replaced:
            uploads.upload_discard(replaced)
        return uploads.upload_keep(user=self.user, uploaded=self.cleaned_data["file"])

    def error_text(self) -> str:
        return " ".join(error for errors in self.errors.values() for error in errors)


class CampaignForm(forms.Form):
    """The new-campaign form. `preview()` and `create()` call the services with the same inputs.

    An uploaded file is kept (see uploads.py) so that the create step, or a second preview
    after a correction, uses it without the user choosing it again. A file refused as a whole
    (its kind, its size, or what the reader makes of it) is deleted instead, and never offered.
    """

    WHEN_NOW = "now"
    WHEN_SCHEDULE = "schedule"
    # Where the services' ValidationFailed.field lands on this form (calling_hours: see add_service_error).
    SERVICE_FIELDS = {"send_immediately": "when"}
    # The API's names of inputs this form names alike, which the services' messages may use.
    API_NAMES = (
        "agent_id",
        "phone_number_id",
        "recipients_file",
        "default_country",
        "skip_invalid_rows",
        "schedule_date",
        "schedule_time",
    )
    # The two windows of calling hours: (from, to) inputs.
    WINDOWS = (("hours_from_1", "hours_to_1"), ("hours_from_2", "hours_to_2"))
    POLICY_INPUTS = (
        "calling_days",
        "hours_from_1",
        "hours_to_1",
        "hours_from_2",
        "hours_to_2",
        "calling_timezone",
        "max_attempts",
        "retry_delay_minutes",
        "max_concurrent_calls",
    )

    name = forms.CharField(label="Campaign name", max_length=255)
    agent_id = forms.CharField(label="Agent", widget=forms.Select)
    phone_number_id = forms.CharField(label="Call from", widget=forms.Select)
    recipients_file = forms.FileField(
        label="Recipients file",
        required=False,
        allow_empty_file=True,
        # The accepted kinds and the size limit are added per form (files.input_attrs).
        widget=forms.FileInput(attrs={"class": "dropzone__input"}),
    )
    default_country = forms.CharField(
        label="Default country",
        required=False,
        max_length=2,
        help_text="Two-letter code (US, GB) for numbers written without +country code. Leave empty to require +.",
        widget=forms.TextInput(attrs={"placeholder": "e.g. US", "autocomplete": "off", "size": 4}),
    )
    skip_invalid_rows = forms.BooleanField(
        label="Skip invalid rows",
        required=False,
        help_text="Create the campaign from the valid rows and list the others, instead of refusing the file.",
    )
    when = forms.ChoiceField(
        label="When",
        choices=[(WHEN_NOW, "Send now"), (WHEN_SCHEDULE, "Schedule for later")],
        initial=WHEN_NOW,
        widget=forms.RadioSelect,
    )
    schedule_date = forms.DateField(
        label="Date", required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    schedule_time = forms.TimeField(
        label="Time",
        required=False,
        input_formats=["%H:%M", "%H:%M:%S"],
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    timezone = forms.CharField(label="Time zone", required=False, widget=forms.Select)

    # The calling policy. Every input is optional and checked by campaigns/policy.py, so the form
    # and the API refuse the same values with the same reasons.
    calling_days = forms.MultipleChoiceField(
        label="Days to call",
        required=False,
        choices=DAY_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: any day.",
    )
    hours_from_1 = forms.TimeField(
        label="From", required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    hours_to_1 = forms.TimeField(
        label="To", required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    hours_from_2 = forms.TimeField(
        label="Then from", required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    hours_to_2 = forms.TimeField(
        label="Then to", required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    clock = forms.ChoiceField(
        label="Whose clock",
        required=False,
        choices=[
            (CLOCK_RECIPIENT, "Each person's own time zone (from their number)"),
            (CLOCK_ONE_ZONE, "One time zone for everyone"),
        ],
        initial=CLOCK_RECIPIENT,
        widget=forms.RadioSelect,
    )
    calling_timezone = forms.CharField(label="Time zone for everyone", required=False, widget=forms.Select)
    max_attempts = forms.CharField(
        label="Attempts per person",
        required=False,
        max_length=12,
        help_text=f"1 to {policy.MAX_ATTEMPTS}, the first call included. Default 1.",
        widget=forms.NumberInput(attrs={"min": 1, "max": policy.MAX_ATTEMPTS, "placeholder": "1"}),
    )
    retry_delay_minutes = forms.CharField(
        label="Minutes between attempts",
        required=False,
        max_length=12,
        help_text=f"Default {policy.DEFAULT_RETRY_DELAY_MINUTES}.",
        widget=forms.NumberInput(
            attrs={
                "min": 1,
                "max": policy.MAX_RETRY_DELAY_MINUTES,
                "placeholder": str(policy.DEFAULT_RETRY_DELAY_MINUTES),
            }
        ),
    )
    max_concurrent_calls = forms.CharField(
        label="Most calls at once",
        required=False,
        max_length=12,
        help_text="Empty: as many as ElevenLabs allows.",
        widget=forms.NumberInput(attrs={"min": 1, "max": policy.MAX_CONCURRENT_CALLS, "placeholder": "No limit"}),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.kept: uploads.KeptUpload | None = None
        # The campaign this form's preview was already turned into, if any.
        self.already_created: Campaign | None = None
        # Whether the last preview's invalid rows only lack the default country.
        self.country_missing = False
        self.fields["recipients_file"].widget.attrs.update(
            files.input_attrs(max_bytes=settings.RECIPIENTS_MAX_FILE_BYTES)
        )
        self.max_file_size = files.size_in_words(settings.RECIPIENTS_MAX_FILE_BYTES)
        self.fields["agent_id"].widget.choices = [
            ("", "Choose an agent"),
            *((agent.elevenlabs_agent_id, agent.name) for agent in selectors.agent_list(user=user)),
        ]
        self.fields["phone_number_id"].widget.choices = [
            ("", "Choose a phone number"),
            *(
                (str(number.pk), f"{number.label} ({number.phone_number})" if number.label else number.phone_number)
                # An inbound-only number cannot place the calls: it is not offered.
                for number in selectors.phone_number_list(user=user, outbound_only=True)
            ),
        ]
        self.fields["timezone"].widget.choices = timezone_choices()
        self.fields["calling_timezone"].widget.choices = timezone_choices()
        if not self.is_bound:
            self.initial.setdefault("timezone", selectors.user_timezone(user=user))
            self.initial.setdefault("calling_timezone", selectors.user_timezone(user=user))
            # A fresh form starts in the browser's zone (timezone.js); a submitted one keeps the choice.
            self.fields["timezone"].widget.attrs["data-detect-timezone"] = ""

    # --- Checking what was typed --------------------------------------------------------------

    def clean_agent_id(self):
        agent_id = self.cleaned_data["agent_id"]
        try:
            selectors.agent_get(user=self.user, agent_id=agent_id)
        except NotFound as exc:
            raise forms.ValidationError(exc.error) from None
        return agent_id

    def clean_phone_number_id(self):
        phone_number_id = self.cleaned_data["phone_number_id"]
        try:
            selectors.phone_number_get(user=self.user, phone_number_id=phone_number_id)
        except NotFound as exc:
            raise forms.ValidationError(exc.error) from None
        return phone_number_id

    def clean_default_country(self):
        return self.cleaned_data["default_country"].strip().upper()

    def clean_recipients_file(self):
        upload = self.cleaned_data.get("recipients_file")
        token = self.data.get("upload_token", "")
        try:
            self.kept = uploads.upload_choose(user=self.user, token=token, uploaded=upload)
        except uploads.UploadRefused as exc:
            raise forms.ValidationError(str(exc)) from None
        if self.kept:
            return upload or None
        if token:
            # The kept file is deleted once a campaign is made from it: a second click lands here.
            key = uploads.upload_key(user=self.user, token=token)
            self.already_created = selectors.campaign_from_upload(user=self.user, source_upload=key) if key else None
            if self.already_created:
                return None
            raise forms.ValidationError("The file from your preview is no longer available. Choose it again.")
        raise forms.ValidationError("Choose a CSV or Excel (.xlsx) file with the people to call.")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("when") == self.WHEN_NOW:
            # The schedule inputs are hidden when sending now; whatever they hold does not apply.
            cleaned["schedule_date"] = cleaned["schedule_time"] = None
        elif cleaned.get("when") == self.WHEN_SCHEDULE:
            if not cleaned.get("schedule_date") and "schedule_date" not in self.errors:
                self.add_error("schedule_date", "Pick the day the campaign should start.")
            if not cleaned.get("schedule_time") and "schedule_time" not in self.errors:
                self.add_error("schedule_time", "Pick the time the campaign should start.")
        for start, end in self.WINDOWS:
            # Half a window cannot be read; which hours it means is for policy.py to check.
            if (
                bool(cleaned.get(start)) != bool(cleaned.get(end))
                and not self.has_error(start)
                and not self.has_error(end)
            ):
                missing = end if cleaned.get(start) else start
                self.add_error(missing, "Give both ends of the window, or neither.")
        return cleaned

    # --- Calling the services -------------------------------------------------------------------

    def preview(self) -> services.CampaignPreview:
        """The services' preview, its invalid rows' reasons in the form's words."""
        with self._forget_a_refused_file(), self._recipients_file() as recipients_file:
            preview = services.campaign_preview(user=self.user, recipients_file=recipients_file, **self._inputs())
        rows = preview.invalid_rows
        self.country_missing = (
            bool(rows) and not self.cleaned_data["default_country"] and all(map(lacks_country_code, rows))
        )
        labels = self._api_labels()
        return dataclasses.replace(
            preview, invalid_rows=[dataclasses.replace(row, reason=in_staff_words(row.reason, labels)) for row in rows]
        )

    def create(self) -> Campaign:
        with self._forget_a_refused_file(), self._recipients_file() as recipients_file:
            campaign = services.campaign_create(
                user=self.user,
                name=self.cleaned_data["name"],
                recipients_file=recipients_file,
                source_upload=self.kept.key if self.kept else None,
                **self._inputs(),
            )
        if self.kept:
            uploads.upload_discard(self.kept)
            self.kept = None
        return campaign

    @property
    def policy_given(self) -> bool:
        """Whether anything was typed in the calling-hours section (it then opens by itself)."""
        if not self.is_bound:
            return False
        if self.data.get("clock") == CLOCK_ONE_ZONE or any(self.has_error(name) for name in self.POLICY_INPUTS):
            return True
        return any(self.data.get(name) for name in self.POLICY_INPUTS if name != "calling_timezone")

    def add_service_error(self, exc: ApplicationError) -> None:
        """Show a service's error next to the field it is about, with every line it lists."""
        field = getattr(exc, "field", None)
        if isinstance(exc, PayloadTooLarge):
            field = "recipients_file"
        messages = [exc.error, *(error for error in exc.errors if error != exc.error)]
        if field in _POLICY_LABELS:
            messages = [policy_error_in_words(message) for message in messages]
            if field == "calling_hours":
                field = self._window_at_fault(exc.error)
        else:
            labels = self._api_labels()
            messages = [in_staff_words(message, labels) for message in messages]
            if not self.cleaned_data.get("default_country") and country_would_fix(exc):
                messages.insert(0, COUNTRY_FIX.format(again="preview again"))
        field = self.SERVICE_FIELDS.get(field, field)
        self.add_error(field if field in self.fields else None, messages)

    def _api_labels(self) -> dict[str, str]:
        """The API's names of this form's inputs (a service's message may use them) -> their labels."""
        labels = {name: self.fields[name].label for name in self.API_NAMES}
        return {**labels, "send_immediately": self.fields["when"].label}

    def _window_at_fault(self, message: str) -> str:
        """The input a calling-hours refusal is about: the last window it quotes, else the first."""
        windows = self._windows()
        for index in reversed(range(len(windows))):
            if windows[index][1] in message:
                return windows[index][0]
        return self.WINDOWS[0][0]

    def _windows(self) -> list[tuple[str, str]]:
        """The windows typed, as (their "from" input, "HH:MM-HH:MM")."""
        windows = []
        for start, end in self.WINDOWS:
            start_time, end_time = self.cleaned_data.get(start), self.cleaned_data.get(end)
            if start_time and end_time:
                # A time input cannot hold 24:00: a window that ends at 00:00 runs to midnight.
                until = "24:00" if end_time.hour == end_time.minute == 0 else end_time.strftime("%H:%M")
                windows.append((start, f"{start_time.strftime('%H:%M')}-{until}"))
        return windows

    def _policy_fields(self) -> dict:
        """The calling policy under the API's names, as policy_parse reads them."""
        cleaned = self.cleaned_data
        fields = {
            "calling_hours": ",".join(window for _, window in self._windows()) or None,
            "calling_days": ",".join(cleaned["calling_days"]) or None,
            "max_attempts": cleaned["max_attempts"] or None,
            "retry_delay_minutes": cleaned["retry_delay_minutes"] or None,
            "max_concurrent_calls": cleaned["max_concurrent_calls"] or None,
        }
        if cleaned.get("clock") == CLOCK_ONE_ZONE:
            fields["calling_timezone"] = cleaned["calling_timezone"] or None
        return fields

    def _inputs(self) -> dict:
        cleaned = self.cleaned_data
        return {
            "agent_id": cleaned["agent_id"],
            "phone_number_id": cleaned["phone_number_id"],
            "send_immediately": cleaned["when"] == self.WHEN_NOW,
            "schedule_date": cleaned["schedule_date"],
            "schedule_time": cleaned["schedule_time"],
            "timezone_name": cleaned["timezone"],
            "default_country": cleaned["default_country"] or None,
            "skip_invalid_rows": cleaned["skip_invalid_rows"],
            "policy_fields": self._policy_fields(),
        }

    @contextlib.contextmanager
    def _forget_a_refused_file(self):
        """Delete the kept upload when a service refuses the file itself: it is not offered again, and
        the next preview asks for a file. A refusal of anything else keeps it for the corrected form."""
        try:
            yield
        except ApplicationError as exc:
            if self.kept and file_refused(exc):
                uploads.upload_discard(self.kept)
                self.kept = None
            raise

    @contextlib.contextmanager
    def _recipients_file(self):
        if self.kept is None:
            yield self.cleaned_data["recipients_file"]
            return
        with self.kept.open() as recipients_file:
            yield recipients_file


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label="Key name",
        max_length=100,
        required=False,
        help_text="What uses it, so you can tell keys apart (for example “CRM sync”).",
    )
