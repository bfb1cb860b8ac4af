"""S3-compatible photo storage for tests: moto's S3 server on a loopback port, an app on it."""

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from afterhours.settings import Settings
from tests.support.server import running_server

S3_KEY_ID = "test-key-id"
S3_SECRET = "test-secret-access-key"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_settings(base_settings: Settings, s3_endpoint: str) -> Settings:
    return base_settings.model_copy(
        update={
            "s3_endpoint_url": s3_endpoint,
            "s3_bucket": f"photos-{uuid.uuid4().hex[:12]}",
            "s3_access_key_id": S3_KEY_ID,
            "s3_secret_access_key": S3_SECRET,
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
    async with running_server(s3_settings) as url:
        yield url


@pytest.fixture
async def s3_client(s3_base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=s3_base_url, timeout=10) as c:
        yield c
