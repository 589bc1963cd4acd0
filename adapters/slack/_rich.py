"""Text from a task or a person as Slack rich text: shown as the characters it is.

Slack parses `mrkdwn`: `*b*`, `_i_`, `~s~` and backticks become formatting (and lose their
characters), `<…>` becomes a mention or a link. A `rich_text` block's `text` elements are never
parsed (Slack's rich text block reference: its format for user-defined text), so a model's answer
`2*3*4` or a file name `my_file_v2_final` is shown as written. Our own emphasis is a `style`, and
people and times are elements of their own: a `user` or `usergroup` element for a Slack id (never
built from text a person typed), a `date` element that each reader sees in their own time zone.

A `Rich` is a run of elements; `block` puts runs in one `rich_text` block, `rows` lays out
labelled rows ("**Owner** value") in as few blocks as Slack's limits allow, and `fallback` is the
same run as a message's `text` (escaped: Slack reads that as mrkdwn).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime

from slack_sdk.models.blocks import (
    Block,
    RichTextBlock,
    RichTextElement,
    RichTextElementParts,
    RichTextSectionElement,
)

from hitl_chatops.bot.protocol import format_time
from hitl_chatops.bot.states import Answer, Line, Mention, Part, Said, Strong, When, Who, text_of
from hitl_chatops.bot.text import clip, via_name

from ._text import escape, fit, link

Rich = list[RichTextElement]
USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
GROUP_ID = re.compile(r"S[A-Z0-9]{2,}")
DATE_FORMAT = "{date_short_pretty} {time}"
BLOCK_LIMIT = 3000  # characters of rows in one block: Slack's section limit, kept as a readable size
_BOLD = RichTextElementParts.TextStyle(bold=True)


def literal(text: str, *, bold: bool = False) -> Rich:
    """`text` as written (nothing for empty text: an element holds some)."""
    return [RichTextElementParts.Text(text=text, style=_BOLD if bold else None)] if text else []


def date(moment: datetime) -> RichTextElement:
    """A time each reader sees in their own time zone; the fallback is UTC."""
    return RichTextElementParts.Date(
        timestamp=int(moment.timestamp()), format=DATE_FORMAT, fallback=format_time(moment)
    )


def slack_id(entry: str) -> tuple[str, str] | None:
    """A `responders` entry's Slack user or user group id, as ("user" | "usergroup", id); None otherwise."""
    ident = entry.removeprefix("slack:")
    if USER_ID.fullmatch(ident):
        return "user", ident
    if GROUP_ID.fullmatch(ident):
        return "usergroup", ident
    return None


def mention(entry: str) -> Rich:
    """A `responders` entry: a Slack user or group as its element (they are notified), anything else as text."""
    match slack_id(entry):
        case ("user", ident):
            return [RichTextElementParts.User(user_id=ident)]
        case ("usergroup", ident):
            return [RichTextElementParts.UserGroup(usergroup_id=ident)]
    return literal(entry)


def person(who: Who, *, quiet: bool = False) -> Rich:
    """Who answered: the Slack user Slack named (by name when `quiet`, as in a new message, where a
    user element would notify them), or the name given elsewhere with where they answered."""
    someone = who.person
    if someone is None:
        return literal(who.text)
    if someone.platform == "slack" and USER_ID.fullmatch(someone.user_id):
        if quiet and someone.user_name:
            return literal(clip(someone.user_name, 200))
        return [RichTextElementParts.User(user_id=someone.user_id)]
    return literal(f"{clip(someone.label, 200)} ({via_name(someone.platform)})")


def say(line: Line, limit: int = 1000, *, quiet: bool = False) -> Rich:
    """A line of the core's words: people as user elements where Slack knows them, times as dates,
    our own words and answers in bold, what people chose or typed as written, cut to `limit`.

    `quiet`: for a new message (a thread reply): only the line's `Mention` parts notify; the people
    in `Who` parts are named (a Slack user without a name stays an element: Slack shows nothing else).
    """
    return [element for part in line for element in _part(part, limit, quiet)]


