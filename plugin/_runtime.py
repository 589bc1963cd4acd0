"""Where the plugin finds its bot: a configured URL, or one started in this process.

In a local Flyte run with no `HITL_CHATOPS_URL`, the bot runs on loopback in a daemon thread,
so a newcomer can answer in a browser without deploying anything. Its answers wake the waiting
task at once (`_wake`), and it stops with the process, after updating the chat copies it still owes.
"""

from __future__ import annotations

import atexit
import json
import logging
import secrets
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiohttp
from pydantic import SecretStr

from hitl_chatops.bot.config import Settings
from hitl_chatops.bot.links import form_url

from ._console import inert
from ._wake import wake

if TYPE_CHECKING:
    from hitl_chatops.bot.server import BotThread

log = logging.getLogger(__name__)
_NOTIFY_TIMEOUT = aiohttp.ClientTimeout(total=10)


@dataclass(frozen=True)
class BotEndpoint:
    """How this process reaches a bot and signs links for it."""

    url: str
    secret: str | None
    public_url: str

    def form_url(self, request_id: str) -> str | None:
        return form_url(self.public_url, self.secret, request_id) if self.secret else None

    async def notify(self, request_id: str) -> bool:
        """Ask the bot to post the event now; a lost call is not fatal (the reconciler posts it)."""
        return await self._call(request_id, "notify", None, {202})

    async def cancel(self, request_id: str, reason: str, by: str) -> bool:
        """Ask the bot to cancel the event and update its messages; True once it has decided (cancelled,
        or refused: answered first, 409, or past the deadline, 410; the store tells which).

        False when the bot could not be asked: the caller then records the cancellation itself.
        """
        body = {"reason": reason, "responder": by, "via": "flyte"}
        return await self._call(request_id, "cancel", body, {200, 409, 410})

    async def _call(self, request_id: str, route: str, body: dict[str, str] | None, ok: set[int]) -> bool:
        headers = {"Authorization": f"Bearer {self.secret or ''}"}
        target = f"{self.url}/api/v1/events/{request_id}/{route}"
        try:
            async with (
                aiohttp.ClientSession(timeout=_NOTIFY_TIMEOUT) as session,
                session.post(target, headers=headers, json=body) as reply,
            ):
                if reply.status in ok:
                    return True
                text = (await reply.text())[:300]
                log.warning(
                    "bot refused the call",
                    extra={"request_id": request_id, "route": route, "status": reply.status, "body": text},
                )
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("bot unreachable", extra={"request_id": request_id, "error": type(error).__name__})
        return False


_local_lock = threading.Lock()
_local_bots: dict[str, BotThread] = {}  # one in-process bot per store, for the life of the process


def endpoint(settings: Settings, *, local_run: bool) -> BotEndpoint | None:
    """The bot to notify, starting one in-process for local runs when none is configured."""
    secret = settings.secret.get_secret_value() if settings.secret else None
    if settings.bot_url:
        return BotEndpoint(settings.bot_url, secret, settings.public_url or settings.bot_url)
    if not local_run:
        log.warning("HITL_CHATOPS_URL is not set: no bot will post this event until its reconciler finds it")
        return None
    bot = _start_local_bot(settings)
    return BotEndpoint(bot.url, bot.settings.secret_value(), bot.url)


def _start_local_bot(settings: Settings) -> BotThread:
    # The server and the platforms' settings only here, where a bot runs: a task process loads neither.
    from hitl_chatops.bot.adapter import load_bot_settings
    from hitl_chatops.bot.server import BotThread

    with _local_lock:
        if settings.store not in _local_bots:
            local = load_bot_settings(**settings.model_dump()).model_copy(
                update={
                    "host": "127.0.0.1",
                    "port": 0,
                    "secret": settings.secret or SecretStr(secrets.token_urlsafe(32)),
                    "public_url": None,
                    "bot_url": None,
                    # Local runs keep our own path (no native conditions): never flyte.init from here.
                    "flyte_endpoint": None,
                    "flyte_config": None,
                    "flyte_api_key": None,
                }
            )
            bot = _local_bots[settings.store] = BotThread(local).start()
            bot.service.delivery.outcome_listeners.append(wake)  # before any event of this process exists
            # A run that resumes at once may end the process at once: the copies are updated first.
            atexit.register(bot.stop)
            log.info("started an in-process bot for this local run", extra={"url": bot.url})
        return _local_bots[settings.store]


def announce_link(event_name: str, url: str | None, request_id: str) -> None:
    """Tell the person running a local workflow where to answer."""
    line = {"event": event_name, "request_id": request_id, "form_url": url}
    where = url or json.dumps(line)
    sys.stderr.write(f"\nhitl-chatops: '{inert(event_name)}' is waiting for an answer: {where}\n\n")
    sys.stderr.flush()
