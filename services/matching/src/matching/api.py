"""matching's HTTP API: the directory for professionals and providers.

- `GET /assets/search`: near a postcode, by category or keyword, open on a day, with live
  capacity (any partner).
- `GET /assets/{id}`: one asset with its live capacity.
- `PUT /assets/{id}`: a provider adds or updates its own asset (verified: it is theirs).
- `POST /assets/suggestions`: anyone in the network suggests a community asset; it starts
  unverified and is never proposed above a verified one.
- `POST /assets/{id}/verification`: an ops partner verifies a suggestion.
- `POST /directory/imports`: an ops partner imports an Open Referral UK feed by URL.
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
import uuid
from datetime import date
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from linkwell import geo
from linkwell.auth import AuthError, TokenVerifier
from linkwell.geo import distance_km
from linkwell.partners import Partner
from linkwell_schemas.needs import NEED_CATEGORIES, RISK_CATEGORIES
from matching import oruk
from matching.config import MatchingSettings
from matching.directory import Directory
from matching.model import DAYS, Asset, AssetRecord, Session, describe_sessions

DAY_WORDS = {
    "monday": "MO",
    "tuesday": "TU",
    "wednesday": "WE",
    "thursday": "TH",
    "friday": "FR",
    "saturday": "SA",
    "sunday": "SU",
}


CATEGORY_QUERY = Query(default=[], description="need categories; any of them")


class AssetBody(BaseModel):
    """What a provider says about one of its assets (a whole statement: PUT)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=300)
    provider_name: str = Field(min_length=1, max_length=300)
    categories: list[str] = Field(min_length=1)
    description: str | None = Field(default=None, max_length=5000)
    interests: list[str] = Field(default_factory=list)
    postcode: str | None = None
    lat: float | None = None
    lon: float | None = None
    min_age: int | None = None
    max_age: int | None = None
    for_needs: list[str] = Field(default_factory=list)
    who_for: str | None = None
    languages: list[str] = Field(default_factory=list)
    accessibility: list[str] = Field(default_factory=list)
    free: bool | None = None
    cost: str | None = None
    sessions: list[Session] = Field(default_factory=list)
    schedule: str | None = None
    delivery: list[str] = Field(default_factory=lambda: ["venue"])
    capacity: int | None = None
    status: Literal["active", "inactive", "defunct", "temporarily closed"] = "active"


class ImportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(pattern=r"^https?://", max_length=2000)
    namespace: str = Field(default="oruk", pattern=r"^[a-z0-9][a-z0-9-]{0,40}$")
    withdraw_missing: bool = Field(
        default=True, description="mark assets this feed no longer lists as inactive"
    )
    force_withdrawal: bool = Field(
        default=False, description="withdraw even when the feed looks incomplete"
    )


def _problems(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"path": ".".join(str(p) for p in err["loc"]), "message": err["msg"]}
        for err in exc.errors()
    ]


