"""The store over fsspec: layout, first writer wins, and no path from outside."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hitl_chatops.bot.errors import AlreadyAnswered, ConfigError, EventNotFound, StoreError
from hitl_chatops.bot.protocol import MessageRef, Responder, Response, utcnow
from hitl_chatops.bot.store import Store, new_request_id
from tests.fakes.events import make_request
from tests.fakes.s3 import Moto


@pytest.fixture
def store(any_store_url: str) -> Store:
    return Store(any_store_url)


def answer(request_id: str, value: object, user: str) -> Response:
    return Response(
        value=value,
        request_id=request_id,
        data_type="int",
        responder=Responder(platform="slack", user_id=user, user_name=user),
        responded_at=utcnow(),
        via="slack",
    )


async def test_layout_matches_the_storage_protocol(store: Store, any_store_url: str) -> None:
    request = make_request(store, data_type="int")
    await store.put_request(request)
    fs, root = store.fs, store.root
    on_disk = json.loads(fs.cat_file(f"{root}/hitl-requests/{request.request_id}/request.json"))
    assert on_disk["request_id"] == request.request_id
    assert on_disk["status"] == "pending"
    assert on_disk["response_path"] == store.url_of(f"{root}/hitl-requests/{request.request_id}/response.json")
    scheme = any_store_url.split("://", 1)[0]
    assert on_disk["response_path"].startswith("/" if scheme == "file" else f"{scheme}://")
    assert fs.exists(f"{root}/hitl-pending/{request.request_id}")
    assert await store.pending_ids() == [request.request_id]
    assert await store.get_request(request.request_id) == request


async def test_fifty_concurrent_writers_one_winner(
    store: Store, any_store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    request = make_request(store, data_type="int")
    await store.put_request(request)
    replicas = [Store(any_store_url) for _ in range(5)]  # separate clients, as separate bot replicas have

    async def write(i: int) -> str:
        try:
            await replicas[i % len(replicas)].put_response(answer(request.request_id, i, f"U{i}"))
        except AlreadyAnswered as lost:
            return f"lost to {lost.response.responder_label}"
        return "won"

    results = await asyncio.gather(*(write(i) for i in range(50)))
    assert results.count("won") == 1
    stored = await store.get_response(request.request_id)
    assert stored is not None
    winner = f"U{stored.value}"
    assert results[stored.value] == "won"
    assert all(r == f"lost to {winner}" for r in results if r != "won")
    assert await store.pending_ids() == []
    leftovers = store.fs.ls(f"{store.root}/hitl-requests/{request.request_id}", detail=False)
    assert sorted(p.rsplit("/", 1)[-1] for p in leftovers) == ["request.json", "response.json"], "no temp files"
    assert [r.message for r in caplog.records] == [], "a lost race is an answer for the caller, not a storage failure"


@pytest.mark.parametrize(
    "bad_id",
    [
        "../../etc/passwd",
        "..",
        "g" * 36,
        "A" * 36,
        "../" * 12,
        "0b7c3d4e-1f2a-4b5c-8d9e-0f1a2b3c4d5e/../x",
        "",
        "%2e%2e%2f",
    ],
)
async def test_traversal_ids_are_rejected(store: Store, bad_id: str, tmp_path: Path) -> None:
    """Ids are checked before any path is built, so nothing outside the root is touched."""
    with pytest.raises(EventNotFound):
        await store.get_request(bad_id)
    with pytest.raises(EventNotFound):
        await store.put_response(answer(bad_id, 1, "U1"))
    with pytest.raises(EventNotFound):
        await store.drop_pending(bad_id)
    assert not (tmp_path / "etc").exists()


async def test_missing_objects(store: Store) -> None:
    request = make_request(store)
    with pytest.raises(EventNotFound):
        await store.get_request(request.request_id)
    assert await store.get_response(request.request_id) is None
    assert await store.pending_ids() == []
    assert await store.messages(request.request_id) == []


async def test_messages_and_conversations_round_trip(store: Store) -> None:
    request = make_request(store)
    await store.put_request(request)
    first = MessageRef(platform="slack", key="C1-1700000000.000100", data={"channel": "C1", "ts": "1700000000.000100"})
    second = MessageRef(platform="teams", key="conv-abc", data={"activity_id": "1"})
    await store.put_message(request.request_id, first)
    await store.put_message(request.request_id, second)
    assert sorted(await store.messages(request.request_id), key=lambda m: m.platform) == [first, second]
    await store.put_conversation("teams", "19:abc@thread.tacv2;messageid=1", {"tenant_id": "t"})
    assert await store.get_conversation("teams", "19:abc@thread.tacv2;messageid=1") == {"tenant_id": "t"}
    assert await store.get_conversation("teams", "other") is None


async def test_settle_indexes_the_outcome_and_drops_the_marker(store: Store) -> None:
    """What follows an answer's ack: its outcome in the recent-outcomes index, the pending marker gone."""
    request = make_request(store)
    await store.put_request(request)
    response = answer(request.request_id, 3, "U1")
    await store.create_response(response)
    assert await store.settle(response, request) is True
    assert await store.pending_ids() == []
    records, _ = await store.outcomes("completed", limit=5)
    assert [(r.request_id, r.event_name, r.value) for r in records] == [(request.request_id, "deploy_gate", 3)]


