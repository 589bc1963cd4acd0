"""Requests a careless or hostile client sends to `/slack/events`: a 4xx and one short log line each.

Anyone on the network can reach the route, so junk headers and bodies are answered like forged
signatures, never with a 500 and a traceback per request (issue 13).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from urllib.parse import urlencode

import aiohttp
import pytest

from hitl_chatops.bot.server import BotThread
from tests.fakes.slack import SIGNING_SECRET, FakeSlack, signed_headers
from tests.slack.slack_helpers import post_signed

pytestmark = pytest.mark.asyncio
BotFactory = Callable[..., BotThread]
FORM = "application/x-www-form-urlencoded"
NOT_UTF8 = b"payload=\xff\xfe"
BODY = b"command=%2Fhitl&text=help&user_id=U0ALICE&channel_id=C0DEPLOYS&trigger_id=1.2"


def signed_over_bytes(body: bytes, timestamp: str) -> dict[str, str]:
    """Slack's HMAC over the raw bytes, so even a body that is not UTF-8 carries a correct signature."""
    digest = hmac.new(SIGNING_SECRET.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
    signature = f"v0={digest.hexdigest()}"
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature, "Content-Type": FORM}


def now() -> str:
    return str(int(time.time()))


Case = tuple[bytes, dict[str, str], int, str]  # body, headers, expected status, what the log line says
# Built when the test runs: a signature made at import could be stale (over 300 s) by then.
MALFORMED: dict[str, Callable[[], Case]] = {
    "timestamp not a number": lambda: (BODY, signed_over_bytes(BODY, "abc"), 401, "timestamp"),
    "timestamp with a fraction": lambda: (BODY, signed_over_bytes(BODY, "1.5"), 401, "timestamp"),
    "timestamp of 5000 digits": lambda: (BODY, signed_over_bytes(BODY, "9" * 5000), 401, "timestamp"),
    "timestamp missing": lambda: (BODY, {"X-Slack-Signature": "v0=00", "Content-Type": FORM}, 401, "timestamp"),
    "body not UTF-8": lambda: (NOT_UTF8, signed_over_bytes(NOT_UTF8, now()), 401, "UTF-8"),
    "unknown charset": lambda: (
        BODY,
        signed_headers(BODY.decode()) | {"Content-Type": f"{FORM}; charset=x"},
        400,
        "LookupError",
    ),
}


@pytest.mark.parametrize("name", list(MALFORMED))
async def test_malformed_request_is_a_4xx_with_one_short_log_line(
    slack_bot: BotFactory, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    bot = slack_bot()
    body, headers, expected, said = MALFORMED[name]()
    caplog.set_level(logging.INFO)
    caplog.clear()
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{bot.url}/slack/events", data=body, headers=headers) as reply,
    ):
        assert reply.status == expected, await reply.text()

    assert [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []
    (line,) = [r for r in caplog.records if r.name.startswith("hitl_chatops.adapters.slack")]
    assert line.levelno == logging.WARNING and len(caplog.text) < 300, caplog.text
    assert said in str(vars(line).get("reason") or vars(line).get("error")), vars(line)
    assert fake_slack.of("chat.postEphemeral") == []


async def test_signature_that_is_not_ascii_is_a_401(slack_bot: BotFactory, caplog: pytest.LogCaptureFixture) -> None:
    """aiohttp reads header bytes as UTF-8; `hmac.compare_digest` raises on non-ASCII text."""
    bot = slack_bot()
    caplog.set_level(logging.INFO)
    request = (
        b"POST /slack/events HTTP/1.1\r\nHost: bot\r\nContent-Type: " + FORM.encode() + b"\r\n"
        b"X-Slack-Request-Timestamp: " + now().encode() + b"\r\n"
        b"X-Slack-Signature: v0=\xc3\xa9\r\nContent-Length: " + str(len(BODY)).encode() + b"\r\n"
        b"Connection: close\r\n\r\n" + BODY
    )
    host, port = bot.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    assert status_line.split()[1] == b"401", status_line
    assert [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []


def submission(view: object) -> str:
    """A signed `view_submission` whose view is `view` (Slack's own never look like these)."""
    payload = {"type": "view_submission", "user": {"id": "U0ALICE"}, "team": {"id": "T0"}, "view": view}
    return urlencode({"payload": json.dumps(payload)})


RID = "0f3c9a8e-1d2b-4c5d-8e9f-a0b1c2d3e4f5"
VIEW = {"type": "modal", "callback_id": "hitl_submit", "id": "V0001", "private_metadata": RID}
ODD_VIEWS: dict[str, object] = {
    "values a number": VIEW | {"state": {"values": 5}},
    "no state": VIEW,
    "no private_metadata": {k: v for k, v in VIEW.items() if k != "private_metadata"} | {"state": {"values": {}}},
    "metadata a list": VIEW | {"private_metadata": [RID], "state": {"values": {}}},
    "input not an object": VIEW | {"state": {"values": {"hitl_value": {"value": "x"}}}},
    "view a number": 5,
    "view a list": ["hitl_submit"],
    "option not an object": VIEW | {"state": {"values": {"hitl_value": {"value": {"selected_option": 5}}}}},
}


@pytest.mark.parametrize("name", list(ODD_VIEWS))
async def test_a_signed_submission_of_an_odd_shape_is_a_400_with_one_log_line(
    slack_bot: BotFactory, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    bot = slack_bot()
    caplog.set_level(logging.INFO)
    caplog.clear()
    status, _ = await post_signed(bot.url, submission(ODD_VIEWS[name]))
    assert status == 400
    assert [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []
    (line,) = [r for r in caplog.records if r.name.startswith("hitl_chatops")]
    assert line.getMessage().startswith("malformed slack") and len(caplog.text) < 300, caplog.text
    assert fake_slack.of("views.update") == [] and fake_slack.of("chat.postEphemeral") == []
