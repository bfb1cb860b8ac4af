"""Photo upload over real HTTP: re-encoding, metadata removal, limits, signed links, cleanup."""

import asyncio
import io
import struct
import time
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

from afterhours.errors import AppError
from afterhours.profiles import photos
from afterhours.settings import Settings
from afterhours.storage import LocalStorage
from tests.support.clients import assert_error
from tests.support.photos import (
    ADULT,
    CONTENT_TYPES,
    GPS_IFD,
    PHOTO,
    assert_clean_jpeg,
    blank_png,
    exif_with_gps,
    image_bytes,
)
from tests.support.processes import rss_growth, serve_process


async def ready_user(client: httpx.AsyncClient, make_user, *, premium: bool = True) -> Any:
    user = make_user(premium=premium)
    r = await client.put("/api/profile", json=ADULT, headers=user.headers)
    assert r.status_code == 200, r.text
    return user


async def upload(
    client: httpx.AsyncClient, user: Any, data: bytes, content_type: str | None
) -> httpx.Response:
    headers = dict(user.headers)
    if content_type is not None:
        headers["Content-Type"] = content_type
    return await client.put(PHOTO, content=data, headers=headers)


async def upload_ok(client: httpx.AsyncClient, user: Any, data: bytes, content_type: str) -> str:
    r = await upload(client, user, data, content_type)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"success", "photoUrl"} and body["success"] is True
    url: str = body["photoUrl"]
    return url


async def fetch(client: httpx.AsyncClient, url: str) -> bytes:
    r = await client.get(url)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg"
    return r.content


def key_of(url: str) -> str:
    path = urlsplit(url).path
    assert path.startswith("/photos/")
    return path.removeprefix("/photos/")


def stored(base_settings: Settings, url: str) -> Path:
    return base_settings.data_dir / "photos" / key_of(url)


def user_photos(base_settings: Settings, user: Any) -> list[Path]:
    folder = base_settings.data_dir / "photos" / str(user.id)
    return sorted(folder.iterdir()) if folder.exists() else []


async def until_photos(base_settings: Settings, user: Any, expected: list[Path]) -> None:
    """Until the user's stored photos are `expected`: removals are a job the worker runs."""
    async with asyncio.timeout(10):
        while True:
            if user_photos(base_settings, user) == expected:
                return
            await asyncio.sleep(0.05)


# --- accepted uploads -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
async def test_upload_is_stored_as_a_clean_jpeg(
    client: httpx.AsyncClient, make_user, base_settings: Settings, fmt: str
) -> None:
    user = await ready_user(client, make_user)
    url = await upload_ok(client, user, image_bytes(fmt, (120, 80)), CONTENT_TYPES[fmt])
    image = assert_clean_jpeg(await fetch(client, url))
    assert image.size == (120, 80)
    assert image.mode == "RGB"
    assert stored(base_settings, url).is_file()
    # The profile now points at it (created with an empty description if there was none).
    r = await client.get("/api/after-hours/profile", headers=user.headers)
    profile = r.json()["profile"]
    assert profile["description"] == ""
    assert key_of(profile["photoUrl"]) == key_of(url)


async def test_png_with_transparency_is_accepted(client: httpx.AsyncClient, make_user) -> None:
    user = await ready_user(client, make_user)
    url = await upload_ok(client, user, image_bytes("PNG", mode="RGBA"), "image/png")
    assert_clean_jpeg(await fetch(client, url))


async def test_content_type_parameters_and_case_are_tolerated(
    client: httpx.AsyncClient, make_user
) -> None:
    user = await ready_user(client, make_user)
    await upload_ok(client, user, image_bytes("PNG"), "IMAGE/PNG")
    await upload_ok(client, user, image_bytes("JPEG"), "image/jpeg; charset=binary")


async def test_jpeg_with_exif_gps_comes_back_without_any_metadata(
    client: httpx.AsyncClient, make_user
) -> None:
    user = await ready_user(client, make_user)
    original = image_bytes(
        "JPEG",
        (80, 60),
        exif=exif_with_gps().tobytes(),
        comment=b"home: 52.3702N 4.8952E",
        icc_profile=b"\x00" * 128,
    )
    # The upload really carries what we expect to be removed.
    source = Image.open(io.BytesIO(original))
    assert source.getexif().get_ifd(GPS_IFD)[1] == "N"
    assert source.info["comment"] == b"home: 52.3702N 4.8952E"

    data = await fetch(client, await upload_ok(client, user, original, "image/jpeg"))
    image = assert_clean_jpeg(data)
    assert not image.getexif().get_ifd(GPS_IFD)
    for secret in (b"52.3702", b"PhoneMaker", b"Model 12", b"Exif\x00\x00"):
        assert secret not in data
    assert image.size == (80, 60)


