"""Core decisions that every surface relies on: who may answer, what a late answer is told, posting once."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from pathlib import Path

import pytest

from hitl_chatops.bot.errors import AlreadyAnswered, NotAllowed
from hitl_chatops.bot.protocol import MessageRef, Request, Responder, Response, utcnow
from hitl_chatops.bot.service import HitlService
from hitl_chatops.bot.store import Store
from tests.helpers import make_request


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
        (["U0DANA"], Responder(platform="web", user_name="web form"), False),
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


def crashed_claim(store: Store, request_id: str, body: dict[str, object], suffix: str = "") -> None:
    """Leave a post claim in the store as a replica that died mid-post (or an older version) did."""
    store.fs.makedirs(f"{store.root}/hitl-requests/{request_id}/claims", exist_ok=True)
    target = hashlib.sha256(b"C0DEPLOYS").hexdigest()[:24]
    claim = f"{store.root}/hitl-requests/{request_id}/claims/post-slack-{target}{suffix}"
    store.fs.pipe_file(claim, json.dumps(body).encode())


def replica_of(service: HitlService) -> HitlService:
    return HitlService(Store(service.store.url), secret="s" * 32, form_base_url="http://127.0.0.1")


POSTED = MessageRef(platform="slack", key="C0DEPLOYS-1.0", data={"channel": "C0DEPLOYS", "ts": "1.0"})


async def post(service: HitlService, request: Request, sent: list[str]) -> bool:
    async def send() -> MessageRef:
        sent.append("posted")
        return POSTED

    return await service.post_once(request, "slack", "C0DEPLOYS", send)


async def test_a_target_is_posted_once_and_a_failed_post_is_tried_again(service: HitlService) -> None:
    request = make_request(service.store)
    await service.store.put_request(request)

    async def fail() -> MessageRef:
        raise ConnectionError("slack is down")

    with pytest.raises(ConnectionError):
        await service.post_once(request, "slack", "C0DEPLOYS", fail)
    sent: list[str] = []
    assert await post(service, request, sent) is True
    assert await post(service, request, sent) is False
    assert await post(replica_of(service), request, sent) is False  # another replica, cold caches
    assert sent == ["posted"]


async def test_a_post_still_running_at_its_time_limit_is_cut_off_and_tried_again(service: HitlService) -> None:
    """A live holder gives up long before anyone may take its claim over: nobody posts while it still runs."""
    request = make_request(service.store)
    await service.store.put_request(request)
    service.post_send_seconds = 0.1

    async def hang() -> MessageRef:
        await asyncio.Event().wait()
        return POSTED

    attempt = asyncio.create_task(service.post_once(request, "slack", "C0DEPLOYS", hang))
    done, _ = await asyncio.wait({attempt}, timeout=10)
    attempt.cancel()
    assert attempt in done, "the post was never cut off"
    assert isinstance(attempt.exception(), TimeoutError)
    sent: list[str] = []
    assert await post(service, request, sent) is True  # the claim was released
    assert await post(replica_of(service), request, sent) is False
    assert sent == ["posted"]


@pytest.mark.parametrize(
    ("left_behind", "posts"),
    [
        ({"claimed_at": "2020-01-01T00:00:00+00:00", "done": False}, 1),  # its replica died mid-post
        ({"claimed_at": "2099-01-01T00:00:00+00:00", "done": False}, 0),  # another replica is posting now
        ({"claimed_at": "2020-01-01T00:00:00+00:00"}, 0),  # an older version's claim: it posted
    ],
)
async def test_a_post_claim_left_unfinished_is_taken_over_once(
    service: HitlService, left_behind: dict[str, object], posts: int
) -> None:
    request = make_request(service.store)
    await service.store.put_request(request)
    crashed_claim(service.store, request.request_id, left_behind)
    sent: list[str] = []
    assert await post(service, request, sent) is (posts == 1)
    assert await post(replica_of(service), request, sent) is False
    assert len(sent) == posts


async def test_a_post_whose_replicas_keep_dying_is_given_up_with_an_error(
    service: HitlService, caplog: pytest.LogCaptureFixture
) -> None:
    """Three replicas in a row died mid-post: no fourth copy, and an operator hears of it."""
    request = make_request(service.store)
    await service.store.put_request(request)
    for suffix in ("", ".2", ".3"):
        crashed_claim(
            service.store, request.request_id, {"claimed_at": "2020-01-01T00:00:00+00:00", "done": False}, suffix
        )
    sent: list[str] = []
    with caplog.at_level(logging.ERROR, logger="hitl_chatops.bot.service"):
        assert await post(service, request, sent) is False
    assert sent == []
    given_up = [r for r in caplog.records if r.getMessage().startswith("post given up")]
    assert len(given_up) == 1 and given_up[0].request_id == request.request_id  # type: ignore[attr-defined]


@pytest.mark.parametrize("store_heals", [True, False])
async def test_a_posted_message_whose_record_fails_is_not_posted_again(
    store_url: str, store_heals: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """Releasing the claim would post a second copy next to the unrecorded one: the record is retried instead."""
    service = HitlService(Store(store_url), secret="s" * 32, form_base_url="http://127.0.0.1")
    service.record_retry_seconds = 0.05
    request = make_request(service.store)
    await service.store.put_request(request)
    # A file where the event's messages folder belongs: every record write fails, as on a sick disk.
    obstacle = Path(service.store.root) / "hitl-requests" / request.request_id / "messages"
    obstacle.write_text("in the way")
    sent: list[str] = []

    class HealOnFirstFailure(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if store_heals and record.getMessage() == "store operation failed":
                obstacle.unlink(missing_ok=True)

    async def send() -> MessageRef:
        sent.append("posted")
        return POSTED

    heal = HealOnFirstFailure()
    logging.getLogger("hitl_chatops.bot.store").addHandler(heal)
    try:
        assert await service.post_once(request, "slack", "C0DEPLOYS", send) is True
    finally:
        logging.getLogger("hitl_chatops.bot.store").removeHandler(heal)
    assert await post(service, request, sent) is False
    assert await post(replica_of(service), request, sent) is False
    assert sent == ["posted"]
    assert await service.store.messages(request.request_id) == ([POSTED] if store_heals else [])
    assert ("message posted but not recorded" in caplog.text) is not store_heals
