"""Domain errors carry their contract code; one renderer for HTTP, one for socket acks."""

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from afterhours.db import DATABASE_OUTAGE

log = logging.getLogger("afterhours.errors")


class AppError(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int = 400,
        details: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.details = details
        self.headers = headers
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"success": False, "error": self.message, "code": self.code}
        if self.details is not None:
            body["details"] = self.details
        return body


def not_found(what: str = "Resource") -> AppError:
    return AppError("NOT_FOUND", f"{what} not found", status=404)


def validation_error(field: str, message: str) -> AppError:
    return AppError(
        "VALIDATION_ERROR",
        "Invalid request",
        details=[{"field": field, "message": message}],
    )


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    # FastAPI prefixes the location ("body", "query", ...); clients care about the field itself.
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


def validation_details(errors: list[Any]) -> list[dict[str, str]]:
    details = []
    for err in errors:
        message = str(err.get("msg", "Invalid value"))
        if err.get("type") == "json_invalid":
            message = "Malformed JSON body"
        details.append({"field": _field_path(err.get("loc", ())), "message": message})
    return details


def from_validation_error(exc: ValidationError | RequestValidationError) -> AppError:
    return AppError(
        "VALIDATION_ERROR", "Invalid request", details=validation_details(list(exc.errors()))
    )


_HTTP_CODES = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    429: "RATE_LIMITED",
}


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method the path answers to; Starlette's 405 names only the first matching route's."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    ]


def render(error: AppError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(_: Request, exc: AppError) -> JSONResponse:
        return render(exc)

    @app.exception_handler(RequestValidationError)
    async def request_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return render(from_validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "INTERNAL_ERROR")
        message = {404: "Not found", 405: "Method not allowed"}.get(
            exc.status_code, str(exc.detail)
        )
        headers = dict(exc.headers or {})
        details = None
        if exc.status_code == 400:
            # FastAPI's "error parsing the body" (bad UTF-8, nesting too deep, a 5000-digit
            # number): a validation failure like any other, so it names the field too.
            details = [{"field": "body", "message": str(exc.detail)}]
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        error = AppError(code, message, status=exc.status_code, headers=headers, details=details)
        return render(error)

    async def database_outage(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database_unavailable path=%s error=%s", request.url.path, type(exc).__name__)
        return render(SERVICE_UNAVAILABLE)

    for outage in DATABASE_OUTAGE:
        app.add_exception_handler(outage, database_outage)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        request_id = getattr(request.state, "request_id", None) or uuid.uuid4().hex
        log.exception("unhandled_error request_id=%s path=%s", request_id, request.url.path)
        body = {
            "success": False,
            "error": "Internal server error",
            "code": "INTERNAL_ERROR",
            "requestId": request_id,
        }
        return JSONResponse(body, status_code=500)


SERVICE_UNAVAILABLE = AppError(
    "SERVICE_UNAVAILABLE",
    "The service is briefly unavailable; try again shortly",
    status=503,
    headers={"Retry-After": "2"},
)


def ack_error(error: AppError) -> dict[str, Any]:
    """The Socket.IO acknowledgement form of an error."""
    payload: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.details is not None:
        payload["details"] = error.details
    if error.retry_after is not None:
        payload["retryAfter"] = error.retry_after
    return {"ok": False, "error": payload}
