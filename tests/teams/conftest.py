"""Fixtures for the Teams tests: the fake Bot Connector and a bot in emulator mode wired to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from hitl_chatops.bot.server import BotThread
from tests.teams.teams_helpers import FakeConnector, Teams


@pytest.fixture
def connector() -> Iterator[FakeConnector]:
    fake = FakeConnector().start()
    yield fake
    fake.stop()


@pytest.fixture
def teams(connector: FakeConnector, start_bot: Callable[..., BotThread]) -> Teams:
    # `connector` first: bots stop (finishing their card updates) before the fake connector goes away.
    return Teams(start_bot(teams_emulator=True), connector)
