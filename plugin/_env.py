"""`env`: the TaskEnvironment a workflow lists in `depends_on`, and the image a remote run gets.

The image installs the hitl-chatops this process runs, from where it was installed (PEP 610's
`direct_url.json` says where): the same version from the package index, the same git commit or
archive URL, or the same local wheel or checkout, copied into the image. A remote run then runs
the code that was tried locally, and the image changes only when that code does.
`HITL_CHATOPS_TASK_IMAGE`, or `env_with(image=...)`, uses an image of your own instead.

A source no image can be built from (a wheel deleted since it was installed, a version no index
serves) is not an error here, where local runs must keep working: the image carries the problem,
and `flyte.run` and `flyte.deploy` raise it, saying what to do, when they compute the image's tag,
before anything is built.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib.metadata import Distribution, PackageNotFoundError
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import flyte
import platformdirs
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from hitl_chatops import DISTRIBUTION, distribution
from hitl_chatops._flyte import Layer  # flyte's, private: a layer that refuses to be built
from hitl_chatops.bot.errors import ConfigError

IMAGE_VARIABLE = "HITL_CHATOPS_TASK_IMAGE"
EXTRAS = ("flyte", "s3")  # the plugin's needs; the chat SDKs belong to the bot
REQUIREMENT = f"{DISTRIBUTION}[{','.join(EXTRAS)}]"
IN_IMAGE = PurePosixPath("/opt/hitl-chatops")  # where a local wheel or checkout is copied
_INSTEAD = f"or set {IMAGE_VARIABLE} to an image that has hitl-chatops installed."
_LICENSE_FILES = ("LICEN[CS]E*", "COPYING*", "NOTICE*", "AUTHORS*")  # setuptools' default license-files
_MTIME = 946684800  # 2000-01-01: a fixed time in the archive, so the same files give the same bytes


@cache
def task_env() -> flyte.TaskEnvironment:
    """`hitl.env`: the image of `HITL_CHATOPS_TASK_IMAGE` if set, else `task_image()`."""
    return env_with(image=os.environ.get(IMAGE_VARIABLE, "").strip() or task_image())


def env_with(*, image: str | flyte.Image) -> flyte.TaskEnvironment:
    """`hitl.env` with an image of your own (a URI or a `flyte.Image`) that has hitl-chatops installed."""
    return flyte.TaskEnvironment(
        name="hitl-chatops",
        image=image,
        resources=flyte.Resources(cpu=1, memory="512Mi"),
        env_vars={"HITL_CHATOPS_LOG_FORMAT": "json"},
    )


def task_image() -> flyte.Image:
    """Flyte's Debian base image with this hitl-chatops installed as it is installed here."""
    image = flyte.Image.from_debian_base(name="hitl-chatops-task")
    try:
        return _install(image, _distribution())
    except ConfigError as problem:
        return image.clone(addl_layer=Refused(problem=str(problem)))


@dataclass(frozen=True, kw_only=True)
class Refused(Layer):
    """A layer no image can be built with: computing the image's tag raises `problem`."""

    problem: str

    def update_hash(self, hasher: Any, ignore: Any = None) -> None:
        raise ConfigError(self.problem)

    def validate(self) -> None:
        raise ConfigError(self.problem)


def _distribution() -> Distribution:
    try:
        return distribution()
    except PackageNotFoundError:
        raise ConfigError(
            f"hitl-chatops runs here without being installed, so no image can install the same: "
            f"install it (pip install hitl-chatops, or pip install -e <checkout>), {_INSTEAD}"
        ) from None


def _install(image: flyte.Image, dist: Distribution) -> flyte.Image:
    """`image` plus the layers that install what `dist` was installed from."""
    origin = dist.read_text("direct_url.json")
    if origin is None:  # from a package index
        return image.with_pip_packages(_pinned(dist.version))
    direct: dict[str, Any] = json.loads(origin)
    url = str(direct["url"])
    if "vcs_info" in direct:
        return _from_git(image, url, direct)
    if not url.startswith("file:"):  # an archive at a URL, hash-pinned when pip recorded one
        return image.with_pip_packages(f"{REQUIREMENT} @ {url}{_fragment(direct)}")
    path = Path(url2pathname(urlparse(url).path))
    archive = _pack_checkout(path, dist.version) if "dir_info" in direct else _unchanged(path, direct)
    return _from_archive(image, dist, archive)


def _pinned(installed: str) -> str:
    version = Version(installed)
    if version.local is not None:
        raise ConfigError(
            f"hitl-chatops {installed} came from no recorded source, and no package index serves a local "
            f"version (+{version.local}): install it from its wheel or checkout (pip install <wheel>, "
            f"pip install -e <checkout>) so the image gets the same, {_INSTEAD}"
        )
    return f"{REQUIREMENT}=={installed}"


def _from_git(image: flyte.Image, url: str, direct: dict[str, Any]) -> flyte.Image:
    vcs = direct["vcs_info"]
    if vcs.get("vcs") != "git" or url.startswith("file:"):
        raise ConfigError(
            f"hitl-chatops was installed from {vcs.get('vcs')} at {url}, which an image builder cannot "
            f"clone: install it from a git URL the builder can reach, or from a checkout (pip install -e <checkout>), "
            f"{_INSTEAD}"
        )
    return image.with_apt_packages("git").with_pip_packages(
        f"{REQUIREMENT} @ git+{url}@{vcs['commit_id']}{_fragment(direct)}"
    )