async def test_a_failed_index_write_keeps_the_marker(store_url: str) -> None:
    """The marker outlives a missing index entry, so the reconciler finishes the job."""
    store = Store(store_url)
    request = make_request(store)
    await store.put_request(request)
    (Path(store.root) / "hitl-history").write_text("in the way")  # the index folder cannot be made
    response = answer(request.request_id, 3, "U1")
    await store.create_response(response)
    assert await store.settle(response) is False
    assert await store.pending_ids() == [request.request_id]


async def test_a_message_record_being_written_is_not_read(store_url: str) -> None:
    """A local write's temp file (`.tmp-…`, not yet synced and linked) lies beside the records it joins."""
    store = Store(store_url)
    request = make_request(store)
    record = MessageRef(platform="slack", key="C1-1.0", data={"channel": "C1", "ts": "1.0"})
    await store.put_message(request.request_id, record)
    store.fs.pipe_file(f"{store.root}/hitl-requests/{request.request_id}/messages/.tmp-0f0f", b'{"platfo')
    assert await store.messages(request.request_id) == [record]


def test_message_keys_cannot_shape_paths() -> None:
    with pytest.raises(ValueError, match="message key"):
        MessageRef(platform="slack", key="../../x")


async def test_s3_uses_obstore_whether_or_not_flyte_registered_it(s3_store_url: str) -> None:
    """Importing flyte re-registers s3:// in fsspec; the store builds its own obstore client either way."""
    import flyte.storage  # noqa: F401 - registers obstore's fsspec classes, as in every Flyte task
    from obstore.store import S3Store

    store = Store(s3_store_url)
    assert isinstance(store.backend.client, S3Store)
    request = make_request(store)
    await store.put_request(request)
    await store.put_response(answer(request.request_id, 1, "U1"))
    with pytest.raises(AlreadyAnswered):
        await store.put_response(answer(request.request_id, 2, "U2"))


async def test_local_writes_leave_no_temp_files(store_url: str) -> None:
    store = Store(store_url)
    request = make_request(store, data_type="int")
    await store.put_request(request)
    await store.put_message(request.request_id, MessageRef(platform="slack", key="C1-1.0", data={}))
    await store.put_response(answer(request.request_id, 1, "U1"))
    with pytest.raises(AlreadyAnswered):
        await store.put_response(answer(request.request_id, 2, "U2"))
    assert await store.claim(request.request_id, "post-slack") is True
    assert await store.claim(request.request_id, "post-slack") is False
    everything = store.fs.find(store.root, withdirs=True)
    assert len(everything) > 5 and [p for p in everything if ".tmp-" in p] == []