def register(
    app: FastAPI,
    directory: Directory,
    verifier: TokenVerifier,
    settings: MatchingSettings,
    partners: list[Partner],
) -> None:
    async def partner_of(request: Request, kinds: set[str] | None = None) -> Partner:
        try:
            partner = await verifier.partner(request.headers.get("authorization"))
        except AuthError as exc:
            raise HTTPException(
                exc.status, exc.message, headers={"WWW-Authenticate": "Bearer"}
            ) from None
        if kinds and partner.kind not in kinds:
            raise HTTPException(403, f"only {' or '.join(sorted(kinds))} partners may do this")
        return partner

    def record(asset_id: str, body: AssetBody, provider: Partner, verified: bool) -> AssetRecord:
        try:
            return AssetRecord(
                id=asset_id,
                provider_org=provider.org_id,
                verified=verified,
                source=f"partner:{provider.org_id}",
                assured_date=date.today(),
                **body.model_dump(),
            )
        except ValidationError as exc:
            raise HTTPException(422, _problems(exc)) from None

    @app.get("/assets")
    async def list_assets(
        provider: str | None = None, limit: int = Query(default=500, ge=1, le=5000)
    ) -> list[dict[str, Any]]:
        await directory.refresh()
        chosen = [
            a
            for a in directory.index.assets.values()
            if provider is None or a.provider_org == provider
        ]
        chosen.sort(key=lambda a: a.asset_id)
        return [view(a) for a in chosen[:limit]]

    @app.get("/assets/search")
    async def search(
        request: Request,
        postcode: str | None = None,
        radius_km: float = Query(default=5.0, gt=0, le=50),
        category: list[str] = CATEGORY_QUERY,
        q: str | None = Query(default=None, max_length=100),
        open_on: str | None = Query(default=None, description="a weekday or a date"),
        with_room: bool = False,
        limit: int = Query(default=50, ge=1, le=500),
    ) -> dict[str, Any]:
        """Assets near a postcode, by category or keyword, open on a day, with live room."""
        await partner_of(request)
        unknown = [c for c in category if c not in NEED_CATEGORIES or c in RISK_CATEGORIES]
        if unknown:
            raise HTTPException(422, f"unknown categories: {', '.join(unknown)}")
        lat = lon = None
        if postcode:
            place = geo.locate(postcode)
            if place is None:
                raise HTTPException(422, "postcode not recognised")
            lat, lon = place.lat, place.lon
        day = _day(open_on) if open_on else None
        await directory.refresh()
        found = directory.index.search(lat, lon, radius_km, set(category) or None)
        words = [w for w in re.split(r"\W+", (q or "").lower()) if w]
        results = []
        for asset in found:
            if asset.status != "active":
                continue
            distance = None
            if lat is not None and asset.lat is not None and asset.lon is not None:
                distance = distance_km(lat, lon or 0.0, asset.lat, asset.lon)
                if distance > radius_km:
                    continue
            if day and not any(s.day == day for s in asset.sessions):
                continue
            if words and not _mentions(asset, words, directory):
                continue
            if with_room and not (asset.live_available or 0) > 0:
                continue
            results.append((distance, asset))
        results.sort(key=lambda pair: (pair[0] is None, pair[0] or 0.0, pair[1].name))
        return {
            "total": len(results),
            "assets": [
                view(asset) | {"distance_km": round(d, 2) if d is not None else None}
                for d, asset in results[:limit]
            ],
        }

    @app.get("/assets/{asset_id}")
    async def one(asset_id: str) -> dict[str, Any]:
        await directory.refresh()
        asset = directory.index.assets.get(asset_id)
        if asset is None:
            raise HTTPException(404, "unknown asset")
        return view(asset)

    @app.put("/assets/{asset_id}")
    async def put_asset(asset_id: str, body: AssetBody, request: Request) -> dict[str, Any]:
        provider = await partner_of(request, {"vcse"})
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}", asset_id):
            raise HTTPException(422, "asset ids are letters, digits and . _ : @ -")
        item = record(asset_id, body, provider, verified=True)
        try:
            changed = await directory.put(item, provider.tenant, only_provider=provider.org_id)
        except PermissionError:
            raise HTTPException(403, "this asset belongs to another provider") from None
        asset = directory.index.assets.get(asset_id)
        return {"changed": changed} | (view(asset) if asset else {"id": asset_id})

    @app.post("/assets/suggestions", status_code=201)
    async def suggest(body: AssetBody, request: Request) -> dict[str, Any]:
        """A community panel's suggestion: unverified until an ops partner verifies it."""
        partner = await partner_of(request, {"link-worker", "vcse", "gp"})
        asset_id = f"suggested:{uuid.uuid4()}"
        plain = unicodedata.normalize("NFKD", body.provider_name).encode("ascii", "ignore")
        slug = re.sub(r"[^a-z0-9]+", "-", plain.decode().lower()).strip("-")[:60] or "org"
        item = record(asset_id, body, partner, verified=False)
        item = item.model_copy(
            update={"provider_org": f"unregistered:{slug}", "source": f"suggested:{partner.org_id}"}
        )
        await directory.put(item, partner.tenant)
        return view(directory.index.assets[asset_id])

    @app.post("/assets/{asset_id}/verification")
    async def verify(asset_id: str, request: Request) -> dict[str, Any]:
        partner = await partner_of(request, {"ops"})
        doc = await directory.store.asset(asset_id)
        if doc is None or not doc.get("name"):
            raise HTTPException(404, "unknown asset")
        fields = {k: v for k, v in doc.items() if not k.startswith("_")}
        fields.update(verified=True, assured_date=date.today().isoformat())
        await directory.store.upsert_asset(asset_id, fields, partner.tenant)
        await directory.refresh(force=True)
        return view(directory.index.assets[asset_id])

    @app.get("/proposals/{referral_id}")
    async def proposal(referral_id: str) -> dict[str, Any]:
        """What matching decided for a referral (ids only: no candidate reasons, no PII)."""
        doc = await directory.store.proposed(referral_id)
        return {
            "referral_id": referral_id,
            "outcome": (doc or {}).get("last_outcome"),
            "first_choice_provider": (doc or {}).get("first_choice"),
            "at": (doc or {}).get("at"),
        }

    @app.post("/directory/imports")
    async def import_feed(body: ImportRequest, request: Request) -> dict[str, Any]:
        partner = await partner_of(request, {"ops"})
        try:
            report = await asyncio.to_thread(
                oruk.read_feed, body.url, oruk.provider_lookup(partners), body.namespace
            )
        except Exception as exc:
            raise HTTPException(422, f"the feed could not be read: {type(exc).__name__}") from None
        await directory.import_report(
            report, partner.tenant, body.withdraw_missing, body.force_withdrawal
        )
        return report_view(report)


