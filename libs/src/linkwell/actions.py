"""Zero-login actions: links in a message that let a small organisation accept, decline or
record attendance without an account. Each link carries a token signed by the network
(ES256), naming one referral, one organisation and one action; it expires, and it works once.

notifications signs (private key); referral-intake verifies (public key) and applies the
action exactly as that organisation's Task update would be.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Literal

import jwt

from linkwell.auth import ReplayGuard

Action = Literal["accept", "decline", "attended"]
ACTIONS: tuple[str, ...] = ("accept", "decline", "attended")
ISSUER = "linkwell-notifications"


class ActionLinkError(Exception):
    """Why a link cannot be used: tampered (400), expired (410) or used (409)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ActionClaim:
    referral_id: str
    org_id: str
    action: Action
    token_id: str
    expires_at: float


class ActionSigner:
    def __init__(self, private_key_pem: str, audience: str) -> None:
        self.private_key_pem = private_key_pem
        self.audience = audience

    def link(
        self, base_url: str, referral_id: str, org_id: str, action: Action, expires_at: float
    ) -> str:
        claims = {
            "iss": ISSUER,
            "aud": self.audience,
            "sub": org_id,
            "ref": referral_id,
            "act": action,
            "iat": int(time.time()),
            "exp": int(expires_at),
            "jti": str(uuid.uuid4()),
        }
        token = jwt.encode(claims, self.private_key_pem, algorithm="ES256")
        return f"{base_url.rstrip('/')}/{token}"


class ActionVerifier:
    def __init__(self, public_key_pem: str, audience: str, replay: ReplayGuard) -> None:
        self.public_key_pem = public_key_pem
        self.audience = audience
        self.replay = replay

    def read(self, token: str) -> ActionClaim:
        """What the link asks for, without using it up (for a confirmation page)."""
        try:
            claims = jwt.decode(
                token,
                self.public_key_pem,
                algorithms=["ES256"],
                audience=self.audience,
                issuer=ISSUER,
                options={"require": ["exp", "jti", "sub", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise ActionLinkError(410, "This link has expired.") from None
        except jwt.PyJWTError:
            raise ActionLinkError(
                400, "This link is not valid: it may have been altered."
            ) from None
        if claims.get("act") not in ACTIONS or not isinstance(claims.get("ref"), str):
            raise ActionLinkError(400, "This link is not valid: it may have been altered.")
        return ActionClaim(
            referral_id=claims["ref"],
            org_id=str(claims["sub"]),
            action=claims["act"],
            token_id=str(claims["jti"]),
            expires_at=float(claims["exp"]),
        )

    async def use(self, token: str) -> ActionClaim:
        """The link's action, once: a second use is refused."""
        claim = self.read(token)
        if not await self.replay.first_use(f"action:{claim.token_id}", claim.expires_at):
            raise ActionLinkError(409, "This link has already been used.")
        return claim
