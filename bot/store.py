"""The storage protocol: every object the bot and the plugin share, over one backend (`backends`).

Layout under one root URL: docs/protocol.md lists every object (`hitl-requests/<id>/…`, the
`hitl-pending/`, `hitl-history/`, `hitl-outbox/`, `hitl-owed-signals/`, `hitl-replicas/` and
`hitl-conversations/` folders).
Every path is derived here from a validated request id; none comes from a client. How the bytes
are read, written, listed and deleted (obstore for S3, GCS and Azure; a local folder; any other
fsspec URL) is the backend's business, chosen once from the URL.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import re
import uuid
from collections import OrderedDict
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from .answers import rejects
from .backends import Entry, open_backend
from .errors import AlreadyAnswered, EventNotFound, StoreError
from .history import Ended, Search, Span
from .protocol import (
    BatchMessage,
    Claim,
    LogEntry,
    MessageRef,
    OutcomeKind,
    OutcomeRecord,
    Request,
    Response,
    is_request_id,
    log_name,
    utcnow,
)

__all__ = [
    "BATCHES",
    "EXPIRED_CLAIM",
    "REPLICAS",
    "REQUESTS",
    "BatchListing",
    "DecisionLog",
    "Listing",
    "Page",
    "Store",
    "check_request_id",
    "expiry_record",
    "new_request_id",
    "outcome_record",
]

log = logging.getLogger(__name__)
Known = TypeVar("Known", Response, Claim, BatchMessage)
Page = tuple[list[OutcomeRecord], str | None]

# Folders in key order. The four a reconciler pass lists sort next to each other, after the outcome
# history and before the events' own folders (both grow with every event): one ranged listing reads
# them all (`Store.listing`). A new folder must not land between them.
BATCHES = "hitl-batches"  # one folder per batch of fan-out events (bot/batch.py)
CONVERSATIONS = "hitl-conversations"
OUTCOMES = "hitl-history"
OUTBOX = "hitl-outbox"
SIGNALS = "hitl-owed-signals"  # Flyte condition signals still owed
PENDING = "hitl-pending"
REPLICAS = "hitl-replicas"  # one heartbeat object per running reconciler (see `reconciler`)
REQUESTS = "hitl-requests"
EXPIRED_CLAIM = "expired"  # `claims/expired`: an event without `on_timeout` was closed at its deadline
# An outcome written this close to the deadline (or after it) may have crossed the reconciler's expiry.
_CLOCK_SKEW = timedelta(minutes=1)
_OUTCOME_KEY = re.compile(r"\d{4}-\d{2}-\d{2}/\d{16}-[0-9a-f-]{36}")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_KEY_EPOCH_MICROS = 10**16  # outcome keys count down from here, so names sort newest first
# A page of a search examines at most this many records (the filters it cannot tell from keys), so one
# request costs a bounded number of reads whatever matches; its `next` goes on from the last one.
SCAN_LIMIT = 1000
_SCAN_BATCH = 50  # records of a search read together
_READ_CONCURRENCY = 32  # history records read at once
# History records never change once written: what stats need of each (`Ended`) is kept, about 400 bytes
# with its path, so stats asked again read listings only.
_ENDED_LIMIT = 20_000
_KNOWN_LIMIT = 4096
_RECORD_LIMIT = 4096  # history records kept for searches (a few hundred bytes each)
# A team event's decision log, under its folder; each object is created once and never changed.
LOG_FOLDERS = ("votes", "proposals", "delegations", "reminders", "escalations")
_LOG_ENTRY: TypeAdapter[LogEntry] = TypeAdapter(LogEntry)
_LOG_LIMIT = 50_000  # log objects kept per replica (about 1 KiB each)
# Requests are read by every answer, pending list and reconciler pass: keep every open one.
# 10,000 add about 15 MiB to the process (bench/results/storage_listing.md).
_REQUEST_LIMIT = 20_000


def check_request_id(request_id: str) -> str:
    """Refuse anything that is not a request id before it can become part of a path."""
    if not is_request_id(request_id):
        raise EventNotFound(request_id[:64])
    return request_id


def new_request_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Listing:
    """What one reconciler pass needs from the bucket, read in as few listing requests as S3 allows."""

    pending: dict[str, str] = field(default_factory=dict)  # id -> marker version (changes when rewritten)
    outbox: list[str] = field(default_factory=list)
    replicas: dict[str, datetime] = field(default_factory=dict)  # replica id -> last heartbeat
    signals: list[str] = field(default_factory=list)  # Flyte condition signals owed (bot/conditions.py)


@dataclass(frozen=True)
class DecisionLog:
    """What one listing of an event's folder tells about its decision: every log object (read once per
    replica), and whether its outcome (`response.json`) exists."""

    entries: tuple[LogEntry, ...] = ()
    answered: bool = False


@dataclass(frozen=True)
class BatchListing:
    """What one listing of a batch's folder tells: the events posted into it, oldest first, and those that ended."""

    joined: tuple[str, ...] = ()
    ended: frozenset[str] = frozenset()

    @property
    def open(self) -> list[str]:
        """The events without a recorded outcome, oldest first."""
        return [i for i in self.joined if i not in self.ended]

    @property
    def decided(self) -> int:
        return sum(1 for i in self.joined if i in self.ended)


