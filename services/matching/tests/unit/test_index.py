"""The in-memory directory index finds exactly what a full scan would, and stays current."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from linkwell.documents import MemoryDocumentStore
from linkwell_schemas.events import CapacityChanged, Location, Need, Organisation, ReferralReceived
from matching.directory import Directory
from matching.domain import decide
from matching.index import DirectoryIndex
from matching.model import Asset, AssetRecord
from matching.store import DirectoryStore

CATEGORIES = ["loneliness", "food", "carer", "creativity", "digital"]
TODAY = date(2026, 11, 22)

assets_strategy = st.lists(
    st.builds(
        lambda i, cats, lat, lon, remote, located: Asset(
            asset_id=f"a{i}",
            name=f"asset {i}",
            provider_org=f"org{i % 7}",
            categories=frozenset(cats),
            lat=lat if located else None,
            lon=lon if located else None,
            delivery=frozenset({"phone"}) if remote else frozenset({"venue"}),
        ),
        st.integers(0, 10_000),
        st.sets(st.sampled_from(CATEGORIES), min_size=1, max_size=3),
        st.floats(53.6, 54.0),
        st.floats(-1.9, -1.3),
        st.booleans(),
        st.booleans() | st.just(True),
    ),
    max_size=60,
    unique_by=lambda a: a.asset_id,
)


def person(needs: list[str], lat: float, lon: float, walking: bool) -> ReferralReceived:
    return ReferralReceived(
        producer="referral-intake",
        tenant="t",
        correlation_id="r",
        referral_id="r",
        source=Organisation(org_id="gp"),
        needs=[Need(category=n) for n in needs],
        barriers=["transport"] if walking else [],
        location=Location(lat=lat, lon=lon, precision_km=0.8),
        fhir_reference="ServiceRequest/r",
    )


@settings(max_examples=150, deadline=None)
@given(
    assets=assets_strategy,
    needs=st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=2, unique=True),
    lat=st.floats(53.6, 54.0),
    lon=st.floats(-1.9, -1.3),
    walking=st.booleans(),
)
def test_index_proposes_exactly_what_a_full_scan_would(
    assets: list[Asset], needs: list[str], lat: float, lon: float, walking: bool
) -> None:
    index = DirectoryIndex()
    for a in assets:
        index.put(a)
    referral = person(needs, lat, lon, walking)
    near, elsewhere = index.candidates(referral)
    indexed = decide(referral, near, 5, today=TODAY, relevant_elsewhere=elsewhere)
    scanned = decide(referral, assets, 5, today=TODAY)
    assert indexed.candidates == scanned.candidates
    assert indexed.gap == scanned.gap


def test_replacing_and_removing_an_asset_moves_it_in_the_index() -> None:
    index = DirectoryIndex()
    index.put(Asset("a", "A", "o", frozenset({"food"}), 53.8, -1.55))
    index.put(Asset("a", "A", "o", frozenset({"carer"}), 51.5, -0.12))  # moved to London
    leeds_food = person(["food"], 53.8, -1.55, False)
    london_carer = person(["carer"], 51.5, -0.12, False)
    assert index.candidates(leeds_food)[0] == []
    assert [a.asset_id for a in index.candidates(london_carer)[0]] == ["a"]
    index.remove("a")
    assert index.candidates(london_carer) == ([], 0) and len(index) == 0


async def test_every_instance_sees_capacity_recorded_by_another() -> None:
    documents = MemoryDocumentStore()
    first, second = Directory(DirectoryStore(documents)), Directory(DirectoryStore(documents))
    record = AssetRecord(
        id="club",
        name="Lunch club",
        provider_org="vcse-club",
        provider_name="Lunch club",
        categories=["food"],
        lat=53.8,
        lon=-1.55,
    )
    await first.put(record, "t")
    await second.refresh(force=True)
    assert second.index.assets["club"].live is None
    await first.store.record_capacity(
        CapacityChanged(
            producer="capacity",
            tenant="t",
            correlation_id="club",
            asset_id="club",
            capacity=10,
            in_use=10,
            held=0,
            waitlist_length=2,
            accepting_referrals=True,
        )
    )
    await second.refresh(force=True)
    club = second.index.assets["club"]
    assert club.live_available == 0 and club.live is not None and club.live.waitlist_length == 2
    decision = second.decide(person(["food"], 53.8, -1.55, False))
    assert decision.gap == "all-full"
