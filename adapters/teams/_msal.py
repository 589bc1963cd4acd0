"""The Agents SDK's private name the Teams adapter uses, once, here and nowhere else.

`MsalAuth` builds its MSAL client, which discovers the authority over the network, on the event
loop and without a timeout; `_tokens.token` builds it in a thread first, under its own timeout.
`tests/test_private_names.py` fails, naming the name and the SDK's version, when a release changes it.
"""

from __future__ import annotations

from microsoft_agents.authentication.msal import MsalAuth

__all__ = ["build_client"]


def build_client(tokens: MsalAuth) -> None:
    """Build the MSAL client `tokens.get_access_token` uses (blocking; MsalAuth caches it)."""
    tokens._get_client()
