"""The one family of application errors.

Services raise these; the API's exception handler turns each into the documented error
envelope, and the staff pages show the same message next to the form.
"""


class ApplicationError(Exception):
    status_code = 400
    title = "Bad request"

    def __init__(self, error: str, *, errors: list[str] | None = None, details=None):
        super().__init__(error)
        self.error = error
        self.errors = errors if errors is not None else [error]
        self.details = details


class ValidationFailed(ApplicationError):
    status_code = 422
    title = "Validation error"

    def __init__(self, error: str, *, field: str | None = None, errors=None, details=None):
        super().__init__(error, errors=errors, details=details)
        self.field = field


class NotFound(ApplicationError):
    status_code = 404
    title = "Not found"


class Conflict(ApplicationError):
    status_code = 409
    title = "Conflict"


class PayloadTooLarge(ApplicationError):
    status_code = 413
    title = "Payload too large"


class UpstreamError(ApplicationError):
    """ElevenLabs failed in a call the request itself made."""

    status_code = 502
    title = "Bad gateway"


class AlreadyCreated(Conflict):
    """The preview upload was already turned into a campaign (a second click, a second tab)."""

    def __init__(self, *, source_upload: str):
        super().__init__("A campaign was already created from this preview.")
        self.source_upload = source_upload
