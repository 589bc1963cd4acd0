"""The outcome history searched and counted: the filters of `GET /api/v1/events`, spans of time, and the
decision stats of `GET /api/v1/stats` and `hitl-chatops stats`.

Everything here works on the `OutcomeRecord`s the store reads from `hitl-history/` (`Store.outcomes`,
`Store.ended_in`); nothing reads an event. Times people type (`since`, `until`) are parsed here
once, for the API and the CLI alike.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple, get_args

from .protocol import OutcomeRecord, Responder, Result

__all__ = [
    "EARLIEST",
    "MAX_STATS_DAYS",
    "RESULTS",
    "Ended",
    "EventStats",
    "Search",
    "Span",
    "Timing",
    "parse_event_name",
    "parse_responder",
    "parse_time",
    "percentile",
    "summarize",
]

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # nothing in the history is older; earlier is a typo
MAX_STATS_DAYS = 92  # a quarter: stats read one object per outcome in the span
_AGO = re.compile(r"([0-9]{1,5})([mhd])")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}
_RESPONDER = re.compile(r"([a-z][a-z0-9_-]{0,31}):(\S{1,255})")
_NAME_LIMIT = 200
_TIME_HINT = 'an ISO 8601 time such as 2026-12-01T09:00:00Z, a date such as 2026-12-01, or a duration ago such as "7d"'


def parse_time(text: str, name: str, now: datetime) -> datetime:
    """A time as people type it: ISO 8601 (UTC unless it names its zone; a date alone is its midnight, UTC),
    or a duration before `now` ("90m", "12h", "7d"), between 2000-01-01 and a day after `now`.

    Raises ValueError with a message saying what to send (`name` is the parameter's).
    """
    text = text.strip()
    if found := _AGO.fullmatch(text):
        moment = now - timedelta(seconds=int(found.group(1)) * _UNIT_SECONDS[found.group(2)])
    else:
        try:
            moment = _iso(text)
        except ValueError:
            raise ValueError(f"{name} must be {_TIME_HINT}.") from None
    if not EARLIEST <= moment <= now + timedelta(days=1):
        raise ValueError(f"{name} must be between {EARLIEST:%Y-%m-%d} and tomorrow.")
    return moment


def _iso(text: str) -> datetime:
    if len(text) == 10:  # YYYY-MM-DD: fromisoformat would read 20261201 too
        return datetime.combine(date.fromisoformat(text), time(), UTC)
    if len(text) < 16 or text[10] not in "Tt ":
        raise ValueError(text)
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_responder(text: str) -> Responder:
    """`<platform>:<user id>` as `responders` entries write a person ("slack:U0DANA", "api:ci-bot")."""
    if not (found := _RESPONDER.fullmatch(text)):
        raise ValueError("responder must be <platform>:<user id>, such as slack:U0DANA or api:ci-bot.")
    return Responder(platform=found.group(1), user_id=found.group(2))


def parse_event_name(text: str) -> str:
    if not 1 <= len(text) <= _NAME_LIMIT:
        raise ValueError(f"event_name must be 1 to {_NAME_LIMIT} characters.")
    return text


@dataclass(frozen=True)
class Span:
    """From `since` (included) to `until` (excluded), either end open when None."""

    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def parse(
        cls,
        since: str | None,
        until: str | None,
        now: datetime,
        *,
        days: int | None = None,
        names: tuple[str, str] = ("since", "until"),
    ) -> Span:
        """`since` and `until` as people type them (`parse_time`); `days` bounds the span and makes `since`
        required (`until` defaults to `now`). Raises ValueError with a message saying what to send, naming
        the parameters as the caller calls them (`names`)."""
        first, second = names
        start = None if since is None else parse_time(since, first, now)
        end = None if until is None else parse_time(until, second, now)
        if days is not None:
            if start is None:
                raise ValueError(f"{first} is required: {_TIME_HINT}.")
            end = end or now
        if start is not None and end is not None and start >= end:
            raise ValueError(f"{first} must come before {second}.")
        if days is not None and start is not None and end is not None and end - start > timedelta(days=days):
            raise ValueError(f"{first} and {second} may be at most {days} days apart.")
        return cls(start, end)

    def holds(self, moment: datetime) -> bool:
        return (self.since is None or moment >= self.since) and (self.until is None or moment < self.until)

    @property
    def first_day(self) -> str | None:
        """The oldest day folder (`YYYY-MM-DD`, UTC) that can hold a moment of the span."""
        return None if self.since is None else f"{self.since.astimezone(UTC):%Y-%m-%d}"

    @property
    def last_day(self) -> str | None:
        """The newest day folder that can hold a moment of the span (`until` itself is excluded)."""
        return None if self.until is None else f"{self.until.astimezone(UTC) - timedelta(microseconds=1):%Y-%m-%d}"


@dataclass(frozen=True)
class Search:
    """What `GET /api/v1/events` filters on: the event's name, who gave the outcome, and when."""

    event_name: str | None = None
    responder: Responder | None = None
    span: Span = field(default_factory=Span)

    @property
    def reads_records(self) -> bool:
        """Whether a record must be read to know if it matches (the span is decided by its key alone)."""
        return self.event_name is not None or self.responder is not None

    def matches(self, record: OutcomeRecord) -> bool:
        if self.event_name is not None and record.event_name != self.event_name:
            return False
        if self.responder is None:
            return True
        who = record.responder
        return who is not None and (who.platform, who.user_id) == (self.responder.platform, self.responder.user_id)


@dataclass(frozen=True)
class Timing:
    """Seconds from creation to a decision (an answer or a Reject), over `count` decisions."""

    count: int
    p50: float
    p90: float
    max: float


@dataclass(frozen=True)
class EventStats:
    """How the events of one name ended in a span, and how long people took to decide them."""

    event_name: str
    outcomes: dict[Result, int]  # every result, zeros included
    decision: Timing | None  # None without a decision whose creation time is known

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())


RESULTS: tuple[Result, ...] = get_args(Result)
_DECISIONS: tuple[Result, ...] = ("completed", "rejected")  # decided by people or rules, not by the clock


class Ended(NamedTuple):
    """What stats need of one outcome record: small, so a replica can keep many (`Store.ended_in`)."""

    event_name: str
    result: Result
    seconds: float | None  # from creation to the outcome; None when the record does not say

    @classmethod
    def of(cls, record: OutcomeRecord) -> Ended:
        return cls(record.event_name, record.result, record.seconds)


def summarize(outcomes: Iterable[Ended]) -> list[EventStats]:
    """Counts by result and decision times per event name, the busiest names first."""
    counts: dict[str, dict[Result, int]] = {}
    times: dict[str, list[float]] = {}
    for ended in outcomes:
        counts.setdefault(ended.event_name, dict.fromkeys(RESULTS, 0))[ended.result] += 1
        if ended.result in _DECISIONS and ended.seconds is not None:
            times.setdefault(ended.event_name, []).append(max(ended.seconds, 0.0))
    stats = [EventStats(name, results, _timing(times.get(name, []))) for name, results in counts.items()]
    return sorted(stats, key=lambda s: (-s.total, s.event_name))


def _timing(seconds: list[float]) -> Timing | None:
    if not seconds:
        return None
    ordered = sorted(seconds)
    return Timing(len(ordered), percentile(ordered, 50), percentile(ordered, 90), ordered[-1])


def percentile(ordered: list[float], rank: float) -> float:
    """The nearest-rank percentile of sorted values: one of them, never an interpolation."""
    return ordered[max(math.ceil(rank / 100 * len(ordered)) - 1, 0)]
