"""The network's need categories: the shared vocabulary of referrals and community assets."""

from __future__ import annotations

NEED_CATEGORIES: dict[str, str] = {
    "loneliness": "Loneliness and social isolation",
    "low-mood": "Low mood and mild to moderate depression",
    "anxiety": "Anxiety and stress",
    "bereavement": "Bereavement and loss",
    "physical-activity": "Inactivity; wants to be more active",
    "weight": "Weight management",
    "long-term-condition": "Living with a long-term condition (COPD, diabetes, pain ...)",
    "money": "Money, debt and benefits",
    "food": "Food insecurity",
    "housing": "Housing problems",
    "carer": "Unpaid carers",
    "dementia": "Memory problems and dementia",
    "digital": "Digital inclusion",
    "language": "English language and new arrivals",
    "employment": "Work, volunteering and skills",
    "creativity": "Arts, music and creativity",
    "nature": "Nature, gardening and the outdoors",
    "social-care": "Social care and practical support at home",
    # risk categories: never matched to a community group, always escalated
    "mental-health-crisis": "Serious mental-health need or crisis",
    "safeguarding": "Safeguarding concern",
}

RISK_CATEGORIES: frozenset[str] = frozenset({"mental-health-crisis", "safeguarding"})
