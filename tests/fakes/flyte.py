"""Flyte's control plane, faked: flyteidl2's own `RunServiceWSGIApplication` on wsgiref, on loopback.

It implements the three RunService methods `flyte.remote.Condition` speaks (ListActions,
GetActionDetails, SignalEvent), and GetRunDetails (who started a run: its root action's
`executed_by`, `started_by` here), over the real ConnectRPC wire, so the real `flyte.remote` client
(in the bot, the plugin or the `flyte signal` CLI) talks to it as to a cluster. It records every
signal (`signals`, `signals_to`), can time a condition out, and can be stopped and restarted on the
same port ("down"). `BlackHole` is the other way a control plane fails: it accepts connections and
never answers. `Run` is the real thing beside them: a Flyte local run, driven from a thread.
"""

from __future__ import annotations

import asyncio
import io
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.request import RequestContext
from flyteidl2.common import identifier_pb2, identity_pb2, phase_pb2
from flyteidl2.core import types_pb2
from flyteidl2.workflow import run_definition_pb2 as run_pb2
from flyteidl2.workflow import run_service_pb2 as service_pb2
from flyteidl2.workflow.run_service_connect import RunServiceSync, RunServiceWSGIApplication

from tests.fakes.loopback import Restartable

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

ORG = "localhost"  # flyte guesses the org from the endpoint's host name
PROJECT = "flytesnacks"
DOMAIN = "development"
_SIMPLE = {bool: types_pb2.BOOLEAN, int: types_pb2.INTEGER, float: types_pb2.FLOAT, str: types_pb2.STRING}
_ACTIVE = (phase_pb2.ACTION_PHASE_QUEUED, phase_pb2.ACTION_PHASE_RUNNING, phase_pb2.ACTION_PHASE_PAUSED)


@dataclass
class FakeCondition:
    """A condition action: a child of the task's action, with no pod of its own."""

    action: identifier_pb2.ActionIdentifier
    parent: str
    name: str
    data_type: type
    phase: int = phase_pb2.ACTION_PHASE_RUNNING
    value: Any = None
    signalled_by: str = ""
    resolved: threading.Event = field(default_factory=threading.Event)  # set once it no longer waits

    def proto(self) -> run_pb2.Action:
        metadata = run_pb2.ActionMetadata(
            parent=self.parent,
            action_type=run_pb2.ACTION_TYPE_CONDITION,
            condition=run_pb2.ConditionActionMetadata(
                name=self.name, type=types_pb2.LiteralType(simple=_SIMPLE[self.data_type])
            ),
        )
        return run_pb2.Action(id=self.action, metadata=metadata, status=run_pb2.ActionStatus(phase=self.phase))


