"""Offline UK geography: postcode to postcode-sector centroid, and distances.

A person's location is only ever the centroid of their postcode sector (a few thousand
households), never their address.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)\s*([0-9])([A-Z]{2})?$")


@dataclass(frozen=True)
class Place:
    sector: str | None
    outcode: str
    lat: float
    lon: float
    precision_km: float
    local_authority: str


@lru_cache(maxsize=1)
def _tables() -> tuple[dict[str, Place], dict[str, Place]]:
    base = resources.files("linkwell") / "geodata"
    sectors: dict[str, Place] = {}
    with (base / "postcode_sector_centroids.csv").open() as fh:
        for row in csv.DictReader(fh):
            outcode = row["sector"].split(" ")[0]
            sectors[row["sector"]] = Place(
                row["sector"],
                outcode,
                float(row["lat"]),
                float(row["lon"]),
                float(row["p90_km"] or 1.0),
                row["lad_name"],
            )
    outcodes: dict[str, Place] = {}
    with (base / "outcode_centroids.csv").open() as fh:
        for row in csv.DictReader(fh):
            outcodes[row["outcode"]] = Place(
                None,
                row["outcode"],
                float(row["lat"]),
                float(row["lon"]),
                float(row["p90_km"] or 2.5),
                row["lad_name"],
            )
    return sectors, outcodes


def normalise_postcode(text: str) -> tuple[str, str] | None:
    """('LS6', '1') for 'ls6 1ab', 'LS61AB' or the sector 'LS6 1'; None when not a postcode."""
    match = _POSTCODE.match(re.sub(r"\s+", " ", text.strip().upper()))
    if not match:
        return None
    return match.group(1), match.group(2)


def locate(postcode: str) -> Place | None:
    """The sector centroid of a postcode, falling back to its outward code."""
    parts = normalise_postcode(postcode)
    if parts is None:
        return None
    sectors, outcodes = _tables()
    outcode, digit = parts
    return sectors.get(f"{outcode} {digit}") or outcodes.get(outcode)


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    r = 6371.0088
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))
