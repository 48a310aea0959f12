"""Who hears what. One table of rules: for each event, which roles are told and in what words.
Messages to partners carry ids and states only; never the person's details."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from linkwell_schemas.events import (
    Event,
    MatchProposed,
    PlaceRefused,
    PlaceReleased,
    PlaceReserved,
    ReferralEscalated,
    Reminder,
    Waitlisted,
)


@dataclass(frozen=True)
class Notice:
    role: str  # referrer, provider, link-worker, person
    summary: str
    message: str | None = None  # for the person: which message, in their language
    values: tuple[tuple[str, str], ...] = ()


# What the person referred is told, in plain words, by language (BCP-47). A region adds its
# own languages with NOTIFY_MESSAGES_FILE (JSON of the same shape); English is the fallback.
PERSON_MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "place-kept": "Good news: a place has been kept for you at {where}. They will be in "
        "touch soon. If you have questions, ask the person who referred you.",
        "waitlisted": "The group picked for you is full just now, so you are on its waiting "
        "list. We will tell you when a place comes up.",
    }
}


def person_text(
    notice: Notice, language: str | None, catalogue: dict[str, dict[str, str]]
) -> tuple[str, str]:
    """(text, language used): the person's language where the region has it, else English."""
    wanted = (language or "en").split("-")[0].lower()
    for lang in (language or "", wanted, "en"):
        texts = catalogue.get(lang) or PERSON_MESSAGES.get(lang)
        if texts and notice.message in texts:
            return texts[notice.message].format(**dict(notice.values)), lang
    return notice.summary, "en"


def notices_for(event: Event) -> list[Notice]:
    if isinstance(event, PlaceReserved):
        where = event.asset_name or event.asset_id
        return [
            Notice(
                "referrer", f"A place is held at {where} until {event.hold_expires_at:%d %b %Y}"
            ),
            Notice(
                "provider",
                f"A referral is waiting for a place at {where}: please accept or decline by "
                f"{event.hold_expires_at:%d %b %Y}",
            ),
            Notice(
                "person",
                PERSON_MESSAGES["en"]["place-kept"].format(where=where),
                "place-kept",
                (("where", where),),
            ),
        ]
    if isinstance(event, PlaceReleased):
        if event.reason in ("declined", "expired"):
            return [
                Notice(
                    "referrer",
                    f"The place at {event.asset_id} was released ({event.reason}); the next "
                    "option is being tried",
                )
            ]
        return []
    if isinstance(event, Waitlisted):
        return [
            Notice(
                "referrer",
                f"Waitlisted at {event.asset_id}, position {event.position} "
                f"(expected wait: {event.band.value})",
            ),
            Notice("person", PERSON_MESSAGES["en"]["waitlisted"], "waitlisted"),
        ]
    if isinstance(event, PlaceRefused):
        if event.waitlisted_at:
            return []  # the waitlisting that follows says it all, with position and wait
        return [Notice("referrer", "No proposed community asset has room at the moment")]
    if isinstance(event, ReferralEscalated):
        return [
            Notice("referrer", f"Referral escalated to a {event.route_to}"),
            Notice("link-worker", f"A referral needs a {event.route_to}: {event.reason}"),
        ]
    if isinstance(event, Reminder):
        where = event.asset_name or event.asset_id or "the asset"
        by = f" by {event.due_at:%d %b %Y}" if event.due_at else ""
        if event.kind == "provider-unanswered":
            return [
                Notice(
                    "provider",
                    f"Reminder: a referral is still waiting for your answer "
                    f"at {where}; please accept or decline{by}",
                )
            ]
        if event.kind == "hold-expiring":
            return [
                Notice(
                    "provider",
                    f"The place held at {where} will be released{by} unless "
                    "the referral is accepted",
                ),
                Notice(
                    "referrer",
                    f"The place held at {where} has not been taken up yet; it lapses{by}",
                ),
            ]
        return [
            Notice(
                "referrer", "The referral has not been placed yet; a link worker may need to help"
            )
        ]
    if isinstance(event, MatchProposed) and not event.candidates:
        return [
            Notice("referrer", f"No community asset could be proposed: {event.no_match_reason}")
        ]
    return []


def webhook_body(event: Event, notice: Notice, task_url: str) -> dict[str, Any]:
    return {
        "type": event.topic,
        "event_id": str(event.event_id),
        "occurred_at": event.occurred_at.isoformat(),
        "referral_id": getattr(event, "referral_id", None),
        "summary": notice.summary,
        "task": task_url,
    }


def email_subject(notice: Notice) -> str:
    first = notice.summary.split(":")[0]
    return f"Linkwell: {first[:80]}"


def email_text(notice: Notice, links: dict[str, str], task_url: str) -> str:
    """Plain words, no personal details; links to act on it where there are any."""
    lines = [notice.summary + ".", ""]
    if links:
        lines.append("You can answer straight from here, no login needed:")
        for label, url in links.items():
            lines += ["", f"{label}:", url]
        lines += ["", "Each link works once and stops working when the offer ends."]
    elif notice.role == "referrer":
        lines.append(f"The referral's Task: {task_url}")
    lines += ["", "-- Linkwell social prescribing network"]
    return "\n".join(lines)


def delivery_key(event_id: str, recipient: str, channel: str) -> str:
    return f"{event_id}:{recipient}:{channel}"
