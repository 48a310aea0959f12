"""Open Referral UK directory import: the original ORUK API shape ("1.0") and the ORUK 3.0
profile of HSDS 3.0, from a file or a URL (pages followed), validated record by record.

One asset per service at a location. A record that fails its schema, or cannot become an
asset, is reported with its path and skipped; the rest are imported. Warnings say what was
kept but is weak (no usable location, no need category). Re-importing the same feed changes
nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from jsonschema import Draft7Validator, Draft202012Validator
from pydantic import ValidationError

from matching import taxonomy
from matching.model import DAYS, AssetRecord, Session

Shape = Literal["oruk1", "oruk3", "linkwell"]
MAX_PAGES = 10_000
MAX_ERRORS_PER_RECORD = 5


@dataclass(frozen=True)
class Problem:
    record: int  # position in the feed, from 0
    record_id: str | None
    path: str
    message: str

    def __str__(self) -> str:
        who = f"record {self.record}" + (f" ({self.record_id})" if self.record_id else "")
        return f"{who} {self.path}: {self.message}"


@dataclass
class ImportReport:
    source: str
    namespace: str = "oruk"
    shape: Shape | None = None
    read: int = 0
    assets: list[AssetRecord] = field(default_factory=list)
    rejected: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    changed: int = 0
    withdrawn: int = 0  # stored assets this feed no longer lists, now marked inactive
    notes: list[str] = field(default_factory=list)

    @property
    def rejected_records(self) -> int:
        return len({p.record for p in self.rejected})

    def summary(self) -> str:
        return (
            f"{self.source}: {self.read} records read ({self.shape or 'unknown shape'}), "
            f"{len(self.assets)} assets, {self.changed} new or changed, "
            f"{self.withdrawn} withdrawn, {self.rejected_records} records rejected, "
            f"{len(self.warnings)} warnings"
        )

    def kept_ids(self) -> tuple[set[str], tuple[str, ...]]:
        """Asset ids this feed still vouches for: those it lists, and those of records it
        rejected this time (a record that fails validation still exists at its source)."""
        listed = {a.id for a in self.assets}
        rejected = {p.record_id for p in self.rejected if p.record_id}
        listed |= rejected | {f"{self.namespace}:{rid}" for rid in rejected}
        return listed, tuple(f"{self.namespace}:{rid}@" for rid in rejected)


# ------------------------------------------------------------------ reading


def _schema(name: str) -> dict[str, Any]:
    path = resources.files("matching") / "feeds" / name
    return json.loads(path.read_text())


_VALIDATORS: dict[str, Any] = {}


def validator(shape: Shape) -> Any:
    if shape not in _VALIDATORS:
        if shape == "oruk1":
            _VALIDATORS[shape] = Draft7Validator(_schema("oruk1-service.json"))
        else:
            _VALIDATORS[shape] = Draft202012Validator(_schema("oruk3-service.json"))
    return _VALIDATORS[shape]


def records_of(data: Any) -> tuple[list[Any], Shape | None, dict[str, Any]]:
    """The service records in one document or page, the shape its envelope shows, and the
    paging fields."""
    if isinstance(data, list):
        return data, None, {}
    if not isinstance(data, dict):
        raise ValueError("a directory feed is a JSON object or array")
    if isinstance(data.get("assets"), list):
        return data["assets"], "linkwell", {}
    if isinstance(data.get("contents"), list):  # ORUK 3.0 page
        return data["contents"], "oruk3", data
    if isinstance(data.get("content"), list):  # ORUK 1.0 page
        return data["content"], "oruk1", data
    if "id" in data and "name" in data:  # one service
        return [data], None, {}
    raise ValueError(
        "not a directory feed: expected an ORUK page (content / contents), a list of services, "
        "one service, or {'assets': [...]}"
    )


def shape_of(record: dict[str, Any], hint: Shape | None) -> Shape:
    if hint == "linkwell":
        return hint
    if any(k in record for k in ("regular_schedules", "service_taxonomys", "eligibilitys")):
        return "oruk1"
    if any(k in record for k in ("schedules", "attributes", "organization_id", "last_modified")):
        return "oruk3"
    if hint:
        return hint
    locations = [s.get("location") or {} for s in record.get("service_at_locations") or []]
    if any("physical_addresses" in loc for loc in locations):
        return "oruk1"
    return "oruk3"


def _next_page_url(url: str, page: dict[str, Any]) -> str | None:
    """The next page of an ORUK list, or None on the last one."""
    if not page:
        return None
    if page.get("last_page") is True or page.get("last") is True or page.get("empty") is True:
        return None
    total = page.get("total_pages", page.get("totalPages"))
    number = page.get("page_number", page.get("number"))
    if total is None or number is None:
        return None
    # ORUK 3.0 numbers pages from 1; the original API's Spring-style pages from 0
    current = int(number) if "page_number" in page else int(number) + 1
    if current >= int(total):
        return None
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query["page"] = str(current + 1 if "page_number" in page else current)
    return urlunsplit(parts._replace(query=urlencode(query)))


def read_source(
    source: str, client: httpx.Client | None = None
) -> Iterator[tuple[list[Any], Shape | None]]:
    """Pages of records from a file path or an http(s) URL."""
    if not re.match(r"^https?://", source):
        data = json.loads(Path(source).read_text())
        records, shape, _ = records_of(data)
        yield records, shape
        return
    own = client is None
    http = client or httpx.Client(timeout=30.0, follow_redirects=True)
    try:
        url: str | None = source
        for _ in range(MAX_PAGES):
            if url is None:
                return
            response = http.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            records, shape, page = records_of(response.json())
            yield records, shape
            url = _next_page_url(url, page)
    finally:
        if own:
            http.close()


# ------------------------------------------------------------------ converting

ProviderFor = Callable[[dict[str, Any]], str]


def default_provider(organization: dict[str, Any]) -> str:
    return f"oruk-org:{organization.get('id') or 'unknown'}"


def provider_lookup(partners: list[Any]) -> ProviderFor:
    """Map an ORUK organisation to a network partner by its id or a registered identifier
    (e.g. GB-CHC-1234567) held as the partner's network identifier."""
    by_identifier = {p.network_identifier: p.org_id for p in partners if p.network_identifier}

    def lookup(organization: dict[str, Any]) -> str:
        keys = [str(organization.get("id") or "")]
        for ident in organization.get("organization_identifiers") or []:
            scheme, value = ident.get("identifier_scheme"), ident.get("identifier")
            if scheme and value:
                keys.append(f"{scheme}-{value}")
        for key in keys:
            if key in by_identifier:
                return by_identifier[key]
        return default_provider(organization)

    return lookup


