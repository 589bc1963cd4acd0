"""The question in a local run's terminal: real Flyte local runs in their own process, under a
pseudo-terminal (pexpect) or with stdin a pipe, each with its in-process bot (no HITL_CHATOPS_URL)."""

from __future__ import annotations

import asyncio
import io
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pexpect
import pytest

from hitl_chatops.bot.server import BotThread
from tests.conftest import AUTH
from tests.test_flyte_e2e import submit

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"(http://127\.0\.0\.1:\d+)/form/([0-9a-f-]{36})\?sig=[\w-]+")
AFTER_ANSWER = 10  # seconds a run may take to end once answered; its poll interval may be 30 (SLOW_POLL)


def run_env(**extra: str) -> dict[str, str]:
    """The test's environment (its store and secret) without a bot URL: the run starts its own bot."""
    env = {name: value for name, value in os.environ.items() if name != "HITL_CHATOPS_URL"}
    return env | {"PYTHONUNBUFFERED": "1"} | extra


def in_terminal(workflow: str, *args: str, **env: str) -> tuple[pexpect.spawn, io.StringIO]:
    """`python -m tests.local_run <workflow> [json args]` on a pseudo-terminal, and everything it shows there."""
    child = pexpect.spawn(
        sys.executable,
        ["-m", "tests.local_run", workflow, *args],
        cwd=ROOT,
        env=run_env(**env),
        encoding="utf-8",
        timeout=60,
        dimensions=(50, 250),
    )
    child.logfile_read = shown = io.StringIO()
    return child, shown


def form_link(child: pexpect.spawn) -> tuple[str, str, str]:
    """The printed form link, its bot's base URL and the event's request id."""
    child.expect(LINK)
    match = child.match
    assert match is not None
    return match.group(0), match.group(1), match.group(2)


def finished(child: pexpect.spawn, timeout: float = AFTER_ANSWER) -> str:
    """The run's result line, once the process has ended."""
    child.expect(r"RESULT: (.*)\r\n", timeout=timeout)
    assert child.match is not None
    result = str(child.match.group(1))
    child.expect(pexpect.EOF, timeout=timeout)
    child.close()
    assert child.exitstatus == 0
    return result


async def test_a_value_typed_in_the_terminal_is_checked_and_finishes_the_run(
    start_bot: Callable[..., BotThread],
) -> None:
    child, _ = in_terminal("tests.workflows:add_with_human")
    link, _, request_id = form_link(child)
    child.expect_exact("--- integer_input_event ---")
    child.expect_exact("What should I add to x?")
    child.expect_exact("Your answer (whole number): ")
    child.sendline("eight")
    child.expect_exact("“eight” is not a whole number. Enter digits only, like 42.")  # parse_answer's message
    child.expect_exact("Your answer (whole number): ")
    child.sendline("8")
    child.expect_exact("Recorded 8; the workflow goes on.")
    assert finished(child) == "50"

    # The run's bot has gone with its process: the same signed link on another bot of the store.
    bot = start_bot()
    async with aiohttp.ClientSession() as http, http.get(bot.url + link[link.index("/form/") :]) as reply:
        page = await reply.text()
    assert "Already answered" in page and re.search(r"Answered 8 by [^<]* at [^<]* via the terminal", page)
    outcome = await bot.service.store.get_response(request_id)
    assert outcome is not None and (outcome.via, outcome.responder.platform) == ("console", "console")


async def test_a_structured_answer_is_asked_field_by_field_with_its_proposals() -> None:
    child, shown = in_terminal("tests.lifecycle_workflows:decide_expense")
    form_link(child)
    child.expect_exact("  purpose: GPU hours")  # context rows
    child.expect_exact("Approved (y/n; Enter keeps true): ")
    child.sendline("")  # keeps the proposal
    child.expect_exact("Approved amount (number from 0 to 10000; Enter keeps 100): ")
    child.sendline("20000")
    child.expect_exact("Enter a number from 0 to 10000.")
    child.expect_exact("Approved amount (number from 0 to 10000; Enter keeps 100): ")
    child.sendline("80")
    child.expect_exact("Notes (Enter skips): ")
    child.sendline("receipts for 80 only")
    child.expect_exact("Recorded Approved: Yes · Approved amount: 80 · Notes: receipts for 80 only")
    assert '\\"approved_amount\\": 80.0, \\"notes\\": \\"receipts for 80 only\\"' in finished(child)
    assert shown.getvalue().count("--- expense_decision ---") == 1, "result() after wait() asks nothing more"


