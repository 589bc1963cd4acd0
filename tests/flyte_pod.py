"""Run a task the way a Flyte pod does, with the conditions of a fake control plane.

`run_in_pod` calls flyte's runtime entrypoint `load_and_run_task` (what `a0` runs after
`init_in_cluster` and `create_controller`), so the task sees a remote run: `flyte.ctx().mode` is
"remote", traces and reports go through the controller and storage as on a cluster.

`PodController` is the one stand-in: flyte's remote controller enqueues a condition action
through the cluster's QueueService and learns its outcome from the informer's ActionUpdate
stream; no cluster runs here, so this controller registers the condition action in the fake
control plane and polls its phase instead. Everything else in it is flyte's LocalController
(traces), and everything around it is the real runtime, the real plugin and the real bot.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import flyte.errors
from flyte._context import internal_ctx
from flyte._internal.controllers import _ControllerState
from flyte._internal.controllers._local_controller import LocalController
from flyte._internal.runtime.entrypoints import load_and_run_task
from flyte._internal.runtime.io import load_error, load_outputs
from flyte.models import ActionID, RawDataPath
from flyteidl2.common import phase_pb2

from tests.fakes.flyte import DOMAIN, ORG, PROJECT, FakeCondition, FakeFlyte

RESOLVER = "flyte._internal.resolvers.default.DefaultTaskResolver"


class PodController(LocalController):  # type: ignore[misc]
    """flyte's Controller interface, with conditions living in the fake control plane."""

    def __init__(self, fake: FakeFlyte) -> None:
        super().__init__()
        self.fake = fake
        self.registered: dict[str, FakeCondition] = {}

    async def register_condition(self, condition: Any) -> None:
        action = internal_ctx().data.task_context.action
        self.registered[condition.name] = self.fake.add_condition(
            action.run_name, action.name, condition.name, condition.data_type, project=action.project
        )

    async def wait_for_condition(self, condition: Any) -> Any:
        registered = self.registered.pop(condition.name)
        while not await asyncio.to_thread(registered.resolved.wait, 0.1):  # the informer's ActionUpdate
            pass  # short waits: a cancelled wait leaves no thread behind for long
        if registered.phase == phase_pb2.ACTION_PHASE_TIMED_OUT:
            raise flyte.errors.ConditionTimedoutError(f"Condition '{condition.name}' was not signaled in time.")
        return condition.data_type(registered.value)


class Pod:
    """One task run in a thread, as its pod would run it; `finish()` returns its output."""

    def __init__(self, fake: FakeFlyte, module: str, task: str, workdir: Path, run_name: str = "r-remote-1") -> None:
        self.controller = PodController(fake)
        _ControllerState.controller = self.controller  # as the runtime's `create_controller` does
        self.action = ActionID(name="a0", run_name=run_name, project=PROJECT, domain=DOMAIN, org=ORG)
        self.outputs = workdir / "outputs"
        self.outputs.mkdir(parents=True)
        self._args = (module, task, workdir)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        module, task, workdir = self._args
        asyncio.run(
            load_and_run_task(
                action=self.action,
                raw_data_path=RawDataPath(path=str(workdir / "raw")),
                output_path=str(self.outputs),
                run_base_dir=str(workdir),
                version="v1",
                controller=self.controller,
                resolver=RESOLVER,
                resolver_args=["mod", module, "instance", task],
            )
        )

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    async def finish(self, seconds: float = 60) -> Any:
        """The task's output; its error (as the pod uploads it) re-raised as an AssertionError."""
        await asyncio.to_thread(self._thread.join, seconds)
        assert not self.running, "the task did not finish"
        _ControllerState.controller = None  # the pod is gone; later local runs make their own
        if (self.outputs / "error.pb").exists():
            error = await load_error(str(self.outputs / "error.pb"))
            raise AssertionError(f"the task failed: {error}")
        outputs = await load_outputs(str(self.outputs / "outputs.pb"))
        [named] = outputs.proto_outputs.literals
        primitive = named.value.scalar.primitive
        return getattr(primitive, primitive.WhichOneof("value"))
