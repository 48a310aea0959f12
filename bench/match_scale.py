"""Matching at the scale of a nation's community sector, on one core.

Builds directories of 1k, 10k, 50k and 200k assets spread over real UK postcode sectors
(weighted by how many postcodes each sector has, so cities are denser than moors), with mixed
categories, eligibility, languages, access, schedules, delivery and live capacity. Then matches
referrals located the same way and prints, per size: the time to match one referral (p50, p99,
max), the assets scored per referral, the index build time and the memory the directory takes.

    python bench/match_scale.py --sizes 1000 10000 50000 200000 --referrals 3000

Target: p99 under 10 ms at 50k assets on one core.
"""

from __future__ import annotations

import argparse
import csv
import gc
import os
import random
import time
import tracemalloc
from datetime import date
from importlib import resources

from linkwell.testing import percentile
from linkwell_schemas.events import (
    Availability,
    Location,
    Need,
    Organisation,
    ReferralReceived,
)
from linkwell_schemas.needs import NEED_CATEGORIES, RISK_CATEGORIES
from matching.domain import decide
from matching.index import DirectoryIndex
from matching.model import ACCESSIBILITY, DAYS, Asset, Live, Session

CATEGORIES = [c for c in NEED_CATEGORIES if c not in RISK_CATEGORIES]
INTERESTS = ["singing", "walking", "gardening", "crafts", "cooking", "reading", "art", "music"]
LANGUAGES = ["pl", "ur", "pa", "bn", "ar", "so", "ro", "cy", "gd"]
TODAY = date(2026, 11, 22)


def sectors() -> list[tuple[float, float, int, float]]:
    path = resources.files("linkwell") / "geodata" / "postcode_sector_centroids.csv"
    with path.open() as fh:
        return [
            (float(r["lat"]), float(r["lon"]), int(r["n_postcodes"] or 1), float(r["p90_km"] or 1))
            for r in csv.DictReader(fh)
        ]


def make_assets(n: int, rng: random.Random, places: list, weights: list) -> list[Asset]:
    chosen = rng.choices(places, weights=weights, k=n)
    assets = []
    for i, (lat, lon, _, spread) in enumerate(chosen):
        delivery = frozenset({"phone"}) if rng.random() < 0.08 else frozenset({"venue"})
        capacity = rng.choice([None, 5, 10, 15, 20, 40])
        spoken = frozenset(rng.sample(LANGUAGES, 1)) if rng.random() < 0.1 else frozenset()
        live = None
        if capacity is not None:
            in_use = rng.randint(0, capacity)
            live = Live(capacity=capacity, in_use=in_use, held=0, stale=rng.random() < 0.05)
        assets.append(
            Asset(
                asset_id=f"asset-{i}",
                name=f"Community asset {i}",
                provider_org=f"org-{i // 3}",
                categories=frozenset(rng.sample(CATEGORIES, rng.randint(1, 3))),
                lat=lat + rng.uniform(-0.01, 0.01) * spread,
                lon=lon + rng.uniform(-0.015, 0.015) * spread,
                interests=frozenset(rng.sample(INTERESTS, rng.randint(0, 2))),
                live_available=live.available if live else None,
                live=live,
                accepting_referrals=rng.random() > 0.05,
                min_age=rng.choice([None, None, None, 18, 50, 60]),
                languages=spoken,
                accessibility=frozenset(rng.sample(ACCESSIBILITY, rng.randint(0, 3))),
                free=rng.choice([True, True, None, False]),
                sessions=(
                    Session(day=rng.choice(DAYS), opens=rng.choice(["10:00", "14:00", "18:30"])),
                ),
                delivery=delivery,
                assured_date=date(rng.randint(2021, 2026), rng.randint(1, 12), 1),
                verified=rng.random() > 0.03,
            )
        )
    return assets


def make_referrals(n: int, rng: random.Random, places: list, weights: list) -> list:
    chosen = rng.choices(places, weights=weights, k=n)
    referrals = []
    for i, (lat, lon, _, spread) in enumerate(chosen):
        barriers = []
        if rng.random() < 0.3:
            barriers.append("transport")
        if rng.random() < 0.08:
            barriers.append("language")
        if rng.random() < 0.1:
            barriers.append("cost")
        referrals.append(
            ReferralReceived(
                producer="bench",
                tenant="bench",
                correlation_id=str(i),
                referral_id=str(i),
                source=Organisation(org_id="gp"),
                needs=[Need(category=c) for c in rng.sample(CATEGORIES, rng.randint(1, 2))],
                interests=rng.sample(INTERESTS, rng.randint(0, 1)),
                barriers=barriers,
                language=rng.choice(LANGUAGES) if "language" in barriers else None,
                accessibility=["step-free"] if rng.random() < 0.1 else [],
                availability=[Availability(day=rng.choice(DAYS), period="morning")]
                if rng.random() < 0.3
                else [],
                age_band=rng.choice(["25-34", "45-54", "65-74", "75-84"]),
                location=Location(lat=lat, lon=lon, precision_km=spread),
                fhir_reference=f"ServiceRequest/{i}",
            )
        )
    return referrals


def measure(size: int, referrals: int, seed: int) -> dict:
    rng = random.Random(seed)
    places = sectors()
    weights = [p[2] for p in places]
    assets = make_assets(size, rng, places, weights)
    people = make_referrals(referrals, rng, places, weights)

    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    index = DirectoryIndex()
    for asset in assets:
        index.put(asset)
    build_s = time.perf_counter() - started
    memory, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del assets
    gc.collect()

    timings, scored, proposed, gaps = [], [], 0, 0
    for referral in people[:50]:  # warm up
        decide(referral, index.candidates(referral)[0], today=TODAY)
    for referral in people:
        t0 = time.perf_counter()
        near, elsewhere = index.candidates(referral)
        decision = decide(
            referral,
            near,
            5,
            today=TODAY,
            recent_load=index.recent_load,
            relevant_elsewhere=elsewhere,
            need_weights=index.need_weights(),
        )
        timings.append((time.perf_counter() - t0) * 1000)
        scored.append(len(near))
        proposed += bool(decision.candidates)
        gaps += decision.gap is not None and not decision.candidates
    return {
        "assets": size,
        "p50_ms": percentile(timings, 50),
        "p99_ms": percentile(timings, 99),
        "max_ms": max(timings),
        "scored_mean": sum(scored) / len(scored),
        "proposed": proposed / len(people),
        "gaps": gaps / len(people),
        "build_s": build_s,
        "memory_mb": memory / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000, 200000])
    parser.add_argument("--referrals", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    print(f"matching one referral, one core, {args.referrals} referrals per size")
    header = (
        f"{'assets':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'scored':>8} "
        f"{'proposed':>9} {'no match':>9} {'build s':>8} {'memory MB':>10}"
    )
    print(header)
    for size in args.sizes:
        r = measure(size, args.referrals, args.seed)
        print(
            f"{r['assets']:>8} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['max_ms']:>8.2f} "
            f"{r['scored_mean']:>8.1f} {r['proposed']:>9.0%} {r['gaps']:>9.0%} "
            f"{r['build_s']:>8.2f} {r['memory_mb']:>10.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
