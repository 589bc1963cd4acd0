"""The release artifacts for the tests (`python -m build`'s sdist and the wheel built from it), and wheel helpers."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Release:
    sdist: Path
    wheel: Path


def built_release(folder: Path) -> Release:
    """As `make dist` builds them (without an isolated build environment: the test extra has setuptools)."""
    command = [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(folder), str(ROOT)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (sdist,) = folder.glob("hitl_chatops-*.tar.gz")
    (wheel,) = folder.glob("hitl_chatops-*.whl")
    return Release(sdist, wheel)


def build_wheel(source: Path | str, folder: Path) -> Path:
    """The wheel pip builds from `source` (a folder, an archive or a requirement), without its dependencies."""
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(folder)]
    done = subprocess.run([*command, str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = folder.glob("hitl_chatops-*.whl")
    return wheel


def wheel_contents(wheel: Path) -> dict[str, str]:
    """Every file of a wheel and the sha256 of its bytes: two wheels of the same files compare equal."""
    with zipfile.ZipFile(wheel) as archive:
        return {name: hashlib.sha256(archive.read(name)).hexdigest() for name in archive.namelist()}


def copy_sources(names: list[str], folder: Path) -> Path:
    """A copy of the checkout's files and folders `names` (as a build context or a second checkout)."""
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, folder / name)
        else:
            shutil.copy(ROOT / name, folder / name)
    return folder
