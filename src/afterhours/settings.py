"""One typed settings object, read from the environment and `.env`."""

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

LIMIT = r"^[1-9][0-9]{0,8}/[1-9][0-9]{0,8}$"  # "<hits>/<seconds>"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AFTERHOURS_", env_file=".env", extra="ignore", populate_by_name=True
    )

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "database_url")
    )
    data_dir: Path = Path("./var")
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "redis_url")
    )

    jwt_secret: str | None = None
    jwt_public_key: str | None = None

    # Timings; the defaults are the seeds' (seconds unless named otherwise).
    session_minute_seconds: float = 60.0
    # A session's total length, extensions included: each extension queues work and keeps a
    # location live, so one session cannot run all night.
    max_session_minutes: int = Field(default=180, ge=60)
    match_sweep_seconds: float = 30.0
    match_delay_start_seconds: float = 15.0
    match_delay_decline_seconds: float = 30.0
    auto_decline_seconds: float = 300.0
    # The periodic sweep cuts the waiting world into shards of about this many people, each a
    # job of its own (matching/shards.py); more workers then sweep more shards at once.
    match_shard_users: int = 10_000
    worker_poll_seconds: float = 0.5
    # A worker reports every sixth of this; one silent for longer counts as gone: /ready fails
    # when none is left, and the jobs it was running go back to the queue.
    worker_heartbeat_max_age_seconds: float = 30.0
    # A worker that stops (the database went away) starts again after a backoff growing to this;
    # after failing for this long it gives up and the process exits non-zero, for its supervisor.
    worker_max_backoff_seconds: float = 2.0
    worker_give_up_seconds: float = 300.0
    # On SIGTERM/Ctrl-C, running jobs get this long to finish; the rest are retried as stalled.
    worker_shutdown_seconds: float = 20.0
    # On SIGTERM/Ctrl-C, requests in flight get this long to finish before connections close.
    shutdown_grace_seconds: int = 20

    # Absolute base for links the service hands out (photo URLs, OpenAPI's server); relative
    # paths when unset. Kept without a trailing slash, so a path can be put after it as it is.
    public_url: str = ""
    url_signing_key: str | None = None
    # Browser origins allowed to call the API and open a socket, comma-separated
    # ("https://app.example.com,https://admin.example.com"; "*" for any). Empty: none but the
    # service's own; native apps send no Origin and are not concerned.
    cors_origins: Annotated[list[str], NoDecode] = []
    # Keys the per-user location fuzz (docs/privacy.md); generated into the data dir when unset.
    location_secret: str | None = None
    # Keys the stored hashes of device fingerprints; generated into the data dir when unset.
    fingerprint_secret: str | None = None
    # Messages are put to this screen before they are stored (chat/screening.py): a word/regex
    # list file, or `package.module:function`; unset, the list shipped with the service.
    message_screen: str | None = None

    # Rate limits shared by every process, "<hits>/<seconds>" per user (typing: one per user
    # and match per interval, so "1/<seconds>"). Session starts are also location changes:
    # limited per hour and per day.
    limit_messages: str = Field(default="10/10", pattern=LIMIT)
    limit_typing: str = Field(default="1/2", pattern=LIMIT)
    limit_session_starts_hourly: str = Field(default="8/3600", pattern=LIMIT)
    limit_session_starts_daily: str = Field(default="24/86400", pattern=LIMIT)
    limit_blocks: str = Field(default="30/3600", pattern=LIMIT)
    limit_reports: str = Field(default="10/3600", pattern=LIMIT)
    # Socket.IO heartbeat (socket.io's defaults): how often the server pings each client, and
    # how long it waits for the answer before dropping the connection.
    socket_ping_interval_seconds: float = 25.0
    socket_ping_timeout_seconds: float = 20.0

    # Each serving process says it is alive this often; its sockets' users count as away once
    # it has been silent for three of these (a killed process).
    presence_heartbeat_seconds: float = 10.0

    # Push through the host app's gateway (docs/events.md): off while the URL is unset.
    push_webhook_url: str | None = None
    push_webhook_secret: str | None = None
    # Events for one user within this long go out as one push (a burst of messages).
    push_collapse_seconds: float = 2.0
    # A gateway that fails (5xx, timeout) is tried again after this, then twice as long each
    # time, for push_attempts calls in all.
    push_retry_seconds: float = 2.0
    push_attempts: int = 6
    push_timeout_seconds: float = 5.0

    # Operations (docs/operations.md, "Metrics"). Scrapers send this as a bearer token on
    # GET /metrics (an admin's JWT is accepted too); unset, only admins may scrape.
    metrics_token: str | None = None
    # `afterhours worker` has no HTTP server: with this set, its own counters are served there.
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    worker_metrics_host: str = "127.0.0.1"
    # `text` (key=value lines) or `json` (one JSON object a line, with the request's id).
    log_format: Literal["text", "json"] = "text"

    photo_url_ttl_seconds: int = 3600
    # A photo storage refused to delete is tried again after this, then twice as long each time.
    photo_delete_retry_seconds: float = 30.0
    max_photo_bytes: int = 5 * 1024 * 1024
    max_json_bytes: int = 64 * 1024

    s3_endpoint_url: str | None = Field(
        default=None, validation_alias=AliasChoices("S3_ENDPOINT_URL", "s3_endpoint_url")
    )
    s3_bucket: str | None = Field(
        default=None, validation_alias=AliasChoices("S3_BUCKET", "s3_bucket")
    )
    s3_access_key_id: str | None = Field(
        default=None, validation_alias=AliasChoices("S3_ACCESS_KEY_ID", "s3_access_key_id")
    )
    s3_secret_access_key: str | None = Field(
        default=None,
        validation_alias=AliasChoices("S3_SECRET_ACCESS_KEY", "s3_secret_access_key"),
    )
    s3_region: str = Field(default="auto", validation_alias=AliasChoices("S3_REGION", "s3_region"))

    @property
    def s3_enabled(self) -> bool:
        return bool(self.s3_bucket)

    @field_validator("public_url")
    @classmethod
    def check_public_url(cls, value: str) -> str:
        if not value:
            return value
        parts = urlsplit(value)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.query
            or parts.fragment
        ):
            raise ValueError(
                "AFTERHOURS_PUBLIC_URL must be an http(s) URL without query or fragment,"
                " e.g. https://api.example.com"
            )
        return value.rstrip("/")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def check_cors_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, list):
            return value  # refused as not a list
        return [_origin(str(item)) for item in value if str(item).strip()]

    @model_validator(mode="after")
    def check_push(self) -> "Settings":
        if self.push_webhook_url and len(self.push_webhook_secret or "") < 32:
            raise ValueError(
                "AFTERHOURS_PUSH_WEBHOOK_URL needs AFTERHOURS_PUSH_WEBHOOK_SECRET"
                " (at least 32 characters; `openssl rand -hex 32` makes one)"
            )
        return self


def _origin(given: str) -> str:
    """An origin as browsers send it in `Origin` (scheme://host[:port], lower case, no path),
    the form both the HTTP and the Socket.IO checks compare exactly."""
    given = given.strip()
    if given == "*":
        return given
    parts = urlsplit(given)
    if (
        parts.scheme.lower() not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise ValueError(
            f"AFTERHOURS_CORS_ORIGINS: {given!r} is not an origin such as https://app.example.com"
        )
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def persistent_secret(settings: Settings, name: str) -> str:
    """A random secret generated once into the data dir and shared by every local process."""
    path = settings.data_dir / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with path.open("x") as f:
                f.write(secrets.token_hex(64))
            path.chmod(0o600)
        except FileExistsError:
            pass  # another process won the race; use its secret
    return path.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()
