"""Text from a task or a person, made safe for Slack: the one place Slack text is escaped.

Slack reads `<…>` in `mrkdwn` and in a message's `text` as control sequences: `<!channel>`,
`<!here>`, `<!subteam^S…>` and `<@U…>` notify people, `<url|label>` is a masked link. Escaping
`&`, `<` and `>` turns all of them into the characters they are; `verbatim` on the text object
keeps Slack from linking bare URLs, #channels and @-words. `plain_text` objects are never
parsed, so a `prompt_type="text"` title, prompt and details go there as they are: literally.
A `"markdown"` prompt is the workflow author's CommonMark, parsed with markdown-it and written
out as mrkdwn: emphasis, code, lists and http(s) links; its text is escaped like any other.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode
from slack_sdk.models.blocks import MarkdownTextObject, PlainTextObject, TextObject

from hitl_chatops.bot.protocol import PromptType
from hitl_chatops.bot.text import clip

_URL_UNSAFE = str.maketrans({"|": "%7C", "<": "%3C", ">": "%3E", " ": "%20"})


def escape(text: str) -> str:
    """`text` as the characters it is in mrkdwn or a message's `text`: no mention, no link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fit(text: str, limit: int, render: Callable[[str], str] = escape) -> str:
    """`render(text)` in at most `limit` characters: the source is cut (with "…") until its
    rendering fits, so an escape or a link is never cut in half."""
    shown = render(text)
    cut = len(text)
    while len(shown) > limit and cut > 1:
        cut = min(cut - 1, max(1, cut * limit // len(shown)))
        shown = render(clip(text, cut))
    return shown if len(shown) <= limit else "…"


def link(url: str, label: str) -> str:
    """`<url|label>` for an http(s) URL; any other URL (or none) gives the label alone (escaped)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # "http://[::1": not a URL anyone can follow
        return escape(label)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return escape(label)
    return f"<{escape(url.translate(_URL_UNSAFE))}|{escape(label)}>"


def mrkdwn(text: str, prompt_type: PromptType, limit: int) -> str:
    """Task text inside our own mrkdwn, in at most `limit` characters: escaped, or the author's
    markdown as mrkdwn."""
    return fit(text, limit, markdown_to_mrkdwn if prompt_type == "markdown" else escape)


def plain(text: str, prompt_type: PromptType) -> str:
    """Task text where Slack shows plain text (a header, a notification): as written, or the
    markdown's words without its markup."""
    return _plain(_tree(text)) if prompt_type == "markdown" else text


def shown(text: str, prompt_type: PromptType, limit: int) -> TextObject:
    """A title, prompt or details as a text object: literal `plain_text`, or the author's markdown."""
    if prompt_type == "markdown":
        return MarkdownTextObject(text=mrkdwn(text, prompt_type, limit), verbatim=True)
    return PlainTextObject(text=clip(text, limit), emoji=False)


def fits(text: str, prompt_type: PromptType, limit: int) -> bool:
    """Whether `shown` shows all of `text`."""
    return len(markdown_to_mrkdwn(text) if prompt_type == "markdown" else text) <= limit


# -- markdown → mrkdwn -----------------------------------------------------------------------


@cache
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False})  # HTML stays text; javascript: links stay text


def _tree(text: str) -> SyntaxTreeNode:
    return SyntaxTreeNode(_parser().parse(text))


def markdown_to_mrkdwn(text: str) -> str:
    """CommonMark as Slack mrkdwn. Only our own markup comes out unescaped."""
    return _blocks(_tree(text)).strip("\n")


def _blocks(node: SyntaxTreeNode) -> str:
    return "\n".join(_block(child) for child in node.children)


def _block(node: SyntaxTreeNode) -> str:
    kind = node.type
    if kind == "paragraph":
        return _inline(node.children[0]) if node.children else ""
    if kind == "heading":
        return f"*{_inline(node.children[0])}*" if node.children else ""
    if kind in ("bullet_list", "ordered_list"):
        start = int(str(node.attrs.get("start", 1))) if kind == "ordered_list" else 0
        items = [_blocks(item) for item in node.children]
        marks = [f"{start + n}." if kind == "ordered_list" else "•" for n in range(len(items))]
        return "\n".join(f"{mark} {item}".replace("\n", "\n    ") for mark, item in zip(marks, items, strict=True))
    if kind == "blockquote":
        return "\n".join(f">{line}" for line in _blocks(node).split("\n"))
    if kind in ("fence", "code_block"):
        return f"```\n{escape(node.content.rstrip(chr(10)))}\n```"
    if kind == "hr":
        return "———"
    return escape(node.content)


def _inline(node: SyntaxTreeNode) -> str:
    return "".join(_span(child) for child in node.children)


def _span(node: SyntaxTreeNode) -> str:
    kind = node.type
    if kind == "strong":
        return f"*{_inline(node)}*"
    if kind == "em":
        return f"_{_inline(node)}_"
    if kind == "code_inline":
        return f"`{escape(node.content)}`"
    if kind == "link":
        return link(str(node.attrs.get("href", "")), _plain(node))
    if kind in ("softbreak", "hardbreak"):
        return "\n"
    if kind == "image":
        return escape(_plain(node))
    return escape(node.content)


def _plain(node: SyntaxTreeNode) -> str:
    """The words of a markdown tree, without markup (link targets dropped)."""
    if node.type in ("text", "code_inline", "code_block", "fence", "html_inline", "html_block"):
        return node.content
    if node.type in ("softbreak", "hardbreak"):
        return "\n"
    separator = "\n" if node.type in ("root", "bullet_list", "ordered_list", "blockquote") else ""
    return separator.join(_plain(child) for child in node.children)
