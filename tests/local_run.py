"""A local Flyte run as a person starts one from their terminal, for tests that need a process of its own
(a pseudo-terminal, a pipe for stdin): `python -m tests.local_run tests.workflows:approve_deploy [json args]`.

Prints `RESULT: <json>` when the run ends.
"""

from __future__ import annotations

import importlib
import json
import sys

import flyte


def main() -> None:
    target, *args = sys.argv[1:]
    module, _, name = target.partition(":")
    task = getattr(importlib.import_module(module), name)
    flyte.init()
    run = flyte.run(task, *(json.loads(arg) for arg in args))
    run.wait()
    outputs = run.outputs()
    result = outputs[0] if isinstance(outputs, tuple | list) else outputs
    sys.stdout.write(f"RESULT: {json.dumps(result)}\n")


if __name__ == "__main__":
    main()
