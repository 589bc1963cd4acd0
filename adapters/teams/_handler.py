"""The Teams bot: turn activities into core calls and core results into cards.

- any message, installation or conversation update: remember the conversation reference;
- `adaptiveCard/action` invoke (Action.Execute) and card submits (Action.Submit fallback): answer, or
  for a team decision vote, propose, confirm or reject a proposal, or hand over (`_decision`); "Get
  my answer link" (an event too large for a card): the presser's personal form link, in the reply;
- `application/search` invoke: the people picker's search, from Microsoft Graph;
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
    AdaptiveCardSearchInvokeValue,
    ChannelAccount,
    InvokeResponse,
    TextFormatTypes,
    TurnContextProtocol,
)
from microsoft_agents.hosting.core import ActivityHandler, MessageFactory, TurnContext
from pydantic import ValidationError

from hitl_chatops.bot.errors import (
    AlreadyAnswered,
    EventExpired,
    EventNotFound,
    InvalidValue,
    MembershipUnknown,
    NotAllowed,
    StoreError,
    StoreUnavailable,
    UserError,
)
from hitl_chatops.bot.protocol import Request, Responder
from hitl_chatops.bot.service import HitlService
from hitl_chatops.bot.states import text_of
from hitl_chatops.bot.team import Verdict
from hitl_chatops.bot.view import EventView, event_view

from ._batch import BATCH_VERB, batch_card, batch_payload
from ._cards import (
    CARD_CONTENT_TYPE,
    LINK_VERB,
    VERB,
    answer_payload,
    ended_card,
    event_card,
    link_card,
    link_payload,
    notice_card,
)
from ._decision import DELEGATE_ID, TeamAction, team_action
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
_SEARCH = "application/search"
_SEARCH_RESPONSE = "application/vnd.microsoft.search.searchResponse"
_NOBODY_PICKED = "Choose the person to hand this to from the list, by name."
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
        if action.verb == BATCH_VERB and (bulk := batch_payload(action.data)) is not None:
            found = await self._answer_batch(*bulk, _responder(turn_context.activity))
            return AdaptiveCardInvokeResponse(status_code=200, type=CARD_CONTENT_TYPE, value=found)
        if action.verb == LINK_VERB and (request_id := link_payload(action.data)) is not None:
            found = await self._personal_link(request_id, _responder(turn_context.activity))
            return AdaptiveCardInvokeResponse(status_code=200, type=CARD_CONTENT_TYPE, value=found)
        payload = answer_payload(action.data) if action.verb == VERB else None
        if payload is None:
            return _invoke_error(400, "This card action is not one hitl-chatops knows.")
        outcome = await self._answer(*payload, _responder(turn_context.activity), action.data)
        return AdaptiveCardInvokeResponse(status_code=200, type=CARD_CONTENT_TYPE, value=outcome.card)

    async def on_invoke_activity(self, turn_context: Turn) -> InvokeResponse | None:
        """The people picker's search (`application/search`); every other invoke as the SDK routes it."""
        if turn_context.activity.name != _SEARCH:
            return await super().on_invoke_activity(turn_context)
        value = turn_context.activity.value
        try:  # Teams leaves out `kind` (the SDK's own search route fills in "search" for Teams too)
            query = AdaptiveCardSearchInvokeValue.model_validate(
                {"kind": "search", **value} if isinstance(value, dict) else value
            )
        except ValidationError:
            return _invoke_response(_invoke_error(400, "This search is not one hitl-chatops knows."))
        try:
            users = await self._platform.search_people(query.query_text)
        except MembershipUnknown:  # logged; the picker shows no one and the person types again
            users = []
        results = [{"title": user.name, "value": user.id} for user in users]
        found = AdaptiveCardInvokeResponse(status_code=200, type=_SEARCH_RESPONSE, value={"results": results})
        return _invoke_response(found)

    async def on_message_activity(self, turn_context: Turn) -> None:
        activity = turn_context.activity
        if (bulk := batch_payload(activity.value)) is not None:  # Action.Submit fallback of Approve all
            found = await self._answer_batch(*bulk, _responder(activity))
            await turn_context.send_activity(card_activity(found))
            return
        payload = answer_payload(activity.value)
        if payload is not None and isinstance(activity.value, dict):
            await self._submitted(turn_context, *payload, activity.value)
            return
        command = _MENTION.sub("", activity.text or "").strip().lower()
        if command in ("pending", "list"):
            await self._list_pending(turn_context)
        elif command in ("help", "hi", "hello", ""):
            await turn_context.send_activity(_markdown(_help(activity)))
            await self._list_pending(turn_context)
        else:
            await turn_context.send_activity(_markdown(_help(activity)))

    async def _submitted(self, turn_context: Turn, request_id: str, raw: object, data: dict[str, object]) -> None:
        """Action.Submit fallback: a message carrying the card's data; re-render the card it came from."""
        activity = turn_context.activity
        outcome = await self._answer(request_id, raw, _responder(activity), data)
        if outcome.answered:
            return  # the core's answered hook updates every stored copy, this one included
        if activity.reply_to_id:
            update = card_activity(outcome.card)
            update.id = activity.reply_to_id
            await turn_context.update_activity(update)
        else:
            await turn_context.send_activity(card_activity(outcome.card))

    async def _personal_link(self, request_id: str, responder: Responder) -> Card:
        """Get my answer link: the person's own form link, in the invoke's reply (which only they see),
        once the core's `check` lets them answer now; else the card as it stands, with why not."""
        try:
            request = await self._service.event(request_id)
        except EventNotFound as error:
            return notice_card("Event not found", str(error))
        except UserError as error:  # storage unreachable: "please try again"
            return notice_card("No link", str(error))
        try:
            await self._service.check(request_id, responder)
        except UserError as error:
            return (await self._refused(request, notice=str(error))).card
        return link_card(request, self._service.form_url(request_id, responder))

    async def _answer_batch(self, batch: str, approve: bool, responder: Responder) -> Card:
        """Approve all / Reject all (`HitlService.answer_batch`): the batch's card with what it did."""
        try:
            result = await self._service.answer_batch(batch, approve, responder, PLATFORM)
            view = await self._service.delivery.batches.view(batch)
        except UserError as error:
            return notice_card("Not answered", str(error))
        except StoreError:
            return notice_card("Not answered", str(StoreUnavailable(reading=True)))
        if view is None:
            return notice_card("Answered", result.text)
        return batch_card(view, self._service.batch_url(batch), notice=result.text)

    async def _answer(self, request_id: str, raw: object, responder: Responder, data: dict[str, object]) -> Outcome:
        """Ask the core; render what it decided (`data`: the card action's, for a team decision's controls).
        Only `UserError` texts reach a person."""
        try:
            request = await self._service.event(request_id)
        except EventNotFound as error:
            return Outcome(notice_card("Event not found", str(error)), False)
        except UserError as error:  # storage unreachable: "please try again"
            return Outcome(notice_card("Not answered", str(error)), False)
        if request.team_event:
            return await self._team(request, data, raw, responder)
        try:
            verdict = await self._service.answer(request_id, raw, responder, PLATFORM)
        except InvalidValue as error:
            return Outcome(await self._event_card(request, errors=error.errors, typed=raw), False)
        except StoreUnavailable as error:
            return Outcome(await self._event_card(request, error=str(error), typed=raw), False)
        except NotAllowed as error:
            return Outcome(await self._event_card(request, notice=str(error)), False)
        except AlreadyAnswered as error:
            return Outcome(ended_card(event_view(request, error.response), notice=str(error)), False)
        except EventExpired as error:
            return Outcome(ended_card(event_view(request, expired=True), notice=str(error)), False)
        except UserError as error:
            return Outcome(notice_card("Not answered", str(error)), False)
        return Outcome(ended_card(verdict.view), True)

    async def _team(self, request: Request, data: dict[str, object], typed: object, responder: Responder) -> Outcome:
        """A team decision's control: the card with what it did (counted, and how far; or decided), or
        with why it was refused, as the decision stands now."""
        try:
            verdict = await self._team_action(request, team_action(data), typed, responder)
        except InvalidValue as error:
            return await self._refused(request, errors=error.errors, typed=typed)
        except UserError as error:  # refused (twice, the requester, not eligible, decided, stale round), or retry
            return await self._refused(request, notice=str(error), typed=typed)
        if verdict.decided:
            return Outcome(ended_card(verdict.view, notice=text_of(verdict.note)), True)
        return Outcome(await self._event_card(request, notice=text_of(verdict.note), view=verdict.view), True)

    async def _team_action(self, request: Request, action: TeamAction, raw: object, responder: Responder) -> Verdict:
        request_id, service = request.request_id, self._service
        if action.act == "delegate":
            to = await self._delegate(action.delegate)
            return await service.delegate(request_id, responder, to, PLATFORM, note=action.note)
        if action.act is not None:  # a proposal's Confirm or Reject, in the round the person saw
            decide = service.approve if action.act == "confirm" else service.reject
            return await decide(request_id, responder, PLATFORM, reason=action.reason, round_=action.round)
        return await service.answer(request_id, raw, responder, PLATFORM, reason=action.reason)

    async def _delegate(self, picked: str | None) -> Responder:
        """The person picked (an Entra object id), named as the directory has them; checked there when
        the bot has Microsoft Graph (emulator mode takes the id as it came)."""
        if picked is None:
            raise InvalidValue(_NOBODY_PICKED, {DELEGATE_ID: _NOBODY_PICKED})
        if not self._platform.directory:
            return Responder(platform=PLATFORM, user_id=picked, user_name="")
        user = await self._platform.person(picked)
        if user is None:
            raise NotAllowed(_NOBODY_PICKED)
        return Responder(platform=PLATFORM, user_id=user.id, user_name=user.name)

    async def _refused(
        self,
        request: Request,
        *,
        notice: str | None = None,
        errors: dict[str, str] | None = None,
        typed: object = None,
    ) -> Outcome:
        """The card as the decision stands now, with why the action was refused beside its inputs or above them."""
        try:
            view: EventView = await self._service.state(request.request_id)
        except UserError as unreadable:  # storage unreachable: the refusal, and the retry it asks for
            return Outcome(notice_card("Not answered", f"{notice or ''} {unreadable}".strip()), False)
        if not view.open:
            return Outcome(ended_card(view, notice=notice), False)
        fields = {k: v for k, v in (errors or {}).items() if not k.startswith("hitl.")}
        whole = " ".join(v for k, v in (errors or {}).items() if k.startswith("hitl.")) or None
        card = await self._event_card(request, notice=notice, errors=fields, error=whole, typed=typed, view=view)
        return Outcome(card, False)

    async def _event_card(
        self,
        request: Request,
        *,
        errors: dict[str, str] | None = None,
        error: str | None = None,
        notice: str | None = None,
        typed: object = None,
        view: EventView | None = None,
    ) -> Card:
        """The question's card, with people named (`TeamsPlatform.named`)."""
        form_url = self._service.form_url(request.request_id)
        view = await self._platform.named(view or event_view(request))
        return event_card(request, form_url, errors=errors, error=error, notice=notice, typed=typed, view=view)

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
            listed = await self._pending(responder, personal=personal)
        except StoreUnavailable:  # the message was answered already: say so here, or the person hears nothing
            await context.send_activity(MessageFactory.text(_LIST_UNREADABLE))
            return
        if not listed.total:
            await context.send_activity(MessageFactory.text("Nothing is waiting for your answer."))
            return
        count, shown = listed.total, len(listed.shown)
        more = f" (showing the {listed.which} {shown})" if count > shown else ""
        await context.send_activity(MessageFactory.text(f"{count} event(s) wait for your answer{more}:"))
        for request, known in listed.shown:
            await asyncio.sleep(_LIST_SPACING_SECONDS)
            view = known or await self._view_if_open(request)
            if request.team_event and view is None:
                continue  # decided meanwhile
            resource = await context.send_activity(card_activity(await self._event_card(request, view=view)))
            if resource is not None and resource.id:
                await self._platform.record(request, conversation_id, str(resource.id), "pending")

    async def _pending(self, responder: Responder, *, personal: bool) -> _Listed:
        """The person's inbox in their personal chat (most urgent first, a team decision with its votes
        read already); elsewhere the newest events they may answer."""
        if personal:
            inbox = await self._service.inbox(responder, shown=MAX_LISTED)
            shown = [(view.request, view if view.request.team_event else None) for view in inbox.shown]
            return _Listed(shown, inbox.total, "most urgent")
        events = await self._service.pending(responder)
        return _Listed([(request, None) for request in events[:MAX_LISTED]], len(events), "newest")

    async def _view_if_open(self, request: Request) -> EventView | None:
        """A team decision as it stands, if still open (the votes so far on its card); None for a simple
        event, or storage unreadable just now (the card then shows the decision as it started)."""
        if not request.team_event:
            return None
        try:
            view = await self._service.state(request.request_id)
        except StoreUnavailable:
            return event_view(request)
        return view if view.open else None


@dataclass(frozen=True)
class _Listed:
    """A pending list: the events shown (each with its view when read already), how many wait in all,
    and which ones are shown."""

    shown: list[tuple[Request, EventView | None]]
    total: int
    which: str


def _responder(activity: Activity) -> Responder:
    person = activity.from_property
    if person is None:
        return Responder(platform=PLATFORM)
    return Responder(
        platform=PLATFORM,
        user_id=str(person.aad_object_id or person.id or ""),
        user_name=str(person.name or ""),
    )


def _invoke_response(body: AdaptiveCardInvokeResponse) -> InvokeResponse:
    """An invoke's HTTP reply, as the SDK's own routes send theirs (200, the body as JSON)."""
    return InvokeResponse(status=200, body=body.model_dump(mode="json", by_alias=True, exclude_none=True))


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
