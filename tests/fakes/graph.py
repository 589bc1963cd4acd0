"""Microsoft Graph, faked: the calls the bot makes, a group's transitive members and users.

`GET /v1.0/groups/{id}/transitiveMembers` answers one member a page with `@odata.nextLink` to the
next, 404 for a group it does not know. `GET /v1.0/users/{id or address}` answers a user of `users`
(by object id, or by `mail` whatever its case) or Graph's 404; `GET /v1.0/users?$search=...` answers the
users whose name or address starts with the searched words, and refuses a search without the
`ConsistencyLevel: eventual` header as Graph does. Every call answers 503 while `down`, and `trouble`
(status, body, content type; status 0 drops the connection) while that is set. It records the bearer
tokens it was sent (`tokens`), how many group lookups began (`lookups`: first pages asked for), the
users looked up (`user_lookups`) and the searches (`searches`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.loopback import Served


@dataclass
class FakeGraph:
    """Graph's `transitiveMembers` in its own thread; `url` is the bot's `teams_graph_url`."""

    url: str = ""
    members: dict[str, list[str]] = field(default_factory=dict)
    users: list[dict[str, str]] = field(default_factory=list)  # {"id", "displayName", "mail"}
    lookups: int = 0  # first pages asked for: one per group lookup
    user_lookups: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    down: bool = False
    trouble: tuple[int, str, str] | None = None
    _served: Served | None = None

    def start(self) -> FakeGraph:
        app = web.Application()
        app.router.add_get("/v1.0/groups/{group}/transitiveMembers", self.transitive_members)
        app.router.add_get("/v1.0/users/{key}", self.user)
        app.router.add_get("/v1.0/users", self.search)
        self._served = Served(app, name="fake-graph")
        self.url = f"{self._served.url}/v1.0"
        return self

    def stop(self) -> None:
        if self._served is not None:
            self._served.stop()

    def _failing(self, request: web.Request) -> web.Response | None:
        self.tokens.add(request.headers.get("Authorization", ""))
        if self.trouble is not None:
            status, body, content_type = self.trouble
            if status == 0:  # the connection drops before any answer
                assert request.transport is not None
                request.transport.close()
            return web.Response(status=status or 500, text=body, content_type=content_type)
        if self.down:
            return web.json_response({"error": {"code": "serviceNotAvailable"}}, status=503)
        return None

    async def user(self, request: web.Request) -> web.Response:
        if failing := self._failing(request):
            return failing
        key = request.match_info["key"]
        self.user_lookups.append(key)
        for user in self.users:
            if key == user["id"] or key.casefold() == user.get("mail", "").casefold():
                return web.json_response(_selected(user, request))
        return web.json_response({"error": {"code": "Request_ResourceNotFound"}}, status=404)

    async def search(self, request: web.Request) -> web.Response:
        if failing := self._failing(request):
            return failing
        if request.headers.get("ConsistencyLevel") != "eventual":
            return web.json_response({"error": {"code": "Request_UnsupportedQuery"}}, status=400)
        search = request.query.get("$search", "")
        self.searches.append(search)
        words = {m.group(2).casefold() for m in re.finditer(r'"(displayName|mail):([^"]*)"', search)}
        found = [
            _selected(user, request)
            for user in self.users
            if any(user.get(k, "").casefold().startswith(w) for w in words for k in ("displayName", "mail"))
        ]
        return web.json_response({"value": found[: int(request.query.get("$top", "100"))]})

    async def transitive_members(self, request: web.Request) -> web.Response:
        if failing := self._failing(request):
            return failing
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


def _selected(user: dict[str, str], request: web.Request) -> dict[str, str]:
    """The user with only the properties `$select` names, as Graph answers."""
    wanted = request.query.get("$select", "id").split(",")
    return {name: user[name] for name in wanted if name in user}
