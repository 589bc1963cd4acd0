"""Other libraries' private names, each used through one small module of ours: when a release of the
library moves or changes one, these fail and say which name, in which version, and which module to change."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
FLYTE = "hitl_chatops/_flyte.py"
MSAL = "adapters/teams/_msal.py"
FSSPEC = "bot/backends/_fsspec.py"
SOURCES = ("bot", "adapters", "plugin", "src/hitl_chatops")
HOMES = {
    ROOT / "src" / FLYTE,
    ROOT / MSAL,
    ROOT / FSSPEC,
}  # the only modules that may name another library's private names

# (distribution, module, attribute path, our module that uses it)
PRIVATE_NAMES = [
    ("flyte", "flyte._image", "Layer", FLYTE),
    ("flyte", "flyte._initialize", "get_client", FLYTE),
    ("flyte", "flyte._initialize", "get_init_config", FLYTE),
    ("flyte", "flyte._initialize", "init_config_context", FLYTE),
    ("microsoft-agents-authentication-msal", "microsoft_agents.authentication.msal", "MsalAuth._get_client", MSAL),
    ("fsspec", "fsspec.spec", "AbstractFileSystem._get_kwargs_from_urls", FSSPEC),
    ("fsspec", "fsspec.spec", "AbstractFileSystem._strip_protocol", FSSPEC),
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


def test_fsspec_still_reads_options_and_the_root_from_a_url() -> None:
    from fsspec.implementations.memory import MemoryFileSystem
    from s3fs import S3FileSystem

    from hitl_chatops.bot.backends._fsspec import root_path, url_options

    found = (root_path(MemoryFileSystem, "memory://hitl/store"), url_options(MemoryFileSystem, "memory://hitl/store"))
    assert found == ("/hitl/store", {}), f"fsspec {version('fsspec')} changed what {FSSPEC} relies on: {found}"
    assert root_path(S3FileSystem, "s3://bucket/hitl") == "bucket/hitl", f"fsspec {version('fsspec')}: see {FSSPEC}"


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


def test_msal_auth_still_builds_its_client_when_called_with_no_arguments() -> None:
    """`build_client` calls it bare, in a thread, to warm the client `get_access_token` takes with no arguments
    (tests/teams/test_teams_credentials.py: a Microsoft login that hangs)."""
    dist = "microsoft-agents-authentication-msal"
    get_client = private_name(dist, "microsoft_agents.authentication.msal", "MsalAuth._get_client", MSAL)
    required = [p.name for p in inspect.signature(get_client).parameters.values() if p.default is p.empty]
    assert required == ["self"], f"{dist} {version(dist)}: MsalAuth._get_client now needs {required[1:]}; change {MSAL}"
    calls = inspect.getsource(
        private_name(dist, "microsoft_agents.authentication.msal", "MsalAuth._get_access_token", MSAL)
    )
    assert "self._get_client()" in calls, (
        f"{dist} {version(dist)} no longer takes the client {MSAL} builds; change {MSAL}"
    )


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _modules() -> Iterator[tuple[Path, ast.Module]]:
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield path, ast.parse(path.read_text(), str(path))


def _ours(trees: list[ast.Module]) -> set[str]:
    """Every name our own code defines: functions, classes, module and instance attributes."""
    names: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Name | ast.arg):
                names.add(node.id if isinstance(node, ast.Name) else node.arg)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
    return names


def test_no_other_module_uses_another_library_s_private_names() -> None:
    """Imports from another library's private modules, or of its private names, and private attributes
    that our code does not define: only in the one module per library that keeps them."""
    modules = list(_modules())
    ours = _ours([tree for _, tree in modules])
    found = []
    for path, tree in modules:
        if path in HOMES:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                parts = node.module.split(".")
                names = [alias.name for alias in node.names]
                if parts[0] != "hitl_chatops" and (any(map(_private, parts)) or any(map(_private, names))):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} from {node.module} import {', '.join(names)}")
            elif isinstance(node, ast.Import):
                found += [
                    f"{path.relative_to(ROOT)}:{node.lineno} import {alias.name}"
                    for alias in node.names
                    if any(map(_private, alias.name.split(".")[1:])) and not alias.name.startswith("hitl_chatops.")
                ]
            elif isinstance(node, ast.Attribute) and _private(node.attr) and node.attr not in ours:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
    assert found == [], f"put these behind the library's module ({FLYTE}, {MSAL}, {FSSPEC}, or a new one): {found}"
