"""The directory as matching uses it: stored in the database, indexed in memory."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from linkwell_schemas.events import Event, MatchProposed, ReferralEscalated, ReferralReceived
from matching import domain, oruk
from matching.index import DirectoryIndex
from matching.model import AssetRecord
from matching.store import DirectoryStore

SERVICE = "matching"
WITHDRAW_FREELY = 5  # an import may always withdraw this many missing assets
LOOKBACK = timedelta(seconds=5)  # tolerate clock skew between instances when refreshing
log = logging.getLogger(__name__)


class Directory:
    def __init__(
        self,
        store: DirectoryStore,
        max_candidates: int = 5,
        refresh_every: float = 0.5,
        on_decided: Callable[[domain.Decision], None] | None = None,
    ) -> None:
        self.store = store
        self.index = DirectoryIndex()
        self.max_candidates = max_candidates
        self.refresh_every = refresh_every
        self._refreshed = 0.0
        self._proposals_since = ""
        self._counted: dict[str, str] = {}  # referral -> provider counted for load
        self._lock = asyncio.Lock()
        self.on_decided = on_decided

    async def refresh(self, force: bool = False) -> None:
        """Bring the index up to date with every instance's writes."""
        if not force and time.monotonic() - self._refreshed < self.refresh_every:
            return
        async with self._lock:
            if not force and time.monotonic() - self._refreshed < self.refresh_every:
                return
            started = time.monotonic()
            since = _minus(self.index.changed_since, LOOKBACK)
            self.index.load_docs(await self.store.changed_since(since))
            proposals_since = (
                self._proposals_since or (datetime.now(UTC) - timedelta(days=7)).isoformat()
            )
            for doc in await self.store.proposals_since(_minus(proposals_since, LOOKBACK)):
                provider = doc.get("first_choice")
                at = str(doc.get("at") or "")
                if provider and doc["_id"] not in self._counted:
                    self._counted[doc["_id"]] = at
                    self.index.record_proposal(provider, _epoch(at))
                self._proposals_since = max(self._proposals_since, at)
            if len(self._counted) > 200_000:
                self._counted.clear()  # a week of proposals is far fewer; start counting afresh
            self._refreshed = started

    def decide(self, referral: ReferralReceived, today: date | None = None) -> domain.Decision:
        candidates, elsewhere = self.index.candidates(referral)
        return domain.decide(
            referral,
            candidates,
            self.max_candidates,
            today=today,
            recent_load=self.index.recent_load,
            relevant_elsewhere=elsewhere,
            need_weights=self.index.need_weights(),
        )

    async def match(self, referral: ReferralReceived) -> bool:
        """Propose (or escalate) once per referral-received event."""
        existing = await self.store.proposed(referral.referral_id)
        if existing is not None and str(referral.event_id) in existing.get("_seen", []):
            return False
        await self.refresh()
        decision = self.decide(referral)
        outcome = outcome_for(referral, decision)
        first = decision.candidates[0].provider_org if decision.candidates else None
        done = await self.store.propose_once(referral.referral_id, referral, outcome, first)
        if done and first:
            self._counted[referral.referral_id] = "local"
            self.index.record_proposal(first)
        if done and self.on_decided:
            self.on_decided(decision)
        return done

    async def put(self, record: AssetRecord, tenant: str, only_provider: str | None = None) -> bool:
        changed = await self.store.upsert_asset(
            record.id, record.to_doc(), tenant, only_provider=only_provider
        )
        if changed:
            await self.refresh(force=True)
        return changed

    async def import_report(
        self,
        report: oruk.ImportReport,
        tenant: str,
        withdraw_missing: bool = True,
        force: bool = False,
    ) -> oruk.ImportReport:
        """Store a feed's assets; then withdraw (mark inactive) what the same source listed
        before and lists no longer, so closed services stop being proposed."""
        for record in report.assets:
            if await self.store.upsert_asset(
                record.id, record.to_doc(), tenant, feed=report.source
            ):
                report.changed += 1
        if withdraw_missing:
            await self._withdraw_missing(report, tenant, force)
        await self.refresh(force=True)
        log.info(
            "directory import: %d read, %d assets, %d new or changed, %d withdrawn, %d rejected",
            report.read,
            len(report.assets),
            report.changed,
            report.withdrawn,
            report.rejected_records,
        )
        return report

    async def _withdraw_missing(self, report: oruk.ImportReport, tenant: str, force: bool) -> None:
        listed, rejected_prefixes = report.kept_ids()
        active = await self.store.active_from_feed(report.source)
        missing = [
            d["_id"]
            for d in active
            if d["_id"] not in listed and not d["_id"].startswith(rejected_prefixes)
        ]
        if not missing:
            return
        suspicious = not report.assets or len(missing) > max(WITHDRAW_FREELY, len(active) // 2)
        if suspicious and not force:
            # an empty or truncated page is likelier than half a directory closing at once
            report.notes.append(
                f"{len(missing)} of {len(active)} assets from this source are missing from the "
                "feed; none withdrawn, as the feed looks incomplete. Check the source; if they "
                "really have closed, import again forcing the withdrawal."
            )
            return
        for asset_id in missing:
            if await self.store.withdraw(asset_id, tenant, report.source):
                report.withdrawn += 1


def outcome_for(referral: ReferralReceived, decision: domain.Decision) -> Event:
    common: dict[str, Any] = {
        "producer": SERVICE,
        "tenant": referral.tenant,
        "correlation_id": referral.correlation_id,
        "causation_id": str(referral.event_id),
        "referral_id": referral.referral_id,
    }
    if decision.escalate:
        reason, route = decision.escalate
        return ReferralEscalated(**common, reason=reason, route_to=route)
    return MatchProposed(
        **common,
        candidates=decision.candidates,
        no_match_reason=decision.no_match_reason,
        gap=decision.gap,  # type: ignore[arg-type]
        filtered=decision.filtered,
    )


def _minus(iso: str, delta: timedelta) -> str:
    if not iso:
        return ""
    try:
        return (datetime.fromisoformat(iso) - delta).isoformat()
    except ValueError:
        return ""


def _epoch(iso: str) -> float | None:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None
