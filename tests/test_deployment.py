"""Deployment files: the Dockerfile (hadolint, structure, its command run for real), the Kubernetes
manifests (Kubernetes schemas, structure) and the Flyte app, all consistent with each other and the bot.

No container engine is needed: the image is checked statically and its ENTRYPOINT + CMD and
HEALTHCHECK are run against the installed package.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import ModuleType
from typing import IO, Any

import pytest
import yaml
from kubernetes_validate import utils as kubernetes_validate
from pydantic import AliasChoices

from hitl_chatops.bot.adapter import settings_class
from hitl_chatops.bot.server import free_port
from tests.release import Release, build_wheel, copy_sources, wheel_contents

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES = ROOT / "manifests" / "kubernetes"
FLYTE_APP = ROOT / "manifests" / "flyte" / "bot_app.py"
KUBERNETES_VERSION = "1.30"  # schemas bundled with kubernetes-validate; validated strictly (no unknown fields)
PORT = 8080
ENTRYPOINT = ["hitl-chatops"]
CMD = ["serve", "--host", "0.0.0.0", "--port", str(PORT)]
WHEEL_STAGE, BUILDER, RUNTIME = 0, 1, 2  # the Dockerfile's stages: build the wheel, install it, run it


# -- helpers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str
    stage: int  # index of the FROM this instruction belongs to


def dockerfile() -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    stage, pending = -1, ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, value = (pending + line).partition(" ")
        pending = ""
        stage += keyword.upper() == "FROM"
        instructions.append(Instruction(keyword.upper(), " ".join(value.split()), stage))
    return instructions


def only(keyword: str, stage: int | None = None) -> Instruction:
    found = [i for i in dockerfile() if i.keyword == keyword and (stage is None or i.stage == stage)]
    assert len(found) == 1, f"expected one {keyword}, found {len(found)}"
    return found[0]


def env_of(stage: int) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in dockerfile():
        if instruction.keyword == "ENV" and instruction.stage == stage:
            env.update(item.split("=", 1) for item in shlex.split(instruction.value))
    return env


def healthcheck_command() -> list[str]:
    value = only("HEALTHCHECK").value
    assert " CMD " in f" {value}", "HEALTHCHECK should use an exec-form CMD"
    command = json.loads(value.split("CMD ", 1)[1])
    assert isinstance(command, list)
    return [str(part) for part in command]


def setting_names() -> set[str]:
    """Every environment variable the bot's Settings read (their `validation_alias` choices)."""
    names: set[str] = set()
    for info in settings_class().model_fields.values():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(choice for choice in alias.choices if isinstance(choice, str))
        elif isinstance(alias, str):
            names.add(alias)
    return names


