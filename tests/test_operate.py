"""What an operator relies on (docs/operation.md): health that tells the truth, metrics kept off the public port."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from hitl_chatops.bot.errors import ConfigError
from hitl_chatops.bot.server import BotThread
from hitl_chatops.bot.store import Store
from tests.conftest import AUTH, SECRET
from tests.fakes.events import make_request


async def health(bot: BotThread) -> tuple[int, dict[str, str]]:
    async with aiohttp.ClientSession() as http, http.get(f"{bot.url}/healthz") as reply:
        return reply.status, await reply.json()


async def answer(bot: BotThread, request_id: str) -> int:
    url = f"{bot.url}/api/v1/events/{request_id}/response"
    async with aiohttp.ClientSession() as http, http.post(url, json={"value": True}, headers=AUTH) as reply:
        return reply.status


async def test_store_folder_moved_away_makes_healthz_503_and_answers_wait_for_it(
    start_bot: Callable[..., BotThread], tmp_path: Path
) -> None:
    bot = start_bot()
    store = Store(bot.settings.store)
    event = make_request(store)
    await store.put_request(event)
    async with aiohttp.ClientSession() as http, http.get(bot.service.form_url(event.request_id)) as reply:
        assert reply.status == 200  # the bot has read (and keeps) the request
    assert await health(bot) == (200, {"status": "ok", "store": "reachable"})

    folder, away = tmp_path / "store", tmp_path / "moved-away"
    folder.rename(away)
    assert await health(bot) == (503, {"status": "unhealthy", "store": "unreachable"})
    assert await answer(bot, event.request_id) == 503
    assert not folder.exists(), "an answer must not land in a new, empty store folder"

    away.rename(folder)
    assert await health(bot) == (200, {"status": "ok", "store": "reachable"})
    assert await store.get_response(event.request_id) is None
    assert await answer(bot, event.request_id) == 201


def test_store_folder_that_cannot_be_made_is_named_at_start(start_bot: Callable[..., BotThread]) -> None:
    with pytest.raises(ConfigError, match="HITL_CHATOPS_STORE: cannot create the folder /proc/hitl-chatops"):
        start_bot(store="file:///proc/hitl-chatops/store")


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as reply:
        return reply.status, await reply.text()


async def test_metrics_on_the_public_port_need_the_bearer_token(bot: BotThread) -> None:
    for header in (None, "Bearer wrong-token-0123456789", f"Basic {SECRET}"):
        status, body = await get(f"{bot.url}/metrics", {"Authorization": header} if header else None)
        assert status == 401 and "hitl_" not in body, body
    status, body = await get(f"{bot.url}/metrics", AUTH)
    assert status == 200 and "# TYPE hitl_events_answered_total counter" in body, body


async def test_metrics_port_serves_only_metrics_without_a_token(start_bot: Callable[..., BotThread]) -> None:
    bot = start_bot(metrics_port=0)
    port = bot.settings.metrics_port
    assert port and port != bot.settings.port
    internal = f"http://{bot.settings.host}:{port}"
    await health(bot)  # one request on the public port, so the handler histogram has a sample

    status, body = await get(f"{internal}/metrics")
    assert status == 200 and 'hitl_http_handler_seconds_count{route="/healthz"} 1.0' in body, body
    for path in ("/healthz", "/api/v1/events?status=pending", "/slack/events"):
        assert (await get(internal + path, AUTH))[0] == 404, path
