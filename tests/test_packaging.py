"""The package boundary: one import name, and a core that needs no chat SDK."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.release import Release

ROOT = Path(__file__).resolve().parents[1]

_BLOCK_SDKS = """
import importlib.abc, pkgutil, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"slack_bolt", "slack_sdk", "microsoft_agents", "msal", "flyte", "s3fs", "obstore"}:
            raise ImportError(f"{name} is blocked: the core must not need it")
sys.meta_path.insert(0, Block())
import hitl_chatops.bot as core
names = [m.name for m in pkgutil.walk_packages(core.__path__, "hitl_chatops.bot.")]
for name in names:
    __import__(name)
from hitl_chatops.bot.adapter import load_bot_settings
from hitl_chatops.bot.server import build_app
build_app(load_bot_settings(secret="x" * 32))
print(len(names))
"""


def test_core_imports_without_chat_sdks_or_flyte() -> None:
    done = subprocess.run([sys.executable, "-c", _BLOCK_SDKS], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= 10


def test_wheel_installs_only_hitl_chatops(release: Release) -> None:
    names = zipfile.ZipFile(release.wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"hitl_chatops", next(t for t in tops if t.endswith(".dist-info"))}
    for expected in (
        "bot/service.py",
        "bot/templates/form.html",
        "bot/templates/page.css",
        "plugin/__init__.py",
        "adapters/__init__.py",
    ):
        assert f"hitl_chatops/{expected}" in names
    assert not any(n.startswith("hitl_chatops/tests") for n in names)
