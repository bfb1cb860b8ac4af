"""Photos on S3-compatible storage (moto's server): clean JPEG objects, presigned links, cleanup."""

import asyncio
import io
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest
from botocore.exceptions import ClientError
from PIL import Image

from afterhours.settings import Settings
from tests.support.clients import assert_error
from tests.support.photos import (
    ADULT,
    PHOTO,
    assert_clean_jpeg,
    exif_with_gps,
    image_bytes,
)


def object_key(s3_settings: Settings, url: str) -> str:
    """The object key inside a presigned URL (path style: /<bucket>/<key>)."""
    parts = urlsplit(url)
    assert url.startswith(s3_settings.s3_endpoint_url or "")
    prefix = f"/{s3_settings.s3_bucket}/"
    assert parts.path.startswith(prefix), url
    return parts.path.removeprefix(prefix)


async def user_objects(s3: Any, s3_settings: Settings, user: Any) -> list[str]:
    listing = await asyncio.to_thread(
        s3.list_objects_v2, Bucket=s3_settings.s3_bucket, Prefix=f"{user.id}/"
    )
    return sorted(item["Key"] for item in listing.get("Contents", []))


async def exists(s3: Any, s3_settings: Settings, key: str) -> bool:
    try:
        await asyncio.to_thread(s3.head_object, Bucket=s3_settings.s3_bucket, Key=key)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] in {"404", "NoSuchKey"}
        return False
    return True


async def until_gone(s3: Any, s3_settings: Settings, key: str, within: float = 10) -> None:
    """Until the object is gone: removals are a job the worker runs."""
    async with asyncio.timeout(within):
        while True:
            if not await exists(s3, s3_settings, key):
                return
            await asyncio.sleep(0.05)


async def tried_again(url: str) -> None:
    """Until a photo deletion has failed once and been deferred again."""
    async with await psycopg.AsyncConnection.connect(url) as conn, asyncio.timeout(10):
        while True:
            cursor = await conn.execute(
                "SELECT 1 FROM procrastinate_jobs WHERE task_name = 'profiles:delete_photos'"
                " AND (args->>'attempt')::int >= 1"
            )
            if await cursor.fetchone():
                return
            await conn.rollback()
            await asyncio.sleep(0.05)


async def s3_user(s3_client: httpx.AsyncClient, make_user) -> Any:
    user = make_user()
    r = await s3_client.put("/api/profile", json=ADULT, headers=user.headers)
    assert r.status_code == 200, r.text
    return user


async def upload(s3_client: httpx.AsyncClient, user: Any, data: bytes, content_type: str) -> str:
    r = await s3_client.put(
        PHOTO, content=data, headers={**user.headers, "Content-Type": content_type}
    )
    assert r.status_code == 200, r.text
    url: str = r.json()["photoUrl"]
    return url


async def test_photo_goes_to_the_bucket_and_the_presigned_url_serves_a_clean_jpeg(
    s3_client: httpx.AsyncClient, make_user, s3: Any, s3_settings: Settings
) -> None:
    user = await s3_user(s3_client, make_user)
    original = image_bytes(
        "JPEG", (90, 70), exif=exif_with_gps().tobytes(), comment=b"home 52.3702N"
    )
    url = await upload(s3_client, user, original, "image/jpeg")

    # A SigV4 presigned link (what R2 requires), valid for the configured hour.
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == [str(s3_settings.photo_url_ttl_seconds)]

    key = object_key(s3_settings, url)
    assert key.startswith(f"{user.id}/") and key.endswith(".jpg")
    head = await asyncio.to_thread(s3.head_object, Bucket=s3_settings.s3_bucket, Key=key)
    assert head["ContentType"] == "image/jpeg"

    async with httpx.AsyncClient() as anyone:
        r = await anyone.get(url)
    assert r.status_code == 200
    image = assert_clean_jpeg(r.content)
    assert image.size == (90, 70)
    assert b"52.3702" not in r.content and b"PhoneMaker" not in r.content

    r = await s3_client.get("/api/after-hours/profile", headers=user.headers)
    assert object_key(s3_settings, r.json()["profile"]["photoUrl"]) == key


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
async def test_png_and_webp_are_stored_as_jpeg(
    s3_client: httpx.AsyncClient, make_user, s3: Any, s3_settings: Settings, fmt: str
) -> None:
    user = await s3_user(s3_client, make_user)
    url = await upload(s3_client, user, image_bytes(fmt, (50, 40)), f"image/{fmt.lower()}")
    body = await asyncio.to_thread(
        s3.get_object, Bucket=s3_settings.s3_bucket, Key=object_key(s3_settings, url)
    )
    stored = body["Body"].read()
    assert Image.open(io.BytesIO(stored)).format == "JPEG"
    assert_clean_jpeg(stored)


