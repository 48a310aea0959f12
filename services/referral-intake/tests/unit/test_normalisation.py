"""What a referral says, as the network understands it."""

from __future__ import annotations

from datetime import date

from referral_intake import domain, fhir


def test_uk_sample_referral_yields_needs_interests_barriers_and_sector_location(
    fhir_example,
) -> None:
    data = fhir_example("social-prescribing-referral.json")
    patient = fhir.contained_patient(data)
    categories = [n.category for n in domain.needs_of(data)]
    assert categories[0] == "loneliness"  # from SNOMED 267076002 Feeling lonely
    assert "bereavement" in categories and "low-mood" in categories
    assert domain.needs_of(data)[0].code == "267076002"
    assert domain.interests_of(data) == ["walking"]
    assert domain.barriers_of(data, patient) == ["transport"]
    location = domain.location_of(patient)
    assert location is not None and location.postcode_sector == "LS6 3"
    assert domain.age_band(patient["birthDate"], date(2026, 11, 22)) == "75-84"
    assert domain.preferred_language(patient) == "en"
    assert fhir.is_social_prescribing(data)


def test_gravity_sdoh_food_pantry_referral_is_a_food_need(fhir_example) -> None:
    data = fhir_example("01_sdohcc_servicerequest_food_pantry.json")
    needs = domain.needs_of(data)
    assert [n.category for n in needs] == ["food"]
    assert domain.location_of(fhir.contained_patient(data)) is None


def test_crisis_words_become_a_risk_need(fhir_example) -> None:
    data = fhir_example("social-prescribing-referral.json")
    data["reasonCode"][0]["text"] = "Expressed suicidal thoughts at review"
    assert "mental-health-crisis" in [n.category for n in domain.needs_of(data)]


def test_same_business_identifier_or_request_id_gives_the_same_referral() -> None:
    ident = [{"system": "https://example.org/ref", "value": "123"}]
    a = domain.referral_id_for("t", "gp", ident, None)
    assert a == domain.referral_id_for("t", "gp", ident, "other-request")
    assert a != domain.referral_id_for("t", "another-gp", ident, None)
    assert domain.referral_id_for("t", "gp", [], "req-1") == domain.referral_id_for(
        "t", "gp", [], "req-1"
    )
    assert domain.referral_id_for("t", "gp", [], None) != domain.referral_id_for(
        "t", "gp", [], None
    )


def test_age_bands() -> None:
    today = date(2026, 11, 22)
    assert domain.age_band("2000-11-23", today) == "25-34"
    assert domain.age_band("2009-01-01", today) == "0-17"
    assert domain.age_band("1930", today) == "85+"
    assert domain.age_band("garbage", today) is None


def test_access_needs_and_free_times_are_read_for_matching(fhir_example) -> None:
    data = fhir_example("social-prescribing-referral.json")
    data["note"] = [{"text": "Uses a wheelchair and wears hearing aids."}]
    data["occurrenceTiming"] = {"repeat": {"dayOfWeek": ["tue", "thu"], "when": ["MORN"]}}
    assert domain.accessibility_of(data) == ["wheelchair", "step-free", "hearing-loop"]
    slots = [(a.day, a.period) for a in domain.availability_of(data)]
    assert slots == [("TU", "morning"), ("TH", "morning")]
    evenings = domain.availability_of({"occurrenceTiming": {"repeat": {"when": ["EVE"]}}})
    assert len(evenings) == 7 and {a.period for a in evenings} == {"evening"}
    assert domain.availability_of({}) == []
