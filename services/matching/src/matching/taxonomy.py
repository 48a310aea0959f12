"""From what directories publish to the network's vocabulary.

Councils' Open Referral UK feeds classify services with many vocabularies (LGA/esd service
types and needs, OpenActive activities, ALISS categories in Scotland, local lists). Each term
name is matched against the rules below; the first matching rule of each category wins. A term
that maps to nothing is kept as a keyword for search but never decides a match.

Clinical crisis terms (suicide, self-harm, psychosis, adult protection) deliberately map to no
category: a service for those is for a clinician or link worker to choose, never an automatic
community match.
"""

from __future__ import annotations

import re

# (pattern on the lower-cased term name, network need category)
TERM_RULES: list[tuple[str, str]] = [
    (
        r"lonel|isolat|befriend|social (group|activit|club)|friendship|lunch club|coffee morning|"
        r"community (cafe|café|centre|hub)|older people'?s club|men'?s shed|warm space|"
        r"games|group trip|support network|home visiting",
        "loneliness",
    ),
    (
        r"low mood|depress|wellbeing|well-being|mental health (support|and wellbeing)|"
        r"talking therap|counselling|peer support|men'?s shed|seasonal affective",
        "low-mood",
    ),
    (r"anxi|stress|phobia|sleep problems", "anxiety"),
    (r"bereave|grief|loss support|widow", "bereavement"),
    (
        r"physical activit|exercise|get fit|fitness|sport|walk|dance|danc|yoga|tai chi|swim|"
        r"outdoor pursuits|cycling|bowls|pilates|strength and balance",
        "physical-activity",
    ),
    (r"weight|healthy eating|slimming", "weight"),
    (
        r"long[- ]term condition|copd|breathe easy|lung|diabetes|arthritis|chronic pain|"
        r"cardiac|heart|stroke|fibromyalgia|osteoporosis|self management|cancer support|"
        r"parkinson|multiple sclerosis|chronic (kidney|liver)",
        "long-term-condition",
    ),
    (
        r"money|debt|benefit|financ|welfare rights|energy advice|budget|citizens advice|"
        r"fuel poverty",
        "money",
    ),
    (r"food|foodbank|pantry|free meals|lunch club|community (cafe|café)|meal", "food"),
    (r"housing|homeless|tenan|home repairs", "housing"),
    (r"\bcarers?\b|respite|short breaks|caring", "carer"),
    (r"dementia|memory|alzheimer", "dementia"),
    (r"digital|computer|\bit\b|internet|online skills|smartphone|tablet|ehealth", "digital"),
    (
        r"esol|english (language|class|conversation|for speakers)|conversation (cafe|café|club)|"
        r"refugee|asylum|new arrival|citizenship|translation|interpret",
        "language",
    ),
    (
        r"employ|\bjobs?\b|volunteer|skills|work preparation|training|literacy|numeracy",
        "employment",
    ),
    (
        r"\barts?\b|craft|music|sing|choir|drama|theatre|creative|writing|storytelling|"
        r"photograph|film|museum|galler|heritage|knit|sew|paint",
        "creativity",
    ),
    (r"garden|allotment|nature|green|environment|conservation|outdoor|forest|park", "nature"),
    (
        r"social care|home help|practical support|daytime care|day care|independent living|"
        r"housing adaptations|mobility aids|community transport|dial-a-bus",
        "social-care",
    ),
]

# Terms that point at an activity a person might name as an interest
INTEREST_RULES: list[tuple[str, str]] = [
    (r"sing|choir", "singing"),
    (r"music", "music"),
    (r"garden|allotment", "gardening"),
    (r"walk", "walking"),
    (r"paint|draw|\bart\b|\barts\b", "art"),
    (r"craft|knit|sew", "crafts"),
    (r"cook|bak", "cooking"),
    (r"read|book|library|literature", "reading"),
    (r"sport|football|bowls|games", "sport"),
    (r"men'?s shed|woodwork|diy|repair", "making and mending"),
]

