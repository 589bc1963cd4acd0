"""Microsoft Graph, faked: the one call the bot makes, a group's transitive members, paged as Graph pages.

`GET /v1.0/groups/{id}/transitiveMembers` answers one member a page with `@odata.nextLink` to the
next, 404 for a group it does not know, 503 while `down`, and `trouble` (status, body, content type;
status 0 drops the connection) while that is set. It records the bearer tokens it was sent (`tokens`)
and how many lookups began (`lookups`: first pages asked for).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.loopback import Served


@dataclass
class FakeGraph:
    """Graph's `transitiveMembers` in its own thread; `url` is the bot's `teams_graph_url`."""

    url: str = ""
    members: dict[str, list[str]] = field(default_factory=dict)
    lookups: int = 0  # first pages asked for: one per group lookup
    tokens: set[str] = field(default_factory=set)
    down: bool = False
    trouble: tuple[int, str, str] | None = None
    _served: Served | None = None

    def start(self) -> FakeGraph:
        app = web.Application()
        app.router.add_get("/v1.0/groups/{group}/transitiveMembers", self.transitive_members)
        self._served = Served(app, name="fake-graph")
        self.url = f"{self._served.url}/v1.0"
        return self

    def stop(self) -> None:
        if self._served is not None:
            self._served.stop()

    async def transitive_members(self, request: web.Request) -> web.Response:
        self.tokens.add(request.headers.get("Authorization", ""))
        if self.trouble is not None:
            status, body, content_type = self.trouble
            if status == 0:  # the connection drops before any answer
                assert request.transport is not None
                request.transport.close()
            return web.Response(status=status or 500, text=body, content_type=content_type)
        if self.down:
            return web.json_response({"error": {"code": "serviceNotAvailable"}}, status=503)
        group = request.match_info["group"]
        if group not in self.members:
            return web.json_response({"error": {"code": "Request_ResourceNotFound"}}, status=404)
        page = int(request.query.get("page", "0"))
        self.lookups += page == 0
        ids = self.members[group]
        body: dict[str, Any] = {"value": [{"@odata.type": "#microsoft.graph.user", "id": ids[page]}]}
        if page + 1 < len(ids):
            body["@odata.nextLink"] = f"{self.url}/groups/{group}/transitiveMembers?page={page + 1}"
        return web.json_response(body)
