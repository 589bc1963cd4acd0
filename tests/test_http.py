"""The bot's HTTP surface over a real socket: API auth, signed form links, the form's outcomes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import aiohttp
import pytest

from hitl_chatops.bot.links import form_signature
from hitl_chatops.bot.protocol import Request
from hitl_chatops.bot.server import BotThread
from hitl_chatops.bot.store import Store
from tests.conftest import AUTH, SECRET
from tests.fakes.events import make_request
from tests.test_answers import NUMBERS


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def put(bot: BotThread, **fields: object) -> Request:
    request = make_request(bot.service.store, **fields)  # type: ignore[arg-type]
    await Store(bot.settings.store).put_request(request)
    return request


def link(bot: BotThread, request: Request) -> str:
    return bot.service.form_url(request.request_id)


async def test_healthz(bot: BotThread, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{bot.url}/healthz") as reply:
        assert reply.status == 200
        assert await reply.json() == {"status": "ok", "store": "reachable"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/events?status=pending"),
        ("POST", "/api/v1/events/0b7c3d4e-1f2a-4b5c-8d9e-0f1a2b3c4d5e/notify"),
        ("POST", "/api/v1/events/0b7c3d4e-1f2a-4b5c-8d9e-0f1a2b3c4d5e/response"),
    ],
)
@pytest.mark.parametrize("header", [None, "Bearer wrong-token", "Basic dGVzdA==", f"Bearer {SECRET}x", "Bearer é"])
async def test_api_requires_the_token(
    bot: BotThread, http: aiohttp.ClientSession, method: str, path: str, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    async with http.request(method, bot.url + path, headers=headers, json={"value": True}) as reply:
        assert reply.status == 401
        assert "Bearer" in (await reply.json())["error"]


async def test_pending_list_and_notify(bot: BotThread, http: aiohttp.ClientSession) -> None:
    older = await put(bot, event_name="first", data_type="int", min_value=1, max_value=5)
    newer = await put(bot, event_name="second", data_type="str", choices=["a", "b"])
    async with http.get(f"{bot.url}/api/v1/events?status=pending", headers=AUTH) as reply:
        events = (await reply.json())["events"]
    assert [e["event_name"] for e in events] == ["second", "first"]
    assert {"request_id", "event_name", "prompt", "data_type", "deadline", "form_url"} <= set(events[0])
    assert events[1]["form_url"] == link(bot, older)
    async with http.post(f"{bot.url}/api/v1/events/{newer.request_id}/notify", headers=AUTH) as reply:
        assert reply.status == 202
    async with http.post(f"{bot.url}/api/v1/events/0b7c3d4e-1f2a-4b5c-8d9e-0f1a2b3c4d5e/notify", headers=AUTH) as r:
        assert r.status == 404
    async with http.get(f"{bot.url}/api/v1/events?status=answered", headers=AUTH) as reply:
        assert reply.status == 400


async def test_api_answer(bot: BotThread, http: aiohttp.ClientSession) -> None:
    request = await put(bot, data_type="int", min_value=1, max_value=5, responders=["U1"])
    url = f"{bot.url}/api/v1/events/{request.request_id}/response"
    async with http.post(url, headers=AUTH, json={"value": "9"}) as reply:
        assert reply.status == 422
        assert "from 1 to 5" in (await reply.json())["error"]
    async with http.post(url, headers=AUTH, data=b"not json") as reply:
        assert reply.status == 400
    async with http.post(url, headers=AUTH, json={"value": 3, "responder": "release-bot"}) as reply:
        assert reply.status == 201
        assert (await reply.json())["value"] == 3
    async with http.post(url, headers=AUTH, json={"value": 4}) as reply:
        assert reply.status == 409
        body = await reply.json()
        assert "release-bot" in body["error"] and body["response"]["value"] == 3


def tampered(signature: str) -> str:
    """`signature` with one character changed: always a different string of the same length."""
    return ("B" if signature[0] == "A" else "A") + signature[1:]


@pytest.mark.parametrize("mangle", ["missing", "tampered", "other-event", "not-ascii"])
async def test_bad_form_links_are_403_and_write_nothing(
    bot: BotThread, http: aiohttp.ClientSession, mangle: str
) -> None:
    request = await put(bot, data_type="bool")
    other = await put(bot, data_type="bool")
    base = f"{bot.url}/form/{request.request_id}"
    sig = {
        "missing": "",
        "tampered": tampered(form_signature(SECRET, request.request_id)),
        "other-event": form_signature(SECRET, other.request_id),
        "not-ascii": "é" * 43,
    }[mangle]
    url = f"{base}?sig={sig}" if sig else base
    async with http.get(url) as reply:
        assert reply.status == 403
        assert "not valid" in await reply.text()
    async with http.post(url, data={"value": "true"}) as reply:
        assert reply.status == 403
    assert await bot.service.store.get_response(request.request_id) is None


async def test_expired_link_is_403_with_an_expired_page(bot: BotThread, http: aiohttp.ClientSession) -> None:
    request = await put(bot, data_type="bool", timeout=-1)
    for call in (http.get(link(bot, request)), http.post(link(bot, request), data={"value": "true"})):
        async with call as reply:
            assert reply.status == 403
            assert "expired" in await reply.text()
    assert await bot.service.store.get_response(request.request_id) is None


async def test_form_round_trip(bot: BotThread, http: aiohttp.ClientSession) -> None:
    request = await put(bot, data_type="int", min_value=1, max_value=10, prompt="Rows to drop <b>now</b>?")
    async with http.get(link(bot, request)) as reply:
        page = await reply.text()
    assert reply.status == 200
    assert 'name="value"' in page and 'type="number"' in page and 'min="1"' in page and 'max="10"' in page
    assert "&lt;b&gt;now&lt;/b&gt;" in page, "prompts are escaped"
    async with http.post(link(bot, request), data={"value": "11"}) as reply:
        page = await reply.text()
        assert reply.status == 422
        assert "Enter a whole number from 1 to 10." in page and 'value="11"' in page
    assert await bot.service.store.get_response(request.request_id) is None
    async with http.post(link(bot, request), data={"value": "7"}) as reply:
        assert reply.status == 200
        assert "You answered 7" in await reply.text()
    response = await bot.service.store.get_response(request.request_id)
    assert response is not None and response.value == 7 and response.via == "web"
    async with http.post(link(bot, request), data={"value": "8"}) as reply:
        assert "Already answered" in await reply.text()
    async with http.get(link(bot, request)) as reply:
        assert "Answered 7 by someone with the form link at " in await reply.text()


async def test_form_controls_per_type(bot: BotThread, http: aiohttp.ClientSession) -> None:
    cases = {
        "bool": ({"data_type": "bool"}, ['<select id="value" name="value"', 'value="true"', "Approve"]),
        "choices": ({"data_type": "str", "choices": ["a<b", "c"]}, ["<select", 'value="a&lt;b"']),
        "float": ({"data_type": "float"}, ['step="any"']),
        "str": ({"data_type": "str", "details": "line one\n<script>x</script>"}, ['type="text"', "&lt;script&gt;"]),
    }
    for fields, fragments in cases.values():
        request = await put(bot, **fields)
        async with http.get(link(bot, request)) as reply:
            page = await reply.text()
        for fragment in fragments:
            assert fragment in page
        assert "<script>x" not in page


async def test_form_refuses_restricted_events(bot: BotThread, http: aiohttp.ClientSession) -> None:
    request = await put(bot, data_type="bool", responders=["U0DANA"])
    async with http.post(link(bot, request), data={"value": "true"}) as reply:
        assert reply.status == 403
        assert "Only U0DANA may answer" in await reply.text()
    assert await bot.service.store.get_response(request.request_id) is None


async def test_numbers_table_through_the_api_and_the_form(bot: BotThread, http: aiohttp.ClientSession) -> None:
    """issue 21: other scripts' digits and "1_0" were saved; both surfaces take exactly what parse_answer takes."""
    for (data_type, text), expected in NUMBERS.items():
        api_event, form_event = await put(bot, data_type=data_type), await put(bot, data_type=data_type)
        url = f"{bot.url}/api/v1/events/{api_event.request_id}/response"
        async with http.post(url, headers=AUTH, json={"value": text}) as reply:
            assert reply.status == (422 if expected is None else 201), (text, await reply.text())
        async with http.post(link(bot, form_event), data={"value": text}) as reply:
            assert reply.status == (422 if expected is None else 200), (text, await reply.text())
        for event in (api_event, form_event):
            response = await bot.service.store.get_response(event.request_id)
            if expected is None:
                assert response is None, text
            else:
                assert response is not None and response.value == expected and type(response.value) is type(expected)


