"""The store over fsspec: layout, first writer wins, and no path from outside."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import fsspec
import pytest

from hitl_chatops.bot.errors import AlreadyAnswered, EventNotFound, StoreError
from hitl_chatops.bot.protocol import MessageRef, Responder, Response, utcnow
from hitl_chatops.bot.store import Store
from tests.helpers import make_request


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
    assert on_disk["response_path"].startswith("s3://" if any_store_url.startswith("s3") else "/")
    assert fs.exists(f"{root}/hitl-pending/{request.request_id}")
    assert await store.pending_ids() == [request.request_id]
    assert await store.get_request(request.request_id) == request


async def test_fifty_concurrent_writers_one_winner(store: Store, any_store_url: str) -> None:
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


async def test_s3_uses_s3fs_even_after_flyte_registers_obstore(s3_store_url: str) -> None:
    """Importing flyte re-registers s3:// to obstore; the store keeps the implementation we measured."""
    import flyte.storage  # noqa: F401 - registers obstore's fsspec classes, as in every Flyte task
    import s3fs

    assert "obstore" in type(fsspec.filesystem("s3")).__module__
    store = Store(s3_store_url)
    assert isinstance(store.fs, s3fs.S3FileSystem)
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
