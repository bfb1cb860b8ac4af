"""The error envelope as OpenAPI sees it, so /docs lists every route's failure codes."""

from typing import Any

from pydantic import BaseModel

_DESCRIPTIONS = {
    400: "VALIDATION_ERROR (with details) or a domain code such as BASE_PROFILE_REQUIRED",
    401: "UNAUTHORIZED: missing, invalid or expired token",
    403: "PREMIUM_REQUIRED, FORBIDDEN, USER_BANNED or DEVICE_BANNED",
    404: "NOT_FOUND",
    409: "A conflict with the current state, e.g. SESSION_ALREADY_ACTIVE or MATCH_NOT_OPEN",
    413: "PAYLOAD_TOO_LARGE",
    429: "RATE_LIMITED (see Retry-After)",
}


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    success: bool = False
    error: str
    code: str
    details: list[ErrorDetail] | None = None


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"model": ErrorBody, "description": _DESCRIPTIONS[status]} for status in statuses
    }