HOSTILE = (
    "**Ship** _now_? `make deploy` [runbook](https://runbook.example/deploy?a=1&b=2)\n\n"
    "[js](javascript:alert(1)) [JS](JAVASCRIPT:alert(1)) [ent](&#106;avascript:alert(1)) <javascript:alert(1)> "
    "[data](data:text/html,x) [rel](/admin) ![pixel](https://evil.example/p.png) "
    "<script>alert(1)</script> <img src=x onerror=alert(1)> <!channel>"
)


async def test_prompt_type_text_shows_task_text_literally(bot: BotThread, http: aiohttp.ClientSession) -> None:
    request = await put(bot, data_type="bool", title="**Deploy**", prompt=HOSTILE, details="_more_")
    async with http.get(link(bot, request)) as reply:
        page = await reply.text()
    assert "<h1>**Deploy**</h1>" in page and "<title>**Deploy** · hitl-chatops</title>" in page
    assert "**Ship** _now_? `make deploy` [runbook](https://runbook.example/deploy?a=1&amp;b=2)" in page
    assert '<p class="details">_more_</p>' in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;img src=x" in page
    assert "<strong>" not in page and "<code>" not in page and "<a href=" not in page


async def test_prompt_type_markdown_renders_the_authors_emphasis_code_and_web_links_only(
    bot: BotThread, http: aiohttp.ClientSession
) -> None:
    request = await put(
        bot,
        data_type="bool",
        prompt_type="markdown",
        title="**Deploy** `api`",
        prompt=HOSTILE,
        details="- _one_\n- two",
    )
    async with http.get(link(bot, request)) as reply:
        page = await reply.text()
    assert "<h1><strong>Deploy</strong> <code>api</code></h1>" in page
    assert "<title>Deploy api · hitl-chatops</title>" in page
    assert '<div class="prompt markdown"><p><strong>Ship</strong> <em>now</em>? <code>make deploy</code> ' in page
    runbook = '<a href="https://runbook.example/deploy?a=1&amp;b=2" rel="nofollow noopener noreferrer">runbook</a>'
    assert runbook in page
    assert '<div class="details markdown"><ul>\n<li><em>one</em></li>\n<li>two</li>\n</ul>\n</div>' in page
    # The runbook, and the image as a link to it (nothing loads): no other scheme, no relative link.
    assert re.findall(r'href="([^"]*)"', page) == [
        "https://runbook.example/deploy?a=1&amp;b=2",
        "https://evil.example/p.png",
    ]
    assert "<img" not in page and "<script>" not in page
    for literal in ("&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(1)&gt;", "&lt;!channel&gt;"):
        assert literal in page
    assert "[data](data:text/html,x) [rel](/admin)" in page

    async with http.post(link(bot, request), data={"value": "true"}) as reply:
        done = await reply.text()
    assert "<b><strong>Deploy</strong> <code>api</code></b>: <strong>Ship</strong>" in done
