"""Errors the sandbox answers with, in ElevenLabs' (FastAPI's) error bodies."""


class SandboxError(Exception):
    status_code = 400
    headers: dict[str, str] = {}

    def __init__(self, detail):
        super().__init__(detail)
        self.detail = detail

    @property
    def body(self) -> dict:
        return {"detail": self.detail}


class DetailedError(SandboxError):
    """An error whose `detail` is an object with `status` and `message`."""

    detail_status = "bad_request"

    def __init__(self, message: str):
        super().__init__({"status": self.detail_status, "message": message})


class InvalidApiKey(DetailedError):
    status_code = 401
    detail_status = "invalid_api_key"

    def __init__(self):
        super().__init__("Invalid API key")


class NotFound(DetailedError):
    status_code = 404
    detail_status = "not_found"


class ConversationNotFound(DetailedError):
    status_code = 404
    detail_status = "conversation_not_found"

    def __init__(self, conversation_id: str):
        super().__init__(f"Conversation {conversation_id} not found")


class AudioNotFound(DetailedError):
    """A conversation without a recording: the call never connected, or has not ended yet."""

    status_code = 404
    detail_status = "not_found"

    def __init__(self, conversation_id: str):
        super().__init__(f"Conversation {conversation_id} has no audio")


class OverrideNotAllowed(DetailedError):
    """A `conversation_config_override` field the agent's security settings do not allow."""

    status_code = 400
    detail_status = "override_not_allowed"


class RateLimited(DetailedError):
    status_code = 429
    detail_status = "rate_limit_exceeded"
    headers = {"Retry-After": "1"}

    def __init__(self):
        super().__init__("Too many requests. Please slow down and try again in a moment.")


class InvalidState(DetailedError):
    status_code = 400
    detail_status = "invalid_state"


class InvalidCursor(DetailedError):
    status_code = 400
    detail_status = "invalid_cursor"


class RequestValidationError(SandboxError):
    """422 with FastAPI's list of `{"type", "loc", "msg", "input", ["ctx"]}` errors."""

    status_code = 422

    def __init__(self, errors: list[dict]):
        super().__init__(errors)