def report_view(report: oruk.ImportReport) -> dict[str, Any]:
    return {
        "source": report.source,
        "shape": report.shape,
        "read": report.read,
        "assets": len(report.assets),
        "changed": report.changed,
        "withdrawn": report.withdrawn,
        "rejected_records": report.rejected_records,
        "rejected": [p.__dict__ for p in report.rejected[:200]],
        "warnings": [p.__dict__ for p in report.warnings[:200]],
        "notes": report.notes,
    }


def _day(text: str) -> str:
    value = text.strip().lower()
    if value in DAY_WORDS:
        return DAY_WORDS[value]
    if value.upper() in DAYS:
        return value.upper()
    try:
        return DAYS[date.fromisoformat(value).weekday()]
    except ValueError:
        raise HTTPException(422, "open_on is a weekday (tuesday, TU) or a date") from None


def _mentions(asset: Asset, words: list[str], directory: Directory) -> bool:
    text = " ".join(
        [asset.name, *asset.categories, *asset.interests, asset.who_for or "", asset.schedule or ""]
    ).lower()
    return all(w in text for w in words)


def view(asset: Asset) -> dict[str, Any]:
    live = asset.live
    return {
        "id": asset.asset_id,
        "name": asset.name,
        "provider_org": asset.provider_org,
        "categories": sorted(asset.categories),
        "interests": sorted(asset.interests),
        "lat": asset.lat,
        "lon": asset.lon,
        "schedule": describe_sessions(asset.sessions) or asset.schedule,
        "sessions": [s.model_dump() for s in asset.sessions],
        "min_age": asset.min_age,
        "max_age": asset.max_age,
        "for_needs": sorted(asset.for_needs),
        "who_for": asset.who_for,
        "languages": sorted(asset.languages) or ["en"],
        "accessibility": sorted(asset.accessibility),
        "free": asset.free,
        "cost": asset.cost,
        "delivery": sorted(asset.delivery),
        "declared_capacity": asset.declared_capacity,
        "verified": asset.verified,
        "assured_date": asset.assured_date.isoformat() if asset.assured_date else None,
        "status": asset.status,
        "live": None
        if live is None
        else {
            "available": live.available,
            "maximum": None if live.stale else live.capacity,
            "waitlist": live.waitlist_length,
            "accepting_referrals": live.accepting_referrals,
            "paused_reason": live.paused_reason,
            "stale": live.stale,
        },
    }
