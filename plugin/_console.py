"""The question in a local run's terminal, beside the form and chat, as seed 003's console handler
and Flyte's own local conditions ask it. Whichever surface answers first wins; the others are told.

One daemon thread owns the terminal. It asks one question at a time (events waiting at once queue
up) and reads typed lines with `select`, so no event loop ever blocks on it and a question answered
elsewhere stops at once. Every value is checked by `parse_answer`, the check of the form and chat,
with the same messages, field by field and then whole. A good one is handed to the waiting task's
own loop to be recorded (`via: "console"`). Task text is shown inert: control characters (ANSI
escape sequences among them) and bidirectional overrides print as escapes, never act on the terminal.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import getpass
import logging
import os
import select
import sys
import threading
import unicodedata
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, TextIO

from hitl_chatops.bot.answers import (
    Accepted,
    AnswerField,
    context_rows,
    input_text,
    parse_answer,
    parse_fields,
    prefill,
    range_text,
    schema_of,
)
from hitl_chatops.bot.errors import AlreadyAnswered, StoreError, StoreUnavailable, UserError
from hitl_chatops.bot.protocol import Request, Responder, Response
from hitl_chatops.bot.states import text_of
from hitl_chatops.bot.text import clip
from hitl_chatops.bot.view import event_view

__all__ = ["Question", "alongside", "available", "inert", "person"]

log = logging.getLogger(__name__)
Record = Callable[[Any], Coroutine[Any, Any, Response]]
RECORD_SECONDS = 60.0  # a write that takes longer is reported as storage trouble, and the value asked again
_ROW_LIMIT = 500  # characters of one context row: the form shows everything
_BIDI_CONTROLS = frozenset([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])  # can reorder what is shown


def available(enabled: bool) -> bool:
    """Whether to ask in the terminal: `HITL_CHATOPS_CONSOLE` is on and stdin is a terminal (not in
    CI or a pod, where stdin is a pipe or nothing). POSIX only: `select` on stdin."""
    if not enabled or os.name != "posix":
        return False
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError, OSError):  # closed or replaced stdin
        return False


async def alongside(
    request: Request, record: Record, outcome: Callable[[Callable[[], None]], Awaitable[Response]]
) -> Response:
    """The event's `outcome` (the store's), with the terminal asking too once `outcome` calls its
    argument (when the event is still open after its first read); `record` writes a value typed there
    and returns it, or raises `AlreadyAnswered` when another surface was first."""
    question = _terminal().question(request, record)
    response: Response | None = None
    try:
        response = await outcome(question.ask)
        return response
    finally:
        question.close(response)


def person() -> Responder:
    """Who answers in the terminal: the login running the workflow, as the OS names it."""
    try:
        name = getpass.getuser()
    except (OSError, KeyError, ImportError):  # no login name (a container with an unnamed uid)
        name = ""
    return Responder(platform="console", user_id=name, user_name=name)


def inert(text: str) -> str:
    """`text` safe to print: control characters (but newline and tab) and bidirectional overrides
    become visible escapes (`\\x1b`), so task text never moves the cursor, recolours or hides anything."""
    return "".join(
        ch if ch in "\n\t" or (unicodedata.category(ch) != "Cc" and ord(ch) not in _BIDI_CONTROLS) else _escaped(ch)
        for ch in text
    )


def _escaped(ch: str) -> str:
    return ch.encode("unicode_escape").decode("ascii")


class Question:
    """One event asked in the terminal; `close` (from the waiting task) ends it once the wait is over."""

    def __init__(self, request: Request, record: Record, console: Console) -> None:
        self.request = request
        self.record = record
        self.loop = asyncio.get_running_loop()  # the waiting task's, where answers are recorded
        self.outcome: Response | None = None  # how it ended, when the wait ended first
        self.ended = threading.Event()
        self._console = console

    def ask(self) -> None:
        """Put the question to the terminal, after those already asked or queued."""
        self._console.queue(self)

    def close(self, outcome: Response | None) -> None:
        """The wait is over (`outcome`: the event's, or None if the task stopped waiting): stop asking."""
        if not self.ended.is_set():
            self.outcome = outcome
            self.ended.set()
            self._console.poke()


class _Ended(Exception):
    """The question ended while the terminal asked it: answered elsewhere, or nobody waits any more."""


class _Lines:
    """Lines typed in the terminal, from raw reads (a read may hold part of a line, or several)."""

    def __init__(self) -> None:
        self._partial = b""
        self._lines: deque[str] = deque()

    def feed(self, chunk: bytes) -> None:
        *complete, self._partial = (self._partial + chunk).split(b"\n")
        self._lines.extend(line.decode("utf-8", "replace").rstrip("\r") for line in complete)

    def pop(self) -> str | None:
        return self._lines.popleft() if self._lines else None

    def clear(self) -> None:
        self._partial = b""
        self._lines.clear()


class Console:
    """The terminal's one reader and writer; `queue` takes a question from any thread or loop."""

    def __init__(self, fd: int, out: TextIO) -> None:
        self._fd = fd
        self._out = out
        self._lines = _Lines()
        self._queue: deque[Question] = deque()
        self._ready = threading.Condition()
        self._closed = False  # the terminal reached end of input: ask nothing more
        self._poke_read, self._poke_write = os.pipe()  # wakes the reader when a question ends
        for end in (self._poke_read, self._poke_write):
            os.set_blocking(end, False)
        threading.Thread(target=self._run, name="hitl-chatops-console", daemon=True).start()

    def question(self, request: Request, record: Record) -> Question:
        return Question(request, record, self)

    def queue(self, question: Question) -> None:
        with self._ready:
            if not self._closed:
                self._queue.append(question)
                self._ready.notify()

    def poke(self) -> None:
        """Wake the reader, to notice that its question has ended."""
        with contextlib.suppress(OSError):  # full (a poke is pending anyway) or closed
            os.write(self._poke_write, b".")

    def _run(self) -> None:
        while True:
            question = self._next()
            if question.ended.is_set():
                continue  # answered before its turn: nothing to say
            try:
                self._ask(question)
            except EOFError:
                self._close()
            except Exception:  # a bug here must not end the terminal's questions for good
                log.exception("terminal question failed", extra={"request_id": question.request.request_id})

    def _next(self) -> Question:
        with self._ready:
            while not self._queue:
                self._ready.wait()
            return self._queue.popleft()

    def _close(self) -> None:
        with self._ready:
            self._closed = True
            self._queue.clear()
        self._write("\nThe terminal closed its input; answer through the form link or chat instead.")

    def _ask(self, question: Question) -> None:
        with self._ready:
            later = sum(not q.ended.is_set() for q in self._queue)
        self._write(question_text(question.request, later))
        try:
            while not self._recorded(question, self._value(question)):
                pass
        except _Ended:
            self._write("\n" + ended_text(question.request, question.outcome))
            self._discard_input()  # what was typed for this question is not an answer to the next

    def _value(self, question: Question) -> Any:
        """A value for the event, each field checked as typed, then the whole by `parse_answer`."""
        request = question.request
        schema = schema_of(request)
        proposed = prefill(request)
        typed = {f.name: self._field(question, f, proposed) for f in schema.fields}
        while True:
            outcome = parse_answer(request, typed["value"] if schema.scalar else typed)
            if isinstance(outcome, Accepted):
                return outcome.value
            self._write(outcome.message)
            for name in outcome.errors:
                if (refused := schema.field(name)) is not None:
                    typed[name] = self._field(question, refused, proposed)

    def _field(self, question: Question, answer_field: AnswerField, proposed: Mapping[str, Any]) -> str:
        """What the person typed for one field (Enter keeps the proposal), re-asked until it passes."""
        schema = schema_of(question.request)
        shown = input_text(proposed.get(answer_field.name)) or None  # "" proposes nothing
        if answer_field.description:
            self._write(f"  {inert(answer_field.description)}")
        while True:
            self._write(field_prompt(answer_field, schema.scalar, shown), end="")
            text = self._line(question).strip() or shown or ""
            outcome = parse_fields(schema, {answer_field.name: text}, partial=True)
            if isinstance(outcome, Accepted):
                return text
            self._write(outcome.errors.get(answer_field.name, outcome.message))

    def _recorded(self, question: Question, value: Any) -> bool:
        """Hand `value` to the waiting task's loop to record; False if it should be asked again."""
        writing = question.record(value)
        try:
            future = asyncio.run_coroutine_threadsafe(writing, question.loop)
        except RuntimeError:  # the task's loop has closed: nobody waits for this answer
            writing.close()
            raise _Ended from None
        try:
            response = future.result(RECORD_SECONDS)
        except AlreadyAnswered as first:
            question.outcome = first.response
            raise _Ended from None
        except UserError as refused:  # expired meanwhile
            self._write(str(refused))
            return True
        except (StoreError, TimeoutError):
            future.cancel()
            self._write(str(StoreUnavailable()))
            return False
        except concurrent.futures.CancelledError:  # the task's loop shut down under the write
            raise _Ended from None
        self._write(f"Recorded {inert(event_view(question.request, response).answer_text)}; the workflow goes on.")
        return True

    def _line(self, question: Question) -> str:
        """The next typed line; raises `_Ended` as soon as the question ends, `EOFError` at end of input."""
        while True:
            if question.ended.is_set():
                raise _Ended
            line = self._lines.pop()
            if line is not None:
                return line
            ready, _, _ = select.select([self._fd, self._poke_read], [], [])
            if self._poke_read in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._poke_read, 512)
            if self._fd in ready:
                try:
                    chunk = os.read(self._fd, 4096)
                except OSError:  # the terminal hung up
                    chunk = b""
                if not chunk:
                    raise EOFError
                self._lines.feed(chunk)

    def _discard_input(self) -> None:
        self._lines.clear()
        with contextlib.suppress(OSError, ImportError):
            import termios

            termios.tcflush(self._fd, termios.TCIFLUSH)

    def _write(self, text: str, end: str = "\n") -> None:
        encoding = getattr(self._out, "encoding", None) or "utf-8"
        with contextlib.suppress(OSError, ValueError):  # a closed stream: nothing to show it on
            self._out.write((text + end).encode(encoding, "backslashreplace").decode(encoding))
            self._out.flush()


