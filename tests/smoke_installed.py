"""Smoke test of an installed wheel, run by `make smoke` with the python of a clean venv (not pytest).

It checks what a user gets from `pip install hitl-chatops[all]`: the version from the package
metadata, the plugin imported from the install (never from this checkout), and the README's
example run as a local Flyte run, notifying a bot started with the installed `hitl-chatops serve`
and answered through the bot's API. Only the standard library and the installed package are used.

Usage: python tests/smoke_installed.py <expected version>
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "add_with_human.py"
SECRET = "smoke-secret-0123456789abcdef"
ANSWER = 8  # the example adds it to 42


def main(expected: str) -> None:
    bin_dir = Path(sys.executable).parent
    check_version(bin_dir, expected)
    check_import(expected)
    with tempfile.TemporaryDirectory(prefix="hitl-smoke-") as folder:
        env = clean_env(Path(folder))
        bot = subprocess.Popen(
            [str(bin_dir / "hitl-chatops"), "serve", "--port", "0"], env=env, stderr=subprocess.PIPE, text=True
        )
        try:
            url = listening_url(bot)
            run_example(url, env, Path(folder))
        finally:
            bot.terminate()
            bot.wait(timeout=30)
        assert bot.returncode == 0, f"hitl-chatops serve stopped with {bot.returncode}"
    say("smoke test passed")


def check_version(bin_dir: Path, expected: str) -> None:
    done = subprocess.run([str(bin_dir / "hitl-chatops"), "--version"], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == f"hitl-chatops {expected}", done.stdout + done.stderr
    say(done.stdout.strip())


def check_import(expected: str) -> None:
    import hitl_chatops
    import hitl_chatops.plugin

    installed_in = Path(sysconfig.get_paths()["purelib"])
    location = Path(hitl_chatops.plugin.__file__).resolve()
    assert location.is_relative_to(installed_in), f"hitl_chatops.plugin imported from {location}, not the install"
    assert hitl_chatops.__version__ == expected, hitl_chatops.__version__
    say(f"import hitl_chatops.plugin: {location}")


def clean_env(folder: Path) -> dict[str, str]:
    """This machine's environment without hitl-chatops settings, with a store and secret of our own."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("HITL_CHATOPS_")}
    env.update(
        HITL_CHATOPS_SECRET=SECRET,
        HITL_CHATOPS_STORE=(folder / "store").as_uri(),
        HITL_CHATOPS_LOG_FORMAT="json",
        HOME=str(folder),  # flyte's local run state and our caches stay in the temporary folder
    )
    return env


def listening_url(bot: subprocess.Popen[str]) -> str:
    """The bot's URL, from its "hitl-chatops listening" log line."""
    assert bot.stderr is not None
    for line in bot.stderr:
        record = json.loads(line) if line.startswith("{") else {}
        if record.get("msg") == "hitl-chatops listening":
            drain(bot.stderr)
            say(f"hitl-chatops serve: {record['url']}")
            return str(record["url"])
    raise AssertionError(f"hitl-chatops serve exited with {bot.wait()} before listening")


def drain(stream: IO[str]) -> None:
    """Keep reading the bot's log so that a full pipe never blocks it."""
    threading.Thread(target=shutil.copyfileobj, args=(stream, sys.stderr), daemon=True).start()


def run_example(url: str, env: dict[str, str], folder: Path) -> None:
    """The README's example as a local Flyte run; its one question answered through the API."""
    log = folder / "example.log"
    with log.open("w") as out:
        example = subprocess.Popen(
            [sys.executable, str(EXAMPLE)],
            cwd=folder,
            env={**env, "HITL_CHATOPS_URL": url},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            request_id = pending_event(url, example, log)
            answer = api(url, f"/api/v1/events/{request_id}/response", {"value": ANSWER, "responder": "smoke"})
            assert answer["value"] == ANSWER, answer
            example.wait(timeout=120)
        finally:
            example.kill()
    output = log.read_text()  # the example prints run.outputs(), e.g. "Result: ActionOutputs(o0=50)"
    assert example.returncode == 0 and re.search(rf"Result: .*\b{42 + ANSWER}\b", output), output
    say(f"examples/add_with_human.py answered through the API: Result: {42 + ANSWER}")


def pending_event(url: str, example: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        events = api(url, "/api/v1/events?status=pending")["events"]
        if events:
            (event,) = events
            return str(event["request_id"])
        if example.poll() is not None:
            raise AssertionError(f"the example ended before asking:\n{log.read_text()}")
        time.sleep(0.2)
    raise AssertionError("the example never asked its question")


def api(url: str, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
    request = urllib.request.Request(
        url + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        result: dict[str, object] = json.load(reply)
        return result


def say(line: str) -> None:
    print(f"smoke: {line}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
