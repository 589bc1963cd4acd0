"""Typed keys for what the aiohttp application carries (set once in `server.build_app`)."""

from __future__ import annotations

from aiohttp import web

from .config import Settings
from .service import HitlService

__all__ = ["SERVICE", "SETTINGS"]

SERVICE = web.AppKey("service", HitlService)
SETTINGS = web.AppKey("settings", Settings)
