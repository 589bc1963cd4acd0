"""What a chat platform's package gives the bot, and how the bot loads it and its settings.

Beside the server that mounts adapters, above everything an adapter calls: the registry only names
platforms (a plain catalogue), and `platform.Platform` is all delivery sees of one. This module
imports an adapter's package only when asked (`load`), never its SDK; the plugin's process never
loads it (a local run's in-process bot does, when it starts).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from pydantic import create_model
from pydantic_settings import BaseSettings

from . import registry
from .config import Settings, read_settings
from .errors import ConfigError

if TYPE_CHECKING:
    from aiohttp import web

    from .platform import Platform
    from .service import HitlService

__all__ = ["Adapter", "Mount", "load", "load_bot_settings", "settings_class"]

S = TypeVar("S", bound=BaseSettings)
Mount = Callable[["web.Application", "HitlService", S], "Platform"]


@dataclass(frozen=True)
class Adapter(Generic[S]):
    """What the registry's `adapter` entry names for a platform; importing it must not import the SDK.

    - `settings`: a `BaseSettings` class whose fields are all named `<name>_…` and read the
      platform's own environment variables (`SLACK_BOT_TOKEN`, `MicrosoftAppId`); the bot's one
      settings object includes them, so `load_bot_settings(<name>_…=…)` works as for core settings.
    - `enabled`: whether those settings turn the platform on.
    - `mount`: add the inbound routes (or connections) to the app and return the `Platform`; the
      SDK is imported here, once the platform is on.
    - `local`: settings that turn the platform on without credentials on a developer machine
      (`hitl-chatops serve --<name>`), if it has such a mode.
    """

    settings: type[S]
    enabled: Callable[[S], bool]
    mount: Mount[S]
    local: Mapping[str, Any] = field(default_factory=dict)

    def settings_of(self, settings: Settings) -> S:
        """This platform's view of the bot's settings (which include its fields)."""
        if not isinstance(settings, self.settings):
            raise ConfigError(f"settings were built without {self.settings.__name__}; use load_bot_settings()")
        return settings

    def is_enabled(self, settings: Settings) -> bool:
        return self.enabled(self.settings_of(settings))

    def attach(self, app: web.Application, service: HitlService, settings: Settings) -> Platform:
        return self.mount(app, service, self.settings_of(settings))


def load(registration: registry.Registration) -> Adapter[Any]:
    """Import the platform's `Adapter` (its settings and `mount`; not yet its SDK)."""
    module, _, attribute = registration.adapter.partition(":")
    found: Adapter[Any] = getattr(importlib.import_module(module), attribute)
    return found


def load_bot_settings(**overrides: Any) -> Settings:
    """The bot's settings: the core's and every registered platform's, read and checked as `load_settings`."""
    return read_settings(settings_class(), overrides)


def settings_class() -> type[Settings]:
    """`Settings` with the fields of every registered platform (imports their adapters, not their SDKs)."""
    return _with_platforms(tuple((r.name, load(r).settings) for r in registry.registrations()))


@functools.cache
def _with_platforms(platforms: tuple[tuple[str, type[BaseSettings]], ...]) -> type[Settings]:
    for name, fields in platforms:
        stray = [field for field in fields.model_fields if not field.startswith(f"{name}_")]
        if stray:
            raise ConfigError(f"{fields.__name__}: fields of platform {name!r} must start with {name}_ ({stray})")
    bases: tuple[type[BaseSettings], ...] = (Settings, *(fields for _, fields in platforms))
    return cast(type[Settings], create_model("Settings", __base__=bases, __module__=Settings.__module__))
