"""S3-compatible photo storage for tests: moto's S3 server on a loopback port, an app on it."""

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from afterhours.settings import Settings
from tests.support.processes import serve_process
from tests.support.server import free_port, fresh_database, settings_for

S3_KEY_ID = "test-key-id"
S3_SECRET = "test-secret-access-key"


class S3Server:
    """moto's S3 server on a fixed loopback port; stopped and started again on the same port
    (its objects live in this process, so they outlast a restart)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.server: ThreadedMotoServer | None = None

    def start(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        assert self.server is not None
        self.server.stop()
        self.server = None


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = S3Server()
    server.start()
    try:
        yield server
    finally:
        if server.server is not None:
            server.stop()


@pytest.fixture(scope="session")
def s3_settings(
    s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """A service of its own on S3, on a database of its own: its photo deletions are its own
    worker's jobs, with its storage."""
    with fresh_database("afterhours_s3") as url:
        yield settings_for(url, tmp_path_factory.mktemp("s3")).model_copy(
            update={
                "s3_endpoint_url": s3_server.endpoint,
                "s3_bucket": f"photos-{uuid.uuid4().hex[:12]}",
                "s3_access_key_id": S3_KEY_ID,
                "s3_secret_access_key": S3_SECRET,
                "photo_delete_retry_seconds": 0.2,
            }
        )


@pytest.fixture(scope="session")
def s3(s3_settings: Settings) -> Any:
    """A boto3 client on the same server, for looking behind the app's back; makes the bucket."""
    client = boto3.client(
        "s3",
        endpoint_url=s3_settings.s3_endpoint_url,
        aws_access_key_id=S3_KEY_ID,
        aws_secret_access_key=S3_SECRET,
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=s3_settings.s3_bucket)
    return client


@pytest.fixture(scope="session")
async def s3_base_url(s3_settings: Settings, s3: Any) -> AsyncIterator[str]:
    async with serve_process(s3_settings) as (_, url):
        yield url


@pytest.fixture
async def s3_client(s3_base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=s3_base_url, timeout=10) as c:
        yield c
