"""People's names on a card, in place of the ids a request holds.

`responders`, a team decision's "Waiting for" and its escalations name people by their Entra object id
(`Mention` parts, `EventView.responders`): fine for the core, unreadable on a card. Before a card is
built, the platform looks the ids up in the directory (cached, `_graph.Graph.user`) and hands the card
a view with each id it found replaced by the person's name; a group, or an id the directory does not
know (or cannot be asked just now), stays as it is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from hitl_chatops.bot.states import Line, Mention
from hitl_chatops.bot.view import EventView

from ._replies import teams_id

__all__ = ["ids_in", "named"]


def ids_in(view: EventView) -> list[str]:
    """The Teams ids a card of `view` would show: who may answer, and the people its words mention."""
    lines = [view.words.status, *(line for _, line in view.words.facts)]
    entries = [*view.responders, *(part.text for line in lines for part in line if isinstance(part, Mention))]
    return list(dict.fromkeys(found for entry in entries if (found := teams_id(entry))))


def named(view: EventView, names: Mapping[str, str]) -> EventView:
    """`view` with each id in `names` shown as that name (the rest unchanged)."""
    if not names:
        return view

    def name(entry: str) -> str:
        return names.get(teams_id(entry) or "", entry)

    def line(parts: Line) -> Line:
        return tuple(Mention(name(p.text)) if isinstance(p, Mention) else p for p in parts)

    words = dataclasses.replace(
        view.words,
        status=line(view.words.status),
        facts=tuple((label, line(parts)) for label, parts in view.words.facts),
    )
    return dataclasses.replace(view, words=words, responders=tuple(name(entry) for entry in view.responders))
