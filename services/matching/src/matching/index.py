"""The directory in memory, indexed for matching one referral in milliseconds.

Assets are bucketed by need category and by a grid of about 5 km cells, so a referral looks
only at the assets that could fit its needs within reach. Services delivered by phone, online
or at home sit in a second grid searched to their wider reach. The index is rebuilt from the
database at start and kept current by `refresh`, which reads only what changed since the last
refresh (asset changes and capacity from every instance of the service, since all of them
write to the same database).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from linkwell_schemas.events import ReferralReceived
from matching.domain import (
    DEFAULT_REACH_KM,
    REMOTE_REACH_KM,
    reach_km,
    wanted_categories,
)
from matching.model import Asset

CELL_LAT = 0.05  # degrees: about 5.6 km
CELL_LON = 0.08  # degrees: about 5.2 km at 54 N
WEEK = 7 * 24 * 3600.0

Cell = tuple[int, int]


def _grids(asset: Asset) -> list[bool]:
    """False: met at a venue (searched within travelling reach); True: by phone, online or
    at home (searched within the wider service area)."""
    grids = []
    if "venue" in asset.delivery:
        grids.append(False)
    if asset.delivery - {"venue"}:
        grids.append(True)
    return grids


def cell_of(lat: float, lon: float) -> Cell:
    return (math.floor(lat / CELL_LAT), math.floor(lon / CELL_LON))


class DirectoryIndex:
    def __init__(self) -> None:
        self.assets: dict[str, Asset] = {}
        # (category, remote?) -> cell -> asset ids
        self._grid: dict[tuple[str, bool], dict[Cell, set[str]]] = {}
        self._unlocated: dict[str, set[str]] = {}  # category -> asset ids without a location
        self._by_category: dict[str, int] = {}
        self._interned: dict[Any, Any] = {}
        self._recent: dict[str, deque[float]] = {}  # provider -> first-choice proposal times
        self.changed_since: str = ""
        self._weights: dict[str, float] | None = None

    def __len__(self) -> int:
        return len(self.assets)

    # ------------------------------------------------------------ keeping it current

    def _intern(self, value: Any) -> Any:
        return self._interned.setdefault(value, value)

    def _keys(self, asset: Asset) -> Iterable[str]:
        return asset.categories | {f"interest:{i}" for i in asset.interests}

    def put(self, asset: Asset) -> None:
        """Add or replace one asset."""
        self.remove(asset.asset_id)
        self._weights = None
        asset = Asset(
            **{
                name: (
                    self._intern(getattr(asset, name))
                    if name
                    in (
                        "categories",
                        "interests",
                        "for_needs",
                        "languages",
                        "accessibility",
                        "delivery",
                        "sessions",
                        "schedule",
                        "provider_org",
                        "who_for",
                        "cost",
                        "status",
                    )
                    else getattr(asset, name)
                )
                for name in Asset.__slots__
            }
        )
        self.assets[asset.asset_id] = asset
        for key in self._keys(asset):
            self._by_category[key] = self._by_category.get(key, 0) + 1
            if asset.lat is None or asset.lon is None:
                self._unlocated.setdefault(key, set()).add(asset.asset_id)
                continue
            for remote in _grids(asset):
                cells = self._grid.setdefault((key, remote), {})
                cells.setdefault(cell_of(asset.lat, asset.lon), set()).add(asset.asset_id)

    def remove(self, asset_id: str) -> None:
        old = self.assets.pop(asset_id, None)
        if old is None:
            return
        self._weights = None
        for key in self._keys(old):
            self._by_category[key] -= 1
            if old.lat is None or old.lon is None:
                self._unlocated.get(key, set()).discard(asset_id)
                continue
            for remote in _grids(old):
                cell = self._grid.get((key, remote), {}).get(cell_of(old.lat, old.lon))
                if cell is not None:
                    cell.discard(asset_id)

    def load_docs(self, docs: Iterable[dict[str, Any]]) -> int:
        count = 0
        for doc in docs:
            if not doc.get("name"):
                continue  # capacity news for an asset the directory does not know yet
            self.put(Asset.from_doc(doc))
            count += 1
            changed = str(doc.get("changed_at") or "")
            if changed > self.changed_since:
                self.changed_since = changed
        return count

    def need_weights(self) -> dict[str, float]:
        """How specific each need is in this directory: rarer needs weigh more (an inverse
        document frequency, 1 for a need every asset meets)."""
        if self._weights is None:
            total = len(self.assets)
            self._weights = {
                key: 1.0 + math.log((total + 1) / (count + 1))
                for key, count in self._by_category.items()
                if not key.startswith("interest:")
            }
        return self._weights

    def record_proposal(self, provider_org: str, at: float | None = None) -> None:
        """A referral's first choice: counts toward spreading load for a week."""
        times = self._recent.setdefault(provider_org, deque())
        times.append(at if at is not None else time.time())

    def recent_load(self, provider_org: str) -> int:
        times = self._recent.get(provider_org)
        if not times:
            return 0
        cutoff = time.time() - WEEK
        while times and times[0] < cutoff:
            times.popleft()
        return len(times)

    # ------------------------------------------------------------ finding candidates

    def candidates(self, referral: ReferralReceived) -> tuple[list[Asset], int]:
        """Assets that may fit and be within reach, and how many fit but are too far."""
        wanted, by_interest = wanted_categories(referral)
        keys = wanted | by_interest | {f"interest:{i}" for i in referral.interests}
        keys = {k for k in keys if self._by_category.get(k)}
        if not keys:
            return [], 0
        location = referral.location
        if location is None:
            ids: set[str] = set()
            for key in keys:
                for cells in (self._grid.get((key, False), {}), self._grid.get((key, True), {})):
                    for members in cells.values():
                        ids |= members
                ids |= self._unlocated.get(key, set())
            return [self.assets[i] for i in ids], 0
        reach, _ = reach_km(referral)
        ids = set()
        for key in keys:
            ids |= self._near(key, False, location.lat, location.lon, reach)
            ids |= self._near(key, True, location.lat, location.lon, REMOTE_REACH_KM)
            ids |= self._unlocated.get(key, set())
        total = (
            len(
                {
                    asset_id
                    for key in keys
                    for cells in (self._grid.get((key, False), {}), self._grid.get((key, True), {}))
                    for members in cells.values()
                    for asset_id in members
                }
            )
            if not ids
            else 0
        )
        return [self.assets[i] for i in ids], total

    def _near(self, key: str, remote: bool, lat: float, lon: float, km: float) -> set[str]:
        cells = self._grid.get((key, remote))
        if not cells:
            return set()
        dlat = km / 111.0
        dlon = km / (111.0 * max(0.2, math.cos(math.radians(lat))))
        low, high = cell_of(lat - dlat, lon - dlon), cell_of(lat + dlat, lon + dlon)
        found: set[str] = set()
        for i in range(low[0], high[0] + 1):
            for j in range(low[1], high[1] + 1):
                members = cells.get((i, j))
                if members:
                    found |= members
        return found

    def search(
        self,
        lat: float | None,
        lon: float | None,
        radius_km: float = DEFAULT_REACH_KM,
        categories: set[str] | None = None,
    ) -> list[Asset]:
        """Assets near a point (all categories unless given), for the professionals' search."""
        keys = (
            set(categories)
            if categories
            else {k for k in self._by_category if not k.startswith("interest:")}
        )
        ids: set[str] = set()
        for key in keys:
            if lat is None or lon is None:
                for cells in (self._grid.get((key, False), {}), self._grid.get((key, True), {})):
                    for members in cells.values():
                        ids |= members
                ids |= self._unlocated.get(key, set())
            else:
                ids |= self._near(key, False, lat, lon, radius_km)
                ids |= self._near(key, True, lat, lon, radius_km)
        if not categories:
            ids |= {a.asset_id for a in self.assets.values() if not a.categories}
        return [self.assets[i] for i in ids]


def week_ago() -> str:
    return (datetime.now(UTC) - timedelta(days=7)).isoformat()
