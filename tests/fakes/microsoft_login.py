"""Microsoft's login (Entra ID), faked: a real HTTPS server with a test CA that MSAL talks to as it
would to login.microsoftonline.com.

It serves an ADFS-style authority (`{url}` ends in `/adfs`), which spares MSAL's instance discovery
(that would go to Microsoft): the OpenID configuration and the token endpoint, which grants a
client-credentials token to the one app it knows and refuses a wrong secret as Entra does. MSAL's
`requests` trusts it through `REQUESTS_CA_BUNDLE` = `ca_bundle`; the bot reads the authority from
`teams_authority`. It counts token requests (`token_requests`) and hangs them while `answering` is clear.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

import trustme
from aiohttp import web

from tests.fakes.loopback import Served


@dataclass
class FakeAuthority:
    """The login of one app (`client_id`, `client_secret`), its CA's certificate written into `folder`."""

    client_id: str
    client_secret: str
    folder: Path
    url: str = ""
    token_requests: int = 0
    answering: threading.Event = field(default_factory=threading.Event)  # cleared: token requests hang
    _served: Served | None = None

    @property
    def ca_bundle(self) -> Path:
        return self.folder / "ca.pem"

    def start(self) -> FakeAuthority:
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(self.ca_bundle))
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(tls)
        self.answering.set()
        app = web.Application()
        app.router.add_get("/adfs/.well-known/openid-configuration", self._configuration)
        app.router.add_post("/adfs/oauth2/token", self._token)
        self._served = Served(app, tls=tls, name="fake-microsoft-login")
        self.url = f"{self._served.url}/adfs"
        return self

    def stop(self) -> None:
        self.answering.set()  # a token request still hanging ends before the server does
        if self._served is not None:
            self._served.stop()

    async def _configuration(self, _: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": self.url,
                "authorization_endpoint": f"{self.url}/oauth2/authorize",
                "token_endpoint": f"{self.url}/oauth2/token",
            }
        )

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        assert form["grant_type"] == "client_credentials" and form["client_id"] == self.client_id
        self.token_requests += 1
        if not self.answering.is_set():
            await asyncio.get_running_loop().run_in_executor(None, self.answering.wait, 60)
        if form["client_secret"] != self.client_secret:
            body = {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}
            return web.json_response(body, status=401)
        return web.json_response(
            {"access_token": f"token-{self.token_requests}", "token_type": "Bearer", "expires_in": 3600}
        )