def _byday(token: str) -> tuple[str, int | None] | None:
    match = re.fullmatch(r"([+-]?\d)?(MO|TU|WE|TH|FR|SA|SU)", token.strip().upper())
    if not match:
        return None
    return match.group(2), int(match.group(1)) if match.group(1) else None


def sessions_of(schedules: list[dict[str, Any]], today: date) -> tuple[list[Session], list[str]]:
    """Regular sessions from HSDS schedules / ORUK regular_schedules; and what was skipped."""
    sessions: list[Session] = []
    skipped: list[str] = []
    for index, item in enumerate(schedules):
        valid_to = str(item.get("valid_to") or "")[:10]
        if valid_to and re.fullmatch(r"\d{4}-\d\d-\d\d", valid_to) and valid_to < today.isoformat():
            continue
        byday = str(item.get("byday") or item.get("weekday") or "")
        freq = str(item.get("freq") or "WEEKLY").upper()
        interval = (
            int(item.get("interval") or 1) if str(item.get("interval") or "1").isdigit() else 1
        )
        tokens = [t for t in re.split(r"[,\s]+", byday) if t]
        if not tokens:
            continue
        for token in tokens:
            parsed = _byday(token)
            if parsed is None:
                skipped.append(f"schedules[{index}].byday: '{token}' is not an iCalendar day")
                continue
            day, week = parsed
            try:
                sessions.append(
                    Session(
                        day=day,  # type: ignore[arg-type]
                        opens=item.get("opens_at") or None,
                        closes=item.get("closes_at") or None,
                        weeks=(week,) if week and freq == "MONTHLY" else (),
                        interval=min(max(interval, 1), 52) if freq == "WEEKLY" else 1,
                    )
                )
            except ValidationError:
                skipped.append(f"schedules[{index}]: opening times are not HH:MM")
    merged: dict[tuple[Any, ...], Session] = {}
    for s in sessions:  # '1WE,3WE' -> one session in weeks 1 and 3
        key = (s.day, s.opens, s.closes, s.interval, bool(s.weeks))
        if key in merged and s.weeks:
            merged[key] = merged[key].model_copy(
                update={"weeks": tuple(sorted(set(merged[key].weeks + s.weeks)))}
            )
        else:
            merged.setdefault(key, s)
    ordered = sorted(merged.values(), key=lambda s: (DAYS.index(s.day), s.opens or ""))
    return ordered, skipped