async def test_a_failed_local_write_leaves_nothing_half_written(store_url: str) -> None:
    store = Store(store_url)
    request = make_request(store)
    folder = f"{store.root}/hitl-requests/{request.request_id}"
    store.fs.makedirs(f"{folder}/request.json")  # a folder where the file goes: the rename fails
    with pytest.raises(StoreError, match="object storage"):
        await store.put_request(request)
    assert store.fs.ls(folder, detail=False) == [f"{folder}/request.json"]
    assert await store.pending_ids() == []


async def test_read_your_writes_across_processes(any_store_url: str) -> None:
    """Another process's request and answer are seen at once, and ours are seen by it (replicas, plugin)."""
    store = Store(any_store_url)
    request = make_request(store)
    await store.put_request(request)
    child = (
        "import asyncio, sys\n"
        "from hitl_chatops.bot.store import Store\n"
        "from hitl_chatops.bot.protocol import Response\n"
        "store = Store(sys.argv[1])\n"
        "async def main() -> None:\n"
        "    request = await store.get_request(sys.argv[2])\n"
        "    await store.put_response(Response(value=True, request_id=request.request_id, data_type='bool'))\n"
        "asyncio.run(main())\n"
    )
    assert await store.get_response(request.request_id) is None
    done = await asyncio.create_subprocess_exec(
        sys.executable, "-c", child, any_store_url, request.request_id, stderr=asyncio.subprocess.PIPE
    )
    _, errors = await done.communicate()
    assert done.returncode == 0, errors.decode()[-3000:]
    answered = await store.get_response(request.request_id)
    assert answered is not None and answered.value is True
    assert await store.pending_ids() == []


async def test_listing_reads_outbox_pending_and_replicas_with_versions(store: Store) -> None:
    first, second = make_request(store), make_request(store)
    for request in (first, second):
        await store.put_request(request)
    await store.put_outbox(first.request_id, "answered")
    replica = new_request_id()
    await store.put_replica(replica)
    await store.put_message(first.request_id, MessageRef(platform="slack", key="C1-1.0", data={}))

    listing = await store.listing()
    assert sorted(listing.pending) == sorted([first.request_id, second.request_id])
    assert listing.outbox == [first.request_id]
    assert list(listing.replicas) == [replica]
    assert abs((utcnow() - listing.replicas[replica]).total_seconds()) < 60

    await asyncio.sleep(1.1)  # S3's LastModified has a resolution of one second
    await store.put_request(second)  # a marker written again (a crash, an answer from elsewhere) is a change
    again = await store.listing()
    assert again.pending[first.request_id] == listing.pending[first.request_id]
    assert again.pending[second.request_id] != listing.pending[second.request_id]
    await store.drop_replica(replica)
    await store.drop_pending(first.request_id)
    assert (await store.listing()).replicas == {}
    assert list((await store.listing()).pending) == [second.request_id]


async def test_store_down_then_back(own_moto: Moto) -> None:
    """While S3 is unreachable every call fails fast with `StoreError`; once back, nothing was half-written."""
    store = Store(os.environ["HITL_CHATOPS_STORE"])
    request = make_request(store)
    await store.put_request(request)
    own_moto.stop()
    started = time.monotonic()
    with pytest.raises(StoreError, match="object storage"):
        await store.put_response(answer(request.request_id, 1, "U1"))
    with pytest.raises(StoreError):
        await store.pending_ids()
    with pytest.raises(StoreError):
        await store.get_response(request.request_id)
    assert time.monotonic() - started < 30, "a person is waiting: fail within seconds"
    own_moto.start()
    assert await store.get_response(request.request_id) is None
    assert await store.pending_ids() == [request.request_id]
    await store.put_response(answer(request.request_id, 2, "U2"))
    stored = await store.get_response(request.request_id)
    assert stored is not None and stored.value == 2 and stored.responder_label == "U2"
    assert await store.pending_ids() == []


