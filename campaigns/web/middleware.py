"""One clock: every time a signed-in user sees (staff pages and admin) is in their time zone."""

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.utils import timezone

from campaigns import selectors

# The zone is kept in the session from sign-in, so a page costs no query for it.
SESSION_KEY = "time_zone"


@receiver(user_logged_in)
def time_zone_remember(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = selectors.user_timezone(user=user)


class UserTimeZoneMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            zone = request.session.get(SESSION_KEY)
            if zone is None:
                zone = request.session[SESSION_KEY] = selectors.user_timezone(user=user)
            timezone.activate(zone)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