def _ages(values: list[tuple[Any, Any]]) -> tuple[int | None, int | None]:
    lows = [int(v[0]) for v in values if isinstance(v[0], int | float)]
    highs = [int(v[1]) for v in values if isinstance(v[1], int | float)]
    return (min(lows) if lows else None, max(highs) if highs else None)


def _delivery(values: list[str]) -> list[str]:
    out: set[str] = set()
    for value in values:
        v = value.lower()
        if "phone" in v or "telephone" in v:
            out.add("phone")
        if "online" in v or "video" in v or "remote" in v:
            out.add("online")
        if "home" in v:
            out.add("home")
        if "venue" in v or "in-person" in v or "in person" in v:
            out.add("venue")
    return sorted(out) or ["venue"]


@dataclass
class _Common:
    """What one service says, whatever its shape."""

    service_id: str
    name: str
    description: str | None
    status: str
    organization: dict[str, Any]
    terms: list[str]
    eligibility_texts: list[str]
    ages: tuple[int | None, int | None]
    languages: list[str]
    cost_texts: list[str]
    free_amounts: list[float]
    schedules: list[dict[str, Any]]
    attending: list[str]
    assured_date: str | None
    locations: list[tuple[str | None, dict[str, Any], list[dict[str, Any]]]]


def _cost_texts(record: dict[str, Any], fees: str | None) -> list[str]:
    """What a service says it costs, in words: its fees text and each cost option."""
    return [fees or ""] + [
        f"{c.get('option') or ''} {c.get('amount_description') or ''}"
        for c in record.get("cost_options") or []
    ]


def _cost_amounts(record: dict[str, Any]) -> list[float]:
    return [
        float(c["amount"])
        for c in record.get("cost_options") or []
        if isinstance(c.get("amount"), int | float)
    ]


def _common_oruk1(record: dict[str, Any]) -> _Common:
    terms = [
        str((t.get("taxonomy") or {}).get("name") or "")
        for t in record.get("service_taxonomys") or []
    ]
    eligibility = record.get("eligibilitys") or []
    locations = []
    for sal in record.get("service_at_locations") or []:
        loc = sal.get("location") or {}
        locations.append((sal.get("id"), loc, sal.get("regular_schedules") or []))
    return _Common(
        service_id=str(record["id"]),
        name=str(record["name"]),
        description=record.get("description"),
        status=record.get("status") or "active",
        organization=record.get("organization") or {},
        terms=[t for t in terms if t],
        eligibility_texts=[str(e.get("eligibility") or "") for e in eligibility],
        ages=_ages([(e.get("minimum_age"), e.get("maximum_age")) for e in eligibility]),
        languages=[str(lang.get("language") or "") for lang in record.get("languages") or []],
        cost_texts=_cost_texts(record, record.get("fees")),
        free_amounts=_cost_amounts(record),
        schedules=record.get("regular_schedules") or [],
        attending=[record.get("attending_type") or ""],
        assured_date=record.get("assured_date"),
        locations=locations,
    )


