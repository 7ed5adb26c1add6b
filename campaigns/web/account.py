"""The staff user's own settings: the time zone every time on the pages is shown in."""

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from campaigns import selectors, services

from .forms import timezone_choices
from .middleware import SESSION_KEY
from .views import staff_required


class TimeZoneForm(forms.Form):
    timezone = forms.ChoiceField(
        label="Your time zone",
        help_text="Every time on these pages and in the admin is shown in it. New campaigns start in it too.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["timezone"].choices = timezone_choices()


@require_http_methods(["GET", "POST"])
@staff_required
def account(request):
    form = TimeZoneForm(request.POST or None, initial={"timezone": selectors.user_timezone(user=request.user)})
    if request.method == "POST" and form.is_valid():
        zone = services.user_timezone_set(user=request.user, zone_name=form.cleaned_data["timezone"])
        request.session[SESSION_KEY] = zone
        messages.success(request, f"Times are now shown in {zone}.")
        return redirect("web:account")
    return render(request, "campaigns/account.html", {"form": form})
