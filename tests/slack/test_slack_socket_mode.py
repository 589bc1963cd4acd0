"""Socket Mode: the bot dials a (fake) Slack WebSocket, receives an interactive envelope and acks it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
from pydantic import SecretStr

from hitl_chatops.bot.server import BotThread
from tests.fakes.slack import APP_TOKEN, FakeSlack
from tests.slack.slack_helpers import block_actions_payload, create_event, find_element, wait_response


async def test_socket_mode_envelope_is_acked_and_the_answer_written(
    slack_bot: Callable[..., BotThread], fake_slack: FakeSlack
) -> None:
    bot = slack_bot(slack_app_token=SecretStr(APP_TOKEN), slack_signing_secret=None)
    opened = fake_slack.of("apps.connections.open")
    assert opened and all(call["_authorization"] == f"Bearer {APP_TOKEN}" for call in opened)
    for _ in range(500):  # a loaded machine may need a moment (or a reconnect) to be on the socket
        if fake_slack.sockets:
            break
        await asyncio.sleep(0.02)
    assert fake_slack.sockets >= 1

    request_id = await create_event("socket", bool)
    [posted] = await fake_slack.wait_for("chat.postMessage")
    approve = find_element(posted["blocks"], "hitl_answer")[0]
    action = {"action_id": approve["action_id"], "value": approve["value"]}
    fake_slack.push(
        {
            "envelope_id": "envelope-1",
            "type": "interactive",
            "accepts_response_payload": False,
            "payload": block_actions_payload("U0ALICE", action),
        }
    )
    response = await wait_response(request_id, seconds=20)
    assert response.value is True and response.responder.user_id == "U0ALICE"  # type: ignore[union-attr]
    for _ in range(250):  # the ack travels back over the socket on its own schedule
        if any(ack.get("envelope_id") == "envelope-1" for ack in fake_slack.socket_acks):
            break
        await asyncio.sleep(0.02)
    assert any(ack.get("envelope_id") == "envelope-1" for ack in fake_slack.socket_acks)
    await fake_slack.wait_for("chat.update")

    async with aiohttp.ClientSession() as session, session.post(f"{bot.url}/slack/events", data="x") as reply:
        assert reply.status == 404, "without signature checks the HTTP route must not exist"
