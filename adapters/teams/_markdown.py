"""An event's own markdown (`prompt_type="markdown"`) as the subset Teams renders in a `TextBlock`.

The author's text is parsed as CommonMark and written out again with only what Teams' cards
render and we allow: bold, italics, lists and links to http(s) pages. Everything else is written
as escaped text, so Teams finds no construct we did not write ourselves: no other link (not even
one a client's markdown reader would see where CommonMark sees none), no `<at>` mention, no HTML.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from markdown_it import MarkdownIt
from markdown_it.token import Token

from hitl_chatops.bot.protocol import RunInfo

_PARSER = MarkdownIt("commonmark", {"html": False})  # HTML stays text
_SPECIAL = re.compile(r"([\\`*_\[\]()<>])")  # all that can start a link, a mention or emphasis
_INLINE = {
    "strong_open": "**",
    "strong_close": "**",
    "em_open": "_",
    "em_close": "_",
    "softbreak": "\n",
    "hardbreak": "\n",
}


def teams_markdown(text: str) -> str:
    """`text`, read as CommonMark, as a Teams `TextBlock` shows it safely."""
    found: list[str] = []
    lists: list[list[int]] = []  # per open list: [next number], or [] for bullets
    prefix = ""
    for token in _PARSER.parse(text):
        if token.type in ("bullet_list_open", "ordered_list_open"):
            lists.append([int(token.attrGet("start") or 1)] if token.type == "ordered_list_open" else [])
        elif token.type in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
            found.append("" if lists else "\n")
        elif token.type == "list_item_open":
            numbering = lists[-1]
            prefix = "  " * (len(lists) - 1) + (f"{numbering[0]}. " if numbering else "- ")
            if numbering:
                numbering[0] += 1
        elif token.type == "heading_open":  # Teams shows no headings: a bold paragraph
            prefix = "**"
        elif token.type == "heading_close":
            found.append("**\n\n")
        elif token.type == "inline":
            found.append(prefix + _inline(token.children or []))
            prefix = ""
        elif token.type == "paragraph_close":
            found.append("\n" if lists else "\n\n")
        elif token.type in ("code_block", "fence"):
            found.append(_escape(token.content.rstrip("\n")) + "\n\n")
    return "".join(found).strip()


def is_plain(text: str) -> bool:
    """Whether a markdown reader shows `text` exactly as it is (no character it could act on)."""
    return _SPECIAL.search(text) is None


def _inline(tokens: Iterable[Token]) -> str:
    found: list[str] = []
    links: list[str | None] = []
    for token in tokens:
        if token.type in ("text", "code_inline", "image"):  # an image: its description (no images in text)
            found.append(_escape(token.content))
        elif token.type == "link_open":
            links.append(RunInfo(url=str(token.attrGet("href") or "")).url)  # the protocol's rule: http(s) only
            if links[-1]:
                found.append("[")
        elif token.type == "link_close":
            if url := links.pop():
                found.append(f"]({url})")
        else:
            found.append(_INLINE.get(token.type, ""))
    return "".join(found)


def _escape(text: str) -> str:
    return _SPECIAL.sub(r"\\\1", text)