def manifests() -> dict[str, list[dict[str, Any]]]:
    return {
        path.name: [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        for path in sorted(KUBERNETES.glob("*.yaml"))
    }


def resource(kind: str) -> dict[str, Any]:
    found = [doc for docs in manifests().values() for doc in docs if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def bot_container() -> dict[str, Any]:
    containers = resource("Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def container_port(name: str) -> dict[str, Any]:
    (port,) = [port for port in bot_container()["ports"] if port["name"] == name]
    return dict(port)


def load_flyte_app() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hitl_chatops_bot_app", FLYTE_APP)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def executable(name: str) -> str:
    """A console script of the test environment: next to sys.executable, else on PATH."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"`{name}` not found; install the test extra: pip install -e '.[test]'"
    return found


# -- Dockerfile ------------------------------------------------------------------------------


def test_dockerfile_is_clean_under_hadolint() -> None:
    done = subprocess.run(
        [executable("hadolint"), "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_builds_the_wheel_installs_it_and_runs_slim_and_non_root() -> None:
    bases = [i.value for i in dockerfile() if i.keyword == "FROM"]
    assert bases == ["python:3.12-slim AS wheel", "python:3.12-slim AS builder", "python:3.12-slim"]
    assert only("RUN", stage=WHEEL_STAGE).value == "pip wheel --no-cache-dir --no-deps --wheel-dir /dist ."
    builder_runs = " && ".join(i.value for i in dockerfile() if i.keyword == "RUN" and i.stage == BUILDER)
    assert "python -m venv /opt/venv" in builder_runs
    assert '/opt/venv/bin/pip install --no-cache-dir "${wheel}[slack,teams,s3,flyte]"' in builder_runs
    assert only("COPY", stage=BUILDER).value == "--from=wheel /dist/ /dist/", "the wheel, never the sources"
    assert only("COPY", stage=RUNTIME).value == "--from=builder /opt/venv /opt/venv"
    assert not [i for i in dockerfile() if i.stage == RUNTIME and i.keyword == "RUN" and "pip" in i.value]
    user = only("USER").value.split(":")[0]
    assert user.isdigit() and int(user) != 0, "numeric non-root uid, so runAsNonRoot can verify it"
    assert only("USER").stage == RUNTIME
    assert env_of(RUNTIME)["HITL_CHATOPS_LOG_FORMAT"] == "json"
    assert set(env_of(RUNTIME)) - {"PATH", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"} <= setting_names()


def wheel_stage_sources() -> list[str]:
    """What the wheel stage copies from the build context (file or folder names)."""
    copies = [i.value.split() for i in dockerfile() if i.keyword == "COPY" and i.stage == WHEEL_STAGE]
    return [source.rstrip("/") for *sources, _ in copies for source in sources]


def test_dockerfile_copies_everything_the_wheel_is_built_from() -> None:
    """A new package folder in pyproject's package-dir, or its readme or license, must reach the image too."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = {
        "pyproject.toml",
        pyproject["project"]["readme"],
        *pyproject["project"]["license-files"],
        *pyproject["tool"]["setuptools"]["package-dir"].values(),
    }
    copied = wheel_stage_sources()
    for path in needed:
        assert any(path == source or path.startswith(f"{source}/") for source in copied), path
    for source in copied:
        assert (ROOT / source).exists()


def test_the_wheel_stage_builds_the_wheel_a_release_ships(tmp_path: Path, release: Release) -> None:
    """The wheel stage's `pip wheel`, run on just what it copies, makes the same wheel as `make dist`."""
    context = copy_sources(wheel_stage_sources(), tmp_path / "context")
    wheel = build_wheel(context, tmp_path / "dist")
    assert wheel.name == release.wheel.name
    assert wheel_contents(wheel) == wheel_contents(release.wheel)


def test_dockerfile_command_healthcheck_and_port() -> None:
    assert json.loads(only("ENTRYPOINT").value) == ENTRYPOINT
    assert json.loads(only("CMD", stage=RUNTIME).value) == CMD
    assert only("EXPOSE").value == str(PORT)
    assert f"http://127.0.0.1:{PORT}/healthz" in " ".join(healthcheck_command())
    assert healthcheck_command()[0] == "python"  # no curl in slim images


def test_dockerignore_keeps_the_context_small() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", "tests", "**/__pycache__", "dist", "build"} <= ignored
    assert not set(wheel_stage_sources()) & ignored


def image_command(port: int) -> list[str]:
    """The image's ENTRYPOINT + CMD, on loopback at `port` for the test."""
    args = [*CMD[:-1], str(port)]
    args[args.index("0.0.0.0")] = "127.0.0.1"
    return [executable(ENTRYPOINT[0]), *args]


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[str], int]]:
    """The image's ENTRYPOINT + CMD, run against the installed package on a free loopback port."""
    port = free_port("127.0.0.1")
    env = {**os.environ, "HITL_CHATOPS_LOG_FORMAT": "json"}
    process = subprocess.Popen(image_command(port), env=env, stderr=subprocess.PIPE, text=True)
    try:
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def run_healthcheck(port: int) -> int:
    command = [sys.executable if part == "python" else part for part in healthcheck_command()]
    command = [part.replace(f":{PORT}/", f":{port}/") for part in command]
    return subprocess.run(command, capture_output=True, timeout=30).returncode