# Terms naming who a service is for: only people with one of these needs are eligible
ELIGIBILITY_RULES: list[tuple[str, str]] = [
    (r"\bcarers?\b(?!.*\bwelcome)", "carer"),
    (r"dementia|memory", "dementia"),
    (r"bereave", "bereavement"),
    (r"refugee|asylum|new arrival|esol|learning english", "language"),
    (r"copd|lung|breathe easy", "long-term-condition"),
]

_ACCESS_RULES: list[tuple[str, tuple[str, ...]]] = [
    (r"wheelchair", ("wheelchair", "step-free")),
    (r"step[- ]free|level access|ramp|\blift\b|ground floor", ("step-free",)),
    (r"(induction|hearing) loop", ("hearing-loop",)),
    (r"accessible toilet|disabled toilet|accessible (wc|lavatory)", ("accessible-toilet",)),
    (r"large print|braille", ("large-print",)),
]

LANGUAGE_CODES: dict[str, str] = {
    "english": "en",
    "welsh": "cy",
    "gaelic": "gd",
    "scottish gaelic": "gd",
    "irish": "ga",
    "polish": "pl",
    "romanian": "ro",
    "urdu": "ur",
    "punjabi": "pa",
    "panjabi": "pa",
    "bengali": "bn",
    "gujarati": "gu",
    "arabic": "ar",
    "somali": "so",
    "tigrinya": "ti",
    "kurdish": "ku",
    "farsi": "fa",
    "persian": "fa",
    "dari": "prs",
    "pashto": "ps",
    "portuguese": "pt",
    "spanish": "es",
    "french": "fr",
    "italian": "it",
    "lithuanian": "lt",
    "latvian": "lv",
    "russian": "ru",
    "ukrainian": "uk",
    "turkish": "tr",
    "chinese": "zh",
    "mandarin": "zh",
    "cantonese": "yue",
    "tamil": "ta",
    "hindi": "hi",
    "british sign language": "bsl",
    "bsl": "bsl",
}


def _scan(text: str, rules: list[tuple[str, str]]) -> set[str]:
    lowered = text.lower()
    return {label for pattern, label in rules if re.search(pattern, lowered)}


def categories_of(terms: list[str]) -> set[str]:
    """Need categories named by a service's taxonomy terms."""
    found: set[str] = set()
    for term in terms:
        found |= _scan(term, TERM_RULES)
    return found


def interests_of(texts: list[str]) -> set[str]:
    found: set[str] = set()
    for text in texts:
        found |= _scan(text, INTEREST_RULES)
    return found


def eligibility_of(texts: list[str]) -> set[str]:
    """Needs a service is restricted to, from its eligibility statements ('for carers')."""
    found: set[str] = set()
    for text in texts:
        found |= _scan(text, ELIGIBILITY_RULES)
    return found


def accessibility_of(texts: list[str]) -> set[str]:
    found: set[str] = set()
    for text in texts:
        lowered = text.lower()
        for pattern, tags in _ACCESS_RULES:
            if re.search(pattern, lowered) and not re.search(
                r"\bno[t]? (wheelchair|step)", lowered
            ):
                found.update(tags)
    return found


def language_code(text: str) -> str | None:
    """'Polish', 'pl', 'pol' -> 'pl'; None when not recognised."""
    value = text.strip().lower()
    if value in LANGUAGE_CODES:
        return LANGUAGE_CODES[value]
    if re.fullmatch(r"[a-z]{2}(-[a-z]{2})?", value):
        return value[:2]
    if value in LANGUAGE_CODES.values():
        return value
    return None


def is_free(texts: list[str]) -> bool | None:
    """True when a service says it is free, False when it names a charge, None when silent."""
    joined = " ".join(t.lower() for t in texts if t)
    if not joined.strip():
        return None
    if re.search(r"\bfree\b|no charge|no cost|donations? welcome", joined):
        return True
    if re.search(r"£\s?\d|\d+(\.\d\d)? ?(pounds|gbp)|charge|fee|per session|membership", joined):
        return False
    return None
