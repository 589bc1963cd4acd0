"""The fallback web form in real headless Chromium against a real bot on loopback.

A person answers through a browser, not through aiohttp's client: this proves the page's
markup (field name, `novalidate`, the select's labels, the inline error) works end to end,
and leaves phone and laptop screenshots in `test-artifacts/` for a human to look at.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Error, Page, Playwright, ViewportSize, expect, sync_playwright

import hitl_chatops.plugin as hitl
from hitl_chatops.bot.protocol import Responder, Response, RunInfo
from hitl_chatops.bot.server import BotThread
from hitl_chatops.bot.store import Store
from tests.fakes.events import make_request

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
VIEWPORTS: dict[str, ViewportSize] = {"phone": {"width": 390, "height": 844}, "laptop": {"width": 1280, "height": 800}}


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """One Chromium for the module; a missing browser fails loudly (CI installs it), never skips."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `apt-get install chromium` (or set CHROMIUM_PATH).")
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    except Error as error:
        pytest.fail(
            f"Chromium at {CHROMIUM} did not start ({error.message.splitlines()[0]}): run `apt-get install chromium`."
        )
    yield browser
    browser.close()


def open_page(browser: Browser, viewport: str) -> Page:
    context = browser.new_context(viewport=VIEWPORTS[viewport], device_scale_factor=1, is_mobile=viewport == "phone")
    context.set_default_timeout(10_000)
    return context.new_page()


def submit(page: Page) -> int:
    """Click the button as a person would; returns the HTTP status of the POST."""
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Submit answer").click()
    page.wait_for_load_state()
    return answer.value.status


def shoot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def stored_response(request_id: str) -> Response | None:
    """Read through the real store; on its own thread, since sync Playwright keeps a loop running here."""
    store = Store(os.environ["HITL_CHATOPS_STORE"])
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, store.get_response(request_id)).result(timeout=10)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_int_form_refuses_out_of_range_then_accepts(bot: BotThread, browser: Browser, viewport: str) -> None:
    event = hitl.new_event("replicas", int, prompt="How many replicas?", min_value=1, max_value=10)
    assert event.form_url and event.form_url.startswith(bot.url)
    page = open_page(browser, viewport)
    page.goto(event.form_url)
    expect(page.get_by_role("heading", name="replicas")).to_be_visible()
    field = page.locator("#value")
    expect(field).to_have_attribute("type", "number")
    expect(field).to_have_attribute("name", "value")

    field.fill("99")
    assert submit(page) == 422
    error = page.get_by_role("alert")
    expect(error).to_have_text("Enter a whole number from 1 to 10.")
    expect(page.locator("#value")).to_have_value("99")
    expect(page.locator(".invalid #value")).to_be_visible()
    # "next to the field": directly under the input, inside the same field group.
    field_box, error_box = page.locator("#value").bounding_box(), error.bounding_box()
    assert field_box and error_box
    assert 0 <= error_box["y"] - (field_box["y"] + field_box["height"]) <= 40
    assert abs(error_box["x"] - field_box["x"]) <= 2
    assert stored_response(event.request_id) is None
    shoot(page, f"form-error-{viewport}")

    page.locator("#value").fill("7")
    assert submit(page) == 200
    expect(page.get_by_role("heading")).to_have_text("Thanks, your answer is in")
    expect(page.get_by_text("You answered 7.")).to_be_visible()
    shoot(page, f"form-success-{viewport}")

    response = stored_response(event.request_id)
    assert response is not None
    assert response.value == 7 and type(response.value) is int
    assert response.via == "web"
    assert response.responder is not None and response.responder.platform == "web"
    page.context.close()


def test_bool_form_approves(bot: BotThread, browser: Browser) -> None:
    event = hitl.new_event(
        "deploy", bool, prompt="Ship build 42 to production?", details="3 services, 0 failing checks"
    )
    assert event.form_url
    page = open_page(browser, "phone")
    page.goto(event.form_url)
    select = page.get_by_label("Decision")
    expect(select).to_have_attribute("name", "value")
    labels = [text.strip() for text in select.locator("option:not([disabled])").all_inner_texts()]
    assert labels == ["Approve", "Reject"]
    shoot(page, "form-bool-phone")

    select.select_option(label="Approve")
    assert submit(page) == 200
    expect(page.get_by_role("heading")).to_have_text("Thanks, your answer is in")
    expect(page.get_by_text("You answered Approve.")).to_be_visible()
    shoot(page, "form-bool-success-phone")

    response = stored_response(event.request_id)
    assert response is not None
    assert response.value is True
    assert response.via == "web"
    page.context.close()