@dataclass
class FakeFlyte(RunServiceSync):
    """The control plane's RunService, as far as conditions go."""

    conditions: dict[str, FakeCondition] = field(default_factory=dict)  # by action name
    signals: list[service_pb2.SignalEventRequest] = field(default_factory=list)
    # Who started every run (`ActionMetadata.executed_by` of its root action); None: not told, as a
    # control plane without authentication leaves it.
    started_by: identity_pb2.EnrichedIdentity | None = None
    run_details_asked: list[identifier_pb2.RunIdentifier] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _service: Restartable | None = None

    # -- what tests do ----------------------------------------------------------------

    def add_condition(
        self, run_name: str, parent: str, name: str, data_type: type = bool, *, project: str = PROJECT
    ) -> FakeCondition:
        """Register a condition action as a task's `flyte.new_condition` would."""
        action = identifier_pb2.ActionIdentifier(
            name=f"{parent}-{name}-{len(self.conditions)}",
            run=identifier_pb2.RunIdentifier(org=ORG, project=project, domain=DOMAIN, name=run_name),
        )
        condition = FakeCondition(action=action, parent=parent, name=name, data_type=data_type)
        with self._lock:
            self.conditions[action.name] = condition
        return condition

    def start_runs_as(self, *, email: str = "", application: str = "") -> None:
        """Runs are started by a user (with this e-mail) or by an application (a trigger, a service account)."""
        if application:
            app = identity_pb2.Application(spec=identity_pb2.AppSpec(name=application))
            self.started_by = identity_pb2.EnrichedIdentity(application=app)
        else:
            user = identity_pb2.User(spec=identity_pb2.UserSpec(first_name="Dana", email=email))
            self.started_by = identity_pb2.EnrichedIdentity(user=user)

    def signal_from_ui(self, condition: FakeCondition, value: Any, who: str = "") -> None:
        """Someone answers in the Flyte UI (or `flyte signal condition`)."""
        with self._lock:
            condition.phase, condition.value, condition.signalled_by = phase_pb2.ACTION_PHASE_SUCCEEDED, value, who
        condition.resolved.set()

    def time_out(self, condition: FakeCondition) -> None:
        with self._lock:
            condition.phase = phase_pb2.ACTION_PHASE_TIMED_OUT
        condition.resolved.set()

    def signals_to(self, condition: FakeCondition) -> list[Any]:
        """The payload values signalled to `condition` (accepted or not)."""
        with self._lock:
            return [_payload(s.payload) for s in self.signals if s.action_id.name == condition.action.name]

    @property
    def port(self) -> int:
        assert self._service is not None, "start() first"
        return self._service.port

    @property
    def endpoint(self) -> str:
        return f"dns:///localhost:{self.port}"

    def start(self) -> FakeFlyte:
        """Serve (again, on the same port after `stop`)."""
        if self._service is None:
            app = _bounded_input(RunServiceWSGIApplication(self))
            self._service = Restartable(
                lambda port: make_server("localhost", port, app, server_class=_Server, handler_class=_Quiet),
                name="fake-flyte",
            )
        self._service.start()
        return self

    def stop(self, *, keep_port: bool = True) -> None:
        """The control plane goes down: the port refuses connections (and stays held, unless not
        `keep_port`) until `start()` again."""
        if self._service is not None:
            self._service.stop(keep_port=keep_port)

    # -- RunService -------------------------------------------------------------------

    def list_actions(
        self, request: service_pb2.ListActionsRequest, ctx: RequestContext
    ) -> service_pb2.ListActionsResponse:
        filters = {f.field: list(f.values) for f in request.request.filters}
        parent = filters.get("parent_name", [None])[0]
        with self._lock:
            found = [
                c.proto()
                for c in self.conditions.values()
                if c.action.run.name == request.run_id.name
                and c.action.run.project == request.run_id.project
                and c.action.run.domain == request.run_id.domain
                and (parent is None or c.parent == parent)
            ]
        return service_pb2.ListActionsResponse(actions=found)

    def get_run_details(
        self, request: service_pb2.GetRunDetailsRequest, ctx: RequestContext
    ) -> service_pb2.GetRunDetailsResponse:
        """The run's root action (`a0`), with who started it."""
        with self._lock:
            self.run_details_asked.append(request.run_id)
            metadata = run_pb2.ActionMetadata(action_type=run_pb2.ACTION_TYPE_TASK)
            if self.started_by is not None:
                metadata.executed_by.CopyFrom(self.started_by)
        action = identifier_pb2.ActionIdentifier(name="a0", run=request.run_id)
        details = run_pb2.RunDetails(action=run_pb2.ActionDetails(id=action, metadata=metadata))
        return service_pb2.GetRunDetailsResponse(details=details)

    def get_action_details(
        self, request: service_pb2.GetActionDetailsRequest, ctx: RequestContext
    ) -> service_pb2.GetActionDetailsResponse:
        condition = self._find(request.action_id)
        with self._lock:
            action = condition.proto()
            details = run_pb2.ActionDetails(id=action.id, metadata=action.metadata, status=action.status)
            if condition.signalled_by:
                who = identity_pb2.User(spec=identity_pb2.UserSpec(first_name=condition.signalled_by))
                details.signal_info.signalled_by.user.CopyFrom(who)
        return service_pb2.GetActionDetailsResponse(details=details)

    def signal_event(
        self, request: service_pb2.SignalEventRequest, ctx: RequestContext
    ) -> service_pb2.SignalEventResponse:
        condition = self._find(request.action_id)
        with self._lock:
            self.signals.append(request)
            if condition.phase not in _ACTIVE:
                raise ConnectError(Code.FAILED_PRECONDITION, f"condition {condition.name} is no longer waiting")
            condition.phase, condition.value = phase_pb2.ACTION_PHASE_SUCCEEDED, _payload(request.payload)
        condition.resolved.set()
        return service_pb2.SignalEventResponse()

    def _find(self, action: identifier_pb2.ActionIdentifier) -> FakeCondition:
        with self._lock:
            condition = self.conditions.get(action.name)
        if condition is None:
            raise ConnectError(Code.NOT_FOUND, f"action {action.name} not found")
        return condition


class BlackHole:
    """A Flyte endpoint that accepts connections and never answers: a hung control plane or proxy."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("localhost", 0))
        self._accepted: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="flyte-black-hole", daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"dns:///localhost:{self._listener.getsockname()[1]}"

    @property
    def connections(self) -> int:
        """How many connections it has taken (each a call left hanging, unless the client reuses one)."""
        with self._lock:
            return len(self._accepted)

    async def wait_for_call(self, seconds: float = 20) -> None:
        """Until a client has connected: a call is now hanging in it."""
        for _ in range(int(seconds / 0.02)):
            if self.connections:
                return
            await asyncio.sleep(0.02)
        raise AssertionError("nothing connected to the black hole")

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for connection in self._accepted:
                connection.close()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed
                return
            with self._lock:
                self._accepted.append(connection)


class Run:
    """A Flyte local run in a thread (`flyte.run` blocks its caller until the task ends)."""

    def __init__(self, task: Any, *args: Any) -> None:
        self.result: Any = None
        self.returned = 0.0  # perf_counter() when flyte.run returned (benchmarks time it)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._go, args=(task, *args), daemon=True)
        self._thread.start()

    def _go(self, task: Any, *args: Any) -> None:
        import flyte

        try:
            run = flyte.run(task, *args)
            run.wait()
            outputs = run.outputs()
            self.returned = time.perf_counter()
            self.result = outputs[0] if isinstance(outputs, tuple | list) else outputs
        except BaseException as error:
            self.error = error

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self, wait_seconds: float = 30) -> Any:
        """Block until the run ends; its result, or the error it raised."""
        self._thread.join(wait_seconds)
        if self.running:
            raise TimeoutError("the run did not finish")
        if self.error:
            raise self.error
        return self.result

    async def finish(self, wait_seconds: float = 30) -> Any:
        return await asyncio.to_thread(self.join, wait_seconds)


def _payload(payload: service_pb2.EventPayload) -> Any:
    kind = payload.WhichOneof("value")
    return getattr(payload, kind) if kind else None


def _bounded_input(app: WSGIApplication) -> WSGIApplication:
    """Give the app exactly the request body: wsgiref hands it the raw socket, and connectrpc's
    error path reads "the rest of the body" until EOF, which on a kept-alive connection never comes."""

    def bounded(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        environ["wsgi.input"] = io.BytesIO(environ["wsgi.input"].read(length))
        return app(environ, start_response)

    return bounded


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass
