"""Slack as the core's `Platform`: post an event, re-render one copy, reply in its thread, resolve
user groups and e-mail addresses."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient

from hitl_chatops.bot.batch import BatchView, Pace
from hitl_chatops.bot.errors import MembershipUnknown, PlatformError
from hitl_chatops.bot.groups import GroupCache
from hitl_chatops.bot.platform import channel_targets
from hitl_chatops.bot.protocol import MessageRef, Request
from hitl_chatops.bot.service import HitlService
from hitl_chatops.bot.states import Line
from hitl_chatops.bot.view import EventView, event_view

from . import _batch, _blocks, _rich, _team

log = logging.getLogger(__name__)
PLATFORM = "slack"
# `usergroups.users.list` errors that answer the question "who is in it": nobody, there is no such
# group. Slack's method reference lists `no_such_subteam`; `subteam_not_found` is what Slack's
# usergroup methods are seen answering in other clients' code for the same case.
_NO_SUCH_GROUP = frozenset({"no_such_subteam", "subteam_not_found"})
_NO_SUCH_USER = "users_not_found"  # `users.lookupByEmail`: nobody in the workspace has that address
# `chat.postMessage`: about one message per second per channel, short bursts allowed (Slack's limits).
PACE = Pace(per_second=1.0, burst=3)


def as_dicts(blocks: Sequence[Block]) -> list[dict[str, Any]]:
    """Validate every block (slack_sdk raises `SlackObjectFormationError`) and serialize it."""
    return [block.to_dict() for block in blocks]


def api_error(error: SlackApiError) -> str:
    """Slack's error code (`channel_not_found`, …) or the HTTP status; never the request or token."""
    data = error.response.data
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])
    return f"http {error.response.status_code}"


