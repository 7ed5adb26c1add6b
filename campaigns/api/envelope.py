"""The response envelope every API answer uses, success or error."""

from rest_framework.response import Response


def success(data, *, code: int = 200, message: str = "Success", **extra) -> Response:
    return Response({"status": {"code": code, "message": message}, "data": data, **extra}, status=code)


def error_body(*, code: int, message: str, error: str, errors: list[str] | None = None, details=None) -> dict:
    return {
        "status": {"code": code, "message": message},
        "error": error,
        "errors": errors if errors is not None else [error],
        "details": details,
    }