async def test_local_photo_route_is_not_served_with_s3(
    s3_client: httpx.AsyncClient, make_user
) -> None:
    user = await s3_user(s3_client, make_user)
    await upload(s3_client, user, image_bytes("JPEG"), "image/jpeg")
    assert_error(await s3_client.get(f"/photos/{user.id}/x.jpg"), 404, "NOT_FOUND")


async def test_replacing_a_photo_deletes_the_old_object(
    s3_client: httpx.AsyncClient, make_user, s3: Any, s3_settings: Settings
) -> None:
    user = await s3_user(s3_client, make_user)
    old = object_key(s3_settings, await upload(s3_client, user, image_bytes("JPEG"), "image/jpeg"))
    new = object_key(s3_settings, await upload(s3_client, user, image_bytes("PNG"), "image/png"))
    assert old != new
    await until_gone(s3, s3_settings, old)
    assert await user_objects(s3, s3_settings, user) == [new]


async def test_refused_upload_stores_nothing(
    s3_client: httpx.AsyncClient, make_user, s3: Any, s3_settings: Settings
) -> None:
    user = await s3_user(s3_client, make_user)
    r = await s3_client.put(
        PHOTO, content=b"not an image", headers={**user.headers, "Content-Type": "image/png"}
    )
    assert_error(r, 400, "VALIDATION_ERROR")
    assert await user_objects(s3, s3_settings, user) == []


async def test_deleting_the_after_hours_profile_deletes_the_object(
    s3_client: httpx.AsyncClient, make_user, s3: Any, s3_settings: Settings
) -> None:
    user = await s3_user(s3_client, make_user)
    key = object_key(s3_settings, await upload(s3_client, user, image_bytes("JPEG"), "image/jpeg"))
    r = await s3_client.delete("/api/after-hours/profile", headers=user.headers)
    assert r.status_code == 200, r.text
    await until_gone(s3, s3_settings, key)


async def test_deleting_the_account_deletes_the_object(
    s3_client: httpx.AsyncClient, make_user, s3: Any, s3_settings: Settings
) -> None:
    user = await s3_user(s3_client, make_user)
    key = object_key(s3_settings, await upload(s3_client, user, image_bytes("JPEG"), "image/jpeg"))
    assert await exists(s3, s3_settings, key)
    r = await s3_client.delete("/api/account", headers=user.headers)
    assert r.status_code == 200, r.text
    await until_gone(s3, s3_settings, key)
    assert await user_objects(s3, s3_settings, user) == []
    r = await s3_client.get("/api/profile", headers=user.headers)
    assert_error(r, 404, "NOT_FOUND")


async def test_with_storage_down_deleting_the_account_succeeds_and_the_photo_goes_later(
    s3_client: httpx.AsyncClient, make_user, s3: Any, s3_settings: Settings, s3_server: Any
) -> None:
    user = await s3_user(s3_client, make_user)
    key = object_key(s3_settings, await upload(s3_client, user, image_bytes("JPEG"), "image/jpeg"))
    s3_server.stop()
    try:
        r = await s3_client.delete("/api/account", headers=user.headers)
        assert r.status_code == 200, r.text  # the account is gone: that is the answer
        assert_error(await s3_client.get("/api/profile", headers=user.headers), 404, "NOT_FOUND")
        await tried_again(s3_settings.database_url or "")  # refused while storage is down
    finally:
        s3_server.start()
    assert await exists(s3, s3_settings, key)  # not deleted yet: storage was down
    await until_gone(s3, s3_settings, key, within=15)  # retried once storage is back
