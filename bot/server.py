"""Server assembly: the core routes, and every enabled platform of the registry.

`build_app` wires the core routes and mounts each enabled platform; `serve` runs it until SIGTERM;
`BotThread` runs it on loopback inside another program (local Flyte runs, the demo, tests).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler

from . import adapter, api, form, registry
from .appkeys import SERVICE, SETTINGS
from .background import finish_or_cut
from .config import Settings
from .reconciler import Reconciler
from .service import HitlService
from .store import Store

__all__ = ["BotThread", "build_app", "free_port", "serve", "start", "tune_gc"]

log = logging.getLogger(__name__)
T = TypeVar("T")
_YOUNG_COLLECTION_EVERY = 20_000  # allocations between young-generation collections (CPython's default: 700)
# SIGTERM to exit within Kubernetes' 30 s grace period (manifests/kubernetes/deployment.yaml), at
# worst: background work 8 s, then requests still in flight 10 s, then the reconciler's pass 3 s,
# each step cut short with 2 s (`CUT_SECONDS`) to record what it still owes.
DRAIN_SECONDS = 8.0
REQUESTS_SECONDS = 10.0
RECONCILER_STOP_SECONDS = 3.0


def build_service(settings: Settings) -> HitlService:
    return HitlService(Store(settings.store), secret=settings.secret_value(), form_base_url=settings.form_base_url())


def build_app(settings: Settings) -> web.Application:
    """The bot as an aiohttp application; each enabled platform mounts its routes and joins the core."""
    service = build_service(settings)
    app = web.Application(client_max_size=256 * 1024, middlewares=[_timed])
    app[SERVICE] = service
    app[SETTINGS] = settings
    app.add_routes(api.routes)
    app.add_routes(form.routes)
    for registration in registry.registrations():
        platform = adapter.load(registration)
        if platform.is_enabled(settings):
            service.delivery.add_platform(platform.attach(app, service, settings))
    if settings.flyte_enabled:  # not a chat platform: the bot signals native conditions after answers
        from .conditions import attach as attach_flyte

        attach_flyte(app, service.delivery, settings)

    reconciler = None
    if settings.reconcile_seconds > 0:
        reconciler = Reconciler(service, settings.reconcile_seconds, replica_id(settings))
        app.cleanup_ctx.append(_reconciling(reconciler))
    if settings.metrics_port is not None:
        app.cleanup_ctx.append(_metrics_listener(settings.host, settings.metrics_port))

    async def wind_down(app: web.Application) -> None:
        """Shutdown's first step (before the adapters close their clients): no new reconciler pass,
        and background work gets `DRAIN_SECONDS`."""
        if reconciler is not None:
            reconciler.stop()
        await app[SERVICE].background.drain(DRAIN_SECONDS)

    app.on_shutdown.append(wind_down)
    return app


def replica_id(settings: Settings) -> str:
    """The same for every start of a bot on one host and port, so a container restarted in place
    (OOM, a crash) takes its own heartbeat and turns back instead of leaving a stale one behind."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"hitl-chatops://{socket.gethostname()}:{settings.port}"))


def _reconciling(reconciler: Reconciler) -> Callable[[web.Application], AsyncIterator[None]]:
    async def lifespan(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(reconciler.run(), name="hitl-reconciler")
        yield
        reconciler.stop()
        # The pass in progress has had the drain and the in-flight requests' time to finish; what
        # is still running is cut: every step of a pass is repeated by the next one (any replica).
        await finish_or_cut([task], RECONCILER_STOP_SECONDS)
        if task.done() and not task.cancelled():
            task.result()  # a bug in a pass surfaces here, as it did when shutdown awaited the task

    return lifespan


def _metrics_listener(host: str, port: int) -> Callable[[web.Application], AsyncIterator[None]]:
    """`/metrics` alone, without a token, on its own port: for Prometheus, never exposed publicly."""

    async def lifespan(app: web.Application) -> AsyncIterator[None]:
        internal = web.Application()
        internal[SERVICE] = app[SERVICE]
        internal.router.add_get("/metrics", api.open_metrics)
        runner = web.AppRunner(internal, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        log.info("metrics listening", extra={"url": f"http://{host}:{port}/metrics"})
        yield
        await runner.cleanup()

    return lifespan


@web.middleware
async def _timed(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Handler latency per route, for /metrics."""
    started = time.perf_counter()
    try:
        return await handler(request)
    finally:
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "unmatched"
        request.app[SERVICE].metrics.handler_latency.labels(name).observe(time.perf_counter() - started)


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


async def start(settings: Settings) -> tuple[web.AppRunner, Settings]:
    """Start listening; returns the runner and the settings it runs with.

    A port of 0 (main or metrics) becomes a free port first, so the settings name the real ports
    and form links built from them are right.
    """
    for name in ("port", "metrics_port"):
        if getattr(settings, name) == 0:
            settings = settings.model_copy(update={name: free_port(settings.host)})
    runner = web.AppRunner(
        build_app(settings), access_log=None, handle_signals=False, shutdown_timeout=REQUESTS_SECONDS
    )
    await runner.setup()
    # A burst of clicks opens many connections at once; aiohttp's default backlog (128) would drop
    # the rest of the SYNs, and each dropped one costs the person a 1 s TCP retransmit.
    site = web.TCPSite(runner, settings.host, settings.port, backlog=2048)
    await site.start()
    return runner, settings


def tune_gc() -> None:
    """Garbage collection for a server process, once it has started (never in a host program).

    What start-up made (modules, models, the app) lives as long as the process: frozen, it stays
    out of every later full collection, which walked all of it (about 25 ms each, several per 1,000
    clicks). And a burst of clicks keeps hundreds of requests in flight: a young collection every
    700 allocations (the default) caught their live objects mid-request and promoted them, to be
    walked again by older collections (8-10% of the CPU per click). Every 20,000 halves that; a
    young collection then pauses a few ms, and cyclic garbage waits that much longer.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(_YOUNG_COLLECTION_EVERY, *gc.get_threshold()[1:])


async def serve(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT, then finish in-flight work and stop."""
    # Handlers first: a SIGTERM once the port is open (a rollout, a probe's restart) must clean up too.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner, settings = await start(settings)
    tune_gc()
    log.info("hitl-chatops listening", extra={"url": settings.listen_url, "store": settings.store})
    await stop.wait()
    log.info("shutting down")
    await runner.cleanup()


@dataclass
class BotThread:
    """The bot on its own event loop in a daemon thread, for use inside another program."""

    settings: Settings
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None

    def start(self) -> BotThread:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._runner, self.settings = self._loop.run_until_complete(start(self.settings))
            except BaseException as error:
                failure.append(error)
                return
            finally:
                ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="hitl-chatops-bot", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    @property
    def url(self) -> str:
        return self.settings.listen_url

    @property
    def service(self) -> HitlService:
        assert self._runner is not None
        return self._runner.app[SERVICE]

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run a coroutine on the bot's own loop (the service's objects live there) and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def stop(self) -> None:
        if self._runner is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._runner = None
