"""The `hitl-chatops` command as a newcomer runs it."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from hitl_chatops.bot.store import Store
from tests.fakes.events import make_request

ROOT = Path(__file__).resolve().parents[1]
CLI = shutil.which("hitl-chatops") or str(Path(sys.executable).with_name("hitl-chatops"))


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60, env=env or dict(os.environ))


def test_bad_settings_are_one_line_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HITL_CHATOPS_SECRET")
    done = run_cli("serve")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "Set HITL_CHATOPS_SECRET" in done.stderr
    monkeypatch.setenv("HITL_CHATOPS_PORT", "eighty")
    done = run_cli("pending")
    assert done.returncode == 2 and "HITL_CHATOPS_PORT is invalid" in done.stderr


def test_pending_table() -> None:
    done = run_cli("pending")
    assert done.returncode == 0 and done.stdout.strip() == "No pending events."


def test_pending_lists_open_events_with_only_the_store_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """An operator with read access to the bucket lists what is open; the bot's secret is not theirs to need."""
    store = Store(os.environ["HITL_CHATOPS_STORE"])
    request = make_request(store, event_name="deploy_gate", prompt="Ship   build 42\nto prod?")
    asyncio.run(store.put_request(request))
    monkeypatch.delenv("HITL_CHATOPS_SECRET")
    done = run_cli("pending")
    assert done.returncode == 0, done.stderr
    header, row = done.stdout.strip().splitlines()
    assert header.split() == ["REQUEST", "ID", "EVENT", "TYPE", "DEADLINE", "PROMPT"]
    assert row.split()[:3] == [request.request_id, "deploy_gate", "bool"]
    assert row.endswith("Ship build 42 to prod?")


def test_demo_runs_the_example_workflow_to_its_result() -> None:
    """README's first command: a real local Flyte run that waits for the form and prints x + y."""
    demo = subprocess.Popen(
        [CLI, "demo", "--port", "0"],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,  # no terminal: the demo asks through its link alone
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert demo.stdout is not None
    try:
        link = ""
        deadline = time.monotonic() + 60
        while not link and time.monotonic() < deadline:
            line = demo.stdout.readline()
            if match := re.search(r"(http://127\.0\.0\.1:\d+/form/\S+)", line):
                link = match.group(1)
        assert link, "the demo prints the form link"
        with urllib.request.urlopen(link, data=b"value=8", timeout=10) as reply:
            assert reply.status == 200
        rest, _ = demo.communicate(timeout=60)
        assert "Workflow finished. Result: 50" in rest
        assert demo.returncode == 0
    finally:
        demo.kill()
