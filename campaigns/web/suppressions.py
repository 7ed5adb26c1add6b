"""The do-not-call list page: add a number, import a file, search, remove."""

import contextlib

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils import dateformat, timezone
from django.views.decorators.http import require_POST, require_safe

from campaigns import suppressions
from campaigns.errors import ApplicationError
from campaigns.models import Suppression
from campaigns.recipients import lacks_country_code

from . import files, uploads
from .forms import COUNTRY_FIX, country_would_fix, file_refused, in_staff_words
from .views import staff_required

SUPPRESSIONS_PER_PAGE = 50
# Invalid rows named in the message after an import; the rest are counted.
IMPORT_ERRORS_SHOWN = 5


class ServiceErrorsForm(forms.Form):
    # Where an error that names no field of the form is shown (None: above the form).
    default_error_field: str | None = None
    # The API names the service's messages may use, as the form labels them.
    API_LABELS = {"default_country": "Default country"}

    def add_service_error(self, exc: ApplicationError) -> None:
        """Show a service's error, in the form's words, under the field it names or the default one."""
        field = getattr(exc, "field", None)
        self.add_error(
            field if field in self.fields else self.default_error_field, in_staff_words(exc.error, self.API_LABELS)
        )


class SuppressionAddForm(ServiceErrorsForm):
    phone_number = forms.CharField(
        label="Phone number",
        max_length=64,
        widget=forms.TextInput(
            attrs={"placeholder": "+1 415 555 2671", "autocomplete": "off", "inputmode": "tel", "spellcheck": "false"}
        ),
    )
    reason = forms.CharField(
        label="Reason",
        required=False,
        max_length=255,
        widget=forms.TextInput(attrs={"placeholder": "e.g. asked not to be called"}),
    )
    default_country = forms.CharField(
        label="Default country",
        required=False,
        max_length=2,
        help_text="Two-letter code (US, GB) for a number written without +country code.",
        widget=forms.TextInput(attrs={"placeholder": "e.g. US", "autocomplete": "off", "size": 4}),
    )