def question_text(request: Request, later: int) -> str:
    """The question as the terminal shows it: heading, prompt, details, context, what waits after it."""
    lines = [f"\n--- {inert(request.heading)} ---", inert(request.prompt)]
    if request.details:
        lines.append(inert(request.details))
    lines += [f"  {inert(clip(label, 100))}: {inert(clip(text, _ROW_LIMIT))}" for label, text in context_rows(request)]
    lines.append("Answer here, or through the form link or chat: the first answer counts.")
    if later:
        lines.append(f"({later} more {'question waits' if later == 1 else 'questions wait'} after this one.)")
    return "\n".join(lines)


def field_prompt(answer_field: AnswerField, scalar: bool, shown: str | None) -> str:
    """`Amount (number from 0 to 10000) [120.5]: `, `Approve (y/n): ` for a yes/no decision."""
    label = "Approve" if scalar and answer_field.kind == "bool" else answer_field.label
    hint = _hint(answer_field)
    if shown is not None:
        hint += f"; Enter keeps {shown}" if hint else f"Enter keeps {shown}"
    elif not answer_field.required:
        hint += "; Enter skips" if hint else "Enter skips"
    return f"{inert(label)} ({inert(hint)}): " if hint else f"{inert(label)}: "


def _hint(answer_field: AnswerField) -> str:
    if answer_field.kind == "bool":
        return "y/n"
    if answer_field.kind == "choice":
        choices = answer_field.choices or []
        return "one of " + ", ".join(input_text(c) for c in choices[:10]) + (", …" if len(choices) > 10 else "")
    if answer_field.kind in ("int", "float"):
        what = "whole number" if answer_field.kind == "int" else "number"
        bounds = range_text(answer_field.min_value, answer_field.max_value)
        return f"{what} {bounds}" if bounds else what
    return ""


def ended_text(request: Request, outcome: Response | None) -> str:
    """Why the terminal stopped asking: who answered where (the view's receipt), how else the event
    ended (what it says to anyone who answers now), or that nobody waits for the answer any more."""
    view = event_view(request, outcome, expired=request.expired())
    if view.open:
        return f"{inert(request.heading)}: the workflow no longer waits for this answer."
    if view.words.receipt:
        return inert(f"{request.heading}: answered {text_of(view.words.receipt)}.")
    return inert(f"{request.heading}: {text_of(view.words.refusal)}")


def _terminal() -> Console:
    """The process's one console, on stdin and stderr (stdout may be piped to a file; prompts are not output)."""
    global _console
    with _console_lock:
        if _console is None:
            _console = Console(sys.stdin.fileno(), sys.stderr)
        return _console


_console_lock = threading.Lock()
_console: Console | None = None