def read_until_listening(stderr: IO[str]) -> list[str]:
    """Log lines up to our process's "listening" line (all of them if it never comes).

    The health check alone is not enough before a SIGTERM: another process may hold the port
    `free_port` handed out and answer it, and the bot says it listens only after its start-up work.
    """
    lines: list[str] = []
    for line in stderr:
        lines.append(line)
        if "hitl-chatops listening" in line:
            break
    return lines


def test_image_command_serves_healthz_logs_json_and_stops_on_sigterm(
    served: tuple[subprocess.Popen[str], int],
) -> None:
    process, port = served
    deadline = time.monotonic() + 30
    while run_healthcheck(port) != 0:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "bot did not become healthy"
        time.sleep(0.2)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        assert json.load(response)["status"] == "ok"
    assert process.stderr is not None
    started = read_until_listening(process.stderr)
    assert process.poll() is None, "".join(started)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0
    lines = [line for line in [*started, *process.stderr.read().splitlines()] if line.strip()]
    assert lines and all(isinstance(json.loads(line), dict) for line in lines), lines


def test_healthcheck_fails_when_the_bot_answers_503() -> None:
    class Unhealthy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(503)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Unhealthy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert run_healthcheck(server.server_address[1]) != 0
    finally:
        server.shutdown()
        server.server_close()
    assert run_healthcheck(free_port("127.0.0.1")) != 0  # nothing listening


