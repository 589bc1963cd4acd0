"""Teams as the core's `Platform`: post an event card proactively, re-render one copy, reply in its
conversation (mentioning people), read a group, find a person (`FindsPeople`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aiohttp
from microsoft_agents.activity import Activity, ConversationReference
from microsoft_agents.hosting.core import CardFactory, MessageFactory, TurnContext
from microsoft_agents.hosting.core.channel_service_adapter import ChannelServiceAdapter

from hitl_chatops.bot.batch import BatchView, Pace
from hitl_chatops.bot.errors import HitlError, MembershipUnknown, PlatformError
from hitl_chatops.bot.platform import channel_targets
from hitl_chatops.bot.protocol import MessageRef, Request
from hitl_chatops.bot.service import HitlService
from hitl_chatops.bot.states import Line
from hitl_chatops.bot.view import EventView, event_view

from ._batch import batch_card
from ._cards import ended_card, event_card
from ._elements import Card
from ._graph import Graph, User
from ._names import ids_in, named
from ._references import PLATFORM, message_key, recall
from ._replies import mentioned, reply_activity

log = logging.getLogger(__name__)
# The Bot Connector takes at most 7 messages a second, 8 in 2 s and 60 in 30 s per conversation.
PACE = Pace(per_second=1.0, burst=5)
Callback = Callable[[TurnContext], Awaitable[None]]


def card_activity(card: Card, tenant_id: str | None = None) -> Activity:
    activity: Activity = MessageFactory.attachment(CardFactory.adaptive_card(card))
    if tenant_id:
        activity.channel_data = {"tenant": {"id": tenant_id}}
    return activity


def card_ref(conversation_id: str, activity_id: str, kind: str) -> MessageRef:
    """Where a card of the event is, so any replica can update it later."""
    return MessageRef(
        platform=PLATFORM,
        key=message_key(conversation_id, activity_id),
        data={"conversation_id": conversation_id, "activity_id": activity_id, "kind": kind},
    )


class TeamsPlatform:
    """Posts to `teams:<conversation id>` targets and re-renders a posted card."""

    name: str = PLATFORM
    pace = PACE

    def __init__(
        self, adapter: ChannelServiceAdapter, service: HitlService, app_id: str | None, graph: Graph | None
    ) -> None:
        self._adapter = adapter
        self._service = service
        self._app_id = app_id or ""
        self._graph = graph

    # -- Platform --------------------------------------------------------------------------

    def targets(self, request: Request) -> list[str]:
        """Conversation ids from `teams:<conversation id>` entries."""
        return channel_targets(request, PLATFORM)

    async def send(self, request: Request, target: str) -> MessageRef:
        card = event_card(
            request, self._service.form_url(request.request_id), view=await self.named(event_view(request))
        )
        return await self._post_card(target, card, "post", {"request_id": request.request_id})

    async def rerender(self, view: EventView, ref: MessageRef) -> None:
        """The card as the event stands: a team decision under way (its progress, votes and history, and
        the controls left), or ended."""
        if view.open:
            form_url = self._service.form_url(view.request.request_id)
            await self._replace(ref, event_card(view.request, form_url, view=await self.named(view)))
            return
        await self._replace(ref, ended_card(view))

    async def send_batch(self, view: BatchView, target: str) -> MessageRef:
        """A batch's one card (`bot/batch.py`) in the conversation `target`."""
        card = batch_card(view, self._service.batch_url(view.batch_id))
        return await self._post_card(target, card, "batch", {"batch_id": view.batch_id})

    async def rerender_batch(self, view: BatchView, ref: MessageRef) -> None:
        await self._replace(ref, batch_card(view, self._service.batch_url(view.batch_id)))

    async def remind(self, request: Request, ref: MessageRef, line: Line) -> None:
        """A message in the copy's conversation, mentioning the users the line names (`_replies`)."""
        conversation_id = str(ref.data.get("conversation_id", ""))
        if ref.data.get("kind") == "pending":
            return  # a person's pending list is not where the event was posted
        found = await recall(self._service, conversation_id)
        if found is None:
            return
        reference, tenant = found
        activity = reply_activity(line, await self._users(mentioned(line)))
        if tenant:
            activity.channel_data = {"tenant": {"id": tenant}}

        async def send(context: TurnContext) -> None:
            await context.send_activity(activity)

        await self.in_conversation(reference, send)

    async def named(self, view: EventView) -> EventView:
        """`view` with the people it names by id shown by name, where the directory knows them (`_names`)."""
        return named(view, {user_id: user.name for user_id, user in (await self._users(ids_in(view))).items()})

    async def _users(self, ids: list[str]) -> dict[str, User]:
        """The users among `ids`, looked up together (a group, or an id Graph cannot read now, is named
        as text instead: the card or the reminder goes out all the same)."""
        if self._graph is None or not ids:
            return {}

        async def one(user_id: str) -> User | None:
            try:
                return await self.person(user_id)
            except MembershipUnknown:
                return None

        found = await asyncio.gather(*map(one, ids))
        return {user_id: user for user_id, user in zip(ids, found, strict=True) if user is not None}

    async def group_members(self, group: str) -> set[str] | None:
        """Members of a Microsoft Entra group, through Microsoft Graph when the bot has credentials."""
        return None if self._graph is None else await self._graph.members(group)

    # -- FindsPeople, and the people picker ------------------------------------------------------

    async def user_for_email(self, email: str) -> str | None:
        """The Entra object id of the user with that address (Graph's `GET /users/{address}`); None if
        there is none, or the bot has no Graph (emulator mode: an address never matches anyone there)."""
        user = await self.person(email)
        return None if user is None else user.id

    async def person(self, key: str) -> User | None:
        """The directory user with that object id or address; None if there is none, or no Graph.
        Raises `MembershipUnknown` when Graph could not answer just now."""
        return None if self._graph is None else await self._graph.user(key)

    async def search_people(self, text: str) -> list[User]:
        """Users whose name or address starts with `text`, for the people picker (none without Graph)."""
        return [] if self._graph is None else await self._graph.search_users(text)

    @property
    def directory(self) -> bool:
        """Whether people are looked up in Microsoft Graph (not in emulator mode)."""
        return self._graph is not None

    # -- helpers shared with the bot -----------------------------------------------------------

    async def record(self, request: Request, conversation_id: str, activity_id: str, kind: str) -> None:
        """Remember where a card of the event is, so any replica can update it later."""
        await self._service.delivery.record_message(request, card_ref(conversation_id, activity_id, kind))

    async def _post_card(self, conversation_id: str, card: Card, kind: str, about: dict[str, str]) -> MessageRef:
        """Post `card` into the conversation; `about` says what it is, in the log line."""
        found = await recall(self._service, conversation_id)
        if found is None:
            # Raised, not returned: the post claim is released so the reconciler posts after installation.
            raise PlatformError(
                "no Teams conversation reference: install the app there, or message the bot in it, first"
            )
        reference, tenant = found
        sent: list[str] = []

        async def send(context: TurnContext) -> None:
            resource = await context.send_activity(card_activity(card, tenant))
            if resource is not None and resource.id:
                sent.append(str(resource.id))

        await self.in_conversation(reference, send)
        if not sent:
            raise PlatformError("Teams accepted the card but returned no activity id")
        log.info("teams card posted", extra={**about, "conversation_id": conversation_id, "kind": kind})
        return card_ref(conversation_id, sent[0], kind)

    async def _replace(self, message: MessageRef, card: Card) -> None:
        conversation_id = str(message.data.get("conversation_id", ""))
        activity_id = str(message.data.get("activity_id", ""))
        found = await recall(self._service, conversation_id)
        if found is None or not activity_id:
            return
        reference, tenant = found

        async def update(context: TurnContext) -> None:
            activity = card_activity(card, tenant)
            activity.id = activity_id
            await context.update_activity(activity)

        await self.in_conversation(reference, update)

    async def in_conversation(self, reference: ConversationReference, callback: Callback) -> None:
        """Run `callback` in a proactive turn of the conversation and raise what it raised, as a `PlatformError`.

        The SDK hands a proactive turn's error to `on_turn_error`, which only logs it: a failed
        post or card update would look done, and the reconciler would never retry it.
        """
        failed: list[BaseException] = []

        async def guarded(context: TurnContext) -> None:
            try:
                await callback(context)
            except Exception as error:
                failed.append(error)

        continuation = reference.get_continuation_activity()
        continuation.id = None  # a new message in the conversation, not a reply to the continuation
        try:
            await self._adapter.continue_conversation(self._app_id, continuation, guarded)
        except (aiohttp.ClientError, TimeoutError) as error:  # the connection
            failed.append(error)
        if failed:
            raise _platform_error(failed[0]) from failed[0]


def _platform_error(error: BaseException) -> HitlError:
    if isinstance(error, HitlError):
        return error
    if isinstance(error, aiohttp.ClientResponseError):
        return PlatformError(f"the Bot Connector answered {error.status}")
    return PlatformError(f"the Bot Connector could not be reached ({type(error).__name__})")
