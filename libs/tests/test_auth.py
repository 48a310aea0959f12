"""Partner bearer tokens: what a partner signs is accepted once; everything else is refused
with a reason the partner's developer can act on."""

from __future__ import annotations

import time

import jwt
import pytest

from linkwell.auth import (
    AuthError,
    DocumentReplayGuard,
    MemoryReplayGuard,
    TokenVerifier,
    generate_key,
    mint_token,
)
from linkwell.documents import MongoDocumentStore
from linkwell.partners import Partner

AUDIENCE = "https://intake.example/fhir"
GP_KEY, GP_PUBLIC = generate_key()
STRANGER_KEY, _ = generate_key()
GP = Partner(org_id="gp-a", name="Practice A", kind="gp", tenant="region-a", public_key=GP_PUBLIC)


def verifier(replay=None) -> TokenVerifier:
    return TokenVerifier({GP.org_id: GP}, AUDIENCE, replay or MemoryReplayGuard())


async def refusal(token_or_header: str | None, replay=None) -> str:
    header = (
        token_or_header
        if token_or_header is None or " " in token_or_header
        else (f"Bearer {token_or_header}")
    )
    with pytest.raises(AuthError) as refused:
        await verifier(replay).partner(header)
    assert refused.value.status == 401
    return refused.value.message


async def test_a_token_signed_by_the_partner_identifies_it() -> None:
    token = mint_token(GP_KEY, "gp-a", AUDIENCE)
    assert (await verifier().partner(f"Bearer {token}")).org_id == "gp-a"


async def test_no_token_or_not_a_jwt_is_refused() -> None:
    assert "bearer token is required" in await refusal(None)
    assert "bearer token is required" in await refusal("Basic dXNlcjpwYXNz")
    assert "not a well-formed JWT" in await refusal("Bearer not-a-jwt")


async def test_token_signed_with_another_key_is_refused() -> None:
    assert "signature does not match" in await refusal(mint_token(STRANGER_KEY, "gp-a", AUDIENCE))


async def test_unknown_partner_is_refused() -> None:
    assert "not a registered partner" in await refusal(
        mint_token(STRANGER_KEY, "gp-unknown", AUDIENCE)
    )


async def test_expired_token_is_refused() -> None:
    old = mint_token(GP_KEY, "gp-a", AUDIENCE, lifetime_seconds=60, now=time.time() - 600)
    assert "expired" in await refusal(old)


async def test_token_for_another_service_is_refused() -> None:
    assert "audience" in await refusal(mint_token(GP_KEY, "gp-a", "https://elsewhere/fhir"))


async def test_long_lived_token_is_refused() -> None:
    assert "longer than 5 minutes" in await refusal(
        mint_token(GP_KEY, "gp-a", AUDIENCE, lifetime_seconds=3600)
    )


async def test_token_without_jti_is_refused() -> None:
    now = int(time.time())
    token = jwt.encode(
        {"iss": "gp-a", "aud": AUDIENCE, "iat": now, "exp": now + 60}, GP_KEY, algorithm="ES256"
    )
    assert "no jti claim" in await refusal(token)


async def test_symmetric_token_made_with_the_public_key_is_refused() -> None:
    now = int(time.time())
    claims = {"iss": "gp-a", "aud": AUDIENCE, "iat": now, "exp": now + 60, "jti": "x"}
    forged = jwt.api_jws.PyJWS().encode(
        jwt.utils.force_bytes(jwt.api_jwt.json.dumps(claims)),
        "a-shared-secret-that-is-long-enough-for-hs256",
        algorithm="HS256",
    )
    assert await refusal(forged)


@pytest.mark.parametrize("where", ["memory", "mongo"])
async def test_a_token_is_accepted_once(where, request, database_name) -> None:
    if where == "mongo":
        store = MongoDocumentStore(request.getfixturevalue("stack").mongodb_url, database_name)
        replay = DocumentReplayGuard(store)
    else:
        replay = MemoryReplayGuard()
    token = mint_token(GP_KEY, "gp-a", AUDIENCE)
    assert (await verifier(replay).partner(f"Bearer {token}")).org_id == "gp-a"
    assert "used before" in await refusal(token, replay)
    if where == "mongo":
        assert await replay.forget_expired() == 0  # still live: kept
        await store.close()
