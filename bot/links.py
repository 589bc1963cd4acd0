"""Signed form links and bearer-token checks.

A form link is `<public url>/form/<id>?sig=<HMAC>`; the event's deadline (stored with the
request, not in the link) ends its validity. A personal link also names one person, signed with
a purpose of its own over the event, their identity (`<platform>:<user id>`) and their name:
`?as=slack:U0ANN&name=ann&sig=...`. The form answers it as that person, so it is a credential for
them and that event until the deadline, sent only to them. Checks return False on anything odd,
never raise.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote, urlencode

__all__ = ["NAME_KEY", "PERSON_KEY", "batch_url", "bearer_ok", "form_signature", "form_signature_ok", "form_url"]

PERSON_KEY = "as"  # the query parameter of a personal link's identity, `<platform>:<user id>`
NAME_KEY = "name"  # its person's display name, signed with it (what the outcome shows)


def _mac(secret: str, purpose: str, message: str) -> str:
    key = hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()
    digest = hmac.new(key, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def form_signature(secret: str, request_id: str) -> str:
    """The shared link's signature: anyone holding it may open the form."""
    return _mac(secret, "form-link", request_id)


def _signature(secret: str, request_id: str, person: str | None, name: str) -> str:
    if person is None:
        return form_signature(secret, request_id)
    # A newline never occurs in a request id or an identity; a name is the last part.
    return _mac(secret, "person-link", "\n".join((request_id, person, name)))


def form_url(base_url: str, secret: str, request_id: str, person: str | None = None, name: str = "") -> str:
    """The event's form link; with `person` (`<platform>:<user id>`), the link for that person alone."""
    query: dict[str, str] = {}
    if person is not None:
        query[PERSON_KEY] = person
        if name:
            query[NAME_KEY] = name
    query["sig"] = _signature(secret, request_id, person, name)
    return f"{base_url.rstrip('/')}/form/{quote(request_id)}?{urlencode(query, quote_via=quote)}"


def form_signature_ok(
    secret: str,
    request_id: str,
    signature: str | None,
    *,
    batch: bool = False,
    person: str | None = None,
    name: str = "",
) -> bool:
    """Whether `signature` is the form link's for that event (`batch`: for that batch's list page;
    `person`, `name`: the personal link made for them)."""
    if not signature or not signature.isascii():
        return False
    expected = _mac(secret, "batch-link", request_id) if batch else _signature(secret, request_id, person, name)
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
