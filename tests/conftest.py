"""Shared fixtures: a clean environment, a store folder, and a real bot on loopback."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import flyte
import pytest

from hitl_chatops.bot.config import load_settings
from hitl_chatops.bot.server import BotThread
from tests.clouds import Azurite, FakeGcs, GcsXmlApi, azure_env, gcs_env
from tests.flyte_fake import BlackHole, FakeFlyte

SECRET = "test-secret-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {SECRET}"}  # the bot's API, as a task or an operator calls it
_OWN_PREFIXES = ("HITL_CHATOPS_", "SLACK_", "Microsoft", "AWS_", "AZURE_", "AZURITE_", "GOOGLE_")


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


@pytest.fixture
def start_bot(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., BotThread]]:
    """Start real bots (aiohttp on 127.0.0.1, free port) with settings overrides; stopped after the test.

    The first bot started also becomes the plugin's `HITL_CHATOPS_URL`.
    """
    bots: list[BotThread] = []

    def start(**overrides: Any) -> BotThread:
        settings = load_settings(host="127.0.0.1", port=0, log_format="text", **overrides)
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


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real S3-compatible HTTP server (moto's server mode) on loopback with one bucket, for the session."""
    import s3fs
    from moto.server import ThreadedMotoServer

    from hitl_chatops.bot.server import free_port

    port = free_port("127.0.0.1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as patch:
        for name, value in _aws_env(endpoint).items():
            patch.setenv(name, value)
        s3fs.S3FileSystem(skip_instance_cache=True).mkdir(S3_BUCKET)
    yield endpoint
    server.stop()


S3_BUCKET = "hitl-tests"


def _aws_env(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",  # no instance metadata on loopback: fail fast
    }


@pytest.fixture
def s3_store_url(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh prefix per test, reached through the standard AWS env (no S3 options of ours)."""
    import uuid

    for name, value in _aws_env(moto_endpoint).items():
        monkeypatch.setenv(name, value)
    url = f"s3://{S3_BUCKET}/{uuid.uuid4().hex[:12]}/hitl"
    monkeypatch.setenv("HITL_CHATOPS_STORE", url)
    return url


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """Azurite, Microsoft's Azure Blob emulator, on loopback with one container, for the session."""
    server = Azurite(tmp_path_factory.mktemp("azurite"))
    server.create_container(AZ_CONTAINER)
    yield server
    server.stop()


AZ_CONTAINER = "hitl-tests"


@pytest.fixture
def az_store_url(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh prefix per test, reached through object_store's standard Azure env (the emulator's)."""
    import uuid

    for name, value in azure_env(azurite.endpoint).items():
        monkeypatch.setenv(name, value)
    url = f"az://{AZ_CONTAINER}/{uuid.uuid4().hex[:12]}/hitl"
    monkeypatch.setenv("HITL_CHATOPS_STORE", url)
    return url


@pytest.fixture(scope="session")
def gcs_api() -> Iterator[GcsXmlApi]:
    """fake-gcs-server with one bucket, behind the XML API object_store's GCS client speaks, for the session."""
    fake = FakeGcs()
    fake.create_bucket(GS_BUCKET)
    api = GcsXmlApi(fake.endpoint)
    yield api
    api.stop()
    fake.stop()


GS_BUCKET = "hitl-tests"


@pytest.fixture
def gs_store_url(gcs_api: GcsXmlApi, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A fresh prefix per test, reached through object_store's standard GCS env (a service account file)."""
    import uuid

    for name, value in gcs_env(gcs_api.endpoint, tmp_path).items():
        monkeypatch.setenv(name, value)
    url = f"gs://{GS_BUCKET}/{uuid.uuid4().hex[:12]}/hitl"
    monkeypatch.setenv("HITL_CHATOPS_STORE", url)
    return url


@pytest.fixture(params=["file", "s3", "az", "gs"])
def any_store_url(request: pytest.FixtureRequest) -> str:
    """Run a test against the local folder, S3 (moto), Azure Blob (Azurite) and GCS (fake-gcs-server) alike."""
    name = {"file": "store_url", "s3": "s3_store_url", "az": "az_store_url", "gs": "gs_store_url"}[request.param]
    return str(request.getfixturevalue(name))


@pytest.fixture
def fake_flyte() -> Iterator[FakeFlyte]:
    """A fake Flyte control plane (RunService) on loopback, for the real `flyte.remote` client."""
    fake = FakeFlyte().start()
    yield fake
    fake.stop(keep_port=False)
    flyte.init()  # the bot's flyte.init pointed at the fake: later tests get a plain local config


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    """A Flyte endpoint on loopback that accepts connections and never answers."""
    hole = BlackHole()
    yield hole
    hole.close()