def test_gcs_and_azure_urls_get_their_native_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    """No emulator here: the clients are built from the standard env, paths keep the URL's scheme."""
    from obstore.store import AzureStore, GCSStore

    monkeypatch.delenv("AZURE_STORAGE_ACCOUNT_NAME", raising=False)
    request_id = new_request_id()
    gcs = Store("gs://my-bucket/hitl")
    assert isinstance(gcs.backend.client, GCSStore)
    assert gcs.response_url(request_id) == f"gs://my-bucket/hitl/hitl-requests/{request_id}/response.json"
    with pytest.raises(ConfigError, match="AZURE_STORAGE_ACCOUNT_NAME"):
        Store("az://my-container/hitl")
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", "account")
    assert isinstance(Store("az://my-container/hitl").backend.client, AzureStore)


def test_an_object_store_url_without_obstore_says_what_to_install() -> None:
    """A bot installed without the [s3] extra: one line naming the extra, not a traceback."""
    script = "import sys; sys.modules['obstore'] = None; from hitl_chatops.bot.store import Store; Store('s3://b/hitl')"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "ConfigError: HITL_CHATOPS_STORE uses s3:// but obstore is missing" in done.stderr
    assert "hitl-chatops[s3]" in done.stderr


async def test_ping_on_s3_lists_the_bucket_with_the_bots_own_client(s3_store_url: str) -> None:
    """`/healthz` is truthful for object stores too: a bucket that is not there is not "reachable"."""
    await Store(s3_store_url).ping()
    with pytest.raises(StoreError):
        await Store("s3://hitl-no-such-bucket/hitl").ping()


async def test_removing_what_is_already_gone_is_no_error(store: Store) -> None:
    """Replicas race to settle one outcome or drop one marker: the later delete finds nothing, and that is fine.

    Azure and GCS answer a delete of a missing object with 404 (S3 and local folders say nothing), and
    obstore's GCS deletes of a list stop at the first.
    """
    gone, *others = [make_request(store) for _ in range(21)]
    await asyncio.gather(*(store.put_request(request) for request in (gone, *others)))
    response = answer(gone.request_id, 1, "U1")
    await store.put_response(response)  # settles: the marker is dropped
    assert await store.settle(response) is True  # another replica settles it again
    await store.drop_pending(gone.request_id)
    dropped = [gone.request_id, *(request.request_id for request in others)]
    await asyncio.gather(*map(store.drop_pending, dropped))  # one bulk delete, the first key already gone
    assert await store.pending_ids() == []
    await store.drop_outbox(gone.request_id)
    await store.drop_owed_signal(gone.request_id)
    await store.drop_replica(new_request_id())
    await store.release(gone.request_id, "post-slack")


async def test_any_other_fsspec_filesystem_holds_the_same_objects() -> None:
    """A URL that is neither S3, GCS, Azure nor a local folder goes through fsspec's own filesystem for it."""
    import uuid

    store = Store(f"memory://hitl-{uuid.uuid4().hex[:8]}/hitl")
    request, other = make_request(store), make_request(store)
    for event in (request, other):
        await store.put_request(event)
    record = MessageRef(platform="slack", key="C1-1.0", data={"channel": "C1", "ts": "1.0"})
    await store.put_message(request.request_id, record)
    await store.put_outbox(other.request_id, "answered")
    await store.put_owed_signal(other.request_id, {"error": "control plane down"})
    await store.put_response(answer(request.request_id, 1, "U1"), request)
    with pytest.raises(AlreadyAnswered):
        await store.create_response(answer(request.request_id, 2, "U2"))

    assert store.response_url(request.request_id).startswith(f"memory://{store.root}/hitl-requests/")
    assert await store.messages(request.request_id) == [record]
    listing = await store.listing()
    assert (list(listing.pending), listing.outbox, listing.signals) == ([other.request_id],) * 3
    records, cursor = await store.outcomes("completed", limit=5)
    assert ([r.request_id for r in records], cursor) == ([request.request_id], None)
    await store.ping()
