"""Jinja2 rendering with autoescape for every HTML page the project shows.

Text from a task is untrusted: pages show it literally (autoescaped) unless the event asked for
`prompt_type="markdown"`; then `markdown_block` / `markdown_inline` render it with markdown-it-py,
with raw HTML and images off and only http(s) links, so no task text can run script or load anything.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from markupsafe import Markup

from .text import flyte_note

__all__ = ["page_style_hash", "render"]


@cache
def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("hitl_chatops.bot", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        auto_reload=False,  # templates ship with the package; no stat() per render
        lstrip_blocks=True,
    )
    environment.globals["page_style"] = page_style
    environment.globals["flyte_note"] = flyte_note  # the same line every surface shows
    environment.globals["markdown_block"] = markdown_block
    environment.globals["markdown_inline"] = markdown_inline
    return environment


# What every surface can show of a task's markdown: emphasis, code, links, lists, quotes. No raw HTML
# (escaped as text), no images (nothing loads), no headings (the page has its own).
_OFF = ["html_block", "html_inline", "image", "heading", "lheading"]


@cache
def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).disable(_OFF)
    md.validateLink = _web_link  # type: ignore[method-assign]
    md.add_render_rule("link_open", _link_open)
    return md


def _web_link(url: str) -> bool:
    """Only http(s) links: no `javascript:`, `data:`, `file:` or relative ones; others stay text."""
    return url.lower().startswith(("https://", "http://"))


def _link_open(renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    tokens[idx].attrSet("rel", "nofollow noopener noreferrer")
    return renderer.renderToken(tokens, idx, options, env)


def markdown_block(text: str) -> Markup:
    """A task's markdown as HTML blocks (paragraphs, lists); safe by construction, see `_markdown`."""
    return Markup(_markdown().render(text))  # noqa: S704 -- markdown-it escapes all text, raw HTML is off


def markdown_inline(text: str) -> Markup:
    """A task's markdown inside one line (a heading, a summary): emphasis, code and links only."""
    return Markup(_markdown().renderInline(text))  # noqa: S704 -- as above


@cache
def page_style() -> Markup:
    """The pages' one stylesheet (`templates/page.css`), which base.html inlines as is."""
    environment = _environment()
    assert environment.loader is not None
    source, _, _ = environment.loader.get_source(environment, "page.css")
    return Markup(source)  # noqa: S704 -- our own packaged file, never user input


@cache
def page_style_hash() -> str:
    """The CSP source that allows exactly that stylesheet, so no other inline style can run."""
    digest = hashlib.sha256(page_style().encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def render(name: str, **context: Any) -> str:
    return _environment().get_template(name).render(**context)
