"""What a release ships: the wheel's and the sdist's files, and the version read from the package metadata."""

from __future__ import annotations

import email.parser
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import hitl_chatops
from tests.release import Release

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
PACKAGE_DIRS: dict[str, str] = PYPROJECT["tool"]["setuptools"]["package-dir"]


def source_packages() -> dict[str, Path]:
    """Every package in the checkout, by import name: each package-dir folder and its subfolders with code."""
    found = {}
    for name, folder in PACKAGE_DIRS.items():
        for init in sorted((ROOT / folder).rglob("__init__.py")):
            relative = init.parent.relative_to(ROOT / folder)
            found[".".join([name, *relative.parts])] = init.parent
    return found


def test_the_wheel_holds_every_module_template_stylesheet_and_marker(release: Release) -> None:
    names = set(zipfile.ZipFile(release.wheel).namelist())
    assert release.wheel.name == f"hitl_chatops-{VERSION}-py3-none-any.whl"
    assert {name.split("/")[0] for name in names} == {"hitl_chatops", f"hitl_chatops-{VERSION}.dist-info"}
    for package, folder in source_packages().items():
        path = package.replace(".", "/")
        for module in folder.glob("*.py"):
            assert f"{path}/{module.name}" in names, f"{package}.{module.stem} is missing from the wheel"
    for package in ("hitl_chatops", "hitl_chatops.bot", "hitl_chatops.adapters", "hitl_chatops.plugin"):
        assert f"{package.replace('.', '/')}/py.typed" in names, package
    templates = {path.name for path in (ROOT / "bot" / "templates").iterdir() if path.suffix in {".html", ".css"}}
    assert {"form.html", "page.css"} <= templates
    assert {f"hitl_chatops/bot/templates/{name}" for name in templates} <= names
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


def test_the_wheel_carries_the_license_version_and_command(release: Release) -> None:
    info = f"hitl_chatops-{VERSION}.dist-info"
    with zipfile.ZipFile(release.wheel) as wheel:
        metadata = email.parser.Parser().parsestr(wheel.read(f"{info}/METADATA").decode())
        assert wheel.read(f"{info}/licenses/LICENSE") == (ROOT / "LICENSE").read_bytes()
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    assert (metadata["Name"], metadata["Version"]) == ("hitl-chatops", VERSION)
    assert metadata["License-Expression"] == "Apache-2.0" and metadata["License-File"] == "LICENSE"
    assert "Apache License" in (ROOT / "LICENSE").read_text() and "Version 2.0" in (ROOT / "LICENSE").read_text()
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert set(metadata.get_all("Provides-Extra") or []) >= {"flyte", "slack", "teams", "s3", "all"}
    assert "hitl-chatops = hitl_chatops.bot.cli:main" in entry_points


def test_the_sdist_holds_what_builds_the_wheel_and_no_partial_tests(release: Release) -> None:
    top = f"hitl_chatops-{VERSION}"
    with tarfile.open(release.sdist) as sdist:
        names = {name.removeprefix(f"{top}/") for name in sdist.getnames()}
    assert {"pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md", "src/hitl_chatops/__init__.py"} <= names
    assert {"bot/templates/form.html", "bot/templates/page.css", "plugin/__init__.py"} <= names
    assert not [name for name in names if name.startswith("tests/")]


def test_version_comes_from_the_package_metadata() -> None:
    cli = shutil.which("hitl-chatops", path=str(Path(sys.executable).parent))
    assert cli
    done = subprocess.run([cli, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"hitl-chatops {VERSION}"
    assert hitl_chatops.__version__ == VERSION