def _common_oruk3(record: dict[str, Any]) -> _Common:
    terms = []
    for attribute in record.get("attributes") or []:
        term = attribute.get("taxonomy_term") or {}
        terms.extend(str(term.get(k) or "") for k in ("name", "term"))
    locations = []
    for sal in record.get("service_at_locations") or []:
        loc = sal.get("location") or {}
        locations.append((sal.get("id"), loc, sal.get("schedules") or []))
    return _Common(
        service_id=str(record["id"]),
        name=str(record["name"]),
        description=record.get("description"),
        status=record.get("status") or "active",
        organization=record.get("organization") or {"id": record.get("organization_id")},
        terms=sorted({t for t in terms if t}),
        eligibility_texts=[record.get("eligibility_description") or ""],
        ages=_ages([(record.get("minimum_age"), record.get("maximum_age"))]),
        languages=[
            str(lang.get("code") or lang.get("name") or "")
            for lang in record.get("languages") or []
        ],
        cost_texts=_cost_texts(record, record.get("fees_description") or record.get("fees")),
        free_amounts=_cost_amounts(record),
        schedules=record.get("schedules") or [],
        attending=[str(s.get("attending_type") or "") for s in record.get("schedules") or []],
        assured_date=record.get("assured_date"),
        locations=locations,
    )


def _postcode(location: dict[str, Any]) -> str | None:
    for address in (location.get("addresses") or []) + (location.get("physical_addresses") or []):
        if address.get("postal_code"):
            return str(address["postal_code"])
    return None


def _access_texts(location: dict[str, Any]) -> list[str]:
    texts = []
    for item in (location.get("accessibility") or []) + (
        location.get("accessibility_for_disabilities") or []
    ):
        texts.extend(str(item.get(k) or "") for k in ("accessibility", "description", "details"))
    return texts


def convert(
    position: int,
    record: dict[str, Any],
    shape: Shape,
    provider_for: ProviderFor,
    namespace: str,
    source: str,
    today: date,
) -> tuple[list[AssetRecord], list[Problem], list[Problem]]:
    """One feed record -> its assets, the problems that rejected it, and warnings."""
    rid = str(record.get("id")) if isinstance(record, dict) and record.get("id") else None
    if not isinstance(record, dict):
        return [], [Problem(position, None, "$", "a service record is a JSON object")], []
    if shape == "linkwell":
        try:
            return [AssetRecord.model_validate(record)], [], []
        except ValidationError as exc:
            return [], _pydantic_problems(position, rid, exc), []
    errors = sorted(validator(shape).iter_errors(record), key=lambda e: list(e.absolute_path))
    if errors:
        return (
            [],
            [
                Problem(position, rid, _path(e.absolute_path), _message(e))
                for e in errors[:MAX_ERRORS_PER_RECORD]
            ],
            [],
        )
    common = _common_oruk1(record) if shape == "oruk1" else _common_oruk3(record)
    warnings: list[Problem] = []

    def warn(path: str, message: str) -> None:
        warnings.append(Problem(position, rid, path, message))

    categories = taxonomy.categories_of(common.terms)
    if not categories:
        categories = taxonomy.categories_of([common.name])
        if categories:
            warn("taxonomy", "no taxonomy term maps to a need; categories taken from the name")
        else:
            warn("taxonomy", "no need category: kept for search, never proposed by matching")
    eligible = taxonomy.eligibility_of(common.eligibility_texts)
    texts = [common.name, *common.terms]
    languages = []
    for text in common.languages:
        code = taxonomy.language_code(text) if text else None
        if code:
            languages.append(code)
        elif text:
            warn("languages", f"language '{text[:40]}' not recognised")
    free = True if common.free_amounts and max(common.free_amounts) == 0 else None
    if free is None:
        free = taxonomy.is_free(common.cost_texts + ([] if common.free_amounts else []))
        if common.free_amounts and max(common.free_amounts) > 0:
            free = False
    sessions, skipped = sessions_of(common.schedules, today)
    for message in skipped:
        warn("schedules", message)
    locations = common.locations or [(None, {}, [])]
    assets: list[AssetRecord] = []
    problems: list[Problem] = []
    for sal_id, location, own_schedules in locations:
        lat, lon = location.get("latitude"), location.get("longitude")
        if (lat is not None or lon is not None) and not (
            isinstance(lat, int | float)
            and isinstance(lon, int | float)
            and -90 <= lat <= 90
            and -180 <= lon <= 180
        ):
            warn("location.latitude", "coordinates out of range; located by postcode")
            lat = lon = None
        postcode = _postcode(location)
        delivery = _delivery(common.attending)
        if lat is None and not (postcode and _locatable(postcode)) and "venue" in delivery:
            warn("location", "no usable location: proposed only when distance is unknown")
        loc_sessions = sessions
        if own_schedules:
            loc_sessions, skipped = sessions_of(own_schedules, today)
            for message in skipped:
                warn("service_at_locations.schedules", message)
        asset_id = f"{namespace}:{common.service_id}"
        if len(locations) > 1:
            asset_id += f"@{location.get('id') or sal_id}"
        try:
            assets.append(
                AssetRecord(
                    id=asset_id,
                    name=common.name[:300],
                    provider_org=provider_for(common.organization),
                    provider_name=str(common.organization.get("name") or "unknown")[:300],
                    categories=sorted(categories),
                    description=(common.description or None) and common.description[:5000],
                    interests=sorted(taxonomy.interests_of(texts)),
                    postcode=postcode if postcode and _locatable(postcode) else None,
                    lat=lat,
                    lon=lon,
                    min_age=common.ages[0],
                    max_age=common.ages[1],
                    for_needs=sorted(eligible),
                    who_for=next((t[:300] for t in common.eligibility_texts if t), None),
                    languages=languages,
                    accessibility=sorted(taxonomy.accessibility_of(_access_texts(location))),
                    free=free,
                    cost=next((t.strip()[:300] for t in common.cost_texts if t.strip()), None),
                    sessions=loc_sessions,
                    delivery=delivery,
                    assured_date=_date(common.assured_date),
                    status=common.status,  # type: ignore[arg-type]
                    verified=True,
                    source=source,
                )
            )
        except ValidationError as exc:
            problems.extend(_pydantic_problems(position, rid, exc))
    return assets, problems, warnings