async def test_an_answer_in_the_form_ends_the_terminal_question_and_wakes_the_run() -> None:
    """The run polls every 30 s: it ends in time only because the bot's answer wakes it."""
    child, _ = in_terminal("tests.workflows:approve_slowly")
    link, _, _ = form_link(child)
    child.expect_exact("Approve (y/n): ")
    status, _ = await submit(link, "true")
    assert status == 200
    child.expect(
        r"slow_gate: answered Approve by someone with the form link at [^\r]* via the web form\.", timeout=AFTER_ANSWER
    )
    assert finished(child) == "true"


async def test_a_terminal_answer_wakes_a_slowly_polling_run() -> None:
    child, _ = in_terminal("tests.workflows:approve_slowly")
    form_link(child)
    child.expect_exact("Approve (y/n): ")
    child.sendline("maybe")
    child.expect_exact("Answer yes or no: approve (true) or reject (false).")
    child.sendline("y")
    assert finished(child) == "true"


async def test_events_waiting_at_once_are_asked_one_after_the_other() -> None:
    child, shown = in_terminal("tests.workflows:two_gates")
    child.expect_exact("--- first_gate ---")
    child.expect_exact("Approve (y/n): ")
    await asyncio.sleep(0.5)  # both events wait by now: a second prompt would be showing
    assert "--- second_gate ---" not in shown.getvalue()
    child.sendline("yes")
    child.expect_exact("--- second_gate ---")
    child.expect_exact("Approve (y/n): ")
    child.sendline("no")
    assert finished(child) == "[true, false]"


async def test_task_text_is_shown_inert() -> None:
    child, shown = in_terminal("tests.workflows:hostile_gate")
    child.expect_exact("Approve (y/n): ")
    child.sendline("n")
    assert finished(child) == "false"
    text = shown.getvalue()
    for raw in ("\x1b[2J", "\x1b[31m", "\x1b]8;;", "\x07", "\u202e"):
        assert raw not in text, f"{raw!r} reached the terminal"
    escaped = r"\x1b[2J\x1b[31mred\x1b]8;;https://evil.example\x07link\x1b]8;;\x07\u202eevil\r"
    for part in ("title", "prompt", "details", "key", "value"):
        assert f"{part} {escaped}" in text


async def test_console_false_asks_nothing_in_the_terminal() -> None:
    child, shown = in_terminal("tests.workflows:approve_deploy", HITL_CHATOPS_CONSOLE="false")
    _, base, request_id = form_link(child)
    await asyncio.sleep(1)  # the run is waiting by now: a question would have been asked
    await answer_through_the_api(base, request_id)
    assert finished(child) == "true"
    assert "Approve (y/n)" not in shown.getvalue() and "---" not in shown.getvalue()


async def test_without_a_terminal_nothing_is_asked() -> None:
    """CI, a pod: stdin is a pipe. The run waits for the API as before, and prints no question."""
    run = await asyncio.create_subprocess_exec(
        sys.executable,
        *["-m", "tests.local_run", "tests.workflows:approve_deploy"],
        cwd=ROOT,
        env=run_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert run.stderr is not None
        printed = ""
        while not (match := LINK.search(printed)):
            line = (await asyncio.wait_for(run.stderr.readline(), 60)).decode()
            assert line, f"the run ended without a form link: {printed}"
            printed += line
        await asyncio.sleep(1)  # the run is waiting by now: a question would have been asked
        await answer_through_the_api(match.group(1), match.group(2))
        out, err = (part.decode() for part in await asyncio.wait_for(run.communicate(), 60))
    finally:
        if run.returncode is None:
            run.kill()
    assert run.returncode == 0 and out.strip() == "RESULT: true"
    assert "Approve (y/n)" not in printed + err + out and "---" not in printed + err


async def answer_through_the_api(base: str, request_id: str) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{base}/api/v1/events/{request_id}/response", json={"value": True}, headers=AUTH) as reply,
    ):
        assert reply.status == 201, await reply.text()
