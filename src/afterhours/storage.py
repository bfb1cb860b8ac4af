"""Photo storage: a local directory with signed, expiring URLs, or S3/R2 when configured."""

import asyncio
import hashlib
import hmac
import time
from pathlib import Path
from typing import Protocol
from urllib.parse import urlencode

from afterhours.settings import Settings, persistent_secret

PHOTO_ROUTE = "/photos"


class PhotoStorage(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> None: ...
    async def delete(self, key: str) -> None: ...
    def url(self, key: str) -> str: ...


class LocalStorage:
    def __init__(self, settings: Settings) -> None:
        self.root = (settings.data_dir / "photos").resolve()
        self.key = (
            settings.url_signing_key or persistent_secret(settings, "url_signing_key")
        ).encode()
        self.ttl = settings.photo_url_ttl_seconds
        self.base = settings.public_url

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError("photo key escapes the storage root")
        return path

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self.path(key)
        await asyncio.to_thread(_write_atomically, path, data)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path(key).unlink, missing_ok=True)

    def signature(self, key: str, expires: int) -> str:
        return hmac.new(self.key, f"{key}:{expires}".encode(), hashlib.sha256).hexdigest()

    def url(self, key: str) -> str:
        expires = int(time.time()) + self.ttl
        query = urlencode({"expires": expires, "signature": self.signature(key, expires)})
        return f"{self.base}{PHOTO_ROUTE}/{key}?{query}"

    def check(self, key: str, expires: int, signature: str) -> bool:
        if expires < time.time():
            return False
        return hmac.compare_digest(self.signature(key, expires), signature)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


class S3Storage:
    def __init__(self, settings: Settings) -> None:
        import boto3  # only needed when S3/R2 is configured
        from botocore.config import Config

        self.bucket = settings.s3_bucket
        self.ttl = settings.photo_url_ttl_seconds
        self.client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            aws_access_key_id=settings.s3_access_key_id,
            aws_secret_access_key=settings.s3_secret_access_key,
            region_name=settings.s3_region if settings.s3_region != "auto" else "us-east-1",
            # R2 accepts only SigV4; botocore would otherwise presign some URLs with SigV2.
            config=Config(signature_version="s3v4"),
        )

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(
            self.client.put_object, Bucket=self.bucket, Key=key, Body=data, ContentType=content_type
        )

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=key)

    def url(self, key: str) -> str:
        url: str = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=self.ttl
        )
        return url


def make_storage(settings: Settings) -> PhotoStorage:
    return S3Storage(settings) if settings.s3_enabled else LocalStorage(settings)
