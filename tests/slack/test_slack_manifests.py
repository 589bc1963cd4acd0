"""The Slack app manifests agree with the code: route, default slash command, scopes, mode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from hitl_chatops.adapters.slack import EVENTS_PATH
from hitl_chatops.adapters.slack import SlackSettings as Settings  # Slack's settings live with its adapter

MANIFESTS = Path(__file__).parents[2] / "manifests" / "slack"


def load(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((MANIFESTS / name).read_text()))


def test_http_manifest_points_every_url_at_the_events_route() -> None:
    manifest = load("manifest.yml")
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == Settings.model_fields["slack_command"].default
    assert command["url"].endswith(EVENTS_PATH)
    assert manifest["settings"]["interactivity"]["request_url"].endswith(EVENTS_PATH)
    assert manifest["settings"]["socket_mode_enabled"] is False
    assert manifest["oauth_config"]["scopes"]["bot"] == [
        "chat:write",
        "commands",
        "usergroups:read",
        "users:read",
        "users:read.email",
    ]


def test_socket_mode_manifest_has_no_urls() -> None:
    manifest = load("manifest.socket-mode.yml")
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert "url" not in manifest["features"]["slash_commands"][0]
    assert "request_url" not in manifest["settings"]["interactivity"]
    assert manifest["oauth_config"] == load("manifest.yml")["oauth_config"]


def test_both_manifests_enable_the_home_tab_and_send_its_event() -> None:
    """The App Home inbox (docs/inbox.md) needs the Home tab and the `app_home_opened` bot event; no scope."""
    for name in ("manifest.yml", "manifest.socket-mode.yml"):
        manifest = load(name)
        assert manifest["features"]["app_home"]["home_tab_enabled"] is True
        assert manifest["settings"]["event_subscriptions"]["bot_events"] == ["app_home_opened"]
    assert load("manifest.yml")["settings"]["event_subscriptions"]["request_url"].endswith(EVENTS_PATH)
    assert "request_url" not in load("manifest.socket-mode.yml")["settings"]["event_subscriptions"]
