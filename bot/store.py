"""The only module that touches object storage, through fsspec (local-folder writes: `disk_worker`).

Layout (DESIGN.md, contract) under one root URL:
`hitl-requests/<id>/request.json`, `hitl-requests/<id>/response.json`,
`hitl-requests/<id>/messages/<platform>-<key>.json`, the index `hitl-pending/<id>` and the
recent-outcomes index `hitl-outcomes/<outcome>/<YYYY-MM-DD>/<newest-first key>`.
Every path is derived here from a validated request id; none comes from a client.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import importlib
import json
import logging
import os
import re
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from typing import Any, TypeVar

import fsspec
from fsspec.implementations.local import LocalFileSystem
from fsspec.registry import known_implementations
from fsspec.spec import AbstractFileSystem
from pydantic import ValidationError

from .disk_worker import DISK
from .errors import AlreadyAnswered, ConfigError, EventNotFound, HitlError, StoreError
from .protocol import (
    Claim,
    MessageRef,
    OutcomeKind,
    OutcomeRecord,
    Request,
    Response,
    is_request_id,
    utcnow,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
Known = TypeVar("Known", Request, Response, Claim)
Page = tuple[list[OutcomeRecord], str | None]

REQUESTS = "hitl-requests"
PENDING = "hitl-pending"
OUTBOX = "hitl-outbox"
OUTCOMES = "hitl-outcomes"
_OUTCOME_KEY = re.compile(r"\d{4}-\d{2}-\d{2}/\d{16}-[0-9a-f-]{36}")
_KEY_EPOCH_MICROS = 10**16  # outcome keys count down from here, so names sort newest first
CONVERSATIONS = "hitl-conversations"
SIGNALS = "hitl-signals"  # Flyte condition signals still owed
_CONFLICT_RETRIES = 3
_KNOWN_LIMIT = 4096
# Remote storage calls wait on the network, not the CPU: more threads than asyncio's default
# (cores + 4) let concurrent answers overlap their round trips. Local folders never use them.
_IO_THREADS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="hitl-store")


def check_request_id(request_id: str) -> str:
    """Refuse anything that is not a request id before it can become part of a path."""
    if not is_request_id(request_id):
        raise EventNotFound(request_id[:64])
    return request_id


def new_request_id() -> str:
    return str(uuid.uuid4())


class Store:
    """Async facade over a (sync or async) fsspec filesystem rooted at one URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.fs, root = _filesystem(url)
        self.root = root.rstrip("/")
        self._local = isinstance(self.fs, LocalFileSystem)
        if self._local:  # made now, so that a folder that disappears later is noticed (`ping`)
            try:
                self.fs.makedirs(self.root, exist_ok=True)
            except OSError as error:
                raise ConfigError(
                    f"HITL_CHATOPS_STORE: cannot create the folder {self.root} ({error.strerror})."
                ) from None
        # Requests and answers are written once, so a replica may keep them; absence never is.
        self._known: OrderedDict[str, Request | Response | Claim] = OrderedDict()

    # -- paths -------------------------------------------------------------------------

    def _path(self, *parts: str) -> str:
        return "/".join((self.root, *parts))

    def _event_path(self, request_id: str, name: str) -> str:
        return self._path(REQUESTS, check_request_id(request_id), name)

    def url_of(self, path: str) -> str:
        """The address other fsspec users (flyte.storage, stock flyteplugins-hitl) can open."""
        return path if self._local else self.fs.unstrip_protocol(path)

    def request_url(self, request_id: str) -> str:
        return self.url_of(self._event_path(request_id, "request.json"))

    def response_url(self, request_id: str) -> str:
        return self.url_of(self._event_path(request_id, "response.json"))

    # -- requests ----------------------------------------------------------------------

    async def put_request(self, request: Request) -> None:
        """Write the request, then its pending marker (the marker is only an index)."""
        await self._write(self._event_path(request.request_id, "request.json"), _dump(request), durable=True)
        marker = {"created_at": request.created_at.isoformat(), "deadline": request.deadline.isoformat()}
        await self._write(self._path(PENDING, request.request_id), json.dumps(marker).encode())

    async def get_request(self, request_id: str) -> Request:
        path = self._event_path(request_id, "request.json")
        if isinstance(known := self._known.get(path), Request):
            return known
        data = await self._read(path)
        if data is None:
            raise EventNotFound(request_id)
        return self._remember(path, _load(Request, data, request_id))

    async def pending_ids(self) -> list[str]:
        """Ids in the pending index: O(pending), never a scan of every event ever made."""
        return await self._run(self._list_ids, self._path(PENDING))

    async def drop_pending(self, request_id: str) -> None:
        await self._mutate(self._remove, self._path(PENDING, check_request_id(request_id)))

    # -- responses ---------------------------------------------------------------------

    async def get_response(self, request_id: str) -> Response | None:
        """At most one storage read: the response, or None while nobody has answered."""
        path = self._event_path(request_id, "response.json")
        if isinstance(known := self._known.get(path), Response):
            return known
        data = await self._read(path)
        return None if data is None else self._remember(path, _load(Response, data, request_id))

    async def put_response(self, response: Response, event_name: str = "") -> None:
        """Exclusive create: the first outcome wins, a later one raises `AlreadyAnswered` (or `EventCancelled`).

        Then the outcome is indexed and the pending marker dropped. If either fails, the outcome
        still stands; the marker stays, and the reconciler indexes it and drops the marker later.
        """
        path = self._event_path(response.request_id, "response.json")
        try:
            await self._create(path, _dump(response))
        except FileExistsError:
            first = await self.get_response(response.request_id)
            raise AlreadyAnswered.of(first or response) from None
        self._remember(path, response)
        with contextlib.suppress(StoreError):
            await self.index_outcome(response, event_name)
            await self.drop_pending(response.request_id)

    # -- the recent-outcomes index -------------------------------------------------------

    async def index_outcome(self, response: Response, event_name: str = "") -> None:
        """Add an event's outcome to `hitl-outcomes/` (idempotent for a response with a time)."""
        record = OutcomeRecord(
            request_id=response.request_id,
            event_name=event_name,
            outcome=response.outcome,
            at=response.responded_at or utcnow(),
            via=response.via,
            responder=response.responder,
            value=response.value,
            reason=response.reason,
        )
        await self._put_outcome(record)

    async def index_expired(self, request: Request) -> None:
        """Record an event that reached its deadline without an answer or a default."""
        record = OutcomeRecord(
            request_id=request.request_id, event_name=request.event_name, outcome="expired", at=request.deadline
        )
        await self._put_outcome(record)

    async def _put_outcome(self, record: OutcomeRecord) -> None:
        at = record.at.astimezone(UTC)
        countdown = _KEY_EPOCH_MICROS - int(at.timestamp() * 1_000_000)
        key = f"{at:%Y-%m-%d}/{countdown:016d}-{check_request_id(record.request_id)}"
        await self._write(self._path(OUTCOMES, record.outcome, key), _dump(record))

    async def outcomes(self, outcome: OutcomeKind, *, limit: int, after: str | None = None) -> Page:
        """Newest first, `limit` at a time: the records and the cursor of the next page (None at the end).

        Reads one listing per day visited and one object per record returned, never every event.
        """
        if after is not None and not _OUTCOME_KEY.fullmatch(after):
            raise ValueError("not a cursor this bot returned")
        folder = self._path(OUTCOMES, outcome)

        def page() -> tuple[list[bytes], str | None]:
            keys: list[str] = []
            for day in sorted(self._names(folder), reverse=True):
                if after is not None and day > after[:10]:
                    continue  # newer than the cursor: on earlier pages
                names = sorted(self._names(f"{folder}/{day}"))
                keys += [k for k in (f"{day}/{n}" for n in names) if _listed_after(k, after)]
                if len(keys) > limit:
                    break
            shown = keys[:limit]
            found = self.fs.cat([f"{folder}/{k}" for k in shown]) if shown else {}
            blobs = [found[p] for p in (f"{folder}/{k}" for k in shown) if p in found]
            return blobs, (shown[-1] if len(keys) > limit else None)

        blobs, cursor = await self._run(page)
        return [_load(OutcomeRecord, blob, "outcomes") for blob in blobs], cursor

    def _names(self, folder: str) -> list[str]:
        try:
            return [str(p).rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(folder, detail=False)]
        except FileNotFoundError:
            return []

    # -- chat messages -----------------------------------------------------------------

    async def put_message(self, request_id: str, message: MessageRef) -> None:
        name = f"messages/{message.platform}-{message.key}.json"
        await self._write(self._event_path(request_id, name), _dump(message))

    async def messages(self, request_id: str) -> list[MessageRef]:
        event = self._event_path(request_id, "")
        folder = f"{event}messages/"

        def read_all() -> list[bytes]:
            # One prefix listing on S3 even when there are none; `ls` of an empty prefix lists its
            # parent again to tell a missing folder from a file. Local `find` ignores the prefix.
            paths = [str(p) for p in self.fs.find(event, prefix="messages/") if str(p).startswith(folder)]
            return list(self.fs.cat(paths).values()) if paths else []

        records = await (self._run(_read_folder, folder) if self._local else self._run(read_all))
        return [_load(MessageRef, raw, request_id) for raw in records]

    # -- claims: one replica does a thing once ------------------------------------------

    async def claim(self, request_id: str, name: str) -> bool:
        """Create `claims/<name>` exclusively (not done yet); True for the one caller that created it."""
        path = self._claim_path(request_id, name)
        if isinstance(self._known.get(path), Claim):  # only finished claims are kept
            return False
        try:
            await self._create(path, _dump(Claim(claimed_at=utcnow(), done=False)))
        except FileExistsError:
            return False
        return True

    async def get_claim(self, request_id: str, name: str) -> Claim | None:
        path = self._claim_path(request_id, name)
        if isinstance(known := self._known.get(path), Claim):
            return known
        data = await self._read(path)
        if data is None:
            return None
        claim = _load(Claim, data, request_id)
        return self._remember(path, claim) if claim.done else claim

    async def finish_claim(self, request_id: str, name: str) -> None:
        """Mark a claim done, so nobody takes it over; only its holder calls this."""
        path = self._claim_path(request_id, name)
        claim = Claim(claimed_at=utcnow(), done=True)
        await self._write(path, _dump(claim))
        self._remember(path, claim)

    async def release(self, request_id: str, name: str) -> None:
        await self._mutate(self._remove, self._claim_path(request_id, name))

    def _claim_path(self, request_id: str, name: str) -> str:
        return self._event_path(request_id, f"claims/{_safe_name(name)}")

    # -- outbox: message updates still owed (retried by the reconciler) -----------------

    async def put_outbox(self, request_id: str, update: str) -> None:
        path = self._path(OUTBOX, check_request_id(request_id))
        await self._write(path, json.dumps({"update": update}).encode())

    async def outbox_ids(self) -> list[str]:
        return await self._run(self._list_ids, self._path(OUTBOX))

    async def drop_outbox(self, request_id: str) -> None:
        await self._mutate(self._remove, self._path(OUTBOX, check_request_id(request_id)))

    # -- native Flyte conditions (bot/conditions.py): signals owed, and how each ended ----

    async def put_owed_signal(self, request_id: str, detail: dict[str, Any]) -> None:
        path = self._path(SIGNALS, check_request_id(request_id))
        await self._write(path, json.dumps(detail).encode())

    async def owed_signal_ids(self) -> list[str]:
        return await self._run(self._list_ids, self._path(SIGNALS))

    async def drop_owed_signal(self, request_id: str) -> None:
        await self._mutate(self._remove, self._path(SIGNALS, check_request_id(request_id)))

    async def put_signal_record(self, request_id: str, record: dict[str, Any]) -> None:
        await self._write(self._event_path(request_id, "signal.json"), json.dumps(record).encode())

    async def get_signal_record(self, request_id: str) -> dict[str, Any] | None:
        raw = await self._read(self._event_path(request_id, "signal.json"))
        return None if raw is None else dict(json.loads(raw))

    # -- platform conversations (where a bot may post proactively) -----------------------

    async def put_conversation(self, platform: str, conversation_id: str, data: dict[str, Any]) -> None:
        await self._write(self._conversation_path(platform, conversation_id), json.dumps(data).encode())

    async def get_conversation(self, platform: str, conversation_id: str) -> dict[str, Any] | None:
        raw = await self._read(self._conversation_path(platform, conversation_id))
        return None if raw is None else dict(json.loads(raw))

    def _conversation_path(self, platform: str, conversation_id: str) -> str:
        # Conversation ids hold ':' '@' and ';': encode them so no client text shapes the path.
        key = base64.urlsafe_b64encode(conversation_id.encode()).decode().rstrip("=")
        return self._path(CONVERSATIONS, f"{platform}-{key}.json")

    # -- health ------------------------------------------------------------------------

    async def ping(self) -> None:
        """Raise `StoreError` unless the root can be listed (a local folder must still be there)."""
        self._require_folder()
        await self._run(lambda: self.fs.ls(self.root, detail=False) if self.fs.exists(self.root) else None)

    # -- primitives --------------------------------------------------------------------

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        """A read (or any remote call): inline for local folders (cheaper than a thread hop), else on I/O threads."""
        with self._errors():
            if self._local:
                return func(*args)
            return await asyncio.get_running_loop().run_in_executor(_IO_THREADS, func, *args)

    async def _mutate(self, func: Callable[..., T], *args: Any) -> T:
        """A blocking write: local folders use the one disk thread (fsync and metadata stay off the loop)."""
        if not self._local:
            return await self._run(func, *args)
        with self._errors():
            return await DISK.run(lambda: func(*args))

    async def _read(self, path: str) -> bytes | None:
        try:
            return bytes(await self._run(self.fs.cat_file, path))
        except FileNotFoundError:
            return None

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Storage trouble (OSError, botocore's own errors, ...) becomes `StoreError`; absence and conflicts stay."""
        try:
            yield
        except (FileNotFoundError, FileExistsError, HitlError):
            raise
        except Exception as error:
            log.warning("store operation failed", extra={"error": type(error).__name__, "url": self.url})
            raise StoreError(f"object storage at {self.url} failed: {type(error).__name__}") from error

    def _require_folder(self) -> None:
        """A local store's folder, made at start, must still exist: writing would make a new, empty one."""
        if self._local and not os.path.isdir(self.root):
            log.warning("store folder missing", extra={"url": self.url})
            raise StoreError(f"the store folder {self.root} is missing: put it back, or restart to begin an empty one")

    def _list_ids(self, folder: str) -> list[str]:
        try:
            names = self.fs.ls(folder, detail=False)
        except FileNotFoundError:
            return []
        return [n for n in (str(p).rstrip("/").rsplit("/", 1)[-1] for p in names) if is_request_id(n)]

    def _remove(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(path)

    def _remember(self, path: str, obj: Known) -> Known:
        self._known[path] = obj
        if len(self._known) > _KNOWN_LIMIT:
            self._known.popitem(last=False)
        return obj

    async def _write(self, path: str, data: bytes, *, durable: bool = False) -> None:
        """Replace `path` atomically: readers see the old object or the new one, never half.

        `durable` syncs a local file to disk first; indexes and records that the reconciler can
        rebuild skip it. Object stores are durable once the PUT returns.
        """
        if not self._local:
            await self._run(self.fs.pipe_file, path, data)
            return
        self._require_folder()
        with self._errors():
            await DISK.put(path, data, durable=durable, publish=os.replace)

    async def _create(self, path: str, data: bytes) -> None:
        """Create `path` only if absent (durably); raise FileExistsError otherwise."""
        assert data, "an empty body would bypass the exclusive-create condition"
        if not self._local:
            await self._run(self._create_remote, path, data)
            return
        self._require_folder()
        with self._errors():
            # link is atomic and exclusive, unlike pipe_file(mode="create") on a local folder
            await DISK.put(path, data, durable=True, publish=os.link)

    def _create_remote(self, path: str, data: bytes) -> None:
        for attempt in range(_CONFLICT_RETRIES):
            try:
                self.fs.pipe_file(path, data, mode="create")
                return
            except OSError as error:
                # Racing conditional writes on AWS surface as EIO (409 ConditionalRequestConflict).
                if error.errno != errno.EIO or attempt == _CONFLICT_RETRIES - 1:
                    raise
                if self.fs.exists(path):
                    raise FileExistsError(path) from error


def _filesystem(url: str) -> tuple[AbstractFileSystem, str]:
    """fsspec's own implementation for the URL's protocol, ignoring later re-registrations.

    Importing flyte registers obstore for s3/gs/az; first-writer-wins relies on the conditional
    writes measured with s3fs and friends, so we build the default class (s3fs for s3://) directly.
    """
    protocol = fsspec.utils.get_protocol(url)
    known = known_implementations.get(protocol)
    if known is None:
        cls = fsspec.get_filesystem_class(protocol)
    else:
        module, _, name = known["class"].rpartition(".")
        try:
            cls = getattr(importlib.import_module(module), name)
        except ImportError:
            hint = "pip install 'hitl-chatops[s3]'" if protocol in ("s3", "s3a") else known.get("err", "")
            raise ConfigError(f"HITL_CHATOPS_STORE uses {protocol}:// but {module} is missing: {hint}") from None
    # Readers must see other processes' writes: no listing cache, no shared instance.
    options: dict[str, Any] = (
        {} if cls is LocalFileSystem else {"use_listings_cache": False, "skip_instance_cache": True}
    )
    if protocol in ("s3", "s3a"):
        # Fail within seconds when S3 is unreachable: a person is waiting (Slack gives us 3 s).
        options["config_kwargs"] = {"connect_timeout": 2, "read_timeout": 10, "retries": {"max_attempts": 2}}
        options["max_concurrency"] = 1  # cat_file: one GET, no HEAD first (and no LIST on a miss)
    options.update(cls._get_kwargs_from_urls(url))
    return cls(**options), str(cls._strip_protocol(url))


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


def _dump(model: Request | Response | MessageRef | Claim | OutcomeRecord) -> bytes:
    return model.model_dump_json(exclude_none=False).encode()


M = TypeVar("M", Request, Response, MessageRef, Claim, OutcomeRecord)


def _load(model: type[M], data: bytes, request_id: str) -> M:
    try:
        return model.model_validate_json(data)
    except ValidationError as error:
        log.error("unreadable object in store", extra={"request_id": request_id, "kind": model.__name__})
        raise StoreError(f"{model.__name__} of event {request_id} is not valid: {error.error_count()} errors") from None


def _read_folder(folder: str) -> list[bytes]:
    """Every record in a local folder, by name: one directory read, where fsspec's `find` walks the
    whole event folder and stats each entry. Temp files (`.tmp-…`) of writes in flight are skipped."""
    try:
        names = sorted(name for name in os.listdir(folder) if not name.startswith("."))
    except (FileNotFoundError, NotADirectoryError):  # no records yet, or a file in the folder's place
        return []
    found = []
    for name in names:
        with contextlib.suppress(FileNotFoundError), open(os.path.join(folder, name), "rb") as file:
            found.append(file.read())
    return found
