"""Open Referral UK import: both shapes, valid, invalid and partial feeds, files and URLs."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from linkwell.documents import MemoryDocumentStore
from linkwell.partners import Partner
from linkwell_schemas.events import Location, Need, Organisation, ReferralReceived
from matching import oruk, taxonomy
from matching.directory import Directory
from matching.store import DirectoryStore

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ORUK1 = FIXTURES / "oruk1-kirkstall-page.json"
ORUK3 = FIXTURES / "oruk3-chapeltown-page.json"
UK_PROFILE_EXAMPLE = FIXTURES / "oruk3-uk-profile-service_full.json"
TODAY = date(2026, 11, 22)


def read(path: Path, **kw) -> oruk.ImportReport:
    return oruk.read_feed(str(path), today=TODAY, **kw)


def test_original_oruk_feed_becomes_one_asset_per_service_at_a_location() -> None:
    report = read(ORUK1)
    assert report.shape == "oruk1" and report.read == 4
    by_id = {a.id: a for a in report.assets}
    assert set(by_id) == {
        "oruk:kca-walk-1",
        "oruk:lbn-phone-2",
        "oruk:kca-carers-4@loc3",
        "oruk:kca-carers-4@loc4",
    }
    walk = by_id["oruk:kca-walk-1"]
    assert walk.categories == ["loneliness", "physical-activity"]  # Walking, Social isolation
    assert walk.interests == ["walking"]
    assert (walk.lat, walk.lon, walk.postcode) == (53.8205, -1.6026, "LS5 3EH")
    assert walk.accessibility == ["accessible-toilet", "step-free"]
    assert walk.free is True and walk.min_age == 18
    assert [s.describe() for s in walk.sessions] == ["Wednesday mornings, 10:00-11:00"]
    assert walk.assured_date == date(2026, 9, 14)
    phone = by_id["oruk:lbn-phone-2"]
    assert phone.delivery == ["phone"] and phone.languages == ["en", "pl"]
    assert phone.to_doc()["lat"] is not None  # located from its postcode
    carers = by_id["oruk:kca-carers-4@loc3"]
    assert carers.for_needs == ["carer"] and carers.free is False
    assert [s.describe() for s in carers.sessions] == [
        "1st and 3rd Tuesday of the month, 10:30-12:00"
    ]


def test_a_bad_record_is_reported_by_path_and_the_rest_still_import() -> None:
    report = read(ORUK1)
    assert report.rejected_records == 1
    assert {(p.record_id, p.path) for p in report.rejected} == {
        ("kca-broken-3", "$.organization"),
        ("kca-broken-3", "$.organization.id"),
        ("kca-broken-3", "$.status"),
    }
    messages = " ".join(p.message for p in report.rejected)
    assert "missing required property description" in messages
    assert "not-a-uuid" not in messages and "'open'" not in messages  # values never echoed
    assert {p.message for p in report.warnings} == {
        "language 'Klingon' not recognised",
        "schedules[1].byday: 'XX' is not an iCalendar day",
    }


def test_oruk3_feed_with_costs_attributes_and_fortnightly_sessions() -> None:
    report = read(ORUK3)
    assert report.shape == "oruk3" and report.read == 4
    assert [(p.record_id, p.path, p.message) for p in report.rejected] == [
        ("cac-missing-status", "$", "missing required property status"),
        ("cac-odd", "$.minimum_age", "must be of type number"),
    ]
    choir, studio = sorted(report.assets, key=lambda a: a.id)
    assert choir.categories == ["creativity", "long-term-condition"]
    assert choir.interests == ["singing"]
    assert choir.accessibility == ["hearing-loop", "step-free", "wheelchair"]
    assert choir.free is True  # a cost option of 0
    assert studio.free is False  # 3.50 per session
    assert [s.describe() for s in studio.sessions] == ["every other Saturday, 10:00-12:00"]


def test_the_uk_profile_example_imports_with_warnings_about_its_location() -> None:
    report = read(UK_PROFILE_EXAMPLE)
    assert report.shape == "oruk3" and len(report.assets) == 1 and not report.rejected
    asset = report.assets[0]
    assert asset.lat is None  # the example's latitude of 100 is out of range
    assert asset.min_age == 12 and asset.max_age == 100
    assert asset.sessions == []  # its only schedule ended in 2005
    assert {p.path for p in report.warnings} == {"taxonomy", "location.latitude", "location"}


def test_a_file_that_is_not_a_feed_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "feed.json"
    path.write_text(json.dumps({"hello": "world"}))
    with pytest.raises(ValueError, match="not a directory feed"):
        read(path)


def test_an_organisations_charity_number_links_its_services_to_its_partner() -> None:
    partner = Partner(
        org_id="vcse-chapeltown-arts",
        name="Chapeltown Arts Collective",
        kind="vcse",
        tenant="demo-region",
        network_identifier="GB-CHC-1190001",
    )
    report = read(ORUK3, provider_for=oruk.provider_lookup([partner]))
    assert {a.provider_org for a in report.assets} == {"vcse-chapeltown-arts"}
    assert {a.provider_org for a in read(ORUK1).assets} == {
        "oruk-org:5a0b6f3e-9a7c-4b1e-8d55-1f9d3c2a7b10",
        "oruk-org:b7c1d2e3-4f50-4a6b-9c8d-0e1f2a3b4c5d",
    }


async def test_reimporting_the_same_feed_changes_nothing() -> None:
    store = DirectoryStore(MemoryDocumentStore())
    directory = Directory(store)
    first = await directory.import_report(read(ORUK1), "demo-region")
    assert first.changed == 4 and len(directory.index) == 4
    again = await directory.import_report(read(ORUK1), "demo-region")
    assert again.changed == 0
    waiting = [len(d.get("_outbox", [])) for d in await store.assets()]
    assert waiting == [1, 1, 1, 1]  # one directory.asset-changed.v1 each, not two


def test_a_feed_url_is_read_page_by_page_in_both_shapes(feed_server: str) -> None:
    v3 = oruk.read_feed(f"{feed_server}/v3/services", today=TODAY)
    assert v3.read == 3 and [a.id for a in v3.assets] == [
        "oruk:svc-1",
        "oruk:svc-2",
        "oruk:svc-3",
    ]
    v1 = oruk.read_feed(f"{feed_server}/v1/services", today=TODAY)
    assert v1.shape == "oruk1" and v1.read == 4 and len(v1.assets) == 4
    assert v1.rejected_records == 1


def test_taxonomy_terms_map_to_need_categories_and_crisis_terms_to_none() -> None:
    assert taxonomy.categories_of(["Lunch Club"]) == {"loneliness", "food"}
    assert taxonomy.categories_of(["Befriending"]) == {"loneliness"}
    assert taxonomy.categories_of(["Computer Class"]) == {"digital"}
    assert taxonomy.categories_of(["Exercise & Get Fit"]) == {"physical-activity"}
    assert taxonomy.categories_of(["Money Advice"]) == {"money"}
    assert taxonomy.categories_of(["Suicide", "Self-harm", "Adult Protection"]) == set()
    assert taxonomy.language_code("Polish") == "pl"
    assert taxonomy.language_code("cy-GB") == "cy"


def republished(
    path: Path, drop: tuple[str, ...] = (), break_: tuple[str, ...] = ()
) -> oruk.ImportReport:
    """The Kirkstall ORUK 1.0 page as a council might republish it (some services gone, some
    now failing validation), written to `path` and read back from there."""
    page = json.loads(ORUK1.read_text())
    records = [r for r in page["content"] if r["id"] not in drop]
    for record in records:
        if record["id"] in break_:
            del record["organization"]
    path.write_text(json.dumps(page | {"content": records}))
    return read(path)


async def kirkstall_imported(tmp_path: Path) -> tuple[Directory, Path]:
    """A directory holding the Kirkstall feed, imported from a file the test may republish."""
    directory = Directory(DirectoryStore(MemoryDocumentStore()))
    feed = tmp_path / "kirkstall.json"
    await directory.import_report(republished(feed), "demo-region")
    return directory, feed


def announcements(doc: dict) -> list[dict]:
    return [e["payload"] for e in doc.get("_outbox", [])]


async def test_a_service_dropped_from_its_feed_is_withdrawn_once_and_never_proposed(
    tmp_path: Path,
) -> None:
    directory, feed = await kirkstall_imported(tmp_path)
    store = directory.store
    other = await directory.import_report(read(ORUK3), "demo-region")
    assert other.changed > 0

    walking = ReferralReceived(
        producer="referral-intake",
        tenant="demo-region",
        correlation_id="r1",
        referral_id="r1",
        source=Organisation(org_id="gp", kind="gp"),
        needs=[Need(category="physical-activity")],
        location=Location(lat=53.8205, lon=-1.6026),
        fhir_reference="ServiceRequest/r1",
    )
    before = directory.decide(walking, today=TODAY)
    assert "oruk:kca-walk-1" in {c.asset_id for c in before.candidates}

    report = await directory.import_report(republished(feed, drop=("kca-walk-1",)), "t")
    assert report.withdrawn == 1 and "1 withdrawn" in report.summary()
    walk = await store.asset("oruk:kca-walk-1")
    assert walk is not None and walk["status"] == "inactive"
    assert [a["accepting_referrals"] for a in announcements(walk)] == [True, False]
    still = {d["_id"]: d["status"] for d in await store.assets()}
    assert [i for i, s in still.items() if s != "active"] == ["oruk:kca-walk-1"]

    decision = directory.decide(walking, today=TODAY)
    assert "oruk:kca-walk-1" not in {c.asset_id for c in decision.candidates}

    again = await directory.import_report(republished(feed, drop=("kca-walk-1",)), "t")
    assert again.withdrawn == 0 and len(announcements(await store.asset("oruk:kca-walk-1"))) == 2

    back = await directory.import_report(republished(feed), "demo-region")
    assert back.changed == 1
    walk = await store.asset("oruk:kca-walk-1")
    assert walk["status"] == "active" and announcements(walk)[-1]["accepting_referrals"]


async def test_a_service_whose_record_now_fails_validation_is_kept_not_withdrawn(
    tmp_path: Path,
) -> None:
    directory, feed = await kirkstall_imported(tmp_path)
    report = await directory.import_report(
        republished(feed, break_=("kca-walk-1", "kca-carers-4")), "demo-region"
    )
    assert report.rejected_records == 3 and report.withdrawn == 0
    statuses = {d["_id"]: d["status"] for d in await directory.store.assets()}
    assert set(statuses.values()) == {"active"} and len(statuses) == 4


async def test_an_empty_feed_withdraws_nothing_unless_the_withdrawal_is_forced(
    tmp_path: Path,
) -> None:
    directory, feed = await kirkstall_imported(tmp_path)
    everything = ("kca-walk-1", "lbn-phone-2", "kca-broken-3", "kca-carers-4")
    empty = await directory.import_report(republished(feed, drop=everything), "t")
    assert empty.withdrawn == 0
    assert empty.notes and "4 of 4 assets" in empty.notes[0] and "incomplete" in empty.notes[0]
    assert {d["status"] for d in await directory.store.assets()} == {"active"}

    kept = await directory.import_report(
        republished(feed, drop=("kca-walk-1",)), "t", withdraw_missing=False
    )
    assert kept.withdrawn == 0 and not kept.notes

    forced = await directory.import_report(republished(feed, drop=everything), "t", force=True)
    assert forced.withdrawn == 4
    assert {d["status"] for d in await directory.store.assets()} == {"inactive"}


async def test_assets_kept_by_partners_are_never_withdrawn_by_a_feed(tmp_path: Path) -> None:
    directory, feed = await kirkstall_imported(tmp_path)
    own = read(ORUK3).assets[0].model_copy(update={"id": "vcse-own:club"})
    await directory.put(own, "demo-region", only_provider=own.provider_org)
    await directory.import_report(
        republished(feed, drop=("kca-walk-1", "lbn-phone-2")), "demo-region"
    )
    statuses = {d["_id"]: d["status"] for d in await directory.store.assets()}
    assert statuses["vcse-own:club"] == "active"
    assert sorted(i for i, s in statuses.items() if s == "inactive") == [
        "oruk:kca-walk-1",
        "oruk:lbn-phone-2",
    ]