def say_within(line: Line, limit: int, *, part_limit: int = 300) -> Rich:
    """`say(line)` in about `limit` characters: past it, cut before one of our own words (where a list
    of people or times goes on) and end with how many people were left out ("…and 12 more")."""
    shown = [_part(part, part_limit, False) for part in line]
    if sum(map(length, shown)) <= limit:
        return [element for run in shown for element in run]
    for cut in range(len(line) - 1, 0, -1):
        if not isinstance(line[cut], str):
            continue
        left = sum(isinstance(part, Who | Mention) for part in line[cut:])
        head = [element for run in shown[:cut] for element in run]
        tail = f" …and {left} more" if left else " …"
        if length(head) + len(tail) <= limit:
            return [*head, *literal(tail)]
    return literal(clip(text_of(line), limit))


def _part(part: Part, limit: int, quiet: bool) -> Rich:
    if isinstance(part, Strong):
        return literal(part.text, bold=True)
    if isinstance(part, Who):
        return person(part, quiet=quiet)
    if isinstance(part, When):
        return [date(part.moment)] if part.moment else literal(part.text)
    if isinstance(part, Answer):
        return literal(clip(part.text, limit), bold=True)
    if isinstance(part, Said):
        return literal(clip(part.text, limit))
    if isinstance(part, Mention):
        return mention(part.text)
    return literal(part)


def length(run: Iterable[RichTextElement]) -> int:
    """About how many characters `run` shows (an id or a date counted by its text)."""
    return len(plain(run))


def plain(run: Iterable[RichTextElement]) -> str:
    """`run` as people read it: ids as `@id`, dates as their UTC fallback."""
    return "".join(_plain(element) for element in run)


def _plain(element: RichTextElement) -> str:
    if isinstance(element, RichTextElementParts.Text):
        return element.text
    if isinstance(element, RichTextElementParts.User):
        return f"@{element.user_id}"
    if isinstance(element, RichTextElementParts.UserGroup):
        return f"@{element.usergroup_id}"
    if isinstance(element, RichTextElementParts.Date):
        return element.fallback or ""
    if isinstance(element, RichTextElementParts.Link):
        return element.text or element.url
    if isinstance(element, RichTextElementParts.Emoji):
        return f":{element.name}:"
    return ""


def fallback(run: Iterable[RichTextElement], limit: int = BLOCK_LIMIT) -> str:
    """`run` as a message's `text` (its notification; Slack reads it as mrkdwn): text escaped, users,
    groups and links as the mentions and links their elements are, dates in UTC."""
    parts = []
    for element in run:
        if isinstance(element, RichTextElementParts.User):
            parts.append(f"<@{element.user_id}>")
        elif isinstance(element, RichTextElementParts.UserGroup):
            parts.append(f"<!subteam^{element.usergroup_id}>")
        elif isinstance(element, RichTextElementParts.Link):
            parts.append(link(element.url, element.text or element.url))
        else:
            parts.append(escape(_plain(element)))
    text = "".join(parts)
    return text if len(text) <= limit else fit(plain(run), limit)


def block(*runs: Rich, newline: bool = True) -> RichTextBlock:
    """`runs` in one rich text block, one line each (run after run when not `newline`)."""
    elements: Rich = []
    for n, run in enumerate(run for run in runs if run):
        elements += [*(literal("\n") if n and newline else []), *run]
    return RichTextBlock(elements=[RichTextSectionElement(elements=elements or literal(" "))])


def row(label: str, value: Rich, *, label_limit: int = 75) -> Rich:
    """One labelled row: the label in bold, then the value ("**Owner** ann")."""
    return [*literal(clip(label, label_limit), bold=True), *literal(" "), *(value or literal("—"))]


def rows(shown: Sequence[Rich], room: int) -> list[Block]:
    """Labelled rows in as few rich text blocks as `BLOCK_LIMIT` allows, in at most `room` blocks; a
    last line counts the rows that did not fit."""
    parts: list[list[Rich]] = []
    for one in shown:
        last = parts[-1] if parts else None
        if last is None or sum(map(length, last)) + length(one) > BLOCK_LIMIT:
            parts.append([one])
        else:
            last.append(one)
    if len(parts) <= room:
        return [block(*part) for part in parts]
    kept = parts[: max(room - 1, 0)]
    left = len(shown) - sum(len(part) for part in kept)
    return [*(block(*part) for part in kept), block(literal(f"…and {left} more, not shown here."))] if room else []
