"""What a Flyte task process loads: the plugin and the core's lower layers, never the bot's server or
an adapter. `make lint` checks the import graph (pyproject.toml, [tool.importlinter]); these check
what an import contract cannot see, the modules a process really has loaded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

_LOADED = """
import json, sys
{work}
print(json.dumps(sorted(m for m in sys.modules if m.startswith("hitl_chatops"))))
"""
_CREATE_EVENT = """
import asyncio, logging
import hitl_chatops.plugin as hitl
logging.disable(logging.WARNING)  # the notify to the closed port fails, as it may: the reconciler posts
asyncio.run(hitl.new_event.aio("gate", data_type=bool, prompt="Go?", channels=["slack:C0123", "teams:19:abc"]))
"""


def loaded_by(work: str) -> list[str]:
    """The hitl_chatops modules a fresh interpreter (this test's environment) has loaded after running `work`."""
    done = subprocess.run(
        [sys.executable, "-c", _LOADED.format(work=work)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def bot_side(modules: list[str]) -> list[str]:
    return [m for m in modules if m == "hitl_chatops.bot.server" or m.startswith("hitl_chatops.adapters")]


def test_importing_the_plugin_loads_no_server_and_no_adapter() -> None:
    modules = loaded_by("import hitl_chatops.plugin")
    assert "hitl_chatops.plugin._event" in modules
    assert bot_side(modules) == [], "a task process must not load the bot's server or a chat adapter"


def test_creating_an_event_for_a_deployed_bot_loads_no_server_and_no_adapter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plugin reads the core's settings only: the platforms' (and their packages) stay in the bot."""
    monkeypatch.setenv("HITL_CHATOPS_STORE", tmp_path.as_uri())
    monkeypatch.setenv("HITL_CHATOPS_URL", "http://127.0.0.1:9")  # a bot elsewhere; nothing listens here
    monkeypatch.setenv("HITL_CHATOPS_SECRET", "s" * 32)
    monkeypatch.setenv("HITL_CHATOPS_CONSOLE", "false")
    modules = loaded_by(_CREATE_EVENT)
    assert "hitl_chatops.bot.store" in modules
    assert bot_side(modules) == [], "creating an event must not load the bot's server or a chat adapter"
    assert list((tmp_path / "hitl-pending").iterdir()), "the event was created"