async def test_png_and_webp_metadata_is_removed_too(client: httpx.AsyncClient, make_user) -> None:
    user = await ready_user(client, make_user)
    text = PngImagePlugin.PngInfo()
    text.add_text("comment", "secret place 52.37N")
    text.add_text("Location", "secret place 52.37N")
    png = image_bytes("PNG", pnginfo=text, exif=exif_with_gps().tobytes())
    webp = image_bytes("WEBP", exif=exif_with_gps().tobytes(), xmp=b"<x:xmpmeta>52.37N</x:xmpmeta>")
    for data, content_type in ((png, "image/png"), (webp, "image/webp")):
        out = await fetch(client, await upload_ok(client, user, data, content_type))
        assert_clean_jpeg(out)
        assert b"52.37" not in out and b"PhoneMaker" not in out


async def test_exif_orientation_is_applied_to_the_pixels(
    client: httpx.AsyncClient, make_user
) -> None:
    user = await ready_user(client, make_user)
    # Orientation 6: the camera was turned; viewers rotate 90° clockwise.
    rotated = image_bytes("JPEG", (80, 40), exif=exif_with_gps(orientation=6).tobytes())
    image = assert_clean_jpeg(
        await fetch(client, await upload_ok(client, user, rotated, "image/jpeg"))
    )
    assert image.size == (40, 80)


async def test_large_photo_is_scaled_to_2048_on_the_long_side(
    client: httpx.AsyncClient, make_user
) -> None:
    user = await ready_user(client, make_user)
    url = await upload_ok(client, user, image_bytes("PNG", (3000, 1500)), "image/png")
    assert assert_clean_jpeg(await fetch(client, url)).size == (2048, 1024)


