"""Tokens the service must not take: no algorithm, another algorithm than its key's, a missing
or non-numeric time claim. Each is 401 UNAUTHORIZED on REST and refused at socket connect."""

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
import socketio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from afterhours.auth import TokenVerifier
from afterhours.settings import Settings
from tests.support.clients import assert_error
from tests.support.server import TEST_SECRET, running_server

ROUTE = "/api/after-hours/preferences"  # premium: answers 200 with defaults to any good token


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(signing_input: str, secret: bytes) -> str:
    return b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())


def raw_token(header: dict[str, Any], payload: str, *, secret: bytes | None) -> str:
    """A JWT put together by hand: the payload is JSON text as given (PyJWT would not write
    most of these), signed HS256 with `secret`, or unsigned."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(payload.encode())}"
    return f"{signing_input}.{hs256(signing_input, secret) if secret else ''}"


def claims_json(**overrides: str) -> str:
    """Good claims as JSON text, each override given as the JSON of its value ("" drops it)."""
    fields = {
        "sub": json.dumps(str(uuid.uuid4())),
        "exp": str(int(time.time()) + 600),
        "premium": "true",
    }
    fields.update(overrides)
    return "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items() if v) + "}"


def hs(**overrides: str) -> str:
    return raw_token({"alg": "HS256", "typ": "JWT"}, claims_json(**overrides), secret=SECRET)


def new_rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: Any) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def signed(key: Any, algorithm: str) -> str:
    claims = {"sub": str(uuid.uuid4()), "exp": int(time.time()) + 600, "premium": True}
    return jwt.encode(claims, key, algorithm=algorithm)


SECRET = TEST_SECRET.encode()
RSA_KEY = new_rsa()
RSA_PEM = pem(RSA_KEY)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
FUTURE = str(int(time.time()) + 600)

REFUSED_WITH_A_SECRET = {
    "alg-none": raw_token({"alg": "none", "typ": "JWT"}, claims_json(), secret=None),
    "alg-None": raw_token({"alg": "None", "typ": "JWT"}, claims_json(), secret=None),
    "alg-none-signed": raw_token({"alg": "none"}, claims_json(), secret=SECRET),
    "hs384": signed(SECRET, "HS384"),
    "rs256": signed(RSA_KEY, "RS256"),
    "es256": signed(EC_KEY, "ES256"),
    "no-exp": hs(exp=""),
    "exp-null": hs(exp="null"),
    "exp-numeric-string": hs(exp=json.dumps(FUTURE)),
    "exp-text": hs(exp='"tomorrow"'),
    "exp-true": hs(exp="true"),
    "exp-list": hs(exp=f"[{FUTURE}]"),
    "exp-hundreds-of-digits": hs(exp="9" * 400),
    "exp-1e400": hs(exp="1e400"),
    "exp-Infinity": hs(exp="Infinity"),
    "exp-NaN": hs(exp="NaN"),
    "nbf-numeric-string": hs(nbf='"0"'),
    "nbf-true": hs(nbf="true"),
    "nbf-text": hs(nbf='"now"'),
    "iat-numeric-string": hs(iat='"0"'),
    "iat-true": hs(iat="true"),
    "iat-list": hs(iat="[0]"),
}

REFUSED_WITH_A_PUBLIC_KEY = {
    # The classic confusion: the public key (known to all) used as an HMAC secret.
    "hs256-with-the-public-key-as-secret": raw_token(
        {"alg": "HS256", "typ": "JWT"}, claims_json(), secret=RSA_PEM.encode()
    ),
    "alg-none": raw_token({"alg": "none", "typ": "JWT"}, claims_json(), secret=None),
    "hs256-with-the-server-secret": hs(),
    "es256": signed(EC_KEY, "ES256"),
    "rs256-other-key": signed(new_rsa(), "RS256"),
    "rs512-right-key": signed(RSA_KEY, "RS512"),
    "exp-numeric-string": jwt.encode(
        {"sub": str(uuid.uuid4()), "exp": FUTURE, "premium": True}, RSA_KEY, algorithm="RS256"
    ),
}


async def refusal_at_connect(base_url: str, token: str) -> Any:
    """What a socket connecting with `token` is told in `connect_error` (it must be refused)."""
    client = socketio.AsyncClient(reconnection=False)
    refused: list[Any] = []
    client.on("connect_error", lambda data: refused.append(data))
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            base_url, auth={"token": token}, transports=["websocket"], wait_timeout=5
        )
    assert not client.connected
    assert refused, "connect_error"
    return refused[0]


async def assert_refused(client: httpx.AsyncClient, base_url: str, token: str) -> None:
    r = await client.get(ROUTE, headers={"Authorization": f"Bearer {token}"})
    assert_error(r, 401, "UNAUTHORIZED")
    assert (await refusal_at_connect(base_url, token))["data"] == {"code": "UNAUTHORIZED"}


async def assert_accepted(client: httpx.AsyncClient, base_url: str, token: str) -> None:
    r = await client.get(ROUTE, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    socket = socketio.AsyncClient(reconnection=False)
    await socket.connect(base_url, auth={"token": token}, transports=["websocket"], wait_timeout=5)
    assert socket.connected
    await socket.disconnect()


# --- a server verifying HS256 with a secret (the tests' usual server) -----------------------


async def test_a_good_hs256_token_is_accepted(client: httpx.AsyncClient, base_url: str) -> None:
    await assert_accepted(client, base_url, hs())
    await assert_accepted(client, base_url, hs(nbf="0", iat="0"))
    await assert_accepted(client, base_url, hs(exp=f"{FUTURE}.5", iat=f"{time.time() - 5}"))


@pytest.mark.parametrize("token", REFUSED_WITH_A_SECRET.values(), ids=REFUSED_WITH_A_SECRET.keys())
async def test_token_is_refused_by_a_server_with_a_secret(
    client: httpx.AsyncClient, base_url: str, token: str
) -> None:
    await assert_refused(client, base_url, token)


# --- a server verifying RS256 with a public key ---------------------------------------------


@pytest.fixture(scope="module")
async def rs_base_url(base_settings: Settings) -> AsyncIterator[str]:
    settings = base_settings.model_copy(update={"jwt_public_key": RSA_PEM})
    async with running_server(settings, with_worker=False) as url:
        yield url


@pytest.fixture
async def rs_client(rs_base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=rs_base_url, timeout=10) as c:
        yield c


async def test_a_good_rs256_token_is_accepted(
    rs_client: httpx.AsyncClient, rs_base_url: str
) -> None:
    await assert_accepted(rs_client, rs_base_url, signed(RSA_KEY, "RS256"))


@pytest.mark.parametrize(
    "token", REFUSED_WITH_A_PUBLIC_KEY.values(), ids=REFUSED_WITH_A_PUBLIC_KEY.keys()
)
async def test_token_is_refused_by_a_server_with_a_public_key(
    rs_client: httpx.AsyncClient, rs_base_url: str, token: str
) -> None:
    await assert_refused(rs_client, rs_base_url, token)


# --- which algorithm a configured key verifies ----------------------------------------------


def verifier_for(public_key_pem: str, base_settings: Settings) -> TokenVerifier:
    return TokenVerifier(base_settings.model_copy(update={"jwt_public_key": public_key_pem}))


def test_a_p256_key_verifies_es256_only(base_settings: Settings) -> None:
    verifier = verifier_for(pem(EC_KEY), base_settings)
    assert verifier.verify(signed(EC_KEY, "ES256")).premium is True
    with pytest.raises(Exception, match="Invalid or expired token"):
        verifier.verify(raw_token({"alg": "HS256"}, claims_json(), secret=pem(EC_KEY).encode()))


@pytest.mark.parametrize(
    "key_pem",
    [pem(ec.generate_private_key(ec.SECP384R1())), "not a key", RSA_PEM.replace("A", "B", 5)],
    ids=["p384-key", "not-pem", "damaged-pem"],
)
def test_a_public_key_it_cannot_use_stops_the_service_at_start(
    key_pem: str, base_settings: Settings
) -> None:
    with pytest.raises(ValueError, match="AFTERHOURS_JWT_PUBLIC_KEY"):
        verifier_for(key_pem, base_settings)
