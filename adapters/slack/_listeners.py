"""Bolt listeners: turn clicks, submissions and the slash command into core calls, and back.

Every listener acks at once (Slack's 3 s limit) and leaves its work to a task that runs after the
ack has gone out, except the dialog submissions (an answer, a team decision's Reject reason, a
hand-over), whose ack carries the core's verdict as an inline error when the core answers within
`ACK_BUDGET_SECONDS`; a slower verdict (a slow group lookup) turns the dialog into "Saving…" and is
shown there when it comes. Bolt runs with `process_before_response`, so it answers as soon as a
listener returns, with no polling for the ack. Refusals come from the core as `UserError`s, told
to the person as the core words them; nothing here decides.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError, SlackObjectFormationError
from slack_sdk.models.blocks import MarkdownTextObject, SectionBlock
from slack_sdk.models.views import View
from slack_sdk.web.async_client import AsyncWebClient

from hitl_chatops.bot.answers import schema_of
from hitl_chatops.bot.errors import AlreadyAnswered, InvalidValue, StoreUnavailable, UserError
from hitl_chatops.bot.protocol import Request, Responder
from hitl_chatops.bot.service import HitlService
from hitl_chatops.bot.team import Verdict
from hitl_chatops.bot.text import clip
from hitl_chatops.bot.view import event_view

from . import _batch, _blocks, _home, _modal, _rich, _team
from ._platform import PLATFORM, api_error, as_dicts
from ._rich import Rich, literal

log = logging.getLogger(__name__)
_FAILED = "Something went wrong on our side and your answer was not saved. Please try again in a moment."
# How long Slack-facing work waits for the core (a submission's ack, a click's trigger_id: both
# 3 s from Slack's side): well under Slack's limit, network included.
ACK_BUDGET_SECONDS = 2.0
_SAVING = "Saving your answer… This takes longer than usual; this dialog shows how it went in a moment."


def responder_of(user: dict[str, Any]) -> Responder:
    name = user.get("username") or user.get("name") or ""
    return Responder(platform=PLATFORM, user_id=str(user.get("id", "")), user_name=str(name))


def refusal(error: UserError, request: Request | None = None) -> Rich:
    """The core's refusal for the person; an earlier answer is shown with its receipt when the event is known."""
    earlier = error.response if isinstance(error, AlreadyAnswered) else None
    if earlier is not None and request is not None:
        view = event_view(request, earlier)
        if view.words.receipt:
            return [*literal(f"{view.words.headline}: "), *_blocks.receipt(view), *literal(".")]
    return literal(str(error))


def saved(verdict: Verdict) -> Rich:
    """The note to the person whose answer was just saved: what it decided, or how far a team decision is."""
    return _rich.say(verdict.note, 500)


def _preset(request: Request, pick: str) -> dict[str, object]:
    """Approve/Reject on an "approve, with a reason" event: that choice made in the modal it opens."""
    controls = event_view(request).controls
    decision = controls.approval if controls is not None and controls.typed else None
    if pick not in _blocks.BOOL_PICKS or decision is None:
        return {}
    return {decision.name: _blocks.BOOL_PICKS[pick]}


_SUBMISSION = "hitl_submission"
_REVIEW_WINDOW = 32  # batch events checked at once for "Review one by one"


@dataclass(frozen=True)
class _Verdict:
    """How a modal submission ended: inline errors per input block (None: saved), and the same in
    words; `shown`: the dialog stays open with the note (a team decision's step, which did not end it)."""

    errors: dict[str, str] | None
    note: Rich
    shown: bool = False

    @classmethod
    def saved(cls, verdict: Verdict) -> _Verdict:
        return cls(None, saved(verdict), shown=verdict.tally is not None)

    @classmethod
    def refused(cls, block: str, error: UserError, note: Rich) -> _Verdict:
        return cls({block: clip(str(error), _blocks.ERROR_LIMIT)}, not_saved(note))


def not_saved(note: Rich) -> Rich:
    return [*literal("Not saved: "), *note]