# -- Kubernetes ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in KUBERNETES.glob("*.yaml") if p.name != "kustomization.yaml"))
def test_kubernetes_manifest_matches_the_schema(name: str) -> None:
    docs = manifests()[name]
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest_but_the_secret_template() -> None:
    (kustomization,) = manifests()["kustomization.yaml"]
    assert kustomization["kind"] == "Kustomization"
    expected = sorted(set(manifests()) - {"kustomization.yaml", "secret.example.yaml"})
    assert sorted(kustomization["resources"]) == expected
    (image,) = kustomization["images"]
    assert bot_container()["image"] == f"{image['name']}:{image['newTag']}"
    assert image["newTag"] == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_deployment_runs_two_hardened_replicas_of_the_image() -> None:
    deployment = resource("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = bot_container()
    assert deployment["spec"]["replicas"] == 2
    assert container.get("command") is None, "keep the image's ENTRYPOINT"
    assert container["args"] == CMD
    port = container_port("http")
    assert port["containerPort"] == PORT
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz"
        assert container[probe]["httpGet"]["port"] in (port["name"], PORT)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == int(only("USER").value.split(":")[0])
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert {"requests", "limits"} <= set(container["resources"])
    assert any(mount["mountPath"] == "/tmp" for mount in container["volumeMounts"])


def test_deployment_wires_service_account_secret_and_service() -> None:
    pod_template = resource("Deployment")["spec"]["template"]
    account = resource("ServiceAccount")
    assert pod_template["spec"]["serviceAccountName"] == account["metadata"]["name"]
    assert "eks.amazonaws.com/role-arn" in account["metadata"]["annotations"]
    (source,) = bot_container()["envFrom"]
    assert source["secretRef"]["name"] == resource("Secret")["metadata"]["name"]
    service = resource("Service")
    labels = pod_template["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert resource("Deployment")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] in ("http", PORT) and container_port("http")["containerPort"] == PORT


def test_prometheus_scrapes_a_metrics_port_that_the_service_does_not_expose() -> None:
    template = resource("Deployment")["spec"]["template"]
    metrics = container_port("metrics")["containerPort"]
    env = {item["name"]: item.get("value") for item in bot_container()["env"]}
    assert env["HITL_CHATOPS_METRICS_PORT"] == str(metrics) != str(PORT)
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(metrics) and annotations["prometheus.io/path"] == "/metrics"
    exposed = {port["targetPort"] for port in resource("Service")["spec"]["ports"]}
    assert not exposed & {"metrics", metrics}, "the Service (and so the Ingress) must not reach /metrics"


def test_image_command_with_the_manifests_metrics_port_keeps_metrics_off_the_public_port() -> None:
    port, metrics = free_port("127.0.0.1"), free_port("127.0.0.1")
    env = {**os.environ, "HITL_CHATOPS_METRICS_PORT": str(metrics)}
    process = subprocess.Popen(image_command(port), env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while run_healthcheck(port) != 0:
            assert process.poll() is None and time.monotonic() < deadline, "bot did not start"
            time.sleep(0.2)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert refused.value.code == 401
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=5) as response:
            assert b"hitl_events_answered_total" in response.read()
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_every_variable_in_the_manifests_is_a_bot_setting() -> None:
    env = {item["name"]: item.get("value") for item in bot_container()["env"]}
    secret_keys = set(resource("Secret")["stringData"])
    assert (set(env) | secret_keys) - setting_names() == set()
    assert {"HITL_CHATOPS_SECRET", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "MicrosoftAppId"} <= secret_keys
    assert env["HITL_CHATOPS_STORE"].startswith("s3://"), "replicas must share one object store"
    assert not set(env) & secret_keys


def test_commented_out_variables_in_the_manifests_are_bot_settings_too() -> None:
    """What a reader is told to uncomment must work once uncommented."""
    text = (KUBERNETES / "deployment.yaml").read_text() + (KUBERNETES / "secret.example.yaml").read_text()
    commented = set(re.findall(r"#\s*- name: (\w+)", text)) | set(re.findall(r"#\s*(\w+): \"<", text))
    assert {"HITL_CHATOPS_FLYTE_ENDPOINT", "FLYTE_API_KEY"} <= commented
    assert commented - setting_names() == set()


def test_secret_template_holds_only_placeholders() -> None:
    secret = resource("Secret")
    assert "data" not in secret
    for key, value in secret["stringData"].items():
        assert key == "MicrosoftAppType" or re.fullmatch(r"<[^<>]+>", value), f"{key} should be a <placeholder>"


# -- Flyte app -------------------------------------------------------------------------------


def test_flyte_app_runs_the_same_command_port_and_secrets() -> None:
    import flyte

    app = load_flyte_app().bot_env
    assert app.name == "hitl-chatops"
    assert app.get_port().port == PORT
    assert app.command == ENTRYPOINT + CMD
    assert app.requires_auth is False, "Slack, Teams and form links cannot present a Flyte token"
    replicas = app.scaling.replicas
    assert (replicas if isinstance(replicas, int) else replicas[0]) >= 1, "never scale to zero"
    assert isinstance(app.secrets, list) and all(isinstance(secret, flyte.Secret) for secret in app.secrets)
    names = {secret.as_env_var for secret in app.secrets}
    assert {"HITL_CHATOPS_SECRET", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"} <= names
    assert (names | set(app.env_vars)) - setting_names() == set()
    assert "HITL_CHATOPS_STORE" in app.env_vars
    assert isinstance(app.image, flyte.Image)


def test_flyte_app_installs_the_version_the_dockerfile_and_kubernetes_ship() -> None:
    from flyte._image import PipPackages  # the image's layers: flyte has no public reader for them

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    (pip,) = [layer for layer in load_flyte_app().bot_env.image._layers if isinstance(layer, PipPackages)]
    assert pip.packages == (f"hitl-chatops[slack,teams,s3]=={version}",)
    (kustomization,) = manifests()["kustomization.yaml"]
    assert kustomization["images"][0]["newTag"] == version


def test_flyte_app_serializes_to_the_spec_the_platform_runs() -> None:
    """What `flyte.deploy` would send, built offline (translation only, no client, no image build)."""
    from flyte.app._runtime import translate_app_env_to_idl  # flyte's own serializer; no public offline entry
    from flyte.models import SerializationContext

    context = SerializationContext(project="p", domain="d", org="o", version="v1", root_dir=ROOT)
    spec = translate_app_env_to_idl(load_flyte_app().bot_env, context).spec
    assert list(spec.container.command) == ENTRYPOINT + CMD
    assert [port.container_port for port in spec.container.ports] == [PORT]
    assert spec.autoscaling.replicas.min >= 1
    assert spec.security_context.allow_anonymous
    assert {secret.env_var for secret in spec.security_context.secrets} >= {"HITL_CHATOPS_SECRET", "SLACK_BOT_TOKEN"}