def test_a_personal_link_votes_in_a_team_decision_as_its_person(bot: BotThread, browser: Browser) -> None:
    """Ann's own link (as Slack or Teams send it to her alone): the decision's progress above the form,
    whom it answers as, and her vote counted as hers."""
    ann = Responder(platform="slack", user_id="U0ANN", user_name="Ann")
    event = hitl.new_event("deploy", bool, prompt="Ship build 42?", approvals=2, responders=["slack:U0ANN", "U0BOB"])
    page = open_page(browser, "phone")
    page.goto(bot.service.form_url(event.request_id, ann))
    expect(page.locator("p.prompt", has_text="0 of 2 approvals")).to_be_visible()
    expect(page.locator("dt", has_text="Answering as").locator("+ dd")).to_have_text("Ann")
    shoot(page, "form-personal-deciding-phone")

    page.get_by_label("Decision").select_option(label="Approve")
    assert submit(page) == 200
    expect(page.get_by_role("heading")).to_have_text("Thanks, your answer is counted")
    expect(page.get_by_text("1 of 2 approvals").first).to_be_visible()
    shoot(page, "form-personal-counted-phone")
    assert stored_response(event.request_id) is None, "one approval of two decides nothing"
    page.context.close()


# -- the page protects its signed URL -----------------------------------------------------------

BRAND = "rgb(75, 59, 219)"  # --brand in the page's stylesheet


def watch_console(page: Page) -> list[str]:
    """Every console message; Chromium reports each CSP violation there."""
    messages: list[str] = []
    page.on("console", lambda message: messages.append(f"{message.type}: {message.text}"))
    return messages