def _fragment(direct: dict[str, Any]) -> str:
    """`#sha256=...&subdirectory=...`, as pip takes them from a URL, for what `direct` records."""
    parts = []
    if digest := _recorded_sha256(direct):
        parts.append(f"sha256={digest}")
    if subdirectory := direct.get("subdirectory"):
        parts.append(f"subdirectory={subdirectory}")
    return "#" + "&".join(parts) if parts else ""


def _recorded_sha256(direct: dict[str, Any]) -> str | None:
    info = direct.get("archive_info", {})
    if digest := info.get("hashes", {}).get("sha256"):
        return str(digest)
    legacy = str(info.get("hash", ""))  # PEP 610's older `hash`: "sha256=<hex>"
    return legacy.removeprefix("sha256=") if legacy.startswith("sha256=") else None


def _unchanged(path: Path, direct: dict[str, Any]) -> Path:
    """The wheel or sdist hitl-chatops was installed from, still there and still the same bytes."""
    if not path.is_file():
        raise ConfigError(
            f"hitl-chatops was installed from {path}, which is gone: install it again from where the file is "
            f"now (pip install --force-reinstall <file>), {_INSTEAD}"
        )
    recorded = _recorded_sha256(direct)
    if recorded and hashlib.sha256(path.read_bytes()).hexdigest() != recorded:
        raise ConfigError(
            f"{path} has changed since hitl-chatops was installed from it, so the image would not run what runs "
            f"here: install it again (pip install --force-reinstall {path}), {_INSTEAD}"
        )
    return path


def _from_archive(image: flyte.Image, dist: Distribution, archive: Path) -> flyte.Image:
    """Dependencies first, in a layer that outlives code changes; then the archive, installed from a copy."""
    in_image = IN_IMAGE / archive.name
    if dependencies := _dependencies(dist):
        image = image.with_pip_packages(*dependencies)
    return image.with_source_file(archive, dst=f"{IN_IMAGE}/").with_pip_packages(f"{REQUIREMENT} @ {in_image.as_uri()}")


def _dependencies(dist: Distribution) -> list[str]:
    """What `dist` and its `EXTRAS` require; other extras left out, other markers kept for the image to judge."""
    wanted = []
    for line in dist.requires or []:
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) == DISTRIBUTION:
            continue  # an extra made of other extras, such as [all]
        if requirement.marker is not None and "extra" in str(requirement.marker):
            if not any(requirement.marker.evaluate({"extra": extra}) for extra in EXTRAS):
                continue
            requirement.marker = None
        wanted.append(str(requirement))
    return wanted


def _pack_checkout(folder: Path, installed: str) -> Path:
    """The checkout's package files as an sdist-like archive, rewritten only when they change.

    Only what builds the package goes in (pyproject.toml, its readme and license files, the folders
    of its `package-dir`), with fixed times and owners: the same files always give the same bytes,
    so the image's tag follows the code, not the clock.
    """
    try:
        project = tomllib.loads((folder / "pyproject.toml").read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"hitl-chatops was installed from {folder}, which has no pyproject.toml any more: install it again "
            f"(pip install -e <checkout>), {_INSTEAD}"
        ) from None
    version = project.get("project", {}).get("version") or installed  # pyproject may be newer
    name = f"hitl_chatops-{version}"
    files = _package_files(folder, project)
    key = hashlib.sha256(str(folder).encode()).hexdigest()[:16]  # one archive per checkout, replaced as it changes
    target = platformdirs.user_cache_path(DISTRIBUTION) / "task-image" / key / f"{name}.tar.gz"
    packed = _tar_gz({f"{name}/{relative}": (folder / relative).read_bytes() for relative in files})
    if not target.is_file() or target.read_bytes() != packed:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}")
        partial.write_bytes(packed)
        partial.replace(target)  # atomic: a deploy reading it meanwhile sees the old or the new whole
    return target


def _package_files(folder: Path, project: dict[str, Any]) -> list[str]:
    folders = project.get("tool", {}).get("setuptools", {}).get("package-dir", {})
    if not folders:
        raise ConfigError(
            f"{folder}/pyproject.toml has no [tool.setuptools] package-dir, so it is unclear which of its files "
            f"make hitl-chatops: build a wheel and install that (pip install <wheel>), {_INSTEAD}"
        )
    readme = project.get("project", {}).get("readme")
    readme = readme.get("file") if isinstance(readme, dict) else readme
    patterns = project.get("project", {}).get("license-files", _LICENSE_FILES)
    top = {"pyproject.toml", "MANIFEST.in", *([readme] if readme else [])}
    top |= {path.relative_to(folder).as_posix() for pattern in patterns for path in folder.glob(pattern)}
    found = {name for name in top if (folder / name).is_file()}
    for package in folders.values():
        for path in (folder / package).rglob("*"):
            relative = path.relative_to(folder)
            hidden = any(part.startswith(".") or part == "__pycache__" for part in relative.parts)
            if path.is_file() and not hidden and path.suffix != ".pyc":
                found.add(relative.as_posix())
    return sorted(found)


def _tar_gz(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), _MTIME, 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)
