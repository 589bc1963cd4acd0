"""A line of the core's words (a reminder, an escalation, a hand-over) as a Teams message that mentions
the people it names.

Teams notifies a person when a message carries `<at>name</at>` in its text and a `mention` entity with
the same text and their id. Only the line's `Mention` parts become mentions, and only those a directory
lookup found to be users; everything else is text. The message is sent as `xml` (HTML) with every
part escaped: what a task or a person wrote is shown as written, never read as markdown, a link or a
mention, and no `<at>` is ever made from it.
"""

from __future__ import annotations

import html
from collections.abc import Mapping

from microsoft_agents.activity import (
    Activity,
    ActivityTypes,
    ChannelAccount,
    Entity,
    EntityTypes,
    Mention,
    TextFormatTypes,
)

from hitl_chatops.bot import states
from hitl_chatops.bot.states import Answer, Line, Strong, text_of

from ._graph import User
from ._references import PLATFORM


def teams_id(entry: str) -> str | None:
    """The Teams id a `responders` entry names (`teams:<id>`, or a bare id), None for another platform's."""
    platform, _, rest = entry.partition(":")
    if not rest:
        return entry
    return rest if platform == PLATFORM else None


def mentioned(line: Line) -> list[str]:
    """The Teams ids of the line's `Mention` parts, in order, once each."""
    ids = (teams_id(part.text) for part in line if isinstance(part, states.Mention))
    return list(dict.fromkeys(i for i in ids if i))


def reply_activity(line: Line, users: Mapping[str, User]) -> Activity:
    """The message for `line`: each `Mention` whose id is in `users` notifies that user; bold where the
    core emphasises; the rest escaped text."""
    text: list[str] = []
    entities: list[Entity] = []
    for part in line:
        if isinstance(part, str):
            text.append(html.escape(part))
        elif isinstance(part, (Strong, Answer)):
            text.append(f"<b>{html.escape(part.text)}</b>")
        elif isinstance(part, states.Mention) and (user := users.get(teams_id(part.text) or "")) is not None:
            tag = f"<at>{html.escape(user.name)}</at>"
            text.append(tag)
            entities.append(
                Mention(mentioned=ChannelAccount(id=user.id, name=user.name), text=tag, type=EntityTypes.MENTION)
            )
        else:
            text.append(html.escape(text_of((part,))))
    activity = Activity(type=ActivityTypes.message, text="".join(text), text_format=TextFormatTypes.xml)
    if entities:
        activity.entities = entities
    return activity
