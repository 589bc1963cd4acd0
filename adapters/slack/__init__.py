"""Slack adapter: a slack_bolt app on the bot's aiohttp server (`POST /slack/events`) or Socket Mode.

It only translates: events become Block Kit messages, clicks and modal submissions become
`HitlService` calls, and the core's outcomes become `chat.update`s. Importing this package imports
no Slack SDK (the registry reads `adapter` where slack-bolt is not installed); `_app` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hitl_chatops.bot.adapter import Adapter
from hitl_chatops.bot.platform import Platform

from ._settings import EVENTS_PATH, SlackSettings

if TYPE_CHECKING:
    from aiohttp import web

    from hitl_chatops.bot.service import HitlService


def _mount(app: web.Application, service: HitlService, settings: SlackSettings) -> Platform:
    from ._app import attach

    return attach(app, service, settings)


adapter = Adapter(settings=SlackSettings, enabled=lambda settings: settings.slack_enabled, mount=_mount)

__all__ = ["EVENTS_PATH", "SlackSettings", "adapter"]
