"""Interop with stock flyteplugins-hitl 2.12.1: each side's answer satisfies the other's wait."""

from __future__ import annotations

import json
from collections.abc import Callable

import aiohttp
import flyte.storage
import pytest
from flyteplugins.hitl._event import wait_for_input_event

import hitl_chatops.plugin as hitl
from hitl_chatops.bot.server import BotThread


async def test_stock_wait_loop_reads_our_answer(start_bot: Callable[..., BotThread]) -> None:
    start_bot()
    event = await hitl.new_event.aio("stock_reads_us", data_type=int, prompt="How many?", poll_interval_seconds=0.1)
    assert event.form_url
    async with aiohttp.ClientSession() as http, http.post(event.form_url, data={"value": "12"}) as reply:
        assert reply.status == 200
    value = await wait_for_input_event(
        name=event.name,
        request_id=event.request_id,
        response_path=event.request.response_path,
        timeout_seconds=5,
        poll_interval_seconds=1,
    )
    assert value == 12


async def test_our_wait_reads_a_stock_answer(start_bot: Callable[..., BotThread]) -> None:
    start_bot()
    event = await hitl.new_event.aio("we_read_stock", data_type=bool, prompt="Ship?", poll_interval_seconds=0.1)
    stock_answer = {"value": True, "status": "completed", "request_id": event.request_id, "data_type": "bool"}
    # The same call stock's /submit/json makes, to the response_path it is given.
    await flyte.storage.put_stream(json.dumps(stock_answer).encode(), to_path=event.request.response_path)
    assert await event.wait.aio() is True


async def test_our_request_is_a_superset_of_the_stock_request(start_bot: Callable[..., BotThread]) -> None:
    start_bot()
    event = await hitl.new_event.aio("shape", data_type=float, prompt="Threshold?")
    stored = json.loads(open(event.request.request_path).read())  # noqa: ASYNC230, SIM115 - one small local read
    stock_keys = {"request_id", "event_name", "scope", "prompt", "data_type", "status", "request_path", "response_path"}
    assert stock_keys <= set(stored)
    assert stored["status"] == "pending" and stored["data_type"] == "float" and stored["scope"] == "run"
    assert stored["prompt_type"] == "text"  # Flyte's default: the prompt is shown literally


async def test_prompt_type_is_stored_as_asked(start_bot: Callable[..., BotThread]) -> None:
    start_bot()
    event = await hitl.new_event.aio("md", data_type=bool, prompt="Ship **it**?", prompt_type="markdown")
    assert event.request.prompt_type == "markdown"


async def test_stock_spellings_work(start_bot: Callable[..., BotThread]) -> None:
    """`Event.create.aio`, `wait.aio`, `form_url`, `api_url`, `name`, `scope`: as flyteplugins-hitl has them."""
    start_bot()
    event = await hitl.Event.create.aio("spelled", data_type=str, scope="run", prompt="Name?")
    assert isinstance(event, hitl.Event)
    assert (event.name, event.scope, event.prompt, event.timeout_seconds) == ("spelled", "run", "Name?", 3600)
    assert event.api_url and event.api_url.endswith(f"/api/v1/events/{event.request_id}/response")
    assert "spelled" in repr(event)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"data_type": dict}, "bool, int, float, str"),
        ({"data_type": int, "min_value": 5, "max_value": 1}, "greater than max_value"),
        ({"data_type": bool, "choices": [True]}, "choices need data_type str or int"),
        ({"data_type": str, "channels": ["#deploys"]}, 'look like "slack:C0123"'),
        ({"data_type": str, "scope": "task"}, 'scope must be "run"'),
        ({"data_type": str, "timeout_seconds": 0}, "must be positive"),
        ({"data_type": str, "prompt_type": "html"}, 'prompt_type must be "text" or "markdown"'),
    ],
)
async def test_bad_arguments_fail_at_the_call_site(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        await hitl.new_event.aio("bad", **kwargs)  # type: ignore[arg-type]