class SuppressionImportForm(ServiceErrorsForm):
    """Import a file of numbers. A file the service refuses as a whole is forgotten; after any other
    refusal (an unknown default country, say) it is kept, so the corrected form needs no new upload."""

    default_error_field = "file"  # a file too large is the only error naming no field

    file = forms.FileField(
        label="File of numbers",
        required=False,
        allow_empty_file=True,
        widget=forms.FileInput(),
    )
    reason = forms.CharField(
        label="Reason",
        required=False,
        max_length=255,
        help_text="Stored with every number this file adds.",
        widget=forms.TextInput(attrs={"placeholder": "e.g. opt-outs from the CRM"}),
    )
    default_country = forms.CharField(
        label="Default country",
        required=False,
        max_length=2,
        widget=forms.TextInput(attrs={"placeholder": "e.g. US", "autocomplete": "off", "size": 4}),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.kept: uploads.KeptUpload | None = None
        max_bytes = settings.RECIPIENTS_MAX_FILE_BYTES
        self.fields["file"].widget.attrs.update(files.input_attrs(max_bytes=max_bytes))
        self.fields["file"].help_text = (
            "CSV, Excel (.xlsx) or text: a phone_number column, or one number per line. "
            f"Up to {files.size_in_words(max_bytes)}."
        )

    def clean_file(self):
        upload = self.cleaned_data.get("file")
        token = self.data.get(self.add_prefix("upload_token"), "")
        try:
            self.kept = uploads.upload_choose(user=self.user, token=token, uploaded=upload)
        except uploads.UploadRefused as exc:
            raise forms.ValidationError(str(exc)) from None
        if self.kept:
            return upload or None
        raise forms.ValidationError("Choose a file of numbers: CSV, Excel (.xlsx) or text with one number per line.")

    def import_numbers(self) -> suppressions.ImportResult:
        """Import the kept file; it is deleted once imported, or refused as a whole."""
        try:
            with self._file() as file:
                result = suppressions.suppressions_import(
                    user=self.user,
                    file=file,
                    reason=self.cleaned_data["reason"],
                    default_country=self.cleaned_data["default_country"],
                    source=Suppression.Source.STAFF,
                )
        except ApplicationError as exc:
            if file_refused(exc):
                self._forget()
            raise
        self._forget()
        return result

    def summary(self, result: suppressions.ImportResult) -> str:
        """What the import did, in the form's words, with the fix when only the country was missing."""
        summary = in_staff_words(suppressions.import_summary(result, errors_shown=IMPORT_ERRORS_SHOWN), self.API_LABELS)
        rows = [error for error in result.errors if error.startswith("Line ")]
        if rows and not self.cleaned_data["default_country"] and all(map(lacks_country_code, rows)):
            return f"{summary}. To add those too, type the country in Default country and import the file again."
        return summary + "."

    def add_service_error(self, exc: ApplicationError) -> None:
        field = getattr(exc, "field", None)
        messages = [in_staff_words(exc.error, self.API_LABELS)]
        if not self.cleaned_data.get("default_country") and country_would_fix(exc):
            messages.append(COUNTRY_FIX.format(again="import again"))
        self.add_error(field if field in self.fields else self.default_error_field, messages)

    @contextlib.contextmanager
    def _file(self):
        if self.kept is None:
            yield self.cleaned_data["file"]
            return
        with self.kept.open() as file:
            yield file

    def _forget(self) -> None:
        if self.kept:
            uploads.upload_discard(self.kept)
            self.kept = None


class SuppressionSearchForm(forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=255)

    def search(self) -> str:
        return self.cleaned_data["q"] if self.is_valid() else ""


def _list_page(request, *, add_form=None, import_form=None):
    search_form = SuppressionSearchForm(request.GET)
    search = search_form.search()
    listed = suppressions.suppressions_list(user=request.user, search=search)
    page = Paginator(listed, SUPPRESSIONS_PER_PAGE).get_page(request.GET.get("page"))
    for suppression in page.object_list:
        suppression.display = suppressions.phone_number_display(suppression.phone_number or "")
    context = {
        "page": page,
        "search_form": search_form,
        "searched": bool(search),
        "add_form": add_form or SuppressionAddForm(prefix="add"),
        "import_form": import_form or SuppressionImportForm(prefix="import", user=request.user),
        "learned": Suppression.Source.ELEVENLABS,
    }
    return render(request, "campaigns/suppression_list.html", context)


@require_safe
@staff_required
def suppression_list(request):
    return _list_page(request)


@require_POST
@staff_required
def suppression_add(request):
    form = SuppressionAddForm(request.POST, prefix="add")
    if form.is_valid():
        try:
            suppression, created = suppressions.suppression_add(
                user=request.user,
                phone_number=form.cleaned_data["phone_number"],
                reason=form.cleaned_data["reason"],
                default_country=form.cleaned_data["default_country"],
                source=Suppression.Source.STAFF,
            )
        except ApplicationError as exc:
            form.add_service_error(exc)
        else:
            shown = suppressions.phone_number_display(suppression.phone_number or form.cleaned_data["phone_number"])
            if created:
                messages.success(request, f"{shown} added: no campaign you create from now on will call it.")
            else:
                since = dateformat.format(timezone.localtime(suppression.created_at), "j M Y")
                messages.info(request, f"{shown} was already on the list (since {since}).")
            return redirect("web:suppression_list")
    return _list_page(request, add_form=form)


@require_POST
@staff_required
def suppression_import(request):
    form = SuppressionImportForm(request.POST, request.FILES, prefix="import", user=request.user)
    if form.is_valid():
        try:
            result = form.import_numbers()
        except ApplicationError as exc:
            form.add_service_error(exc)
        else:
            (messages.warning if result.invalid_rows else messages.success)(request, form.summary(result))
            return redirect("web:suppression_list")
    return _list_page(request, import_form=form)


@require_POST
@staff_required
def suppression_remove(request):
    number = request.POST.get("phone_number", "")
    try:
        removed = suppressions.suppression_remove(user=request.user, phone_number=number)
    except ApplicationError as exc:
        messages.error(request, exc.error)
        return redirect("web:suppression_list")
    shown = suppressions.phone_number_display(number)
    if removed:
        messages.success(request, f"{shown} removed: campaigns you create from now on may call it again.")
    else:
        messages.info(request, f"{shown} was not on the list.")
    return redirect("web:suppression_list")