def test_form_is_styled_under_a_strict_csp_with_no_violation(bot: BotThread, browser: Browser) -> None:
    event = hitl.new_event("replicas", int, prompt="How many replicas?", min_value=1, max_value=10)
    assert event.form_url
    page = open_page(browser, "laptop")
    console = watch_console(page)
    response = page.goto(event.form_url)
    assert response is not None
    headers = response.headers
    policy = {d.split()[0]: d.split()[1:] for d in headers["content-security-policy"].split("; ")}
    assert policy["default-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert len(policy["style-src"]) == 1 and policy["style-src"][0].startswith("'sha256-"), policy
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"

    button = page.get_by_role("button", name="Submit answer")
    expect(button).to_have_css("background-color", BRAND)
    expect(page.locator("body")).to_have_css("background-color", "rgb(244, 246, 250)")
    page.locator("#value").fill("99")
    assert submit(page) == 422  # the POST back to the page is allowed (form-action 'self')
    expect(page.get_by_role("alert")).to_have_css("color", "rgb(180, 35, 24)")
    assert [line for line in console if "Content Security Policy" in line] == [], console
    page.context.close()


def test_markdown_prompt_renders_under_the_strict_csp_and_runs_nothing(bot: BotThread, browser: Browser) -> None:
    """`prompt_type="markdown"`: the author's emphasis, code and links; no script, image or CSP violation."""
    from tests.test_http import HOSTILE

    event = hitl.new_event("deploy", bool, title="Deploy `api`", prompt=HOSTILE, prompt_type="markdown")
    assert event.form_url
    page = open_page(browser, "laptop")
    console = watch_console(page)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(event.form_url)
    expect(page.get_by_role("heading", name="Deploy api")).to_be_visible()
    expect(page.locator(".prompt strong")).to_have_text("Ship")
    expect(page.locator(".prompt code")).to_have_text("make deploy")
    runbook = page.get_by_role("link", name="runbook")
    expect(runbook).to_have_attribute("href", "https://runbook.example/deploy?a=1&b=2")
    expect(runbook).to_have_attribute("rel", "nofollow noopener noreferrer")
    assert page.evaluate("[document.images.length, document.scripts.length]") == [0, 0]
    assert page.evaluate("[...document.links].every(a => a.protocol === 'https:')")
    expect(page.get_by_text("<script>alert(1)</script>", exact=False)).to_be_visible()
    shoot(page, "form-markdown-laptop")
    assert dialogs == []
    assert [line for line in console if "Content Security Policy" in line] == [], console
    page.context.close()


def test_form_cannot_be_framed(bot: BotThread, browser: Browser) -> None:
    event = hitl.new_event("deploy", bool, prompt="Ship it?")
    assert event.form_url
    page = open_page(browser, "laptop")
    console = watch_console(page)
    with page.expect_response(event.form_url) as framed:
        page.set_content(f'<iframe src="{event.form_url}" width="600" height="400"></iframe>')
    assert framed.value.status == 200
    frame = page.frame_locator("iframe")
    expect(frame.get_by_role("heading", name="deploy")).to_have_count(0)
    assert any("frame-ancestors 'none'" in line or "X-Frame-Options" in line for line in console), console
    page.context.close()


def test_run_link_sends_no_referer_with_the_signed_url(bot: BotThread, browser: Browser, tmp_path: Path) -> None:
    """The signed link is the credential; a link on the page must not pass it on."""
    seen: dict[str, str | None] = {}  # path: the Referer it came with

    class Run(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen[self.path] = self.headers.get("Referer")
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<h1>run r-42</h1>")

        def log_message(self, *_: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Run)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        store = Store(os.environ["HITL_CHATOPS_STORE"])
        run = RunInfo(run_name="r-42", url=f"http://127.0.0.1:{server.server_address[1]}/runs/r-42")
        event = make_request(store, run=run)
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, store.put_request(event)).result(timeout=10)
        page = open_page(browser, "laptop")
        page.goto(bot.service.form_url(event.request_id))
        page.get_by_role("link", name="r-42").click()
        expect(page.get_by_role("heading", name="run r-42")).to_be_visible()
    finally:
        server.shutdown()
        server.server_close()
    assert "/runs/r-42" in seen and seen["/runs/r-42"] is None, seen
    page.context.close()


def pending_form_url(bot: BotThread, name: str, seconds: float = 20) -> str:
    """The form link of the run's event once the bot lists it (sync: Playwright's loop runs here)."""
    import json
    import time
    import urllib.request

    from tests.conftest import AUTH

    ask = urllib.request.Request(f"{bot.url}/api/v1/events", headers=AUTH)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with urllib.request.urlopen(ask, timeout=5) as reply:
            events = [e for e in json.load(reply)["events"] if e["event_name"] == name]
        if events:
            return str(events[0]["form_url"])
        time.sleep(0.1)
    raise AssertionError(f"event {name} never appeared")


def test_structured_form_per_field_errors_then_success(bot: BotThread, browser: Browser) -> None:
    """A Flyte run asks for a model; the person fixes one bad field and the run gets the instance."""
    import json

    import flyte

    from tests import lifecycle_workflows as flows
    from tests.fakes.flyte import Run

    flyte.init()
    run = Run(flows.decide_expense)
    page = open_page(browser, "laptop")
    page.goto(pending_form_url(bot, "expense_decision"))
    context = page.locator("table.context")
    expect(context).to_contain_text("GPU hours")
    expect(context).to_contain_text("120.5")
    expect(page.locator("#approved")).to_have_attribute("name", "approved")
    expect(page.locator("#approved")).to_have_value("true")  # the proposal, pre-filled
    expect(page.locator("#approved_amount")).to_have_value("100")
    expect(page.locator("#notes")).to_have_attribute("name", "notes")
    expect(page.get_by_label("Approved amount")).to_have_attribute("type", "number")

    page.locator("#approved_amount").fill("20000")
    page.locator("#notes").fill("only the GPU part")
    assert submit(page) == 422
    expect(page.locator("#approved_amount-error")).to_have_text("Enter a number from 0 to 10000.")
    expect(page.locator("#approved-error")).to_have_count(0)
    expect(page.locator("#notes")).to_have_value("only the GPU part")  # what was typed stays
    expect(page.locator("#approved_amount")).to_have_value("20000")
    assert run.running
    shoot(page, "form-structured-error-laptop")

    page.locator("#approved_amount").fill("80")
    assert submit(page) == 200
    expect(
        page.get_by_text("You answered Approved: Yes · Approved amount: 80 · Notes: only the GPU part.")
    ).to_be_visible()
    shoot(page, "form-structured-success-laptop")
    result = json.loads(run.join())
    assert result["type"] == "ExpenseDecision"
    assert result["output"] == {"approved": True, "approved_amount": 80.0, "notes": "only the GPU part"}
    assert result["via"] == "web" and result["by"]["platform"] == "web"
    page.context.close()
