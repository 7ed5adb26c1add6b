"""Forms of the staff pages: they read what was typed and hand it to the services, nothing more."""

import contextlib
import functools
from zoneinfo import available_timezones

from django import forms
from django.conf import settings

from campaigns import selectors, services
from campaigns.errors import ApplicationError, NotFound, PayloadTooLarge
from campaigns.models import Campaign, Recipient

from . import uploads

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


class CampaignForm(forms.Form):
    """The new-campaign form. `preview()` and `create()` call the services with the same inputs.

    An uploaded file is kept (see uploads.py) so that the create step, or a second preview
    after a correction, uses it without the user choosing it again.
    """

    WHEN_NOW = "now"
    WHEN_SCHEDULE = "schedule"
    # Where the services' ValidationFailed.field lands on this form.
    SERVICE_FIELDS = {"send_immediately": "when"}

    name = forms.CharField(label="Campaign name", max_length=255)
    agent_id = forms.CharField(label="Agent", widget=forms.Select)
    phone_number_id = forms.CharField(label="Call from", widget=forms.Select)
    recipients_file = forms.FileField(
        label="Recipients file",
        required=False,
        allow_empty_file=True,
        widget=forms.FileInput(
            attrs={
                "class": "dropzone__input",
                "accept": ".csv,.xlsx,text/csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            }
        ),
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

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.kept: uploads.KeptUpload | None = None
        # The campaign this form's preview was already turned into, if any.
        self.already_created: Campaign | None = None
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
        if not self.is_bound:
            self.initial.setdefault("timezone", selectors.user_timezone(user=user))
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
        previous = uploads.upload_get(user=self.user, token=token)
        if upload:
            if previous:
                uploads.upload_discard(previous)
            # A file above the limit is not written anywhere: the service refuses it with the reason.
            if upload.size <= settings.RECIPIENTS_MAX_FILE_BYTES:
                self.kept = uploads.upload_keep(user=self.user, uploaded=upload)
            return upload
        if previous:
            self.kept = previous
            return None
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
        return cleaned

    # --- Calling the services -------------------------------------------------------------------

    def preview(self) -> services.CampaignPreview:
        with self._recipients_file() as recipients_file:
            return services.campaign_preview(user=self.user, recipients_file=recipients_file, **self._inputs())

    def create(self) -> Campaign:
        with self._recipients_file() as recipients_file:
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

    def add_service_error(self, exc: ApplicationError) -> None:
        """Show a service's error next to the field it is about, with every line it lists."""
        field = getattr(exc, "field", None)
        if isinstance(exc, PayloadTooLarge):
            field = "recipients_file"
        field = self.SERVICE_FIELDS.get(field, field)
        messages = [exc.error, *(error for error in exc.errors if error != exc.error)]
        self.add_error(field if field in self.fields else None, messages)

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
        }

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
