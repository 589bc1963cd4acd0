"""hitl-chatops: human-in-the-loop steps of Flyte 2 workflows, answered in Slack, Teams or a web form.

`hitl_chatops.plugin` is the Flyte side, `hitl_chatops.bot` the bot, `hitl_chatops.adapters` its
chat platforms. `hitl_chatops.__version__` is the installed package's version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.metadata import Distribution

__all__ = ["DISTRIBUTION", "distribution"]

DISTRIBUTION = "hitl-chatops"


def distribution() -> Distribution:
    """The installed hitl-chatops: the first one on sys.path that an installer (pip, uv) recorded.

    A checkout's root holds the `hitl_chatops.egg-info` that setuptools leaves behind when it builds;
    run from there, it comes first on sys.path, and it knows neither how nor from where the package
    was installed.
    """
    from importlib.metadata import PackageNotFoundError, distributions

    found = list(distributions(name=DISTRIBUTION))
    if not found:
        raise PackageNotFoundError(DISTRIBUTION)
    return next((dist for dist in found if dist.read_text("INSTALLER") is not None), found[0])


def __getattr__(name: str) -> str:
    # Read from the package metadata on first use: importing any part of hitl_chatops stays free.
    if name == "__version__":
        return distribution().version
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
