"""The referral vignettes (bench/vignettes.json) against the demo directory: every risk is
escalated to the right place and nothing else is, and proposals stay ones a link worker would
accept. bench/match_quality.py prints the per-vignette detail."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[4] / "bench" / "match_quality.py"


def load_evaluation():
    spec = importlib.util.spec_from_file_location("match_quality", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_vignettes_escalate_exactly_the_risks_and_propose_acceptable_assets() -> None:
    outcomes, figures = load_evaluation().evaluate()
    assert figures["vignettes"] >= 30
    assert figures["escalation_accuracy"] == 1.0, [
        (o.vignette, o.expect, o.got) for o in outcomes if o.expect != o.got
    ]
    assert figures["matched_when_expected"] == 1.0
    assert figures["first_choice_acceptable"] >= 0.9
    assert figures["precision_at_3"] >= 0.7
