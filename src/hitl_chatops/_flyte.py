"""flyte-sdk's private names that hitl-chatops uses, each once, here and nowhere else.

flyte has no public API yet for what these do. `tests/test_private_names.py` runs each against the
installed flyte and names the one that changed when a release moves it. Import this module only
where flyte is installed: the plugin, and the bot's Flyte signalling (lazily).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from flyte._image import Layer
from flyte._initialize import get_client, get_init_config, init_config_context

__all__ = ["Layer", "project_scope", "run_url"]

# `Layer` (flyte._image): an image layer. plugin/_env.py subclasses it for a layer that refuses to be
# built (its `update_hash` and `validate` raise): flyte.run and flyte.deploy then say what to do.


@contextlib.contextmanager
def project_scope(project: str, domain: str) -> Iterator[None]:
    """flyte.remote's project and domain for this block, in this context only (a task on flyte's
    loop), so one bot serves every project: flyte's own MCP server scopes its calls this way."""
    with init_config_context(get_init_config().replace(project=project, domain=domain)):
        yield


def run_url(project: str, domain: str, run_name: str) -> str:
    """The run's page in the Flyte UI, from the client `flyte.init` (or a pod's `init_in_cluster`) made.

    Raises when this process has no client, or one that cannot tell.
    """
    return str(get_client().console.run_url(project=project, domain=domain, run_name=run_name))