class Store:
    """The storage protocol, async, over the backend for one root URL (`backends.open_backend`)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.backend = open_backend(url)
        self.fs, self.root = self.backend.fs, self.backend.root  # the fsspec view, for other fsspec users
        # Requests and answers are written once, so a replica may keep them; absence never is.
        self._known: OrderedDict[str, Response | Claim | BatchMessage] = OrderedDict()
        self._requests: OrderedDict[str, Request] = OrderedDict()
        self._log: OrderedDict[str, LogEntry] = OrderedDict()  # path -> decision log object
        self._ended: OrderedDict[str, Ended] = OrderedDict()
        self._records: OrderedDict[str, OutcomeRecord] = OrderedDict()  # path -> history record, as searched

    # -- paths -------------------------------------------------------------------------

    def _path(self, *parts: str) -> str:
        return "/".join((self.root, *parts))

    def _event_path(self, request_id: str, name: str) -> str:
        return self._path(REQUESTS, check_request_id(request_id), name)

    def url_of(self, path: str) -> str:
        """The address other fsspec users (flyte.storage, stock flyteplugins-hitl) can open."""
        return self.backend.url_of(path)

    def request_url(self, request_id: str) -> str:
        return self.url_of(self._event_path(request_id, "request.json"))

    def response_url(self, request_id: str) -> str:
        return self.url_of(self._event_path(request_id, "response.json"))

    # -- requests ----------------------------------------------------------------------

    async def put_request(self, request: Request) -> None:
        """Write the request, then its pending marker (the marker is only an index)."""
        await self.backend.put(self._event_path(request.request_id, "request.json"), _dump(request), durable=True)
        marker = {"created_at": request.created_at.isoformat(), "deadline": request.deadline.isoformat()}
        await self.backend.put(self._path(PENDING, request.request_id), json.dumps(marker).encode())

    async def get_request(self, request_id: str) -> Request:
        """The request, read once per replica: request.json never changes after it is written."""
        if (known := self._requests.get(request_id)) is not None:
            return known
        data = await self.backend.get(self._event_path(request_id, "request.json"))
        if data is None:
            raise EventNotFound(request_id)
        request = _load(Request, data, request_id)
        self._requests[request_id] = request
        if len(self._requests) > _REQUEST_LIMIT:
            self._requests.popitem(last=False)
        return request

    def cached_request(self, request_id: str) -> Request | None:
        """The request if this replica has read it already (no storage request)."""
        return self._requests.get(request_id)

    def cached_response(self, request_id: str) -> Response | None:
        """The outcome if this replica has written or read it (no storage request); None says nothing."""
        known = self._known.get(self._event_path(request_id, "response.json"))
        return known if isinstance(known, Response) else None

    async def pending_ids(self) -> list[str]:
        """Ids in the pending index: O(pending), never a scan of every event ever made."""
        return await self._ids(PENDING)

    async def drop_pending(self, request_id: str) -> None:
        """Remove the marker; on object stores, drops that arrive together share one bulk DELETE."""
        await self.backend.delete_many([self._path(PENDING, check_request_id(request_id))])

    async def listing(self) -> Listing:
        """Pending markers (each with its version), replica heartbeats, the outbox and owed signals.

        These four folders sort next to each other (`hitl-outbox/` < `hitl-owed-signals/` <
        `hitl-pending/` < `hitl-replicas/` < `hitl-requests/`), so an object store reads them as one
        ranged listing that stops before the events' own folders, one request per 1,000 keys (Azure:
        one listing per folder; `Backend.list_folders`). The outcome history (`hitl-history/`), which
        grows with every outcome, sorts before them and is never listed here.
        """
        found = Listing()
        _file(found, await self.backend.list_folders([self._path(f) for f in (OUTBOX, SIGNALS, PENDING, REPLICAS)]))
        return found

    async def touch_pending(self, request: Request) -> None:
        """Rewrite the marker with a new body, so its version changes and every replica's reconciler
        reads the event again (a vote or a delegation was added): O(changes), never a scan."""
        marker = {
            "created_at": request.created_at.isoformat(),
            "deadline": request.deadline.isoformat(),
            "changed_at": utcnow().isoformat(),
            "change": uuid.uuid4().hex,  # a new ETag even within the same second
        }
        await self.backend.put(self._path(PENDING, request.request_id), json.dumps(marker).encode())

    # -- the decision log of a team event ------------------------------------------------

    async def add_to_log(self, request_id: str, entry: LogEntry) -> bool:
        """Create the entry's object exclusively (`log_name`); False if it exists (that person voted in
        that round, handed over already; that reminder or escalation was sent)."""
        path = self._event_path(request_id, log_name(entry))
        try:
            await self.backend.create(path, _dump(entry))
        except FileExistsError:
            return False
        self._keep_log(path, entry)
        return True

    async def log_entry(self, request_id: str, name: str) -> LogEntry | None:
        """One log object by its `log_name`, or None."""
        path = self._event_path(request_id, name)
        if (known := self._log.get(path)) is not None:
            return known
        data = await self.backend.get(path)
        return None if data is None else self._keep_log(path, _load_entry(data, request_id))

    async def decision_log(self, request_id: str) -> DecisionLog:
        """One listing of the event's folder; the log objects this replica has not read yet are read
        (concurrently), the others come from memory."""
        folder = self._path(REQUESTS, check_request_id(request_id))
        listed = await self.backend.list_tree(folder)
        answered = False
        names: list[str] = []
        for key, _, _ in listed:
            name = key.rpartition(f"{request_id}/")[2]  # keys are paths or bucket keys: the id ends the folder
            answered = answered or name == "response.json"
            if name.split("/", 1)[0] in LOG_FOLDERS and name.endswith(".json"):
                names.append(name)
        found = await asyncio.gather(*(self.log_entry(request_id, name) for name in names))
        return DecisionLog(entries=tuple(e for e in found if e is not None), answered=answered)

    def _keep_log(self, path: str, entry: LogEntry) -> LogEntry:
        self._log[path] = entry
        if len(self._log) > _LOG_LIMIT:
            self._log.popitem(last=False)
        return entry

    # -- responses ---------------------------------------------------------------------

    async def get_response(self, request_id: str) -> Response | None:
        """At most one storage read: the response, or None while nobody has answered."""
        path = self._event_path(request_id, "response.json")
        if isinstance(known := self._known.get(path), Response):
            return known
        data = await self.backend.get(path)
        return None if data is None else self._remember(path, _load(Response, data, request_id))

    async def put_response(self, response: Response, request: Request | None = None) -> None:
        """Exclusive create, then `settle` (for writers with nobody waiting: the plugin, tests).

        Raises `AlreadyAnswered` (or `EventCancelled`) when the event already has its outcome.
        """
        await self.create_response(response)
        await self.settle(response, request)

    async def create_response(self, response: Response) -> None:
        """Exclusive create: the first outcome wins, a later one raises `AlreadyAnswered` (or `EventCancelled`).

        One request; the caller settles the event afterwards (after the person's ack, on the answer path).
        """
        path = self._event_path(response.request_id, "response.json")
        try:
            await self.backend.create(path, _dump(response))
        except FileExistsError:
            first = await self.get_response(response.request_id)
            raise AlreadyAnswered.of(first or response) from None
        self._remember(path, response)

    async def settle(self, response: Response, request: Request | None = None) -> bool:
        """What follows a written outcome: index it, then drop the pending marker (bulk where possible).

        In that order, so a marker outlives a missing index entry and the reconciler adds it. The
        outcome stands either way; returns False if storage failed (the reconciler finishes the job).
        An outcome written about the deadline also takes the place of an expiry it crossed
        (`supersede_expiry`).
        """
        try:
            await self.index_outcome(response, request)
            if request is not None and not response.defaulted and utcnow() >= request.deadline - _CLOCK_SKEW:
                await self.supersede_expiry(request)
            await self.drop_pending(response.request_id)
        except StoreError:
            return False
        return True

    async def supersede_expiry(self, request: Request) -> None:
        """One event, one outcome, when an answer or a cancel checked before the deadline is written after
        the reconciler closed the event (`HitlService.expire` claims, indexes, then looks for a response;
        the writer writes, then looks for the claim: one of them sees the other). The written outcome is
        what every reader of response.json sees, so it stands: the expiry's index entry goes, and the
        copies, which the expiry may have re-rendered last, are queued to be re-rendered from it.
        """
        if await self.get_claim(request.request_id, EXPIRED_CLAIM) is None:
            return
        await self.unindex_expired(request)
        await self.put_outbox(request.request_id, "answered")

    # -- the outcome history: listed, searched and counted by day ------------------------

    async def index_outcome(self, response: Response, request: Request | None = None) -> None:
        """Add an event's outcome to `hitl-history/` (idempotent for a response with a time)."""
        await self._put_outcome(outcome_record(response, request))

    async def index_expired(self, request: Request) -> None:
        """Record an event that reached its deadline without an answer or a default."""
        await self._put_outcome(expiry_record(request))

    async def unindex_expired(self, request: Request) -> None:
        """Take back `index_expired` (its key follows from the deadline): the event has an outcome after all."""
        path = self._outcome_path("expired", request.deadline, request.request_id)
        await self.backend.delete(path)
        self._ended.pop(path, None)

    async def _put_outcome(self, record: OutcomeRecord) -> None:
        await self.backend.put(self._outcome_path(record.outcome, record.at, record.request_id), _dump(record))

    def _outcome_path(self, outcome: OutcomeKind, at: datetime, request_id: str) -> str:
        day = f"{at.astimezone(UTC):%Y-%m-%d}"
        return self._path(OUTCOMES, outcome, f"{day}/{_countdown(at):016d}-{check_request_id(request_id)}")

    async def outcomes(
        self, outcome: OutcomeKind, *, limit: int, after: str | None = None, search: Search | None = None
    ) -> Page:
        """Newest first, `limit` matches of `search` at a time: the records and the cursor of the next page
        (None at the end).

        Reads one listing per day visited (days outside the search's span are never listed) and one
        object per record examined: the records returned, and with an event name or responder to
        match, those that did not match, at most `SCAN_LIMIT` per page (a page may then hold fewer
        than `limit` and still have a cursor).
        """
        if after is not None and not _OUTCOME_KEY.fullmatch(after):
            raise ValueError("not a cursor this bot returned")
        search = search or Search()
        folder = self._path(OUTCOMES, outcome)
        found: list[OutcomeRecord] = []
        batch: list[str] = []
        examined = 0
        last: str | None = None

        def full() -> bool:
            return len(found) == limit or examined == SCAN_LIMIT

        async def examine() -> None:
            nonlocal examined, last
            records = await self._kept_outcomes([f"{folder}/{key}" for key in batch])
            for key, record in zip(batch, records, strict=True):
                if full():
                    return
                examined, last = examined + 1, key
                if record is not None and search.matches(record):
                    found.append(record)
            batch.clear()

        async with contextlib.aclosing(self._outcome_keys(folder, search.span, after)) as keys:
            async for key in keys:
                if full():
                    return found, last  # `key` is one more
                batch.append(key)
                wanted = min(_SCAN_BATCH, SCAN_LIMIT - examined) if search.reads_records else limit - len(found)
                if len(batch) >= wanted:
                    await examine()
                    if batch:
                        return found, last  # full within the batch: the rest of it is more
        await examine()
        return found, (last if batch else None)

    async def ended_in(self, outcome: OutcomeKind, span: Span) -> list[Ended]:
        """What stats need of every record of `hitl-history/<outcome>/` whose outcome fell in `span`: one
        listing of the day folders, one per day in the span, one read per record (none for a record this
        replica read before)."""
        folder = self._path(OUTCOMES, outcome)
        paths = [f"{folder}/{key}" async for key in self._outcome_keys(folder, span)]
        unread = [path for path in paths if path not in self._ended]
        for path, record in zip(unread, await self._read_outcomes(unread), strict=True):
            if record is not None:
                self._ended[path] = Ended.of(record)
        while len(self._ended) > _ENDED_LIMIT:
            self._ended.popitem(last=False)
        return [ended for path in paths if (ended := self._ended.get(path)) is not None]

    async def _outcome_keys(self, folder: str, span: Span, after: str | None = None) -> AsyncGenerator[str, None]:
        """The keys (`<day>/<countdown>-<id>`) of an outcome folder in `span`, in listing order (days newest
        first, newest first within a day) after the cursor `after`. Whole days outside the span are
        skipped by their names, never listed; within a day, a key's countdown places it in the span."""
        first, final = span.first_day, span.last_day
        oldest = None if span.since is None else _countdown(span.since)  # keys count down: newer is smaller
        newest = None if span.until is None else _countdown(span.until)
        for day in sorted((d for d in await self.backend.names(folder) if _DAY.fullmatch(d)), reverse=True):
            if (final is not None and day > final) or (after is not None and day > after[:10]):
                continue  # newer than the span, or on earlier pages
            if first is not None and day < first:
                return
            for name in sorted(await self.backend.names(f"{folder}/{day}")):
                key = f"{day}/{name}"
                if not _OUTCOME_KEY.fullmatch(key) or not _listed_after(key, after):
                    continue
                countdown = int(key[11:27])
                if (oldest is None or countdown <= oldest) and (newest is None or countdown > newest):
                    yield key

    async def _kept_outcomes(self, paths: list[str]) -> list[OutcomeRecord | None]:
        """`_read_outcomes`, reading only the records this replica has not read before: a search asked
        again (a person's App Home, opened again) costs its listings only."""
        unread = [path for path in paths if path not in self._records]
        for path, record in zip(unread, await self._read_outcomes(unread), strict=True):
            if record is not None:
                self._records[path] = record
        while len(self._records) > _RECORD_LIMIT:
            self._records.popitem(last=False)
        return [self._records.get(path) for path in paths]

    async def _read_outcomes(self, paths: list[str]) -> list[OutcomeRecord | None]:
        """The history records at `paths`, read together; None for one deleted since it was listed, or unreadable."""
        gate = asyncio.Semaphore(_READ_CONCURRENCY)

        async def read(path: str) -> OutcomeRecord | None:
            async with gate:
                blob = await self.backend.get(path)
            if blob is None:
                return None
            try:
                return _load(OutcomeRecord, blob, path[-36:])
            except StoreError:  # logged: one bad record must not hide the others
                return None

        return list(await asyncio.gather(*map(read, paths)))

    # -- chat messages -----------------------------------------------------------------

    async def put_message(self, request_id: str, message: MessageRef) -> None:
        name = f"messages/{message.platform}-{message.key}.json"
        await self.backend.put(self._event_path(request_id, name), _dump(message))

    async def messages(self, request_id: str) -> list[MessageRef]:
        records = await self.backend.read_all(self._event_path(request_id, "messages"))
        return [_load(MessageRef, raw, request_id) for raw in records]

    # -- claims: one replica does a thing once ------------------------------------------

    async def claim(self, request_id: str, name: str, *, batch: bool = False) -> bool:
        """Create `claims/<name>` exclusively (not done yet); True for the one caller that created it.

        `batch`: `request_id` is a batch's id, and the claim lives in its folder (`hitl-batches/`).
        """
        path = self._claim_path(request_id, name, batch)
        if isinstance(self._known.get(path), Claim):  # only finished claims are kept
            return False
        try:
            await self.backend.create(path, _dump(Claim(claimed_at=utcnow(), done=False)))
        except FileExistsError:
            return False
        return True

    async def get_claim(self, request_id: str, name: str, *, batch: bool = False) -> Claim | None:
        path = self._claim_path(request_id, name, batch)
        if isinstance(known := self._known.get(path), Claim):
            return known
        data = await self.backend.get(path)
        if data is None:
            return None
        claim = _load(Claim, data, request_id)
        return self._remember(path, claim) if claim.done else claim

    async def finish_claim(self, request_id: str, name: str, *, batch: bool = False) -> None:
        """Mark a claim done, so nobody takes it over; only its holder calls this."""
        path = self._claim_path(request_id, name, batch)
        claim = Claim(claimed_at=utcnow(), done=True)
        await self.backend.put(path, _dump(claim))
        self._remember(path, claim)

    async def release(self, request_id: str, name: str, *, batch: bool = False) -> None:
        await self.backend.delete(self._claim_path(request_id, name, batch))

    def _claim_path(self, request_id: str, name: str, batch: bool = False) -> str:
        if batch:
            return self._batch_path(request_id, f"claims/{_safe_name(name)}")
        return self._event_path(request_id, f"claims/{_safe_name(name)}")

    # -- batches: fan-out events sharing one message per channel (bot/batch.py) -----------

    def _batch_path(self, batch_id: str, name: str) -> str:
        return self._path(BATCHES, check_request_id(batch_id), name)

    async def join_batch(self, batch_id: str, request: Request) -> None:
        """Count the event in the batch: `open/<created_at, µs>-<id>`, an empty object named so that a
        listing sorts the events oldest first (rewriting it changes nothing)."""
        name = f"open/{_countup(request.created_at)}-{request.request_id}"
        await self.backend.put(self._batch_path(batch_id, name), b"{}")

    async def end_in_batch(self, batch_id: str, request_id: str) -> None:
        """Count the event decided in the batch (`ended/<id>`)."""
        await self.backend.put(self._batch_path(batch_id, f"ended/{check_request_id(request_id)}"), b"{}")

    async def batch(self, batch_id: str) -> BatchListing:
        """One listing of the batch's folder: who is in it, and who has ended."""
        joined: list[str] = []
        ended: set[str] = set()
        for key, _, _ in await self.backend.list_tree(self._path(BATCHES, check_request_id(batch_id))):
            folder, _, name = key.rpartition(f"{batch_id}/")[2].partition("/")
            if folder == "open" and is_request_id(name[-36:]):
                joined.append(name)
            elif folder == "ended" and is_request_id(name):
                ended.add(name)
        return BatchListing(joined=tuple(name[-36:] for name in sorted(joined)), ended=frozenset(ended))

    async def put_batch_message(self, batch_id: str, record: BatchMessage) -> None:
        await self.backend.put(self._batch_path(batch_id, "message.json"), _dump(record))

    async def batch_message(self, batch_id: str) -> BatchMessage | None:
        """Where the batch's message went (None until it is posted); never changes once written."""
        path = self._batch_path(batch_id, "message.json")
        if isinstance(known := self._known.get(path), BatchMessage):
            return known
        data = await self.backend.get(path)
        return None if data is None else self._remember(path, _load(BatchMessage, data, batch_id))

    # -- outbox: message updates still owed (retried by the reconciler) -----------------

    async def put_outbox(self, request_id: str, update: str) -> None:
        path = self._path(OUTBOX, check_request_id(request_id))
        await self.backend.put(path, json.dumps({"update": update}).encode())

    async def outbox_ids(self) -> list[str]:
        return await self._ids(OUTBOX)

    async def drop_outbox(self, request_id: str) -> None:
        await self.backend.delete(self._path(OUTBOX, check_request_id(request_id)))

    # -- native Flyte conditions (bot/conditions.py): signals owed, and how each ended ----

    async def put_owed_signal(self, request_id: str, detail: dict[str, Any]) -> None:
        path = self._path(SIGNALS, check_request_id(request_id))
        await self.backend.put(path, json.dumps(detail).encode())

    async def owed_signal_ids(self) -> list[str]:
        return await self._ids(SIGNALS)

    async def drop_owed_signal(self, request_id: str) -> None:
        await self.backend.delete(self._path(SIGNALS, check_request_id(request_id)))

    async def put_signal_record(self, request_id: str, record: dict[str, Any]) -> None:
        await self.backend.put(self._event_path(request_id, "signal.json"), json.dumps(record).encode())

    async def get_signal_record(self, request_id: str) -> dict[str, Any] | None:
        raw = await self.backend.get(self._event_path(request_id, "signal.json"))
        return None if raw is None else dict(json.loads(raw))

    # -- platform conversations (where a bot may post proactively) -----------------------

    async def put_conversation(self, platform: str, conversation_id: str, data: dict[str, Any]) -> None:
        await self.backend.put(self._conversation_path(platform, conversation_id), json.dumps(data).encode())

    async def get_conversation(self, platform: str, conversation_id: str) -> dict[str, Any] | None:
        raw = await self.backend.get(self._conversation_path(platform, conversation_id))
        return None if raw is None else dict(json.loads(raw))

    def _conversation_path(self, platform: str, conversation_id: str) -> str:
        # Conversation ids hold ':' '@' and ';': encode them so no client text shapes the path.
        key = base64.urlsafe_b64encode(conversation_id.encode()).decode().rstrip("=")
        return self._path(CONVERSATIONS, f"{platform}-{key}.json")

    # -- replicas: who shares the reconciler's work --------------------------------------

    async def put_replica(self, replica_id: str) -> None:
        """A heartbeat: its LastModified tells the other replicas this one is alive."""
        path = self._path(REPLICAS, check_request_id(replica_id))
        await self.backend.put(path, json.dumps({"seen_at": utcnow().isoformat()}).encode())

    async def heartbeats(self) -> dict[str, datetime]:
        """Replica id -> last heartbeat, as `listing` has them: one request per 1,000 replicas."""
        found = Listing()
        _file(found, await self.backend.list_prefix(self._path(REPLICAS)))
        return found.replicas

    async def drop_replica(self, replica_id: str) -> None:
        await self.backend.delete(self._path(REPLICAS, check_request_id(replica_id)))

    async def drop_replicas(self, replica_ids: list[str]) -> None:
        """Remove the heartbeats of replicas that stopped; on object stores, one bulk DELETE for them all."""
        await self.backend.delete_many(
            [self._path(REPLICAS, check_request_id(replica_id)) for replica_id in replica_ids]
        )

    # -- health ------------------------------------------------------------------------

    async def ping(self) -> None:
        """Raise `StoreError` unless the root can be listed with the client answers use (`/healthz`)."""
        await self.backend.ping()

    # -- primitives --------------------------------------------------------------------

    async def _ids(self, folder: str) -> list[str]:
        """Request ids in `folder` (one level)."""
        return [
            name
            for key, _, _ in await self.backend.list_prefix(self._path(folder))
            if is_request_id(name := _name(key))
        ]

    def _remember(self, path: str, obj: Known) -> Known:
        self._known[path] = obj
        if len(self._known) > _KNOWN_LIMIT:
            self._known.popitem(last=False)
        return obj


def _name(key: str) -> str:
    return key.rsplit("/", 1)[-1]


def _file(listing: Listing, entries: Iterable[Entry]) -> None:
    """Put each listed object (`<folder>/<name>`) where it belongs in `listing`."""
    for key, modified, version in entries:
        tail = key.rsplit("/", 2)[-2:]
        if len(tail) != 2 or not is_request_id(name := tail[1]):
            continue
        if tail[0] == PENDING:
            listing.pending[name] = version
        elif tail[0] == REPLICAS:
            listing.replicas[name] = modified
        elif tail[0] == OUTBOX:
            listing.outbox.append(name)
        elif tail[0] == SIGNALS:
            listing.signals.append(name)


def outcome_record(response: Response, request: Request | None) -> OutcomeRecord:
    """The history's line for a written outcome; `request` (None when the writer did not have it) gives
    the event's name, its creation time and whether an answer is a Reject (`answers.rejects`)."""
    return OutcomeRecord(
        request_id=response.request_id,
        event_name=request.event_name if request else "",
        outcome=outcome_kind(response, request),
        at=response.responded_at or utcnow(),
        via=response.via,
        responder=response.responder,
        value=response.value,
        reason=response.reason,
        created_at=request.created_at if request else None,
    )


def outcome_kind(response: Response, request: Request | None) -> OutcomeKind:
    """The history folder an outcome is listed in: `rejected` for an answer that says Reject
    (`answers.rejects`), the place to file a vetoed team decision too."""
    if response.cancelled:
        return "cancelled"
    if response.defaulted:
        return "expired"
    return "rejected" if rejects(request, response) else "completed"


def expiry_record(request: Request) -> OutcomeRecord:
    """The history's line for an event that reached its deadline without an answer or a default."""
    return OutcomeRecord(
        request_id=request.request_id,
        event_name=request.event_name,
        outcome="expired",
        at=request.deadline,
        created_at=request.created_at,
    )


def _countdown(at: datetime) -> int:
    """The newest-first part of a history key: `10^16` minus `at` in microseconds."""
    return _KEY_EPOCH_MICROS - int(at.timestamp() * 1_000_000)


def _countup(at: datetime) -> str:
    """`at` in microseconds, 16 digits: names that sort oldest first."""
    return f"{int(at.timestamp() * 1_000_000):016d}"


def _listed_after(key: str, cursor: str | None) -> bool:
    """Whether `key` follows `cursor` in listing order: days newest first, then keys ascending (newest first)."""
    if cursor is None:
        return True
    day, cursor_day = key[:10], cursor[:10]
    return day < cursor_day or (day == cursor_day and key > cursor)


def _safe_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,200}", name):
        raise ValueError(f"claim name {name!r} may only hold letters, digits and . _ -")
    return name


def _dump(model: Request | Response | MessageRef | Claim | OutcomeRecord | LogEntry | BatchMessage) -> bytes:
    return model.model_dump_json(exclude_none=False).encode()


M = TypeVar("M", Request, Response, MessageRef, Claim, OutcomeRecord, BatchMessage)


def _load_entry(data: bytes, request_id: str) -> LogEntry:
    try:
        return _LOG_ENTRY.validate_json(data)
    except ValidationError as error:
        log.error("unreadable object in store", extra={"request_id": request_id, "kind": "log entry"})
        raise StoreError(
            f"a decision log object of event {request_id} is not valid: {error.error_count()} errors"
        ) from None


def _load(model: type[M], data: bytes, request_id: str) -> M:
    try:
        return model.model_validate_json(data)
    except ValidationError as error:
        log.error("unreadable object in store", extra={"request_id": request_id, "kind": model.__name__})
        raise StoreError(f"{model.__name__} of event {request_id} is not valid: {error.error_count()} errors") from None
