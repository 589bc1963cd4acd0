"""Shared fixtures: a clean environment, a store folder, and a real bot on loopback."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hitl_chatops.bot.config import load_settings
from hitl_chatops.bot.server import BotThread

SECRET = "test-secret-0123456789abcdef"
_OWN_PREFIXES = ("HITL_CHATOPS_", "SLACK_", "Microsoft", "AWS_")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting leaks in from the machine; every test gets its own store folder."""
    for name in list(os.environ):
        if name.startswith(_OWN_PREFIXES) or name.lower().startswith("microsoftapp"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HITL_CHATOPS_STORE", (tmp_path / "store").as_uri())
    monkeypatch.setenv("HITL_CHATOPS_SECRET", SECRET)


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return (tmp_path / "store").as_uri()


@pytest.fixture
def start_bot(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., BotThread]]:
    """Start real bots (aiohttp on 127.0.0.1, free port) with settings overrides; stopped after the test.

    The first bot started also becomes the plugin's `HITL_CHATOPS_URL`.
    """
    bots: list[BotThread] = []

    def start(**overrides: Any) -> BotThread:
        settings = load_settings(host="127.0.0.1", port=0, log_format="text", **overrides)
        bot = BotThread(settings).start()
        if not bots:
            monkeypatch.setenv("HITL_CHATOPS_URL", bot.url)
        bots.append(bot)
        return bot

    yield start
    for bot in bots:
        bot.stop()


@pytest.fixture
def bot(start_bot: Callable[..., BotThread]) -> BotThread:
    return start_bot()
