"""Slack as the core's `Surface`: post events, rewrite their messages, resolve user groups."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient

from hitl_chatops.bot.errors import MembershipUnknown
from hitl_chatops.bot.groups import GroupCache
from hitl_chatops.bot.protocol import MessageRef, Request, Response
from hitl_chatops.bot.service import HitlService

from . import _blocks

log = logging.getLogger(__name__)
_GROUP_ID = re.compile(r"S[A-Z0-9]{2,}")


def slack_targets(request: Request, default_channel: str | None) -> list[str]:
    """Channel ids from `slack:<id>` entries, then the configured default, without repeats."""
    targets = [entry.removeprefix("slack:") for entry in request.channels if entry.startswith("slack:")]
    if default_channel:
        targets.append(default_channel)
    return list(dict.fromkeys(t for t in targets if t))


def as_dicts(blocks: Sequence[Block]) -> list[dict[str, Any]]:
    """Validate every block (slack_sdk raises `SlackObjectFormationError`) and serialize it."""
    return [block.to_dict() for block in blocks]


def api_error(error: SlackApiError) -> str:
    """Slack's error code (`channel_not_found`, …) or the HTTP status; never the request or token."""
    data = error.response.data
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])
    return f"http {error.response.status_code}"


class SlackSurface:
    """Translates the core's post / answered / expired into Web API calls."""

    name = "slack"

    def __init__(self, client: AsyncWebClient, service: HitlService, *, default_channel: str | None) -> None:
        self.client = client
        self.service = service
        self.default_channel = default_channel
        self._groups = GroupCache(self._read_group)

    async def post(self, request: Request) -> None:
        targets = slack_targets(request, self.default_channel)
        if not targets:
            return
        blocks = as_dicts(_blocks.event_blocks(request, self.service.form_url(request.request_id)))
        text = _blocks.event_text(request)
        for channel in targets:

            async def send(channel: str = channel) -> MessageRef:
                reply = await self.client.chat_postMessage(channel=channel, text=text, blocks=blocks)
                ts, where = str(reply["ts"]), str(reply.get("channel") or channel)
                log.info(
                    "slack message posted", extra={"request_id": request.request_id, "channel": where, "message_ts": ts}
                )
                return MessageRef(platform="slack", key=f"{where}-{ts}", data={"channel": where, "ts": ts})

            try:
                # Once per channel across notifies, the reconciler and replicas.
                await self.service.post_once(request, "slack", channel, send)
            except Exception as error:  # one channel's trouble must not stop the others; the reconciler retries it
                code = api_error(error) if isinstance(error, SlackApiError) else None
                log.warning(
                    "slack post failed",
                    extra={"request_id": request.request_id, "channel": channel, "error": code or type(error).__name__},
                    exc_info=code is None,  # a Slack error code says it all; anything else needs its traceback
                )

    async def answered(self, request: Request, response: Response, messages: list[MessageRef]) -> None:
        text = _blocks.answered_summary(request, response)
        await self._rewrite(request, messages, text, _blocks.answered_blocks(request, response))

    async def expired(self, request: Request, messages: list[MessageRef]) -> None:
        await self._rewrite(request, messages, _blocks.expired_summary(request), _blocks.expired_blocks(request))

    async def group_members(self, group: str) -> set[str] | None:
        """Members of a Slack user group (`S…`), cached for a minute; None for anything else."""
        return await self._groups.members(group) if _GROUP_ID.fullmatch(group) else None

    async def _read_group(self, group: str) -> set[str] | None:
        """Slack's refusal (`no_such_subteam`, `missing_scope`) is an answer: nobody gets in through
        that group. Slack failing to answer (5xx or 429 after the client's retries, a dropped
        connection, a timeout) raises `MembershipUnknown`, so the person is asked to retry.
        """
        try:
            reply = await self.client.usergroups_users_list(usergroup=group)
        except SlackApiError as error:
            log.warning("slack user group lookup failed", extra={"group": group, "error": api_error(error)})
            if error.response.status_code >= 500 or error.response.status_code == 429:
                raise MembershipUnknown(group) from error
            return None
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("slack user group lookup failed", extra={"group": group, "error": type(error).__name__})
            raise MembershipUnknown(group) from error
        return {str(user) for user in reply.get("users") or []}

    async def _rewrite(self, request: Request, refs: list[MessageRef], text: str, blocks: Sequence[Block]) -> None:
        """Replace the event's Slack messages `refs`; one failure does not stop the others."""
        payload = as_dicts(blocks)

        async def update(ref: MessageRef) -> bool:
            try:
                await self.client.chat_update(channel=ref.data["channel"], ts=ref.data["ts"], text=text, blocks=payload)
            except SlackApiError as error:
                log.warning(
                    "slack update failed",
                    extra={"request_id": request.request_id, "key": ref.key, "error": api_error(error)},
                )
                return False
            return True

        updated = await asyncio.gather(*(update(ref) for ref in refs))
        if not all(updated):  # the core keeps the event in its outbox and the reconciler retries
            raise RuntimeError(f"{updated.count(False)} of {len(refs)} Slack messages could not be updated")
