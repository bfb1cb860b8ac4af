"""The error envelope as OpenAPI sees it, so /docs lists every route's failure codes."""

from typing import Any

from pydantic import BaseModel, Field

_DESCRIPTIONS = {
    400: "VALIDATION_ERROR (with details) or a domain code such as BASE_PROFILE_REQUIRED",
    401: "UNAUTHORIZED: missing, invalid or expired token",
    403: "PREMIUM_REQUIRED, FORBIDDEN, USER_BANNED or DEVICE_BANNED",
    404: "NOT_FOUND",
    409: "A conflict with the current state, e.g. SESSION_ALREADY_ACTIVE or MATCH_NOT_OPEN",
    413: "PAYLOAD_TOO_LARGE",
    429: "RATE_LIMITED (see Retry-After)",
}
# Without a "default" entry FastAPI documents a 422 the service never sends (it answers 400).
_DEFAULT = (
    "Any other failure, same envelope: 400 VALIDATION_ERROR on a bad header, "
    "405 METHOD_NOT_ALLOWED, 413 PAYLOAD_TOO_LARGE, 429 RATE_LIMITED, "
    "500 INTERNAL_ERROR (with requestId, never a trace), "
    "503 SERVICE_UNAVAILABLE while the database is briefly away (see Retry-After)"
)


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    success: bool = False
    error: str
    code: str
    details: list[ErrorDetail] | None = None
    request_id: str | None = Field(default=None, alias="requestId")


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    documented: dict[int | str, dict[str, Any]] = {
        status: {"model": ErrorBody, "description": _DESCRIPTIONS[status]} for status in statuses
    }
    documented["default"] = {"model": ErrorBody, "description": _DEFAULT}
    return documented
