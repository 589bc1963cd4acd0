"""Microsoft Teams through the Microsoft 365 Agents SDK: `POST /api/messages` and the Teams platform.

Every Agents SDK import of the project lives in this folder; importing this package imports none
(the registry reads `adapter` where the SDK is not installed): `_app` and its modules do. As in every
adapter, the modules are private (flyte-sdk's convention): what the bot uses is this package's `__all__`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hitl_chatops.bot.adapter import Adapter
from hitl_chatops.bot.platform import Platform

from ._settings import TeamsSettings

if TYPE_CHECKING:
    from aiohttp import web

    from hitl_chatops.bot.service import HitlService


def _mount(app: web.Application, service: HitlService, settings: TeamsSettings) -> Platform:
    from ._app import attach

    return attach(app, service, settings)


adapter = Adapter(
    settings=TeamsSettings,
    enabled=lambda settings: settings.teams_enabled,
    mount=_mount,
    local={"teams_emulator": True},  # `hitl-chatops serve --teams`: no credentials, a loud warning
)

__all__ = ["TeamsSettings", "adapter"]
