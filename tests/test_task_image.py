"""`hitl.env`'s image follows how hitl-chatops is installed: each install kind, as real package metadata.

Each test installs a `hitl_chatops-<version>.dist-info` (METADATA, INSTALLER and, as pip writes it,
PEP 610's `direct_url.json`) into a site folder put first on sys.path, and reads the `flyte.Image`
that `hitl.env` builds from it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import flyte
import pytest
from flyte._image import AptPackages, CopyConfig, PipPackages  # the layers: flyte has no public reader for them

import hitl_chatops
import hitl_chatops.plugin as hitl
from hitl_chatops.bot.errors import ConfigError
from hitl_chatops.plugin._env import task_env
from tests.fakes.flyte import FakeFlyte
from tests.release import Release, build_wheel, copy_sources, wheel_contents

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = "hitl-chatops[flyte,s3]"
OWN_IMAGE = "ghcr.io/example/tasks:1.4"
Install = Callable[..., Path]
# What the plugin needs before hitl-chatops itself: the core's dependencies and the [flyte] and [s3] extras.
DEPENDENCIES = ("aiohttp>=3.9", "pydantic>=2.7", "flyte>=2.12", "obstore>=0.12")
CHAT_SDKS = ("slack-bolt", "slack-sdk", "microsoft-agents")


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Install]:
    """Install hitl-chatops's metadata as pip would, from `direct` (PEP 610) or from an index (None)."""
    site = tmp_path / "site"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # where a checkout's archive is written
    metadata = hitl_chatops.distribution().read_text("METADATA") or ""

    def install(version: str = "0.9.0", direct: dict[str, Any] | None = None, installer: str | None = "pip") -> Path:
        info = site / f"hitl_chatops-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(metadata.replace(f"Version: {hitl_chatops.__version__}", f"Version: {version}"))
        if installer:
            (info / "INSTALLER").write_text(f"{installer}\n")
        if direct is not None:
            (info / "direct_url.json").write_text(json.dumps(direct))
        monkeypatch.syspath_prepend(str(site))
        return info

    task_env.cache_clear()
    yield install
    task_env.cache_clear()


def layers(image: flyte.Image | str) -> list[tuple[str, Any]]:
    """What the image adds to flyte's Debian base image, layer by layer."""
    assert isinstance(image, flyte.Image) and image.name == "hitl-chatops-task"
    found: list[tuple[str, Any]] = []
    for layer in image._layers:
        if isinstance(layer, PipPackages):
            found.append(("pip", layer.packages))
        elif isinstance(layer, CopyConfig):
            found.append(("copy", (layer.src, layer.dst)))
        elif isinstance(layer, AptPackages):
            found.append(("apt", layer.packages))
        else:
            found.append((type(layer).__name__, None))
    return found


def archived(path: Path, sha256: str | None = None) -> dict[str, Any]:
    """`direct_url.json` as pip writes it for a local wheel or sdist."""
    digest = sha256 or hashlib.sha256(path.read_bytes()).hexdigest()
    return {"url": path.as_uri(), "archive_info": {"hash": f"sha256={digest}", "hashes": {"sha256": digest}}}


def refused(image: flyte.Image | str) -> str:
    """The problem the image carries: computing its tag (what flyte.run and deploy do first) raises it."""
    with pytest.raises(ConfigError) as error:
        assert isinstance(image, flyte.Image)
        _ = image.uri
    return str(error.value)


def test_installed_from_an_index_pins_that_version(install: Install) -> None:
    install("0.9.0")
    assert layers(hitl.env.image) == [("pip", (f"{PLUGIN}==0.9.0",))]
    assert hitl.env.name == "hitl-chatops"
    assert hitl_chatops.__version__ == "0.9.0", "the version is the installed distribution's"


def test_a_local_version_from_no_recorded_source_is_refused_with_what_to_do(install: Install) -> None:
    install("0.9.0+g1a2b3c")
    problem = refused(hitl.env.image)
    assert "no package index serves a local version (+g1a2b3c)" in problem
    assert "pip install -e <checkout>" in problem and "HITL_CHATOPS_TASK_IMAGE" in problem


def test_installed_from_a_wheel_file_installs_that_wheel(install: Install, release: Release, tmp_path: Path) -> None:
    wheel = shutil.copy(release.wheel, tmp_path / release.wheel.name)
    install("0.9.0", archived(Path(wheel)))
    (deps, copy, own) = layers(hitl.env.image)
    assert deps[0] == "pip" and set(DEPENDENCIES) <= set(deps[1])
    assert not [dep for dep in deps[1] if dep.startswith(CHAT_SDKS) or dep.startswith("hitl-chatops")]
    assert copy == ("copy", (Path(wheel), "/opt/hitl-chatops/"))
    assert own == ("pip", (f"{PLUGIN} @ file:///opt/hitl-chatops/{release.wheel.name}",))


def test_a_wheel_that_changed_or_went_away_is_refused_with_what_to_do(install: Install, tmp_path: Path) -> None:
    wheel = tmp_path / "dist" / "hitl_chatops-0.9.0-py3-none-any.whl"
    wheel.parent.mkdir()
    wheel.write_bytes(b"the wheel as installed")
    install("0.9.0", archived(wheel))
    wheel.write_bytes(b"the wheel rebuilt since")
    problem = refused(hitl.env.image)
    assert f"{wheel} has changed since hitl-chatops was installed from it" in problem
    assert f"pip install --force-reinstall {wheel}" in problem

    task_env.cache_clear()
    wheel.unlink()
    problem = refused(hitl.env.image)
    assert f"installed from {wheel}, which is gone" in problem and "HITL_CHATOPS_TASK_IMAGE" in problem


