"""Partner authentication. Every request to a Linkwell API carries a short-lived JWT that the
partner signs with its own private key (ES256 or RS256); the service verifies it with the
public key in the partner registry, so no shared secret ever crosses the network.

Claims: `iss` (and `sub`) the partner's organisation id, `aud` the API's base URL, `iat`,
`exp` at most five minutes later, and a unique `jti`, accepted once (replay is refused).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from linkwell.documents import DocumentStore
from linkwell.partners import Partner

ALGORITHMS = ["ES256", "RS256"]
MAX_LIFETIME_SECONDS = 300
CLOCK_SKEW_SECONDS = 30


@dataclass
class AuthError(Exception):
    """Why a request is not authenticated (401) or not allowed (403). Never names a person."""

    status: int
    message: str

    def __str__(self) -> str:
        return self.message


class ReplayGuard(Protocol):
    async def first_use(self, token_id: str, expires_at: float) -> bool:
        """True the first time a token id is presented; False every time after."""
        ...


class MemoryReplayGuard:
    """For one process (unit tests, a single-instance laptop run)."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    async def first_use(self, token_id: str, expires_at: float) -> bool:
        now = time.time()
        self._seen = {k: v for k, v in self._seen.items() if v > now}
        if token_id in self._seen:
            return False
        self._seen[token_id] = expires_at
        return True


class DocumentReplayGuard:
    """Shared by every instance of a service: a token id is a document with a unique id."""

    collection = "used_tokens"

    def __init__(self, documents: DocumentStore) -> None:
        self.documents = documents

    async def first_use(self, token_id: str, expires_at: float) -> bool:
        return await self.documents.insert(
            self.collection, {"_id": token_id, "expires_at": expires_at}
        )

    async def forget_expired(self) -> int:
        return await self.documents.delete_where(
            self.collection, {"expires_at": {"$lt": time.time()}}
        )


class TokenVerifier:
    def __init__(self, partners: dict[str, Partner], audience: str, replay: ReplayGuard) -> None:
        self.partners = partners
        self.audience = audience
        self.replay = replay

    async def partner(self, authorization: str | None) -> Partner:
        """The partner who signed the bearer token, or AuthError saying what is wrong."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError(401, "A bearer token is required (Authorization: Bearer <JWT>)")
        token = token.strip()
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise AuthError(401, "The bearer token is not a well-formed JWT") from None
        issuer = unverified.get("iss")
        partner = self.partners.get(issuer) if isinstance(issuer, str) else None
        if partner is None or not partner.public_key:
            raise AuthError(401, "The token's issuer (iss) is not a registered partner")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                partner.public_key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=partner.org_id,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["iss", "aud", "iat", "exp", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError(401, "The token has expired") from None
        except jwt.InvalidAudienceError:
            raise AuthError(401, f"The token's audience (aud) must be {self.audience}") from None
        except jwt.InvalidSignatureError:
            raise AuthError(
                401, "The token's signature does not match the partner's registered key"
            ) from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(401, f"The token has no {exc.claim} claim") from None
        except jwt.ImmatureSignatureError:
            raise AuthError(401, "The token is not valid yet (iat or nbf in the future)") from None
        except jwt.InvalidAlgorithmError:
            raise AuthError(401, "The token must be signed with ES256 or RS256") from None
        except jwt.PyJWTError as exc:
            raise AuthError(401, f"The token is invalid ({type(exc).__name__})") from None
        if float(claims["exp"]) - float(claims["iat"]) > MAX_LIFETIME_SECONDS:
            raise AuthError(401, "The token lives longer than 5 minutes (exp - iat)")
        if not await self.replay.first_use(
            f"{partner.org_id}:{claims['jti']}", float(claims["exp"]) + CLOCK_SKEW_SECONDS
        ):
            raise AuthError(401, "The token has been used before (jti); sign one per request")
        return partner


# ---------------------------------------------------------------- the partner's side


def generate_key() -> tuple[str, str]:
    """A new P-256 key pair as PEM: (private, public)."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def mint_token(
    private_key_pem: str,
    org_id: str,
    audience: str,
    lifetime_seconds: int = 60,
    now: float | None = None,
) -> str:
    """A bearer token for one request, signed with the partner's private key."""
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    algorithm = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": org_id,
        "sub": org_id,
        "aud": audience,
        "iat": issued,
        "exp": issued + lifetime_seconds,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(claims, private_key_pem, algorithm=algorithm)


class PartnerAuth(httpx.Auth):
    """An httpx client signs every request as the partner, with a fresh token each time."""

    def __init__(self, private_key_pem: str, org_id: str, audience: str) -> None:
        self.private_key_pem = private_key_pem
        self.org_id = org_id
        self.audience = audience

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = mint_token(self.private_key_pem, self.org_id, self.audience)
        request.headers["Authorization"] = f"Bearer {token}"
        yield request
