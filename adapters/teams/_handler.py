"""The Teams bot: turn activities into core calls and core results into cards.

- any message, installation or conversation update: remember the conversation reference;
- `adaptiveCard/action` invoke (Action.Execute) and card submits (Action.Submit fallback): answer;
- "pending" / "help": list the events the sender may answer, as cards: in the bot's personal chat,
  their inbox (most urgent first, without team decisions they voted on: `HitlService.inbox`); in a
  channel or group chat, the newest first.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass

from microsoft_agents.activity import (
    Activity,
    ActivityTypes,
    AdaptiveCardInvokeResponse,
    AdaptiveCardInvokeValue,
    ChannelAccount,
    TextFormatTypes,
    TurnContextProtocol,
)
from microsoft_agents.hosting.core import ActivityHandler, MessageFactory, TurnContext

from hitl_chatops.bot.errors import (
    AlreadyAnswered,
    EventExpired,
    EventNotFound,
    InvalidValue,
    NotAllowed,
    StoreError,
    StoreUnavailable,
    UserError,
)
from hitl_chatops.bot.protocol import Request, Responder
from hitl_chatops.bot.service import HitlService
from hitl_chatops.bot.states import text_of
from hitl_chatops.bot.view import event_view

from ._cards import CARD_CONTENT_TYPE, VERB, answer_payload, ended_card, event_card, notice_card
from ._elements import Card
from ._platform import TeamsPlatform, card_activity
from ._references import PLATFORM, remember

log = logging.getLogger(__name__)
Turn = TurnContextProtocol[Activity]

MAX_LISTED = 20
# Teams lets a bot send at most 7 messages a second, 8 in 2 s and 60 in 30 s into one conversation
# (more is HTTP 429): the pending list's cards go out at most 4 a second.
_LIST_SPACING_SECONDS = 0.25
_LIST_UNREADABLE = "Could not read the pending events because storage is unreachable. Please try again."
_MENTION = re.compile(r"<at>.*?</at>", re.IGNORECASE | re.DOTALL)
_REMEMBERED = (ActivityTypes.message, ActivityTypes.conversation_update, ActivityTypes.installation_update)


@dataclass(frozen=True)
class Outcome:
    card: Card
    answered: bool


class TeamsBot(ActivityHandler):
    def __init__(self, service: HitlService, platform: TeamsPlatform) -> None:
        super().__init__()
        self._service = service
        self._platform = platform

    async def on_turn(self, turn_context: Turn) -> None:
        if turn_context.activity.type in _REMEMBERED:
            try:
                await remember(self._service, turn_context.activity)
            except StoreError as error:  # the next activity from there saves it; this one is still answered
                log.warning("teams conversation reference not saved", extra={"error": type(error).__name__})
        await super().on_turn(turn_context)

    # -- installation ------------------------------------------------------------------------

    async def on_members_added_activity(self, members_added: list[ChannelAccount], turn_context: Turn) -> None:
        bot = turn_context.activity.recipient
        if bot is not None and any(member.id == bot.id for member in members_added):
            await turn_context.send_activity(_markdown(_welcome(turn_context.activity)))

    # -- answers -----------------------------------------------------------------------------

    async def on_adaptive_card_invoke(
        self, turn_context: Turn, invoke_value: AdaptiveCardInvokeValue
    ) -> AdaptiveCardInvokeResponse:
        """Action.Execute: the SDK has checked the invoke's shape; answer with the refreshed card."""
        action = invoke_value.action
        payload = answer_payload(action.data) if action.verb == VERB else None
        if payload is None:
            return _invoke_error(400, "This card action is not one hitl-chatops knows.")
        outcome = await self._answer(*payload, _responder(turn_context.activity))
        return AdaptiveCardInvokeResponse(status_code=200, type=CARD_CONTENT_TYPE, value=outcome.card)

    async def on_message_activity(self, turn_context: Turn) -> None:
        activity = turn_context.activity
        payload = answer_payload(activity.value)
        if payload is not None:
            await self._submitted(turn_context, *payload)
            return
        command = _MENTION.sub("", activity.text or "").strip().lower()
        if command in ("pending", "list"):
            await self._list_pending(turn_context)
        elif command in ("help", "hi", "hello", ""):
            await turn_context.send_activity(_markdown(_help(activity)))
            await self._list_pending(turn_context)
        else:
            await turn_context.send_activity(_markdown(_help(activity)))

    async def _submitted(self, turn_context: Turn, request_id: str, raw: object) -> None:
        """Action.Submit fallback: a message carrying the card's data; re-render the card it came from."""
        activity = turn_context.activity
        outcome = await self._answer(request_id, raw, _responder(activity))
        if outcome.answered:
            return  # the core's answered hook updates every stored copy, this one included
        if activity.reply_to_id:
            update = card_activity(outcome.card)
            update.id = activity.reply_to_id
            await turn_context.update_activity(update)
        else:
            await turn_context.send_activity(card_activity(outcome.card))

    async def _answer(self, request_id: str, raw: object, responder: Responder) -> Outcome:
        """Ask the core; render what it decided. Only `UserError` texts reach a person."""
        try:
            request = await self._service.event(request_id)
        except EventNotFound as error:
            return Outcome(notice_card("Event not found", str(error)), False)
        except UserError as error:  # storage unreachable: "please try again"
            return Outcome(notice_card("Not answered", str(error)), False)
        try:
            verdict = await self._service.answer(request_id, raw, responder, PLATFORM)
        except InvalidValue as error:
            return Outcome(self._event_card(request, errors=error.errors, typed=raw), False)
        except StoreUnavailable as error:
            return Outcome(self._event_card(request, error=str(error), typed=raw), False)
        except NotAllowed as error:
            return Outcome(self._event_card(request, notice=str(error)), False)
        except AlreadyAnswered as error:
            return Outcome(ended_card(event_view(request, error.response), notice=str(error)), False)
        except EventExpired as error:
            return Outcome(ended_card(event_view(request, expired=True), notice=str(error)), False)
        except UserError as error:
            return Outcome(notice_card("Not answered", str(error)), False)
        if not verdict.decided:  # a team decision's vote, counted: the card with what it did (plain for now)
            return Outcome(self._event_card(request, notice=text_of(verdict.note)), True)
        return Outcome(ended_card(verdict.view), True)

    def _event_card(
        self,
        request: Request,
        *,
        errors: dict[str, str] | None = None,
        error: str | None = None,
        notice: str | None = None,
        typed: object = None,
    ) -> Card:
        form_url = self._service.form_url(request.request_id)
        return event_card(request, form_url, errors=errors, error=error, notice=notice, typed=typed)

    # -- pending -----------------------------------------------------------------------------

    async def _list_pending(self, turn_context: Turn) -> None:
        """Answer the message now and list in a turn of our own: a replica that has not read the open
        requests yet reads each once, which at thousands of events outlasts Teams' wait for a reply."""
        activity = turn_context.activity
        reference, responder = activity.get_conversation_reference(), _responder(activity)
        personal = activity.conversation is not None and activity.conversation.conversation_type == "personal"

        async def send(context: TurnContext) -> None:
            await self._send_pending(context, responder, str(reference.conversation.id), personal=personal)

        self._service.background.spawn(self._platform.in_conversation(reference, send))

    async def _send_pending(
        self, context: TurnContext, responder: Responder, conversation_id: str, *, personal: bool
    ) -> None:
        try:
            shown, total, which = await self._pending(responder, personal=personal)
        except StoreUnavailable:  # the message was answered already: say so here, or the person hears nothing
            await context.send_activity(MessageFactory.text(_LIST_UNREADABLE))
            return
        if not total:
            await context.send_activity(MessageFactory.text("Nothing is waiting for your answer."))
            return
        more = f" (showing the {which} {len(shown)})" if total > len(shown) else ""
        await context.send_activity(MessageFactory.text(f"{total} event(s) wait for your answer{more}:"))
        for request in shown:
            await asyncio.sleep(_LIST_SPACING_SECONDS)
            resource = await context.send_activity(card_activity(self._event_card(request)))
            if resource is not None and resource.id:
                await self._platform.record(request, conversation_id, str(resource.id), "pending")

    async def _pending(self, responder: Responder, *, personal: bool) -> tuple[list[Request], int, str]:
        """The events to list, how many wait in all, and which are shown: the person's inbox in their
        personal chat (most urgent first), else the newest they may answer."""
        if personal:
            inbox = await self._service.inbox(responder, shown=MAX_LISTED)
            return [view.request for view in inbox.shown], inbox.total, "most urgent"
        events = await self._service.pending(responder)
        return events[:MAX_LISTED], len(events), "newest"


