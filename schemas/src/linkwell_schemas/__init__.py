"""Linkwell event contracts (the source of truth for every topic)."""

from linkwell_schemas.events import *  # noqa: F403
from linkwell_schemas.events import EVENT_TYPES, TOPICS, Event, dead_letter_topic

__all__ = ["EVENT_TYPES", "TOPICS", "Event", "dead_letter_topic"]
