"""Teams settings: the Bot Framework names deployments use, and the Agents SDK's own names."""

from __future__ import annotations

import pytest

from hitl_chatops.bot.adapter import load_bot_settings

AGENTS = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"


def test_the_agents_sdk_names_turn_teams_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{AGENTS}CLIENTID", "sdk-app-id")
    monkeypatch.setenv(f"{AGENTS}CLIENTSECRET", "sdk-secret")
    monkeypatch.setenv(f"{AGENTS}TENANTID", "sdk-tenant")

    settings = load_bot_settings()

    assert settings.teams_enabled and settings.teams_app_id == "sdk-app-id"
    assert settings.teams_app_password is not None and settings.teams_app_password.get_secret_value() == "sdk-secret"
    assert settings.teams_tenant_id == "sdk-tenant"


def test_the_bot_framework_names_win_over_the_agents_sdk_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{AGENTS}CLIENTID", "sdk-app-id")
    monkeypatch.setenv("MicrosoftAppId", "bot-framework-app-id")

    assert load_bot_settings().teams_app_id == "bot-framework-app-id"
