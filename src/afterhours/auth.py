"""Bearer JWTs issued by the host app: verification, the dev secret, and request identities."""

import hashlib
import hmac
import math
import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from afterhours import bans, users
from afterhours.errors import AppError
from afterhours.settings import Settings, persistent_secret

MAX_FINGERPRINT_LENGTH = 256
# NumericDate claims (RFC 7519): JSON numbers. PyJWT also takes "1700000000" or `true` for them.
TIME_CLAIMS = ("exp", "nbf", "iat")


@dataclass(frozen=True)
class Identity:
    user_id: uuid.UUID
    premium: bool
    admin: bool
    expires_at: float  # the token's `exp`: a socket connected with it is cut off then


def public_key_algorithms(pem: str) -> tuple[Any, list[str]]:
    """The key and the one algorithm it verifies: each key type accepts only its own, so no
    token chooses how it is checked (a public key taken for an HMAC secret, ES256 on RSA)."""
    try:
        key = load_pem_public_key(pem.encode())
    except ValueError as exc:
        raise ValueError("AFTERHOURS_JWT_PUBLIC_KEY is not a PEM public key") from exc
    if isinstance(key, rsa.RSAPublicKey):
        return key, ["RS256"]
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key, ["ES256"]
    raise ValueError("AFTERHOURS_JWT_PUBLIC_KEY must be an RSA (RS256) or P-256 (ES256) key")


def expiry_of(claims: dict[str, Any]) -> float:
    """`exp` as seconds, once every time claim is checked to be a finite JSON number."""
    for name in TIME_CLAIMS:
        value = claims.get(name)
        if name in claims and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise jwt.InvalidTokenError(f"{name} must be a number")
    try:
        expiry = float(claims["exp"])
    except OverflowError as exc:  # a JSON integer of hundreds of digits
        raise jwt.InvalidTokenError("exp out of range") from exc
    if not math.isfinite(expiry):
        raise jwt.InvalidTokenError("exp out of range")
    return expiry


class TokenVerifier:
    def __init__(self, settings: Settings) -> None:
        if settings.jwt_public_key:
            self.key, self.algorithms = public_key_algorithms(settings.jwt_public_key)
            self.signing_secret: str | None = None
        else:
            self.signing_secret = jwt_secret(settings)
            self.key = self.signing_secret
            self.algorithms = ["HS256"]

    def verify(self, token: str) -> Identity:
        try:
            claims = jwt.decode(
                token, self.key, algorithms=self.algorithms, options={"require": ["exp", "sub"]}
            )
            user_id = uuid.UUID(str(claims["sub"]))
            expires_at = expiry_of(claims)
        except (jwt.PyJWTError, ValueError) as exc:
            raise AppError("UNAUTHORIZED", "Invalid or expired token", status=401) from exc
        return Identity(
            user_id=user_id,
            premium=claims.get("premium") is True,
            admin=claims.get("role") == "admin",
            expires_at=expires_at,
        )

    def issue(
        self, user_id: uuid.UUID, *, premium: bool = False, admin: bool = False, ttl: int = 3600
    ) -> str:
        if self.signing_secret is None:
            raise RuntimeError("tokens can only be issued with an HS256 secret")
        claims: dict[str, Any] = {"sub": str(user_id), "exp": int(time.time()) + ttl}
        if premium:
            claims["premium"] = True
        if admin:
            claims["role"] = "admin"
        return jwt.encode(claims, self.signing_secret, algorithm="HS256")


def jwt_secret(settings: Settings) -> str:
    return settings.jwt_secret or persistent_secret(settings, "jwt_secret")


class Fingerprints:
    """Device fingerprints are stored as HMAC-SHA256 under a server secret: a plain hash of a
    guessable client string (a model name, an advertising id) would be reversed by trying them."""

    def __init__(self, settings: Settings) -> None:
        secret = settings.fingerprint_secret or persistent_secret(settings, "fingerprint_secret")
        self.key = secret.encode()

    def hash(self, fingerprint: str | None) -> str | None:
        if not fingerprint:
            return None
        return hmac.new(self.key, fingerprint.encode(), hashlib.sha256).hexdigest()


# Declares the scheme in OpenAPI for every route that depends on it; without auto_error, so a
# missing token is refused below in the contract's envelope rather than FastAPI's.
BEARER = HTTPBearer(
    scheme_name="bearerAuth",
    bearerFormat="JWT",
    description="The host app's JWT: `sub` the user id, `exp` required, optional `premium` and "
    '`role: "admin"`.',
    auto_error=False,
)


def bearer_token(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None:
        raise AppError("UNAUTHORIZED", "Missing bearer token", status=401)
    return credentials.credentials


async def get_db(request: Request) -> Any:
    """The request's unit of work: commits before the response is sent, rolls back on error."""
    async with request.app.state.db.transaction() as db:
        yield db


DB = Annotated[AsyncSession, Depends(get_db, scope="function")]


async def current_identity(
    request: Request,
    db: DB,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    x_device_fingerprint: Annotated[
        str | None, Header(max_length=MAX_FINGERPRINT_LENGTH, include_in_schema=False)
    ] = None,
) -> Identity:
    identity: Identity = request.app.state.verifier.verify(bearer_token(credentials))
    fingerprint = request.app.state.fingerprints.hash(x_device_fingerprint)
    await users.ensure_user(db, user_id=identity.user_id, fingerprint_hash=fingerprint)
    request.state.fingerprint_hash = fingerprint
    return identity


def check_premium(identity: Identity) -> None:
    """The After Hours rule, for REST routes (below) and socket events alike."""
    if not identity.premium:
        raise AppError("PREMIUM_REQUIRED", "After Hours requires a premium account", status=403)


async def premium_identity(
    request: Request, db: DB, identity: Annotated[Identity, Depends(current_identity)]
) -> Identity:
    """After Hours routes: premium, and neither the account nor the device banned."""
    check_premium(identity)
    await bans.check_not_banned(
        db, user_id=identity.user_id, fingerprint_hash=request.state.fingerprint_hash
    )
    return identity


async def admin_identity(identity: Annotated[Identity, Depends(current_identity)]) -> Identity:
    if not identity.admin:
        raise AppError("FORBIDDEN", "Admin role required", status=403)
    return identity


CurrentUser = Annotated[Identity, Depends(current_identity)]
PremiumUser = Annotated[Identity, Depends(premium_identity)]
AdminUser = Annotated[Identity, Depends(admin_identity)]
