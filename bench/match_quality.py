"""How good are matching's proposals? Runs the referral vignettes in bench/vignettes.json
against the demo directory and prints, per vignette, what was proposed, and overall:

- precision at 3: of the (up to) three first proposals, the share a link worker would accept;
- first choice acceptable: how often the first proposal alone is acceptable;
- escalation accuracy: the share of vignettes escalated (to the right route) or not, as
  expected.

    python bench/match_quality.py [--quiet]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from linkwell import geo
from linkwell_schemas.events import (
    Availability,
    Location,
    Need,
    Organisation,
    Priority,
    ReferralReceived,
)
from matching import oruk
from matching.domain import decide
from matching.index import DirectoryIndex
from matching.model import Asset

ROOT = Path(__file__).resolve().parents[1]
VIGNETTES = ROOT / "bench" / "vignettes.json"
DIRECTORY = ROOT / "config" / "demo-directory.json"
TODAY = date(2026, 11, 22)


@dataclass
class Outcome:
    vignette: str
    expect: str
    got: str
    proposed: list[str]
    acceptable_in_top3: int
    first_acceptable: bool | None


def referral(v: dict) -> ReferralReceived:
    place = geo.locate(v["postcode"])
    return ReferralReceived(
        producer="evaluation",
        tenant="demo-region",
        correlation_id=v["id"],
        referral_id=v["id"],
        source=Organisation(org_id="gp"),
        priority=Priority(v.get("priority", "routine")),
        needs=[Need(category=n) for n in v.get("needs", [])],
        interests=v.get("interests", []),
        barriers=v.get("barriers", []),
        age_band=v.get("age_band"),
        language=v.get("language"),
        accessibility=v.get("accessibility", []),
        availability=[Availability(day=d, period=p) for d, p in v.get("availability", [])],
        location=Location(
            postcode_sector=place.sector,
            lat=place.lat,
            lon=place.lon,
            precision_km=place.precision_km,
        )
        if place
        else None,
        fhir_reference=f"ServiceRequest/{v['id']}",
    )


def directory_index() -> DirectoryIndex:
    report = oruk.read_feed(str(DIRECTORY), today=TODAY)
    index = DirectoryIndex()
    for record in report.assets:
        index.put(Asset.from_doc(record.to_doc() | {"_id": record.id}))
    return index


def evaluate(vignettes_path: Path = VIGNETTES) -> tuple[list[Outcome], dict[str, float]]:
    vignettes = json.loads(vignettes_path.read_text())["vignettes"]
    index = directory_index()
    outcomes = []
    for v in vignettes:
        ref = referral(v)
        near, elsewhere = index.candidates(ref)
        decision = decide(ref, near, 5, today=TODAY, relevant_elsewhere=elsewhere)
        if decision.escalate:
            got = decision.escalate[1]
        elif decision.candidates:
            got = "match"
        else:
            got = "none"
        proposed = [c.asset_id for c in decision.candidates]
        acceptable = set(v.get("acceptable", []))
        top3 = proposed[:3]
        outcomes.append(
            Outcome(
                vignette=v["id"],
                expect=v["expect"],
                got=got,
                proposed=proposed,
                acceptable_in_top3=len([p for p in top3 if p in acceptable]),
                first_acceptable=(proposed[0] in acceptable) if proposed else None,
            )
        )
    matched = [o for o in outcomes if o.expect == "match" and o.proposed]
    expected_matches = [o for o in outcomes if o.expect == "match"]
    figures = {
        "vignettes": len(outcomes),
        "precision_at_3": sum(o.acceptable_in_top3 for o in matched)
        / max(1, sum(min(3, len(o.proposed)) for o in matched)),
        "first_choice_acceptable": sum(bool(o.first_acceptable) for o in matched)
        / max(1, len(expected_matches)),
        "matched_when_expected": len(matched) / max(1, len(expected_matches)),
        "escalation_accuracy": sum(
            (o.expect in ("clinician", "link-worker")) == (o.got in ("clinician", "link-worker"))
            and (o.got == o.expect or o.got not in ("clinician", "link-worker"))
            for o in outcomes
        )
        / len(outcomes),
    }
    return outcomes, figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    outcomes, figures = evaluate()
    if not args.quiet:
        for o in outcomes:
            mark = "ok " if o.got == o.expect else "XX "
            detail = (
                f"{o.acceptable_in_top3}/{min(3, len(o.proposed))} acceptable in top 3: "
                + ", ".join(o.proposed[:3])
                if o.proposed
                else ""
            )
            print(f"{mark}{o.vignette:<26} expect {o.expect:<11} got {o.got:<11} {detail}")
    print(
        f"vignettes {figures['vignettes']}; precision@3 {figures['precision_at_3']:.2f}; "
        f"first choice acceptable {figures['first_choice_acceptable']:.2f}; "
        f"matched when expected {figures['matched_when_expected']:.2f}; "
        f"escalation accuracy {figures['escalation_accuracy']:.2f}"
    )


if __name__ == "__main__":
    main()
