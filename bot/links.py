"""Signed form links and bearer-token checks.

A form link is `<public url>/form/<id>?sig=<HMAC>`; the event's deadline (stored with the
request, not in the link) ends its validity. Checks return False on anything odd, never raise.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote

__all__ = ["batch_url", "bearer_ok", "form_signature", "form_signature_ok", "form_url"]


def _mac(secret: str, purpose: str, message: str) -> str:
    key = hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()
    digest = hmac.new(key, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def form_signature(secret: str, request_id: str) -> str:
    return _mac(secret, "form-link", request_id)


def form_url(base_url: str, secret: str, request_id: str) -> str:
    return f"{base_url.rstrip('/')}/form/{quote(request_id)}?sig={form_signature(secret, request_id)}"


def form_signature_ok(secret: str, request_id: str, signature: str | None, *, batch: bool = False) -> bool:
    """Whether `signature` is the form link's for that event (`batch`: for that batch's list page)."""
    if not signature or not signature.isascii():
        return False
    expected = _mac(secret, "batch-link", request_id) if batch else form_signature(secret, request_id)
    return hmac.compare_digest(signature, expected)


def batch_url(base_url: str, secret: str, batch_id: str) -> str:
    """The form's list page of a batch (bot/batch.py): its open events, each with its own form link."""
    return f"{base_url.rstrip('/')}/form/batch/{quote(batch_id)}?sig={_mac(secret, 'batch-link', batch_id)}"


def bearer_ok(secret: str, authorization: str | None) -> bool:
    """Check an `Authorization: Bearer <secret>` header in constant time."""
    if not authorization or not authorization.isascii():
        return False
    scheme, _, token = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), secret.encode())
