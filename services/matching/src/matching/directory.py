"""Loading community assets into the directory (the network's demo directory format; Open
Referral UK feeds arrive as the same Asset records)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from linkwell import geo
from linkwell_schemas.needs import NEED_CATEGORIES


class DirectoryEntry(BaseModel):
    id: str
    name: str
    provider_org: str
    provider_name: str
    categories: list[str]
    description: str | None = None
    postcode: str | None = None
    lat: float | None = None
    lon: float | None = None
    schedule: str | None = None
    capacity: int | None = Field(default=None, ge=0)
    interests: list[str] = Field(default_factory=list)
    verified: bool = True
    assured_date: str | None = None
    source: str | None = None

    def to_doc(self) -> dict[str, Any]:
        unknown = [c for c in self.categories if c not in NEED_CATEGORIES]
        if unknown:
            raise ValueError(f"asset {self.id}: unknown categories {unknown}")
        lat, lon = self.lat, self.lon
        if (lat is None or lon is None) and self.postcode:
            place = geo.locate(self.postcode)
            if place:
                lat, lon = place.lat, place.lon
        return {
            "name": self.name,
            "provider_org": self.provider_org,
            "provider_name": self.provider_name,
            "categories": sorted(self.categories),
            "description": self.description,
            "postcode": self.postcode,
            "lat": lat,
            "lon": lon,
            "schedule": self.schedule,
            "declared_capacity": self.capacity,
            "interests": sorted(self.interests),
            "verified": self.verified,
            "assured_date": self.assured_date,
            "source": self.source,
        }


def read_directory_file(path: Path) -> list[DirectoryEntry]:
    data = json.loads(path.read_text())
    return [DirectoryEntry.model_validate(item) for item in data["assets"]]
