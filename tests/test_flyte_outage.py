"""A Flyte control plane that accepts connections and never answers (`BlackHole`): every call to it has
a deadline, the person's answer still acks at once, SIGTERM stops the bot within the grace period
with the signal owed in the store, and the next bot delivers it, once.

The bot talks to Flyte with the real `flyte.remote` client; the healthy control plane is
`tests/flyte_fake.py`'s fake on loopback.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import pytest
import yaml

from hitl_chatops.bot.protocol import ConditionRef, Request, Responder, Response, utcnow
from hitl_chatops.bot.reconciler import Reconciler
from hitl_chatops.bot.server import BotThread, free_port
from hitl_chatops.bot.store import Store
from tests.conftest import AUTH
from tests.fakes.events import make_request
from tests.fakes.flyte import DOMAIN, PROJECT, BlackHole, FakeFlyte
from tests.helpers import signal_record
from tests.test_cli import CLI, ROOT

RUN = "r-outage-1"
PARENT = "a0"


def grace_seconds() -> int:
    """The pod's grace period after SIGTERM, as the manifests set it (and docs/operation.md promises)."""
    deployment = yaml.safe_load((ROOT / "manifests" / "kubernetes" / "deployment.yaml").read_text())
    return int(deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"])


async def mirrored_event(store: Store, name: str) -> Request:
    """An event mirroring the condition `name`, as the plugin writes it in a remote run."""
    ref = ConditionRef(project=PROJECT, domain=DOMAIN, run_name=RUN, action_name=PARENT, name=name)
    request = make_request(store, event_name=name, condition=ref)
    await store.put_request(request)
    return request


async def owed_signals(store: Store, *names: str) -> list[str]:
    """Answered events whose signals are owed, as a bot leaves them when the control plane was down."""
    owed = []
    for name in names:
        request = await mirrored_event(store, name)
        responder = Responder(platform="api", user_name="ops")
        await store.create_response(
            Response(
                value=True,
                request_id=request.request_id,
                data_type="bool",
                responder=responder,
                responded_at=utcnow(),
                via="api",
            )
        )
        await store.put_owed_signal(request.request_id, {"error": "control plane down"})
        owed.append(request.request_id)
    return owed


@contextmanager
def served(log: Path, **settings: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`hitl-chatops serve` in its own process with `settings` in its environment; its log in `log`."""
    port = free_port("127.0.0.1")
    env = {**os.environ, "HITL_CHATOPS_LOG_FORMAT": "json", **settings}
    with log.open("wb") as sink:
        process = subprocess.Popen([CLI, "serve", "--port", str(port)], env=env, stderr=sink)
    try:
        deadline = time.monotonic() + 60
        while "hitl-chatops listening" not in log.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield process, f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


async def answer(url: str, request_id: str, value: object) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/api/v1/events/{request_id}/response", headers=AUTH, json={"value": value}) as reply,
    ):
        return reply.status


@pytest.mark.parametrize(
    ("flyte_timeout", "owed_because"),
    [
        (None, "flyte condition not signalled; the reconciler retries"),  # the call's deadline passes first
        ("600", "background work cut short; the reconciler finishes it"),  # shutdown's bound comes first
    ],
)
async def test_a_hanging_control_plane_owes_the_signal_sigterm_stops_the_bot_and_a_restart_delivers_it(
    flyte_timeout: str | None,
    owed_because: str,
    black_hole: BlackHole,
    fake_flyte: FakeFlyte,
    start_bot: Callable[..., BotThread],
    store_url: str,
    tmp_path: Path,
) -> None:
    store = Store(store_url)
    condition = fake_flyte.add_condition(RUN, PARENT, "gate")
    request = await mirrored_event(store, condition.name)
    log = tmp_path / "bot.log"
    settings = {"HITL_CHATOPS_FLYTE_ENDPOINT": black_hole.endpoint, "HITL_CHATOPS_FLYTE_INSECURE": "true"}
    if flyte_timeout:
        settings["HITL_CHATOPS_FLYTE_TIMEOUT_SECONDS"] = flyte_timeout
    with served(log, **settings) as (process, url):
        assert await answer(url, request.request_id, True) == 201, "the answer does not wait for Flyte"
        await black_hole.wait_for_call()  # the signal is on its way into the black hole
        process.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.to_thread(process.wait, grace_seconds())
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running {grace_seconds()} s after SIGTERM:\n{log.read_text()}") from None
        assert code == 0, log.read_text()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert owed_because in {line["msg"] for line in lines}
    assert {line["logger"].split(".")[0] for line in lines} == {"hitl_chatops"}, "nothing left behind to complain"
    assert await store.owed_signal_ids() == [request.request_id], "the signal is owed, in the store"
    assert fake_flyte.signals == []

    bot = start_bot(flyte_endpoint=fake_flyte.endpoint, flyte_insecure=True, reconcile_seconds=3600)
    assert (await signal_record(store, request.request_id))["outcome"] == "signalled"  # its first pass
    assert fake_flyte.signals_to(condition) == [True]
    assert await store.owed_signal_ids() == []
    await asyncio.to_thread(bot.call, Reconciler(bot.service, 1).step())
    assert len(fake_flyte.signals) == 1, "delivered once"


async def test_shutdown_records_a_signal_still_hanging_as_owed(
    black_hole: BlackHole, start_bot: Callable[..., BotThread], store_url: str
) -> None:
    """Shutdown waits for background work only so long: a signal cut short is owed, not lost."""
    bot = start_bot(flyte_endpoint=black_hole.endpoint, flyte_insecure=True, reconcile_seconds=0)
    store = Store(store_url)
    request = await mirrored_event(store, "gate")
    assert await answer(bot.url, request.request_id, False) == 201
    await black_hole.wait_for_call()
    await asyncio.to_thread(bot.call, bot.service.background.drain(0.1))
    assert await store.owed_signal_ids() == [request.request_id]


async def test_shutdown_cuts_a_reconciler_pass_hanging_on_flyte(
    black_hole: BlackHole, start_bot: Callable[..., BotThread], store_url: str
) -> None:
    """Even with a Flyte deadline longer than the grace period, a pass in progress does not hold shutdown."""
    store = Store(store_url)
    [request_id] = await owed_signals(store, "gate")
    bot = start_bot(
        flyte_endpoint=black_hole.endpoint, flyte_insecure=True, flyte_timeout_seconds=600, reconcile_seconds=3600
    )
    await black_hole.wait_for_call()  # its first pass retries the owed signal, into the black hole
    await asyncio.to_thread(bot.stop)
    assert await store.owed_signal_ids() == [request_id]


async def test_a_pass_gives_up_on_a_hanging_control_plane_after_one_call(
    black_hole: BlackHole, start_bot: Callable[..., BotThread], store_url: str
) -> None:
    """Owed signals are retried one after another: once Flyte does not answer in time, the rest wait
    for the next pass instead of holding every other repair for a deadline each."""
    bot = start_bot(
        flyte_endpoint=black_hole.endpoint, flyte_insecure=True, flyte_timeout_seconds=0.5, reconcile_seconds=0
    )
    store = Store(store_url)
    owed = await owed_signals(store, "first", "second", "third")
    report = await asyncio.to_thread(bot.call, Reconciler(bot.service, 1).step())
    assert report.signalled == 0
    assert sorted(await store.owed_signal_ids()) == sorted(owed), "still owed, for the next pass"
    assert black_hole.connections == 1, "one call given up, the others not started"