def _locatable(postcode: str) -> bool:
    from linkwell import geo

    return geo.locate(postcode) is not None


def _date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _path(parts: Any) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _message(error: Any) -> str:
    """The schema's complaint without echoing the submitted value."""
    validator_name = error.validator
    if validator_name == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        return f"missing required property {missing[0]}" if missing else "missing property"
    if validator_name == "enum":
        return "not one of " + ", ".join(repr(v) for v in error.validator_value)
    if validator_name == "type":
        return f"must be of type {error.validator_value}"
    if validator_name == "pattern":
        return f"does not match the pattern {error.validator_value}"
    if validator_name == "format":
        return f"is not a valid {error.validator_value}"
    return f"fails {validator_name}"


def _pydantic_problems(position: int, rid: str | None, exc: ValidationError) -> list[Problem]:
    return [
        Problem(position, rid, _path(err["loc"]), err["msg"])
        for err in exc.errors()[:MAX_ERRORS_PER_RECORD]
    ]


def read_feed(
    source: str,
    provider_for: ProviderFor = default_provider,
    namespace: str = "oruk",
    today: date | None = None,
    client: httpx.Client | None = None,
) -> ImportReport:
    """Read and convert a whole feed (every page); nothing is stored here."""
    report = ImportReport(source=source, namespace=namespace)
    today = today or date.today()
    position = 0
    for records, hint in read_source(source, client):
        for record in records:
            shape = shape_of(record, hint) if isinstance(record, dict) else (hint or "oruk3")
            report.shape = report.shape or shape
            assets, problems, warnings = convert(
                position, record, shape, provider_for, namespace, source, today
            )
            report.assets.extend(assets)
            report.rejected.extend(problems)
            report.warnings.extend(warnings)
            position += 1
    report.read = position
    return report
