"""A value typed in a local run's terminal updates the event's Slack copy: a real Flyte local run under a
pseudo-terminal, whose in-process bot posts to the fake Slack."""

from __future__ import annotations

import json

import pytest

from tests.fakes.slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack
from tests.slack.slack_helpers import CHANNEL, rich_lines
from tests.test_console import finished, form_link, in_terminal
from tests.test_flyte_e2e import submit

pytestmark = pytest.mark.e2e


async def test_a_terminal_answer_updates_the_slack_copy(fake_slack: FakeSlack) -> None:
    slack = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": f"{fake_slack.url}/api",
    }
    child, _ = in_terminal("tests.workflows:pick_replicas", json.dumps(f"slack:{CHANNEL}"), **slack)
    child.expect_exact("Your answer (whole number from 1 to 10): ")
    await fake_slack.wait_for("chat.postMessage")
    child.sendline("12")
    child.expect_exact("Enter a whole number from 1 to 10.")
    child.sendline("4")
    assert finished(child) == "4"
    [update] = await fake_slack.wait_for("chat.update")  # sent before the run's process ended
    assert update["text"].startswith("replicas: answered 4 by ")
    lines = rich_lines(update["blocks"])
    assert "Via the terminal" in lines
    assert any(text.startswith("Answered by ") and text.endswith(" (the terminal)") for text in lines)


async def test_a_form_answer_updates_the_slack_copy_before_the_run_ends(fake_slack: FakeSlack) -> None:
    """The answer wakes the run at once, and its process may end at once: its bot updates the copies first."""
    slack = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": f"{fake_slack.url}/api",
    }
    child, _ = in_terminal(
        "tests.workflows:pick_replicas", json.dumps(f"slack:{CHANNEL}"), HITL_CHATOPS_CONSOLE="false", **slack
    )
    link, _, _ = form_link(child)
    await fake_slack.wait_for("chat.postMessage")
    fake_slack.hold("chat.update", seconds=3)  # a slow Slack: the update is answered 3 s after it is sent
    assert (await submit(link, "4"))[0] == 200
    assert finished(child) == "4"
    assert fake_slack.of("chat.update"), "the process waited for its copy's update to be answered"
