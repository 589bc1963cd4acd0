"""Core decisions that every surface relies on: who may answer, what a late answer is told."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from hitl_chatops.bot.errors import AlreadyAnswered, InvalidValue, NotAllowed, StoreUnavailable
from hitl_chatops.bot.history import Span
from hitl_chatops.bot.protocol import NOTE_LIMIT, Responder, Response, utcnow
from hitl_chatops.bot.service import HitlService
from hitl_chatops.bot.store import Store
from tests.fakes.events import make_request


@pytest.fixture
def service(any_store_url: str) -> HitlService:
    return HitlService(Store(any_store_url), secret="s" * 32, form_base_url="http://127.0.0.1")


@pytest.mark.parametrize(
    ("responders", "who", "allowed"),
    [
        ([], Responder(platform="web"), True),
        (["*"], Responder(platform="slack", user_id="U9"), True),
        (["U0DANA"], Responder(platform="slack", user_id="U0DANA", user_name="dana"), True),
        (["slack:U0DANA"], Responder(platform="slack", user_id="U0DANA"), True),
        (["slack:U0DANA"], Responder(platform="teams", user_id="U0DANA"), False),
        (["dana"], Responder(platform="teams", user_id="aad-1", user_name="dana"), False),
        (["U0DANA"], Responder(platform="slack", user_id="U0EVE", user_name="U0DANA"), False),
        (["U0DANA"], Responder.form_link_holder(), False),
        (["U0DANA"], Responder(platform="slack", user_id=""), False),
    ],
)
async def test_who_may_answer(service: HitlService, responders: list[str], who: Responder, allowed: bool) -> None:
    request = make_request(service.store, responders=responders)
    assert await service.may_answer(request, who) is allowed


async def test_refusal_names_who_may_answer_and_writes_nothing(service: HitlService) -> None:
    request = make_request(service.store, responders=["U0DANA"])
    await service.store.put_request(request)
    with pytest.raises(NotAllowed, match="Only U0DANA may answer"):
        await service.respond(request.request_id, "true", Responder(platform="slack", user_id="U0EVE"), "slack")
    assert await service.store.get_response(request.request_id) is None


@pytest.mark.parametrize(
    ("late", "value", "seconds_left"),
    [
        (Responder(platform="slack", user_id="U0EVE"), "true", 600),  # not allowed
        (Responder(platform="slack", user_id="U0DANA"), "maybe", 600),  # not a bool
        (Responder(platform="slack", user_id="U0DANA"), "true", -1),  # past the deadline
    ],
)
async def test_a_late_answer_is_told_who_answered_whatever_else_is_wrong(
    service: HitlService, late: Responder, value: str, seconds_left: float
) -> None:
    request = make_request(service.store, responders=["U0DANA"], timeout=seconds_left)
    await service.store.put_request(request)
    first = Response(
        value=False,
        request_id=request.request_id,
        data_type="bool",
        responder=Responder(platform="teams", user_id="aad-1", user_name="Dana"),
        responded_at=utcnow(),
        via="teams",
    )
    await service.store.put_response(first)
    with pytest.raises(AlreadyAnswered) as refused:
        await service.respond(request.request_id, value, late, "slack")
    assert refused.value.response == first


DANA = Responder(platform="slack", user_id="U0DANA")
ERIN = Responder(platform="slack", user_id="U0ERIN")
WAITED_ON: dict[str, Callable[[HitlService, str], Awaitable[object]]] = {
    "respond": lambda service, request_id: service.respond(request_id, "true", DANA, "slack"),
    "cancel": lambda service, request_id: service.cancel(request_id, "superseded", DANA, "api"),
    "check": lambda service, request_id: service.check(request_id, DANA),
    "event": lambda service, request_id: service.event(request_id),
    "pending": lambda service, request_id: service.pending(DANA),
    "inbox": lambda service, request_id: service.inbox(DANA, shown=20),
    "recent": lambda service, request_id: service.recent("completed", limit=10),
    "answer": lambda service, request_id: service.answer(request_id, "true", DANA, "slack"),
    "approve": lambda service, request_id: service.approve(request_id, DANA, "slack"),
    "reject": lambda service, request_id: service.reject(request_id, DANA, "slack", reason="no"),
    "propose": lambda service, request_id: service.propose(request_id, "true", DANA, "slack"),
    "delegate": lambda service, request_id: service.delegate(request_id, DANA, ERIN, "slack"),
    "state": lambda service, request_id: service.state(request_id),
    "history": lambda service, request_id: service.history(request_id),
    "stats": lambda service, request_id: service.stats(Span(since=utcnow() - timedelta(days=7))),
    "answer_batch": lambda service, request_id: service.answer_batch(request_id, True, DANA, "slack"),
    "batch_events": lambda service, request_id: service.batch_events(request_id),
}
SAVING = {"respond", "cancel", "answer", "approve", "reject", "propose", "delegate", "answer_batch"}


@pytest.mark.parametrize("method", sorted(WAITED_ON))
async def test_store_down_is_try_again_for_everything_a_person_waits_on(
    method: str, store_url: str, tmp_path: Path
) -> None:
    """One contract, whatever the call: `StoreUnavailable` saying what was not done, never a raw `StoreError`."""
    service = HitlService(Store(store_url), secret="s" * 32, form_base_url="http://127.0.0.1")
    request = make_request(service.store, responders=["U0DANA"])
    await service.store.put_request(request)
    down = HitlService(Store(store_url), secret="s" * 32, form_base_url="http://127.0.0.1")  # nothing cached
    root = Path(service.store.root)
    root.rename(tmp_path / "moved")  # noqa: ASYNC240 -- the test's own setup
    with pytest.raises(StoreUnavailable) as refused:
        await WAITED_ON[method](down, request.request_id)
    saving = method in SAVING
    assert str(refused.value) == str(StoreUnavailable(reading=not saving))
    (tmp_path / "moved").rename(root)
    assert await service.store.get_response(request.request_id) is None  # nothing half-written


def test_every_public_coroutine_of_the_service_keeps_the_contract() -> None:
    """A new read or write a person waits on gets the contract (or is named here as nobody's wait)."""
    nobody_waits = {"expire"}  # the reconciler's; it retries on its next pass
    no_store = {"authorize", "may_answer"}  # decided from the event in hand and the platform's groups
    public = {
        name
        for name, method in vars(HitlService).items()
        if not name.startswith("_") and inspect.iscoroutinefunction(method)
    }
    with_contract = {name for name in public if hasattr(vars(HitlService)[name], "__wrapped__")}
    assert with_contract == set(WAITED_ON)
    assert public == with_contract | nobody_waits | no_store


async def test_a_reason_or_a_note_past_the_limit_is_refused_saying_so_and_writes_nothing(service: HitlService) -> None:
    """Every surface takes a reason or note of at most `NOTE_LIMIT` characters; the core says so too,
    for a surface that did not check (it was a bare validation error for a note, and no limit for a reason)."""
    request = make_request(service.store, approvals=2, responders=["U0DANA", "U0ERIN"])
    await service.store.put_request(request)
    long = "x" * (NOTE_LIMIT + 1)
    with pytest.raises(InvalidValue, match=f"Keep the reason to {NOTE_LIMIT} characters"):
        await service.reject(request.request_id, DANA, "slack", reason=long)
    with pytest.raises(InvalidValue, match=f"Keep the reason to {NOTE_LIMIT} characters"):
        await service.answer(request.request_id, "false", DANA, "slack", reason=long)
    with pytest.raises(InvalidValue, match=f"Keep the note to {NOTE_LIMIT} characters"):
        await service.delegate(request.request_id, DANA, ERIN, "slack", note=long)
    assert await service.history(request.request_id) == ()
    verdict = await service.reject(request.request_id, DANA, "slack", reason="x" * NOTE_LIMIT)
    assert verdict.decided and verdict.outcome is not None and verdict.outcome.reason == "x" * NOTE_LIMIT
