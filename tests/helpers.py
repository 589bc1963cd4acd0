"""Small helpers shared by tests: build requests without Flyte, call the API with the token."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hitl_chatops.bot.protocol import Request, utcnow
from hitl_chatops.bot.store import Store, new_request_id


def make_request(store: Store, *, timeout: float = 600, **fields: Any) -> Request:
    """A request as the plugin would write it (tests that do not need Flyte use this)."""
    request_id = new_request_id()
    now = utcnow()
    values: dict[str, Any] = {
        "event_name": "deploy_gate",
        "prompt": "Deploy to prod?",
        "data_type": "bool",
        "timeout_seconds": int(timeout),
    }
    values.update(fields)
    return Request(
        request_id=request_id,
        request_path=store.request_url(request_id),
        response_path=store.response_url(request_id),
        created_at=now,
        deadline=now + timedelta(seconds=timeout),
        **values,
    )
