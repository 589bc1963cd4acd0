"""A Flyte task's side of the protocol, faked: a pending event as the plugin's `new_event` writes it,
without Flyte (for tests and benches that start from a stored request, not from a run)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hitl_chatops.bot.protocol import Request
    from hitl_chatops.bot.store import Store


def make_request(store: Store, *, timeout: float = 600, now: datetime | None = None, **fields: Any) -> Request:
    """A bool `deploy_gate` request at `store`'s paths, created `now`, due `timeout` seconds later; `fields`
    override (`request_id`, `prompt`, `data_type`, bounds...). Not written: `store.put_request` writes it."""
    from hitl_chatops.bot.protocol import Request, utcnow
    from hitl_chatops.bot.store import new_request_id

    request_id = fields.pop("request_id", None) or new_request_id()
    now = now or utcnow()
    values: dict[str, Any] = {
        "event_name": "deploy_gate",
        "prompt": "Deploy to prod?",
        "data_type": "bool",
        "timeout_seconds": int(timeout),
        "request_path": store.request_url(request_id),
        "response_path": store.response_url(request_id),
    }
    values.update(fields)
    return Request(request_id=request_id, created_at=now, deadline=now + timedelta(seconds=timeout), **values)
