import json

from linkwell_schemas.events import (
    EVENT_TYPES,
    TOPICS,
    Location,
    Organisation,
    ReferralReceived,
)
from linkwell_schemas.jsonschema import SCHEMA_DIR, render


def test_committed_json_schemas_match_the_models():
    rendered = render()
    for name, text in rendered.items():
        path = SCHEMA_DIR / name
        assert path.exists(), f"{name} missing: run python -m linkwell_schemas.jsonschema"
        assert path.read_text() == text, (
            f"{name} drifted: run python -m linkwell_schemas.jsonschema"
        )
    committed = {p.name for p in SCHEMA_DIR.glob("*.json")}
    assert committed == set(rendered), "stale schema files left behind"


def test_topic_names_follow_producer_event_version_convention():
    for topic in TOPICS:
        producer, event, version = topic.split(".")
        assert producer in {"intake", "matching", "capacity", "directory", "notifications"}
        assert event == event.lower() and " " not in event
        assert version.startswith("v") and version[1:].isdigit()
    assert len(TOPICS) == len(EVENT_TYPES), "one message type per topic"


def test_event_round_trips_and_ignores_fields_added_later():
    event = ReferralReceived(
        producer="referral-intake",
        tenant="west-yorkshire",
        correlation_id="r1",
        referral_id="r1",
        source=Organisation(org_id="gp-b86001", kind="gp"),
        location=Location(postcode_sector="LS6 1", lat=53.81, lon=-1.57),
        fhir_reference="ServiceRequest/r1",
    )
    wire = json.loads(event.model_dump_json())
    wire["added_in_a_later_minor_version"] = {"x": 1}
    again = ReferralReceived.model_validate(wire)
    assert again == event
    assert again.key() == "r1"
