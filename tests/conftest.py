"""Shared fixtures: a clean environment, a store folder, a real bot on loopback, and the fakes a test asks for.

A test gets only what it names: every fixture imports its fake (`tests/fakes/`), the bot or flyte
inside itself, so a pure unit test imports none of them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from hitl_chatops.bot.server import BotThread
    from tests.fakes.azure import Azurite
    from tests.fakes.flyte import BlackHole, FakeFlyte
    from tests.fakes.gcs import GcsXmlApi
    from tests.fakes.s3 import Moto
    from tests.release import Release

SECRET = "test-secret-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {SECRET}"}  # the bot's API, as a task or an operator calls it
_OWN_PREFIXES = ("HITL_CHATOPS_", "SLACK_", "Microsoft", "AWS_", "AZURE_", "AZURITE_", "GOOGLE_")
S3_BUCKET = AZ_CONTAINER = GS_BUCKET = "hitl-tests"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting leaks in from the machine; every test gets its own store folder."""
    for name in list(os.environ):
        if name.startswith(_OWN_PREFIXES) or name.lower().startswith("microsoftapp"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HITL_CHATOPS_STORE", (tmp_path / "store").as_uri())
    monkeypatch.setenv("HITL_CHATOPS_SECRET", SECRET)


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return (tmp_path / "store").as_uri()


# -- the bot ---------------------------------------------------------------------------------


@pytest.fixture
def start_bot(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., BotThread]]:
    """Start real bots (aiohttp on 127.0.0.1, free port) with settings overrides; stopped after the test.

    The first bot started also becomes the plugin's `HITL_CHATOPS_URL`.
    """
    from hitl_chatops.bot.adapter import load_bot_settings
    from hitl_chatops.bot.server import BotThread

    bots: list[BotThread] = []

    def start(**overrides: Any) -> BotThread:
        settings = load_bot_settings(host="127.0.0.1", port=0, log_format="text", **overrides)
        bot = BotThread(settings).start()
        if not bots:
            monkeypatch.setenv("HITL_CHATOPS_URL", bot.url)
        bots.append(bot)
        return bot

    yield start
    for bot in bots:
        bot.stop()


@pytest.fixture
def bot(start_bot: Callable[..., BotThread]) -> BotThread:
    return start_bot()


# -- object stores ---------------------------------------------------------------------------


def _set_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def _fresh_prefix(monkeypatch: pytest.MonkeyPatch, scheme: str, bucket: str) -> str:
    """A store URL no other test uses, set as the bot's and the plugin's store."""
    url = f"{scheme}://{bucket}/{uuid.uuid4().hex[:12]}/hitl"
    monkeypatch.setenv("HITL_CHATOPS_STORE", url)
    return url


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real S3-compatible HTTP server (moto's server mode) on loopback with one bucket, for the session."""
    from tests.fakes.s3 import Moto

    server = Moto(S3_BUCKET).start()
    yield server.endpoint
    server.stop(keep_port=False)


@pytest.fixture
def s3_store_url(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh prefix per test, reached through the standard AWS env (no S3 options of ours)."""
    from tests.fakes.s3 import aws_env

    _set_env(monkeypatch, aws_env(moto_endpoint))
    return _fresh_prefix(monkeypatch, "s3", S3_BUCKET)


@pytest.fixture
def own_moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[Moto]:
    """A moto server for this test alone, the store URL on a fresh bucket there: it counts every request
    (`take`), and the test may stop it and start it again on the same port (the store down and back)."""
    from tests.fakes.s3 import Moto, aws_env

    moto = Moto(f"hitl-own-{uuid.uuid4().hex[:10]}").start()  # moto's buckets are per process: a new name
    _set_env(monkeypatch, aws_env(moto.endpoint))
    monkeypatch.setenv("HITL_CHATOPS_STORE", f"s3://{moto.bucket}/hitl")
    yield moto
    moto.stop(keep_port=False)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """Azurite, Microsoft's Azure Blob emulator, on loopback with one container, for the session."""
    from tests.fakes.azure import Azurite

    server = Azurite(tmp_path_factory.mktemp("azurite"))
    server.create_container(AZ_CONTAINER)
    yield server
    server.stop()


@pytest.fixture
def az_store_url(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh prefix per test, reached through object_store's standard Azure env (the emulator's)."""
    from tests.fakes.azure import azure_env

    _set_env(monkeypatch, azure_env(azurite.endpoint))
    return _fresh_prefix(monkeypatch, "az", AZ_CONTAINER)


@pytest.fixture(scope="session")
def gcs_api() -> Iterator[GcsXmlApi]:
    """fake-gcs-server with one bucket, behind the XML API object_store's GCS client speaks, for the session."""
    from tests.fakes.gcs import FakeGcs, GcsXmlApi

    fake = FakeGcs()
    fake.create_bucket(GS_BUCKET)
    api = GcsXmlApi(fake.endpoint)
    yield api
    api.stop()
    fake.stop()


@pytest.fixture
def gs_store_url(gcs_api: GcsXmlApi, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A fresh prefix per test, reached through object_store's standard GCS env (a service account file)."""
    from tests.fakes.gcs import gcs_env

    _set_env(monkeypatch, gcs_env(gcs_api.endpoint, tmp_path))
    return _fresh_prefix(monkeypatch, "gs", GS_BUCKET)


@pytest.fixture(params=["file", "s3", "az", "gs"])
def any_store_url(request: pytest.FixtureRequest) -> str:
    """Run a test against the local folder, S3 (moto), Azure Blob (Azurite) and GCS (fake-gcs-server) alike."""
    name = {"file": "store_url", "s3": "s3_store_url", "az": "az_store_url", "gs": "gs_store_url"}[request.param]
    return str(request.getfixturevalue(name))


# -- Flyte and the release -------------------------------------------------------------------


@pytest.fixture
def fake_flyte() -> Iterator[FakeFlyte]:
    """A fake Flyte control plane (RunService) on loopback, for the real `flyte.remote` client."""
    import flyte

    from tests.fakes.flyte import FakeFlyte

    fake = FakeFlyte().start()
    yield fake
    fake.stop(keep_port=False)
    flyte.init()  # the bot's flyte.init pointed at the fake: later tests get a plain local config


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    """A Flyte endpoint on loopback that accepts connections and never answers."""
    from tests.fakes.flyte import BlackHole

    hole = BlackHole()
    yield hole
    hole.close()


@pytest.fixture(scope="session")
def release(tmp_path_factory: pytest.TempPathFactory) -> Release:
    """The sdist and the wheel `make dist` makes, built once per session."""
    from tests.release import built_release

    return built_release(tmp_path_factory.getbasetemp() / "release")
