"""Jinja2 rendering with autoescape for every HTML page the project shows."""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from .conditions import flyte_note


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
    return environment


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
