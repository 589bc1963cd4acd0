"""Other libraries' private names, each used through one small module of ours: when a release of the
library moves or changes one, these fail and say which name, in which version, and which module to change."""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys
from importlib.metadata import version
from typing import Any

import pytest

FLYTE = "hitl_chatops/_flyte.py"

# (distribution, module, attribute path, our module that uses it)
PRIVATE_NAMES = [
    ("flyte", "flyte._image", "Layer", FLYTE),
    ("flyte", "flyte._initialize", "get_client", FLYTE),
    ("flyte", "flyte._initialize", "get_init_config", FLYTE),
    ("flyte", "flyte._initialize", "init_config_context", FLYTE),
]


def private_name(distribution: str, module: str, path: str, user: str) -> Any:
    """The library's private `module.path`, or a failure that says what changed and where to act."""
    try:
        found: Any = importlib.import_module(module)
        for part in path.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        pytest.fail(
            f"{distribution} {version(distribution)} has no {module}.{path} any more, which {user} uses: "
            f"find what replaced it in {distribution} and change {user} (only there)."
        )
    return found


def parameters(function: Any) -> list[str]:
    return list(inspect.signature(function).parameters)


@pytest.mark.parametrize(("distribution", "module", "path", "user"), PRIVATE_NAMES, ids=lambda p: str(p))
def test_each_private_name_is_still_there(distribution: str, module: str, path: str, user: str) -> None:
    assert callable(private_name(distribution, module, path, user))


def test_flyte_layers_still_hash_and_validate_through_the_methods_a_refused_layer_overrides() -> None:
    """plugin/_env.py's `Refused` layer raises from `update_hash` and `validate`: renamed in flyte, they
    would no longer be called, and an image that cannot be built would be built."""
    layer = private_name("flyte", "flyte._image", "Layer", FLYTE)
    expected = {"update_hash": ["self", "hasher", "ignore"], "validate": ["self"]}
    found = {name: parameters(getattr(layer, name, None) or (lambda: None)) for name in expected}
    assert found == expected, f"flyte {version('flyte')} changed Layer's methods that {FLYTE} relies on: {found}"


_SCOPED = """
import json, flyte
from hitl_chatops._flyte import project_scope, run_url
flyte.init(endpoint="dns:///127.0.0.1:9", insecure=True, project="home", domain="development")  # connects to nothing
with project_scope("p1", "d1"):
    inside = [flyte.current_project(), flyte.current_domain()]
after = [flyte.current_project(), flyte.current_domain()]
print(json.dumps({"inside": inside, "after": after, "url": run_url("p1", "d1", "r1")}))
"""


def test_flyte_still_scopes_project_and_domain_to_a_block_and_builds_run_urls() -> None:
    """In a fresh interpreter: `flyte.init` is process-wide."""
    done = subprocess.run([sys.executable, "-c", _SCOPED], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"flyte {version('flyte')} broke {FLYTE}:\n{done.stderr[-2000:]}"
    assert json.loads(done.stdout) == {
        "inside": ["p1", "d1"],
        "after": ["home", "development"],
        "url": "http://127.0.0.1:9/v2/domain/d1/project/p1/runs/r1",
    }, f"flyte {version('flyte')} changed what {FLYTE} relies on"
