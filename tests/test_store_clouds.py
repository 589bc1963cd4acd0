"""What the store asks of Azure Blob and GCS, counted where the emulators get it (S3: test_reconciler_scale)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from hitl_chatops.bot.errors import StoreError
from hitl_chatops.bot.protocol import Responder
from hitl_chatops.bot.reconciler import Reconciler
from hitl_chatops.bot.service import HitlService
from hitl_chatops.bot.store import Store
from tests.conftest import AZ_CONTAINER, SECRET
from tests.fakes.azure import Azurite, CountingProxy, azure_env
from tests.fakes.events import make_request
from tests.fakes.gcs import GcsXmlApi
from tests.test_reconciler_scale import put_events

FOLDERS = ("hitl-outbox", "hitl-owed-signals", "hitl-pending", "hitl-replicas")


@pytest.fixture
def counting_azurite(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingProxy]:
    """The session's Azurite behind a proxy that records every request the bot's client makes."""
    proxy = CountingProxy(azurite.endpoint)
    for name, value in azure_env(proxy.endpoint).items():
        monkeypatch.setenv(name, value)
    yield proxy
    proxy.stop()


def az_store(name: str) -> Store:
    return Store(f"az://{AZ_CONTAINER}/{name}-{uuid.uuid4().hex[:8]}/hitl")


async def test_an_idle_pass_on_azure_lists_only_the_reconcilers_folders(counting_azurite: CountingProxy) -> None:
    """obstore filters an Azure listing's offset on the client: a ranged listing would page through the whole
    outcome history, a cost that grows forever. One listing per folder instead."""
    store = az_store("idle")
    service = HitlService(store, secret=SECRET, form_base_url="http://127.0.0.1:1")
    answered, owed, waiting = await put_events(store, 3)
    await service.respond(answered, "yes", Responder(platform="api", user_id="ci"), "api", trusted=True)
    await service.background.drain()  # its outcome is in hitl-history/, which sorts before the reconciler's folders
    await store.put_owed_signal(owed, {"error": "control plane down"})
    reconciler = Reconciler(service, 15)
    await store.put_replica(reconciler.replica_id)
    await reconciler.step()
    counting_azurite.take()

    idle = await reconciler.step()
    assert idle.announced == idle.expired == idle.repaired == idle.failed == 0
    root = store.backend.key(store.root)
    lists = [query["prefix"] for _, _, query in counting_azurite.take() if query.get("comp") == ["list"]]
    assert sorted(lists) == [[f"{root}/{folder}/"] for folder in FOLDERS]

    await store.put_outbox(owed, "answered")  # a failed chat update, retried by the next pass
    counting_azurite.take()
    listing = await store.listing()
    assert counting_azurite.count() == {"LIST": 4}  # and nothing else: one request per folder under 5,000 keys
    assert (listing.outbox, listing.signals, sorted(listing.pending)) == ([owed], [owed], sorted([owed, waiting]))
    assert list(listing.replicas) == [reconciler.replica_id]


async def test_an_idle_pass_on_gcs_is_one_ranged_listing(gcs_api: GcsXmlApi, gs_store_url: str) -> None:
    """GCS's listing starts after a key on the server (`start-after`), as S3's does: one ranged listing of the
    four folders, 1,000 keys a page, and the page that shows where they end; never the outcome history."""
    store = Store(gs_store_url)
    service = HitlService(store, secret=SECRET, form_base_url="http://127.0.0.1:1")
    await put_events(store, 1000)
    await store.index_expired(make_request(store))  # the history, which sorts before the listed folders
    reconciler = Reconciler(service, 15)
    await reconciler.step()
    gcs_api.take()

    idle = await reconciler.step()
    assert idle.announced == idle.expired == idle.repaired == idle.failed == 0
    requests = gcs_api.take()
    root = store.backend.key(store.root)
    assert [(method, query["prefix"], query.get("start-after")) for method, _, query in requests] == [
        ("GET", [f"{root}/"], [f"{root}/hitl-outbox"]),  # the 1,000 markers
        ("GET", [f"{root}/"], [f"{root}/hitl-outbox"]),  # its next page (continuation-token): the events' folder
    ]
    assert "continuation-token" in requests[1][2]


@pytest.mark.parametrize("cloud", ["az", "gs"])
async def test_ping_lists_the_container_with_the_bots_own_client(cloud: str, request: pytest.FixtureRequest) -> None:
    """`/healthz` on Azure and GCS: a container or bucket that is not there is not "reachable"."""
    await Store(request.getfixturevalue(f"{cloud}_store_url")).ping()
    with pytest.raises(StoreError):
        await Store(f"{cloud}://hitl-no-such-bucket/hitl").ping()