async def well_formed(
    body: dict[str, Any], context: AsyncBoltContext, next_: Callable[[], Awaitable[None]]
) -> BoltResponse | None:
    """Read a submission's view before its listener runs; a shape Slack never sends is a 400.

    Only Slack can sign a submission, so this is cheap insurance, not a defence: one log line, no traceback.
    """
    try:
        context[_SUBMISSION] = _modal.Submission.model_validate(body.get("view"))
    except ValidationError as error:
        log.warning("malformed slack submission", extra={"error": f"{error.error_count()} invalid parts"})
        return BoltResponse(status=400, body="malformed view_submission")
    await next_()
    return None


class Listeners:
    """The bolt listeners of one bot, bound to its core service."""

    def __init__(self, service: HitlService, command: str) -> None:
        self.service = service
        self.command = command
        self.home = _home.Home(service, command)

    def register(self, app: AsyncApp) -> None:
        app.action(re.compile(rf"^{_blocks.ANSWER_ACTION}_\d+$"))(self.on_answer)
        app.action(_blocks.SELECT_ACTION)(self.on_select)
        app.action(re.compile(rf"^{_blocks.MODAL_ACTION}(_\d+)?$"))(self.on_open_modal)
        app.action(_blocks.FORM_ACTION)(self.on_form_link)
        app.action(_blocks.CONFIRM_ACTION)(self.on_confirm)
        app.action(_blocks.REJECT_ACTION)(self.on_reject)
        app.action(_blocks.DELEGATE_ACTION)(self.on_delegate)
        app.action(re.compile(rf"^{_batch.BULK_ACTION}_\d+$"))(self.on_batch_all)
        app.action(_batch.REVIEW_ACTION)(self.on_batch_review)
        app.view(_blocks.MODAL_CALLBACK, middleware=[well_formed])(self.on_submit)
        app.view(_team.REASON_CALLBACK, middleware=[well_formed])(self.on_reason)
        app.view(_team.DELEGATE_CALLBACK, middleware=[well_formed])(self.on_handover)
        app.command(self.command)(self.on_command)
        app.event("app_home_opened")(self.on_home_opened)

    def _after_ack(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` once the listener has returned and bolt has sent the ack (shutdown waits for it)."""
        self.service.background.spawn(work)

    # -- message controls ------------------------------------------------------------------

    async def on_answer(
        self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        self._after_ack(self._answer(body, str(action.get("value", "")), client))

    async def on_select(
        self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        self._after_ack(self._answer(body, str((action.get("selected_option") or {}).get("value", "")), client))

    async def on_form_link(self, ack: AsyncAck) -> None:
        await ack()  # a URL button still sends an action; Slack shows a warning unless it is acked

    async def on_open_modal(
        self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        self._after_ack(self._open_modal(body, str(action.get("value", "")), client))

    async def _open_modal(self, body: dict[str, Any], value: str, client: AsyncWebClient) -> None:
        request_id, pick = _blocks.parse_action_value(value)
        try:
            request = await self._checked(request_id, client, body)
        except UserError as error:
            await self._tell(client, body, await self._refusal(request_id, error))
            return
        if (reason := _modal.too_big(request)) is not None:
            await self._to_form(client, body, request, reason)
            return
        try:
            form_url = self.service.form_url(request_id, responder_of(body.get("user") or {}))  # theirs alone
            view = _modal.modal(request, _preset(request, pick), form_url)
            await client.views_open(trigger_id=body["trigger_id"], view=view)
        except SlackObjectFormationError as error:  # a limit `too_big` does not know yet
            log.warning("slack modal does not fit", extra={"request_id": request_id, "error": str(error)[:200]})
            await self._to_form(client, body, request, "Slack cannot show this event's questions in a dialog.")
        except SlackApiError as error:
            log.warning("slack modal failed", extra={"request_id": request_id, "error": api_error(error)})

    # -- a team decision's controls ----------------------------------------------------------

    async def on_confirm(
        self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        request_id, pick = _blocks.parse_action_value(str(action.get("value", "")))
        responder = responder_of(body.get("user") or {})
        confirming = self.service.approve(request_id, responder, PLATFORM, round_=_blocks.round_of(pick))
        self._after_ack(self._acted(body, request_id, confirming, client))

    async def on_reject(
        self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        """Reject… asks why first (the round clicked rides along); `on_reason` rejects."""
        await ack()
        request_id, pick = _blocks.parse_action_value(str(action.get("value", "")))
        round_ = _blocks.round_of(pick) or 1

        async def dialog(request: Request) -> View:
            return _team.reason_modal(request, round_, await self.service.state(request_id))

        self._after_ack(self._open_dialog(body, request_id, client, dialog))

    async def on_delegate(
        self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        """Delegate… opens the hand-over dialog for someone who may still act; `on_handover` hands over."""
        await ack()
        request_id, _ = _blocks.parse_action_value(str(action.get("value", "")))

        async def dialog(request: Request) -> View:
            return _team.delegate_modal(request)

        self._after_ack(self._open_dialog(body, request_id, client, dialog))

    async def _open_dialog(
        self,
        body: dict[str, Any],
        request_id: str,
        client: AsyncWebClient,
        dialog: Callable[[Request], Awaitable[View]],
    ) -> None:
        """Open a team decision's dialog for a person the core lets act now; else tell them why not."""
        try:
            request = await self._checked(request_id, client, body)
            view = await dialog(request)
        except UserError as error:
            await self._tell(client, body, await self._refusal(request_id, error))
            return
        try:
            await client.views_open(trigger_id=body["trigger_id"], view=view)
        except SlackApiError as error:
            log.warning("slack dialog failed", extra={"request_id": request_id, "error": api_error(error)})

    async def _acted(
        self, body: dict[str, Any], request_id: str, acting: Awaitable[Verdict], client: AsyncWebClient
    ) -> None:
        """Tell the person what their click did: counted (and how far the decision is), or why not.
        A decision is told by every copy; the /hitl list and the Home tab are no copies, so it is told
        there too (the Home republished with it); a Home this replica shows them elsewhere is refreshed."""
        responder = responder_of(body.get("user") or {})
        try:
            verdict = await acting
        except UserError as error:
            log.info(
                "slack answer refused",
                extra={"request_id": request_id, "user": responder.user_id, "outcome": type(error).__name__},
            )
            await self._tell(client, body, await self._refusal(request_id, error))
            return
        except Exception:
            log.exception("slack answer failed", extra={"request_id": request_id, "user": responder.user_id})
            await self._tell(client, body, literal(_FAILED))
            return
        in_home = _home.from_home(body)
        if in_home or (body.get("container") or {}).get("is_ephemeral") or not verdict.decided:
            await self._tell(client, body, saved(verdict))
        if not in_home:
            await self.home.refresh(client, responder.user_id)

    async def _checked(self, request_id: str, client: AsyncWebClient, body: dict[str, Any]) -> Request:
        """The event once the core's `check` passes (answered, expired or not theirs: refused before
        the person types anything).

        A check still waiting on a slow group lookup after `ACK_BUDGET_SECONDS` is not waited for:
        the click's trigger runs out 3 s after the click, so the modal opens now, the submission is
        checked again, and a refusal that comes later is told to the person.
        """
        checking = asyncio.ensure_future(self.service.check(request_id, responder_of(body.get("user") or {})))
        await asyncio.wait([checking], timeout=ACK_BUDGET_SECONDS)
        if checking.done():
            return checking.result()
        self._after_ack(self._refused_later(checking, request_id, client, body))
        return await self.service.event(request_id)

    async def _refused_later(
        self, checking: Awaitable[Request], request_id: str, client: AsyncWebClient, body: dict[str, Any]
    ) -> None:
        try:
            await checking
        except UserError as error:
            await self._tell(client, body, await self._refusal(request_id, error))

    async def _to_form(self, client: AsyncWebClient, body: dict[str, Any], request: Request, reason: str) -> None:
        """Send the person who clicked to the web form with their personal link (the ephemeral note is
        theirs alone), saying why Slack cannot ask them here."""
        log.info("slack event sent to the web form", extra={"request_id": request.request_id, "reason": reason})
        form_url = self.service.form_url(request.request_id, responder_of(body.get("user") or {}))
        await self._tell(client, body, _modal.form_note(request, reason, form_url))

    async def _answer(self, body: dict[str, Any], value: str, client: AsyncWebClient) -> None:
        """A one-click answer: a simple event's, or a team decision's Approve or proposal."""
        request_id, pick = _blocks.parse_action_value(value)
        responder = responder_of(body.get("user") or {})

        async def answering() -> Verdict:
            raw = _blocks.chosen(pick, await self._choices(request_id, pick))
            return await self.service.answer(request_id, raw, responder, PLATFORM)

        await self._acted(body, request_id, answering(), client)

    async def _choices(self, request_id: str, pick: str) -> list[Any] | None:
        """The event's choices, read only when the pick names one (a bool click needs no read)."""
        if _blocks.choice_index(pick) is None:
            return None
        return (await self.service.event(request_id)).choices

    async def _refusal(self, request_id: str, error: UserError) -> Rich:
        """`refusal` with the event read, so an earlier answer is shown field by field."""
        try:
            request: Request | None = await self.service.event(request_id)
        except UserError:  # unknown, or storage unreachable: the core's text alone says enough
            request = None
        return refusal(error, request)

    async def _tell(self, client: AsyncWebClient, body: dict[str, Any], note: Rich) -> None:
        """An ephemeral note (rich text; `text` is its notification) to the person who clicked, in the
        channel of the click; in a Home tab, which has no channel, a line at the top of it, republished."""
        user = (body.get("user") or {}).get("id")
        if user and _home.from_home(body):
            await self.home.publish(client, user, note)
            return
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        if not user or not channel:
            log.warning("slack note has nowhere to go", extra={"user": user})
            return
        try:
            blocks = as_dicts([_rich.block(note)])
            await client.chat_postEphemeral(channel=channel, user=user, text=_rich.fallback(note), blocks=blocks)
        except SlackApiError as error:
            log.warning("slack ephemeral failed", extra={"channel": channel, "error": api_error(error)})

    # -- a batch's message (bot/batch.py) ---------------------------------------------------

    async def on_batch_all(
        self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        self._after_ack(self._batch_all(body, str(action.get("value", "")), client))

    async def _batch_all(self, body: dict[str, Any], value: str, client: AsyncWebClient) -> None:
        """Approve all / Reject all: each event answered by the core on its own; the person is told the counts."""
        batch, pick = _blocks.parse_action_value(value)
        responder = responder_of(body.get("user") or {})
        if pick not in _blocks.BOOL_PICKS:
            await self._tell(client, body, literal("That button is not one of ours."))
            return
        try:
            result = await self.service.answer_batch(batch, _blocks.BOOL_PICKS[pick], responder, PLATFORM)
        except UserError as error:
            await self._tell(client, body, literal(str(error)))
            return
        except Exception:
            log.exception("slack batch answer failed", extra={"batch_id": batch, "user": responder.user_id})
            await self._tell(client, body, literal(_FAILED))
            return
        await self._tell(client, body, literal(result.text))

    async def on_batch_review(
        self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        self._after_ack(self._batch_review(body, str(action.get("value", "")), client))

    async def _batch_review(self, body: dict[str, Any], value: str, client: AsyncWebClient) -> None:
        """Review one by one: the Respond modal of the batch's oldest event this person may answer now."""
        batch, _ = _blocks.parse_action_value(value)
        responder = responder_of(body.get("user") or {})
        try:
            request = await self._first_answerable(await self.service.batch_events(batch), responder)
        except UserError as error:
            await self._tell(client, body, literal(str(error)))
            return
        if request is None:
            await self._tell(client, body, literal("Nothing in this batch waits for your answer."))
            return
        await self._open_modal(body, _blocks.action_value(request.request_id), client)

    async def _first_answerable(self, requests: Sequence[Request], responder: Responder) -> Request | None:
        """The oldest of `requests` the person may answer now, checked `_REVIEW_WINDOW` at a time: the
        modal must open within Slack's 3 s of the click, however many events ahead are not theirs.
        Storage trouble is raised (`StoreUnavailable`), not taken for "nothing waits for you"."""

        async def answerable(request: Request) -> bool:
            try:
                await self.service.check(request.request_id, responder)
            except StoreUnavailable:
                raise
            except UserError:
                return False
            return True

        for start in range(0, len(requests), _REVIEW_WINDOW):
            window = requests[start : start + _REVIEW_WINDOW]
            for request, ok in zip(window, await asyncio.gather(*map(answerable, window)), strict=True):
                if ok:
                    return request
        return None

    # -- the modal -------------------------------------------------------------------------

    async def on_submit(
        self, ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
    ) -> None:
        """Ack with the core's verdict if it comes within `ACK_BUDGET_SECONDS`; else ack with a
        "Saving…" view at once and show the verdict in it when it comes (`views.update`).

        Waiting for the verdict keeps the person's typing on screen when a value is refused; not
        waiting longer keeps Slack's 3 s limit whatever a group lookup costs. The answer is saved
        either way: the person never has to submit again because Slack was slow.
        """
        submission: _modal.Submission = context[_SUBMISSION]
        responder = responder_of(body.get("user") or {})
        await self._verdict(ack, client, submission, self._submit(submission, responder), responder.user_id)

    async def on_reason(
        self, ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
    ) -> None:
        """The Reject dialog submitted: `HitlService.reject` with the reason, in the round it was opened for."""
        submission: _modal.Submission = context[_SUBMISSION]
        responder = responder_of(body.get("user") or {})
        await self._verdict(ack, client, submission, self._reject(submission, responder), responder.user_id)

    async def on_handover(
        self, ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
    ) -> None:
        """The Delegate dialog submitted: `HitlService.delegate` to the person picked, with the note."""
        submission: _modal.Submission = context[_SUBMISSION]
        responder = responder_of(body.get("user") or {})
        await self._verdict(ack, client, submission, self._handover(submission, responder), responder.user_id)

    async def _verdict(
        self,
        ack: AsyncAck,
        client: AsyncWebClient,
        submission: _modal.Submission,
        deciding: Coroutine[Any, Any, _Verdict],
        user_id: str,
    ) -> None:
        """Ack a submission with its verdict: inline errors, the note (a team decision's step), or
        closed; "Saving…" first when the verdict takes longer than `ACK_BUDGET_SECONDS`. Once saved,
        a Home this replica shows the person is refreshed (a dialog opened from it, most likely)."""
        verdict = asyncio.ensure_future(deciding)
        await asyncio.wait([verdict], timeout=ACK_BUDGET_SECONDS)
        if not verdict.done():
            await ack(response_action="update", view=_modal.note_view(literal(_SAVING)))
            self._after_ack(self._show_later(verdict, submission.id, client))
            return
        if errors := verdict.result().errors:
            await ack(response_action="errors", errors=errors)
            return
        if verdict.result().shown:
            await ack(response_action="update", view=_modal.note_view(verdict.result().note))
        else:
            await ack()
        self._after_ack(self.home.refresh(client, user_id))

    async def _show_later(self, verdict: Awaitable[_Verdict], view_id: str, client: AsyncWebClient) -> None:
        """The verdict, in the view that said "Saving…"."""
        note = (await verdict).note
        try:
            await client.views_update(view_id=view_id, view=_modal.note_view(note))
        except SlackApiError as error:  # closed by the person, most likely: the message shows the outcome
            log.warning("slack view update failed", extra={"view_id": view_id, "error": api_error(error)})

    async def _submit(self, submission: _modal.Submission, responder: Responder) -> _Verdict:
        """Answer with the modal's inputs: errors per input block (or None once saved), and a note
        saying the same for a view that no longer shows the inputs.

        Invalid fields get the core's message each; any other refusal goes on the first input.
        """
        request_id = submission.request_id
        first = next(iter(submission.state.values), _blocks.VALUE_BLOCK)
        try:
            request = await self.service.event(request_id)
            schema = schema_of(request)
            raw = _modal.submitted_answer(schema, submission)
            verdict = await self.service.answer(request_id, raw, responder, PLATFORM)
        except UserError as error:
            log.info(
                "slack submission refused",
                extra={"request_id": request_id, "user": responder.user_id, "outcome": type(error).__name__},
            )
            note = await self._refusal(request_id, error)
            if isinstance(error, InvalidValue):
                return _Verdict(_modal.field_errors(schema, error.errors, str(error)), not_saved(note))
            return _Verdict.refused(first, error, note)
        except Exception:
            log.exception("slack submission failed", extra={"request_id": request_id, "user": responder.user_id})
            return _Verdict({first: _FAILED}, literal(_FAILED))
        return _Verdict.saved(verdict)

    async def _reject(self, submission: _modal.Submission, responder: Responder) -> _Verdict:
        request_id, pick = _blocks.parse_action_value(submission.private_metadata)
        reason = _team.typed_note(submission.typed(_team.REASON_BLOCK))
        rejecting = self.service.reject(request_id, responder, PLATFORM, reason=reason, round_=_blocks.round_of(pick))
        return await self._team_step(request_id, _team.REASON_BLOCK, rejecting)

    async def _handover(self, submission: _modal.Submission, responder: Responder) -> _Verdict:
        request_id = submission.private_metadata
        picked = submission.picked_user(_team.DELEGATE_TO_BLOCK)
        if not picked:
            return _Verdict({_team.DELEGATE_TO_BLOCK: "Choose the person to hand this to."}, literal("Not saved."))
        note = _team.typed_note(submission.typed(_team.NOTE_BLOCK))
        to = Responder(platform=PLATFORM, user_id=picked)
        handing = self.service.delegate(request_id, responder, to, PLATFORM, note=note)
        return await self._team_step(request_id, _team.DELEGATE_TO_BLOCK, handing)

    async def _team_step(self, request_id: str, block: str, acting: Awaitable[Verdict]) -> _Verdict:
        """A team decision's dialog: saved, its note; refused, the core's message on `block` (a reason or
        note the core refuses, beside its own input)."""
        try:
            verdict = await acting
        except InvalidValue as invalid:
            blocks = {_team.TEXT_BLOCKS[k]: v for k, v in invalid.errors.items() if k in _team.TEXT_BLOCKS}
            if not blocks:
                return _Verdict.refused(block, invalid, literal(str(invalid)))
            return _Verdict(blocks, not_saved(literal(str(invalid))))
        except UserError as error:
            log.info("slack dialog refused", extra={"request_id": request_id, "outcome": type(error).__name__})
            return _Verdict.refused(block, error, await self._refusal(request_id, error))
        except Exception:
            log.exception("slack dialog failed", extra={"request_id": request_id})
            return _Verdict({block: _FAILED}, literal(_FAILED))
        return _Verdict.saved(verdict)

    # -- the Home tab ----------------------------------------------------------------------

    async def on_home_opened(self, event: dict[str, Any], client: AsyncWebClient) -> None:
        user = event.get("user")
        if event.get("tab") == "home" and isinstance(user, str) and user:
            self._after_ack(self.home.publish(client, user))

    # -- the slash command -----------------------------------------------------------------

    async def on_command(self, ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        self._after_ack(self._command(command, respond))

    async def _command(self, command: dict[str, Any], respond: AsyncRespond) -> None:
        word = str(command.get("text") or "").strip().lower()
        if word in ("", "pending"):
            responder = Responder(
                platform=PLATFORM, user_id=str(command.get("user_id", "")), user_name=str(command.get("user_name", ""))
            )
            try:
                requests = await self.service.pending(responder)
            except UserError as error:  # storage unreachable: "try again", rather than silence
                await self._say(respond, literal(str(error)))
                return
            blocks = as_dicts(_blocks.pending_blocks(requests, self.service.form_url))
            await respond(text=_blocks.pending_text(requests), blocks=blocks, response_type="ephemeral")
            return
        help_text = _blocks.help_text(self.command)
        if word == "help":
            await respond(text=help_text, response_type="ephemeral")
            return
        unknown = literal(f'I do not know "{clip(word, 40)}".')
        blocks = as_dicts([_rich.block(unknown), SectionBlock(text=MarkdownTextObject(text=help_text))])
        await respond(text=f"{_rich.fallback(unknown)}\n{help_text}", blocks=blocks, response_type="ephemeral")

    @staticmethod
    async def _say(respond: AsyncRespond, note: Rich) -> None:
        """An ephemeral reply to a slash command, as rich text (`text` is its notification)."""
        await respond(text=_rich.fallback(note), blocks=as_dicts([_rich.block(note)]), response_type="ephemeral")