# --- refused uploads --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "image/gif", "application/json", "image/svg+xml", "jpeg"]
)
async def test_wrong_content_type_is_400(
    client: httpx.AsyncClient, make_user, base_settings: Settings, content_type: str | None
) -> None:
    user = await ready_user(client, make_user)
    r = await upload(client, user, image_bytes("JPEG"), content_type)
    body = assert_error(r, 400, "VALIDATION_ERROR")
    assert body["details"][0]["field"] == "Content-Type"
    assert user_photos(base_settings, user) == []


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"definitely not an image", "image/jpeg"),
        (b"", "image/png"),
        (image_bytes("PNG"), "image/jpeg"),
        (image_bytes("JPEG"), "image/webp"),
        (image_bytes("WEBP"), "image/png"),
        (image_bytes("GIF"), "image/png"),
        (image_bytes("JPEG")[:200], "image/jpeg"),
        (image_bytes("PNG")[:60], "image/png"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/webp"),
    ],
    ids=[
        "text",
        "empty",
        "png-as-jpeg",
        "jpeg-as-webp",
        "webp-as-png",
        "gif-as-png",
        "truncated-jpeg",
        "truncated-png",
        "svg-as-webp",
    ],
)
async def test_body_that_is_not_the_declared_image_is_400(
    client: httpx.AsyncClient, make_user, base_settings: Settings, data: bytes, content_type: str
) -> None:
    user = await ready_user(client, make_user)
    r = await upload(client, user, data, content_type)
    body = assert_error(r, 400, "VALIDATION_ERROR")
    assert body["details"][0]["field"] == "body"
    assert user_photos(base_settings, user) == []
    assert_error(
        await client.get("/api/after-hours/profile", headers=user.headers), 404, "NOT_FOUND"
    )


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width` x `height`: a decompression bomb's calling card."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + 3 * width) * 4, 9)  # a few rows; the rest never comes
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def jpeg_declaring(width: int, height: int) -> bytes:
    data = bytearray(image_bytes("JPEG", (16, 16)))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (png_declaring(8_000, 6_000), "image/png"),  # 48 MP: over our 25 MP limit
        (png_declaring(50_000, 50_000), "image/png"),  # 2.5 GP: past Pillow's own bomb check
        (jpeg_declaring(9_000, 5_000), "image/jpeg"),
        (jpeg_declaring(65_000, 65_000), "image/jpeg"),
    ],
    ids=["png-48mp", "png-2.5gp", "jpeg-45mp", "jpeg-4gp"],
)
async def test_decompression_bomb_is_400_and_nothing_is_stored(
    client: httpx.AsyncClient, make_user, base_settings: Settings, data: bytes, content_type: str
) -> None:
    assert len(data) < 100_000
    user = await ready_user(client, make_user)
    first = await upload_ok(client, user, image_bytes("JPEG"), "image/jpeg")
    r = await upload(client, user, data, content_type)
    body = assert_error(r, 400, "VALIDATION_ERROR")
    assert body["details"][0] == {"field": "body", "message": "Image dimensions are too large"}
    # The previous photo is untouched and still the profile's.
    assert user_photos(base_settings, user) == [stored(base_settings, first)]
    r = await client.get("/api/after-hours/profile", headers=user.headers)
    assert key_of(r.json()["profile"]["photoUrl"]) == key_of(first)


@pytest.fixture(scope="module")
def zero_png() -> bytes:
    data = blank_png((6300, 6300))  # 39.7 MP: under Pillow's own bomb check, and ours once
    assert len(data) < 120_000
    return data


async def test_zero_filled_6300_square_png_is_400_and_nothing_is_stored(
    client: httpx.AsyncClient, make_user, base_settings: Settings, zero_png: bytes
) -> None:
    user = await ready_user(client, make_user)
    r = await upload(client, user, zero_png, "image/png")
    body = assert_error(r, 400, "VALIDATION_ERROR")
    assert body["details"] == [{"field": "body", "message": "Image dimensions are too large"}]
    assert user_photos(base_settings, user) == []


@pytest.fixture(scope="module")
async def served(
    base_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Any, str]]:
    """A real `afterhours serve` process, whose memory is its own to measure."""
    settings = base_settings.model_copy(update={"data_dir": tmp_path_factory.mktemp("served")})
    async with serve_process(settings, with_worker=False) as process:
        yield process


MB = 1024 * 1024


async def test_a_burst_of_four_bombs_is_refused_without_the_memory(
    served: tuple[Any, str], make_user, zero_png: bytes
) -> None:
    proc, url = served
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        users = [await ready_user(client, make_user) for _ in range(4)]
        await upload_ok(client, users[0], image_bytes("PNG"), "image/png")  # warm: codecs loaded
        burst = asyncio.gather(*(upload(client, user, zero_png, "image/png") for user in users))
        responses, growth = await rss_growth(proc.pid, burst)
    assert growth < 100 * MB, f"RSS grew {growth / MB:.0f} MB"
    for r in responses:
        assert_error(r, 400, "VALIDATION_ERROR")


async def test_four_photos_at_the_pixel_budget_are_decoded_two_at_a_time(
    base_settings: Settings, tmp_path: Path, make_user
) -> None:
    # The costliest PNG accepted: 25 MP with alpha, ~190 MB to decode; 4 at once would be ~760.
    data = blank_png((5000, 5000), mode="RGBA")
    settings = base_settings.model_copy(update={"data_dir": tmp_path})
    async with (
        serve_process(settings, with_worker=False) as (proc, url),  # fresh: no memory left free
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        users = [await ready_user(client, make_user) for _ in range(4)]
        await upload_ok(client, users[0], image_bytes("PNG"), "image/png")
        burst = asyncio.gather(*(upload(client, user, data, "image/png") for user in users))
        responses, growth = await rss_growth(proc.pid, burst)
    # Two decodes' worth and some change (measured ~390 MB; four at once ~630 MB).
    assert growth < 460 * MB, f"RSS grew {growth / MB:.0f} MB"
    assert [r.status_code for r in responses] == [200] * 4, [r.text for r in responses]


async def test_eleventh_upload_in_ten_minutes_is_429_and_stores_nothing(
    client: httpx.AsyncClient, make_user, base_settings: Settings
) -> None:
    user = await ready_user(client, make_user)
    # Refused uploads count too: the decoding they cost is what the limit is for.
    assert_error(await upload(client, user, b"not an image", "image/png"), 400, "VALIDATION_ERROR")
    for _ in range(9):
        last = await upload_ok(client, user, image_bytes("JPEG"), "image/jpeg")
    r = await upload(client, user, image_bytes("JPEG"), "image/jpeg")
    assert_error(r, 429, "RATE_LIMITED")
    assert 590 <= int(r.headers["Retry-After"]) <= 600
    # Each replaced photo is removed by a job, so the folder settles on the last one.
    await until_photos(base_settings, user, [stored(base_settings, last)])
    r = await client.get("/api/after-hours/profile", headers=user.headers)
    assert key_of(r.json()["profile"]["photoUrl"]) == key_of(last)
    # The limit is the user's own: someone else uploads as before.
    other = await ready_user(client, make_user)
    assert_clean_jpeg(
        await fetch(client, await upload_ok(client, other, image_bytes("PNG"), "image/png"))
    )


def test_a_large_jpeg_is_decoded_at_reduced_scale() -> None:
    data = image_bytes("JPEG", (6000, 4000))
    with photos.open_bounded(data, "JPEG") as image:
        assert image.size == (3000, 2000)  # half scale still covers the 2048 x 1365 it becomes
    assert assert_clean_jpeg(photos.reencode(data, "image/jpeg")).size == (2048, 1365)


async def test_photo_needs_a_base_profile(
    client: httpx.AsyncClient, make_user, base_settings: Settings
) -> None:
    user = make_user()
    r = await upload(client, user, image_bytes("JPEG"), "image/jpeg")
    assert_error(r, 400, "BASE_PROFILE_REQUIRED")
    assert user_photos(base_settings, user) == []


async def test_photo_needs_premium_and_a_token(client: httpx.AsyncClient, make_user) -> None:
    user = await ready_user(client, make_user, premium=False)
    r = await upload(client, user, image_bytes("JPEG"), "image/jpeg")
    assert_error(r, 403, "PREMIUM_REQUIRED")
    r = await client.put(PHOTO, content=image_bytes("JPEG"), headers={"Content-Type": "image/jpeg"})
    assert_error(r, 401, "UNAUTHORIZED")


@pytest.mark.filterwarnings("ignore:Tag data larger than file:UserWarning")
@pytest.mark.filterwarnings("ignore:Truncated File Read:UserWarning")
def test_reencode_never_fails_with_anything_but_a_validation_error() -> None:
    """Damaged files of every accepted type: a clean JPEG or VALIDATION_ERROR, nothing else."""
    seeds = {
        "image/jpeg": image_bytes("JPEG", exif=exif_with_gps(orientation=3).tobytes()),
        "image/png": image_bytes("PNG", mode="RGBA"),
        "image/webp": image_bytes("WEBP"),
    }

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        content_type=st.sampled_from(sorted(seeds)),
        edits=st.lists(
            st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=8
        ),
        cut=st.none() | st.floats(0, 1),
    )
    def check(content_type: str, edits: list[tuple[float, int]], cut: float | None) -> None:
        data = bytearray(seeds[content_type])
        for where, byte in edits:
            data[int(where * len(data))] = byte
        if cut is not None:
            data = data[: int(cut * len(data))]
        try:
            out = photos.reencode(bytes(data), content_type)
        except AppError as exc:
            assert exc.code == "VALIDATION_ERROR" and exc.status == 400
        else:
            assert_clean_jpeg(out)

    check()


# --- signed links -----------------------------------------------------------------------------


def with_query(url: str, **changes: Any) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update({k: str(v) for k, v in changes.items() if v is not None})
    for k in [k for k, v in changes.items() if v is None]:
        query.pop(k, None)
    return f"{parts.path}?{urlencode(query)}"


async def test_photo_url_is_signed_and_expiring(client: httpx.AsyncClient, make_user) -> None:
    user = await ready_user(client, make_user)
    url = await upload_ok(client, user, image_bytes("JPEG"), "image/jpeg")
    query = parse_qs(urlsplit(url).query)
    assert set(query) == {"expires", "signature"}
    ttl = int(query["expires"][0]) - time.time()
    assert 3500 < ttl <= 3600


async def test_tampered_or_expired_photo_link_is_404(
    client: httpx.AsyncClient, make_user, base_settings: Settings
) -> None:
    user = await ready_user(client, make_user)
    url = await upload_ok(client, user, image_bytes("JPEG"), "image/jpeg")
    other = await ready_user(client, make_user)
    other_url = await upload_ok(client, other, image_bytes("JPEG"), "image/jpeg")
    signature = parse_qs(urlsplit(url).query)["signature"][0]
    expires = int(parse_qs(urlsplit(url).query)["expires"][0])
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    storage = LocalStorage(base_settings)
    past = int(time.time()) - 1

    tampered = [
        with_query(url, signature=flipped),
        with_query(url, signature=None),
        with_query(url, expires=None),
        with_query(url, expires="abc"),  # malformed is as dead as expired
        with_query(url, expires=expires + 3600),  # a longer life than was signed
        with_query(url, signature=signature.upper()),
        # A valid signature for someone else's photo does not open this one.
        with_query(other_url, signature=signature, expires=expires),
        # Correctly signed, but the moment has passed.
        with_query(url, expires=past, signature=storage.signature(key_of(url), past)),
        # Signed, but escaping the storage root.
        with_query(
            "/photos/../jwt_secret",
            expires=expires,
            signature=storage.signature("../jwt_secret", expires),
        ),
    ]
    for link in tampered:
        assert_error(await client.get(link), 404, "NOT_FOUND")
    assert (await client.get(url)).status_code == 200


# --- replacing and deleting -------------------------------------------------------------------


async def test_replacing_a_photo_deletes_the_old_file(
    client: httpx.AsyncClient, make_user, base_settings: Settings
) -> None:
    user = await ready_user(client, make_user)
    old = await upload_ok(client, user, image_bytes("JPEG"), "image/jpeg")
    new = await upload_ok(client, user, image_bytes("PNG"), "image/png")
    assert key_of(old) != key_of(new)
    await until_photos(base_settings, user, [stored(base_settings, new)])
    assert_error(await client.get(old), 404, "NOT_FOUND")
    assert_clean_jpeg(await fetch(client, new))


async def test_concurrent_uploads_leave_exactly_one_file(
    client: httpx.AsyncClient, make_user, base_settings: Settings
) -> None:
    user = await ready_user(client, make_user)
    responses = await asyncio.gather(
        *(upload(client, user, image_bytes("JPEG"), "image/jpeg") for _ in range(4))
    )
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    r = await client.get("/api/after-hours/profile", headers=user.headers)
    current = key_of(r.json()["profile"]["photoUrl"])
    await until_photos(base_settings, user, [base_settings.data_dir / "photos" / current])


async def test_description_update_keeps_the_photo(client: httpx.AsyncClient, make_user) -> None:
    user = await ready_user(client, make_user)
    url = await upload_ok(client, user, image_bytes("JPEG"), "image/jpeg")
    r = await client.put(
        "/api/after-hours/profile", json={"description": "hello"}, headers=user.headers
    )
    profile = r.json()["profile"]
    assert profile["description"] == "hello"
    assert key_of(profile["photoUrl"]) == key_of(url)
    assert_clean_jpeg(await fetch(client, profile["photoUrl"]))


async def test_deleting_the_after_hours_profile_deletes_the_photo(
    client: httpx.AsyncClient, make_user, base_settings: Settings
) -> None:
    user = await ready_user(client, make_user)
    url = await upload_ok(client, user, image_bytes("JPEG"), "image/jpeg")
    r = await client.delete("/api/after-hours/profile", headers=user.headers)
    assert r.status_code == 200, r.text
    await until_photos(base_settings, user, [])
    assert_error(await client.get(url), 404, "NOT_FOUND")


async def test_deleting_the_account_deletes_the_photo(
    client: httpx.AsyncClient, make_user, base_settings: Settings
) -> None:
    user = await ready_user(client, make_user)
    url = await upload_ok(client, user, image_bytes("JPEG"), "image/jpeg")
    assert stored(base_settings, url).is_file()
    r = await client.delete("/api/account", headers=user.headers)
    assert r.status_code == 200, r.text
    await until_photos(base_settings, user, [])
    assert_error(await client.get(url), 404, "NOT_FOUND")
    assert_error(await client.get("/api/profile", headers=user.headers), 404, "NOT_FOUND")
    assert_error(
        await client.get("/api/after-hours/profile", headers=user.headers), 404, "NOT_FOUND"
    )
