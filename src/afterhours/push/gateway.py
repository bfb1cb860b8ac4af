"""The host app's push gateway, as After Hours calls it: one signed POST per push.

The signature is HMAC-SHA256, under the shared secret, of `<timestamp>.<body>`: the timestamp
(`X-AfterHours-Timestamp`, Unix seconds) is signed with the body, so a gateway that refuses
calls older than a few minutes cannot be replayed a captured one (docs/events.md shows the
check in Python, Kotlin and Swift).
"""

import hashlib
import hmac
from typing import Any

import httpx
from pydantic_core import to_json

from afterhours import clock

SIGNATURE_HEADER = "X-AfterHours-Signature"
TIMESTAMP_HEADER = "X-AfterHours-Timestamp"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


class Gateway:
    def __init__(self, url: str, secret: str, timeout: float) -> None:
        self.url = url
        self.secret = secret
        # One client per process: its connections to the gateway are kept and reused.
        self.client = httpx.AsyncClient(timeout=timeout)

    async def post(self, payload: Any) -> httpx.Response:
        """Raises httpx.TransportError on a timeout or a refused connection."""
        body = to_json(payload)
        timestamp = str(int(clock.now().timestamp()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(self.secret, timestamp, body),
        }
        return await self.client.post(self.url, content=body, headers=headers)

    async def aclose(self) -> None:
        await self.client.aclose()
