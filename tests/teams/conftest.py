"""Fixtures for the Teams tests: the fake Bot Connector and a bot in emulator mode wired to it,
and the fake Microsoft login (MSAL trusts its test CA through `REQUESTS_CA_BUNDLE`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.fakes.bot_connector import FakeConnector
from tests.fakes.microsoft_login import FakeAuthority
from tests.teams.teams_helpers import APP_ID, Teams

if TYPE_CHECKING:
    from hitl_chatops.bot.server import BotThread


@pytest.fixture
def connector() -> Iterator[FakeConnector]:
    fake = FakeConnector().start()
    yield fake
    fake.stop()


@pytest.fixture
def teams(connector: FakeConnector, start_bot: Callable[..., BotThread]) -> Teams:
    # `connector` first: bots stop (finishing their card updates) before the fake connector goes away.
    return Teams(start_bot(teams_emulator=True), connector)


@pytest.fixture
def authority(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAuthority]:
    """Microsoft's login for the app `APP_ID` with the password "app-password"."""
    fake = FakeAuthority(client_id=APP_ID, client_secret="app-password", folder=tmp_path).start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.ca_bundle))  # MSAL's `requests` trusts the test CA only
    yield fake
    fake.stop()