class SlackPlatform:
    """The core's `Platform` for Slack: Web API calls, nothing decided here."""

    name = PLATFORM
    pace = PACE

    def __init__(self, client: AsyncWebClient, service: HitlService, *, default_channel: str | None) -> None:
        self.client = client
        self.service = service
        self.default_channel = default_channel
        self._groups = GroupCache(self._read_group)

    def targets(self, request: Request) -> list[str]:
        """Channel ids from `slack:<id>` entries, then the configured default."""
        return channel_targets(request, PLATFORM, self.default_channel)

    async def send(self, request: Request, target: str) -> MessageRef:
        """Post the event; a team decision as it starts (the core re-renders it with the votes so far)."""
        form_url = self.service.form_url(request.request_id)
        if request.team_event:
            blocks = as_dicts(_team.decision_blocks(event_view(request), form_url))
        else:
            blocks = as_dicts(_blocks.event_blocks(request, form_url))
        return await self._post(target, _blocks.event_text(request), blocks, {"request_id": request.request_id})

    async def _post(self, target: str, text: str, blocks: list[dict[str, Any]], about: dict[str, str]) -> MessageRef:
        """`chat.postMessage`; `about` says what it is, in the log line."""
        with _refusals("chat.postMessage"):
            reply = await self.client.chat_postMessage(channel=target, text=text, blocks=blocks)
        ts, where = str(reply["ts"]), str(reply.get("channel") or target)
        log.info("slack message posted", extra={**about, "channel": where, "message_ts": ts})
        return MessageRef(platform=PLATFORM, key=f"{where}-{ts}", data={"channel": where, "ts": ts})

    async def rerender(self, view: EventView, ref: MessageRef) -> None:
        request = view.request
        form_url = self.service.form_url(request.request_id)
        if view.tally is not None:  # a team decision under way
            blocks, text = as_dicts(_team.decision_blocks(view, form_url)), _blocks.summary_text(view)
        elif view.open:
            blocks, text = as_dicts(_blocks.event_blocks(request, form_url)), _blocks.event_text(request)
        else:
            blocks, text = as_dicts(_blocks.ended_blocks(view, form_url)), _blocks.summary_text(view)
        await self._update(ref, text, blocks)

    async def _update(self, ref: MessageRef, text: str, blocks: list[dict[str, Any]]) -> None:
        body = {"channel": ref.data["channel"], "ts": ref.data["ts"], "text": text, "blocks": blocks}
        with _refusals("chat.update"):
            # The body is complete and serialized: `chat_update` would only walk the blocks again
            # looking for model objects, then drop the None arguments it added itself.
            await self.client.api_call("chat.update", json=body)

    async def send_batch(self, view: BatchView, target: str) -> MessageRef:
        """A batch's one message (`bot/batch.py`): its counts, first events and bulk controls."""
        blocks = as_dicts(_batch.batch_blocks(view, self.service.batch_url(view.batch_id)))
        return await self._post(target, _batch.batch_text(view), blocks, {"batch_id": view.batch_id})

    async def rerender_batch(self, view: BatchView, ref: MessageRef) -> None:
        blocks = as_dicts(_batch.batch_blocks(view, self.service.batch_url(view.batch_id)))
        await self._update(ref, _batch.batch_text(view), blocks)

    async def remind(self, request: Request, ref: MessageRef, line: Line) -> None:
        """A reply in the copy's thread, as rich text (a note a person typed shown as written; `text`
        is its notification). Only the line's `Mention` parts notify (Slack user and group ids,
        `_rich.mention`): the people it names otherwise are named, and a link is not unfurled."""
        said = _rich.say(line, quiet=True)
        with _refusals("chat.postMessage"):
            await self.client.chat_postMessage(
                channel=ref.data["channel"],
                thread_ts=ref.data["ts"],
                text=_rich.fallback(said),
                blocks=as_dicts([_rich.block(said)]),
                unfurl_links=False,
                unfurl_media=False,
            )

    async def group_members(self, group: str) -> set[str] | None:
        """Members of a Slack user group (`S…`), cached for a minute; None for anything else."""
        return await self._groups.members(group) if _rich.GROUP_ID.fullmatch(group) else None

    async def _read_group(self, group: str) -> set[str] | None:
        """Members of `group`; None when Slack says there is no such group (nobody gets in through it).

        Anything else Slack or the network answers (a transient `fatal_error`, a proxy's HTML page,
        a 5xx or 429 after the client's retries, a missing scope, a timeout) is not an answer about
        the group: `MembershipUnknown`, so the person is asked to retry rather than refused.
        """
        try:
            reply = await self.client.usergroups_users_list(usergroup=group)
        except SlackApiError as error:
            code = api_error(error)
            log.warning("slack user group lookup failed", extra={"group": group, "error": code})
            if code in _NO_SUCH_GROUP:
                return None
            raise MembershipUnknown(group) from error
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("slack user group lookup failed", extra={"group": group, "error": type(error).__name__})
            raise MembershipUnknown(group) from error
        return {str(user) for user in reply.get("users") or []}

    async def user_for_email(self, email: str) -> str | None:
        """`FindsPeople`: the Slack account with that address (`users.lookupByEmail`), None if there is
        none. Anything else Slack or the network answers is `MembershipUnknown`, as for a group: the
        person is asked to retry, and nobody slips past the requester rule while Slack is down."""
        unknown = MembershipUnknown(email, what=f"whose Slack account {email} is")
        try:
            reply = await self.client.users_lookupByEmail(email=email)
        except SlackApiError as error:
            code = api_error(error)
            if code == _NO_SUCH_USER:
                return None
            log.warning("slack e-mail lookup failed", extra={"error": code})
            raise unknown from error
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("slack e-mail lookup failed", extra={"error": type(error).__name__})
            raise unknown from error
        user = reply.get("user")
        found = user.get("id") if isinstance(user, dict) else None
        return str(found) if found else None


@contextlib.contextmanager
def _refusals(method: str) -> Iterator[None]:
    """Slack's refusal or an unreachable Slack as a `PlatformError` naming the cause (never the token)."""
    try:
        yield
    except SlackApiError as error:
        raise PlatformError(f"Slack refused {method}: {api_error(error)}", retry_after=_retry_after(error)) from error
    except aiohttp.ClientError as error:
        raise PlatformError(f"Slack could not be reached for {method} ({type(error).__name__})") from error


def _retry_after(error: SlackApiError) -> float | None:
    """Slack's `Retry-After` on a 429 (after the client's own retries), in seconds; None otherwise."""
    if error.response.status_code != 429:
        return None
    headers = {str(k).lower(): v for k, v in (error.response.headers or {}).items()}
    value = headers.get("retry-after")
    value = value[0] if isinstance(value, list) and value else value
    try:
        return max(float(str(value)), 0.0)
    except ValueError:
        return 1.0