def test_a_refused_image_fails_flyte_run_before_anything_is_built(
    install: Install, fake_flyte: FakeFlyte, tmp_path: Path
) -> None:
    """Not at import (local runs keep working), not in a build: when `flyte.run` computes the image's tag."""
    install("0.9.0", archived(tmp_path / "hitl_chatops-0.9.0-py3-none-any.whl", sha256="0" * 64))
    env = flyte.TaskEnvironment(name="refused-remote", image=hitl.env.image, depends_on=[hitl.env])

    @env.task
    async def ask() -> int:
        return 1

    flyte.init(endpoint=fake_flyte.endpoint, insecure=True, project="p", domain="d")
    with pytest.raises(ConfigError, match="which is gone: install it again"):
        flyte.run(ask)


def test_installed_from_a_checkout_installs_its_package_files(
    install: Install, release: Release, tmp_path: Path
) -> None:
    install("0.9.0", {"url": ROOT.as_uri(), "dir_info": {"editable": True}})
    (deps, (_, (archive, destination)), own) = layers(hitl.env.image)
    assert deps[0] == "pip" and set(DEPENDENCIES) <= set(deps[1])
    assert destination == "/opt/hitl-chatops/" and archive.name == release.sdist.name, "named for pyproject's version"
    assert own == ("pip", (f"{PLUGIN} @ file:///opt/hitl-chatops/{archive.name}",))
    assert archive.is_relative_to(tmp_path / "cache")
    with tarfile.open(archive) as tar:
        assert not [name for name in tar.getnames() if "/tests/" in name or "__pycache__" in name]
    built = build_wheel(f"hitl-chatops @ {archive.as_uri()}", tmp_path / "built")
    assert wheel_contents(built) == wheel_contents(release.wheel), "the image gets what a release would ship"


def test_a_checkouts_image_changes_with_its_code_and_only_then(install: Install, tmp_path: Path) -> None:
    names = ["pyproject.toml", "README.md", "LICENSE", "MANIFEST.in", "src", "bot", "adapters", "plugin"]
    checkout = copy_sources(names, tmp_path / "checkout")
    install("0.9.0", {"url": checkout.as_uri(), "dir_info": {}})

    def tag() -> str:
        task_env.cache_clear()
        return hitl.env.image.uri  # type: ignore[union-attr]  # the tag is the image's identity

    first = tag()
    (checkout / "bot" / "__pycache__").mkdir(exist_ok=True)
    (checkout / "bot" / "__pycache__" / "service.cpython-311.pyc").write_bytes(b"compiled")
    (checkout / "tests").mkdir()
    (checkout / "tests" / "test_new.py").write_text("def test(): pass\n")
    assert tag() == first, "bytecode and files outside the package leave the image as it is"
    (checkout / "bot" / "service.py").write_text((checkout / "bot" / "service.py").read_text() + "\n# changed\n")
    assert tag() != first


def test_installed_from_git_installs_that_commit(install: Install) -> None:
    commit = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
    url = "https://github.com/example/hitl-chatops.git"
    install("0.9.0", {"url": url, "vcs_info": {"vcs": "git", "commit_id": commit, "requested_revision": "main"}})
    assert layers(hitl.env.image) == [("apt", ("git",)), ("pip", (f"{PLUGIN} @ git+{url}@{commit}",))]


def test_a_local_git_repository_is_refused(install: Install, tmp_path: Path) -> None:
    install("0.9.0", {"url": tmp_path.as_uri(), "vcs_info": {"vcs": "git", "commit_id": "4b825dc6"}})
    assert "which an image builder cannot clone" in refused(hitl.env.image)


def test_an_archive_at_a_url_is_installed_from_it_with_its_hash(install: Install) -> None:
    url = "https://files.example.com/hitl_chatops-0.9.0-py3-none-any.whl"
    install("0.9.0", {"url": url, "archive_info": {"hashes": {"sha256": "ab" * 32}}})
    assert layers(hitl.env.image) == [("pip", (f"{PLUGIN} @ {url}#sha256={'ab' * 32}",))]


def test_a_builds_leftover_egg_info_is_not_taken_for_the_install(
    install: Install, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkout's root holds setuptools' `hitl_chatops.egg-info`; run from there, it comes first on sys.path."""
    install("0.9.0")
    leftover = tmp_path / "checkout" / "hitl_chatops.egg-info"
    leftover.mkdir(parents=True)
    (leftover / "PKG-INFO").write_text("Metadata-Version: 2.4\nName: hitl-chatops\nVersion: 0.1.0\n")
    monkeypatch.syspath_prepend(str(leftover.parent))
    assert layers(hitl.env.image) == [("pip", (f"{PLUGIN}==0.9.0",))]
    assert hitl_chatops.__version__ == "0.9.0"


def test_the_variable_names_an_image_of_your_own(install: Install, monkeypatch: pytest.MonkeyPatch) -> None:
    install("0.9.0+g1a2b3c")  # would be refused: an image of your own is not
    monkeypatch.setenv("HITL_CHATOPS_TASK_IMAGE", f" {OWN_IMAGE} ")
    assert hitl.env.image == OWN_IMAGE


def test_env_with_and_clone_with_use_an_image_of_your_own() -> None:
    own = flyte.Image.from_base(OWN_IMAGE)
    env = hitl.env_with(image=own)
    assert (env.name, env.image) == ("hitl-chatops", own)
    assert env.resources == hitl.env.resources and env.env_vars == hitl.env.env_vars
    assert hitl.env.clone_with(name="hitl-chatops-own", image=OWN_IMAGE).image == OWN_IMAGE