def _responder(activity: Activity) -> Responder:
    person = activity.from_property
    if person is None:
        return Responder(platform=PLATFORM)
    return Responder(
        platform=PLATFORM,
        user_id=str(person.aad_object_id or person.id or ""),
        user_name=str(person.name or ""),
    )


def _invoke_error(status: int, message: str) -> AdaptiveCardInvokeResponse:
    return AdaptiveCardInvokeResponse(
        status_code=status, type="application/vnd.microsoft.error", value={"code": "BadRequest", "message": message}
    )


def _markdown(text: str) -> Activity:
    activity: Activity = MessageFactory.text(text)
    activity.text_format = TextFormatTypes.markdown
    return activity


def _target(activity: Activity) -> str:
    conversation = activity.conversation
    return f'channels=["teams:{conversation.id if conversation else "?"}"]'


def _welcome(activity: Activity) -> str:
    return (
        "Hi, I'm **hitl-chatops**: I post questions from Flyte workflows here and record your answers.\n\n"
        f"To send events to this conversation, pass `{_target(activity)}` to `new_event(...)`.\n\n"
        "Send **pending** to see the events waiting for your answer, or **help** for this message."
    )


def _help(activity: Activity) -> str:
    return (
        "**hitl-chatops** commands: **pending** lists the events you may answer; **help** shows this.\n\n"
        f"Events reach this conversation with `{_target(activity)}` in `new_event(...)`."
    )
