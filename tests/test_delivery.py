"""Posting once: each target gets one message across replicas, crashes and record failures."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from pathlib import Path

import pytest

from hitl_chatops.bot.background import Background
from hitl_chatops.bot.delivery import Delivery
from hitl_chatops.bot.metrics import Metrics
from hitl_chatops.bot.protocol import MessageRef, Request
from hitl_chatops.bot.store import Store
from tests.fakes.events import make_request


def delivery_on(store_url: str) -> Delivery:
    return Delivery(Store(store_url), Metrics(), Background())


@pytest.fixture
def delivery(any_store_url: str) -> Delivery:
    return delivery_on(any_store_url)


def crashed_claim(store: Store, request_id: str, body: dict[str, object], suffix: str = "") -> None:
    """Leave a post claim in the store as a replica that died mid-post (or an older version) did."""
    store.fs.makedirs(f"{store.root}/hitl-requests/{request_id}/claims", exist_ok=True)
    target = hashlib.sha256(b"C0DEPLOYS").hexdigest()[:24]
    claim = f"{store.root}/hitl-requests/{request_id}/claims/post-slack-{target}{suffix}"
    store.fs.pipe_file(claim, json.dumps(body).encode())


def replica_of(delivery: Delivery) -> Delivery:
    return delivery_on(delivery.store.url)


POSTED = MessageRef(platform="slack", key="C0DEPLOYS-1.0", data={"channel": "C0DEPLOYS", "ts": "1.0"})


async def post(delivery: Delivery, request: Request, sent: list[str]) -> bool:
    async def send() -> MessageRef:
        sent.append("posted")
        return POSTED

    return await delivery.post_once(request, "slack", "C0DEPLOYS", send)


async def test_a_target_is_posted_once_and_a_failed_post_is_tried_again(delivery: Delivery) -> None:
    request = make_request(delivery.store)
    await delivery.store.put_request(request)

    async def fail() -> MessageRef:
        raise ConnectionError("slack is down")

    with pytest.raises(ConnectionError):
        await delivery.post_once(request, "slack", "C0DEPLOYS", fail)
    sent: list[str] = []
    assert await post(delivery, request, sent) is True
    assert await post(delivery, request, sent) is False
    assert await post(replica_of(delivery), request, sent) is False  # another replica, cold caches
    assert sent == ["posted"]


async def test_a_post_still_running_at_its_time_limit_is_cut_off_and_tried_again(delivery: Delivery) -> None:
    """A live holder gives up long before anyone may take its claim over: nobody posts while it still runs."""
    request = make_request(delivery.store)
    await delivery.store.put_request(request)
    delivery.post_send_seconds = 0.1

    async def hang() -> MessageRef:
        await asyncio.Event().wait()
        return POSTED

    attempt = asyncio.create_task(delivery.post_once(request, "slack", "C0DEPLOYS", hang))
    done, _ = await asyncio.wait({attempt}, timeout=10)
    attempt.cancel()
    assert attempt in done, "the post was never cut off"
    assert isinstance(attempt.exception(), TimeoutError)
    sent: list[str] = []
    assert await post(delivery, request, sent) is True  # the claim was released
    assert await post(replica_of(delivery), request, sent) is False
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
    delivery: Delivery, left_behind: dict[str, object], posts: int
) -> None:
    request = make_request(delivery.store)
    await delivery.store.put_request(request)
    crashed_claim(delivery.store, request.request_id, left_behind)
    sent: list[str] = []
    assert await post(delivery, request, sent) is (posts == 1)
    assert await post(replica_of(delivery), request, sent) is False
    assert len(sent) == posts


async def test_a_post_whose_replicas_keep_dying_is_given_up_with_an_error(
    delivery: Delivery, caplog: pytest.LogCaptureFixture
) -> None:
    """Three replicas in a row died mid-post: no fourth copy, and an operator hears of it."""
    request = make_request(delivery.store)
    await delivery.store.put_request(request)
    for suffix in ("", ".2", ".3"):
        crashed_claim(
            delivery.store, request.request_id, {"claimed_at": "2020-01-01T00:00:00+00:00", "done": False}, suffix
        )
    sent: list[str] = []
    with caplog.at_level(logging.ERROR, logger="hitl_chatops.bot.delivery"):
        assert await post(delivery, request, sent) is False
    assert sent == []
    given_up = [r for r in caplog.records if r.getMessage().startswith("post given up")]
    assert len(given_up) == 1 and given_up[0].request_id == request.request_id  # type: ignore[attr-defined]


@pytest.mark.parametrize("store_heals", [True, False])
async def test_a_posted_message_whose_record_fails_is_not_posted_again(
    store_url: str, store_heals: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """Releasing the claim would post a second copy next to the unrecorded one: the record is retried instead."""
    delivery = delivery_on(store_url)
    delivery.record_retry_seconds = 0.05
    request = make_request(delivery.store)
    await delivery.store.put_request(request)
    # A file where the event's messages folder belongs: every record write fails, as on a sick disk.
    obstacle = Path(delivery.store.root) / "hitl-requests" / request.request_id / "messages"
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
        assert await delivery.post_once(request, "slack", "C0DEPLOYS", send) is True
    finally:
        logging.getLogger("hitl_chatops.bot.store").removeHandler(heal)
    assert await post(delivery, request, sent) is False
    assert await post(replica_of(delivery), request, sent) is False
    assert sent == ["posted"]
    assert await delivery.store.messages(request.request_id) == ([POSTED] if store_heals else [])
    assert ("message posted but not recorded" in caplog.text) is not store_heals
