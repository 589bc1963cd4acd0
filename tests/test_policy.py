"""Policies outside the code (`HITL_CHATOPS_POLICY`): the file, what a rule does to an event, the
`policy check` command, and real Flyte local runs tightened (or approved) by a policy."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import flyte
import pytest

import hitl_chatops.plugin as hitl
from hitl_chatops.bot.errors import ConfigError
from hitl_chatops.bot.policy import PolicyRule, load_policy, parse_policy
from hitl_chatops.bot.server import BotThread
from hitl_chatops.bot.store import Store
from tests import team_workflows
from tests.conftest import AUTH, S3_BUCKET
from tests.fakes.flyte import Run
from tests.test_cli import run_cli

POLICY = """\
# The platform team's rules, first match wins.
rules:
  - name: production
    match: {domain: production}
    approvals: 2
    responders: ["slack:S0SRE"]
    remind_every: 30m
    escalate:
      - after: 2h
        channels: ["slack:C0ONCALL"]
    channels: ["slack:C0AUDIT"]
  - name: development
    match: {domain: development, event: "release_*"}
    auto_approve: true
"""


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# -- what a rule does: only ever tighten ---------------------------------------------------------

TASK = {"timeout_seconds": 3 * 3600, "approvals": 1, "rules": [], "responders": [], "channels": ["slack:C0DEPLOYS"]}


def rule(**settings: Any) -> PolicyRule:
    return PolicyRule.model_validate({"name": "p"} | settings)


@pytest.mark.parametrize(
    ("task", "settings", "expected"),
    [
        ({}, {"approvals": 2}, {"approvals": 2}),
        ({"approvals": 3}, {"approvals": 2}, {"approvals": 3}),  # the larger count
        ({}, {"channels": ["slack:C0AUDIT", "slack:C0DEPLOYS"]}, {"channels": ["slack:C0DEPLOYS", "slack:C0AUDIT"]}),
        ({"remind_every": 600.0}, {"remind_every": "30m"}, {"remind_every": 600.0}),  # the shorter period
        ({"remind_every": 7200.0}, {"remind_every": "30m"}, {"remind_every": 1800.0}),
        ({}, {"remind_every": 3600}, {"remind_every": 3600.0}),
        # Open to anyone and no other list: the policy's responders are the event's (it stays simple).
        ({}, {"responders": ["slack:S0SRE"]}, {"responders": ["slack:S0SRE"]}),
        ({"responders": ["*"]}, {"responders": ["slack:S0SRE"]}, {"responders": ["slack:S0SRE"]}),
        # The task's own list: a person must be in both.
        (
            {"responders": ["U0ALICE", "S0DEV"]},
            {"responders": ["slack:S0SRE"]},
            {"responders": ["U0ALICE", "S0DEV"], "policy_responders": ["slack:S0SRE"]},
        ),
        (
            {"rules": [{"name": None, "responders": ["S0ML"], "approvals": 1}]},
            {"rules": [{"name": "security", "responders": ["slack:S0SEC"]}]},
            {
                "rules": [
                    {"name": None, "responders": ["S0ML"], "approvals": 1},
                    {"name": "security", "responders": ["slack:S0SEC"], "approvals": 1},
                ]
            },
        ),
        (
            {},
            {"escalate": [{"after": "1h", "responders": ["S0ONCALL"]}, {"after": "4h", "channels": ["slack:C0VP"]}]},
            {"escalate": [{"after": 3600.0, "responders": ["S0ONCALL"], "channels": []}]},  # 4h: past the deadline
        ),
    ],
)
def test_a_rule_only_tightens(task: dict[str, Any], settings: dict[str, Any], expected: dict[str, Any]) -> None:
    tightened = rule(**settings).tighten(TASK | task)
    assert tightened["policy"] == "p"
    assert {key: tightened[key] for key in expected} == expected
    assert tightened["approvals"] >= (TASK | task)["approvals"]


def test_the_first_matching_rule_applies() -> None:
    policy = parse_policy(POLICY, "policy.yaml")
    assert policy.rule_for("ml", "production", "deploy").name == "production"  # type: ignore[union-attr]
    assert policy.rule_for("ml", "development", "release_gate").name == "development"  # type: ignore[union-attr]
    assert policy.rule_for("ml", "development", "deploy") is None, "the event glob does not match"
    assert policy.rule_for(None, None, "release_gate") is None, "a run with no domain matches only `*`"


# -- a bad file is one line naming the file and the line -------------------------------------------

BAD = [
    ("bad YAML", "rules:\n  - name: p\n    approvals: [2\n", 4, "not valid YAML"),
    ("unknown key", "rules:\n  - name: p\n    aproovals: 2\n", 3, "rules[0].aproovals: unknown key"),
    (
        "wrong type",
        "rules:\n  - name: p\n    approvals: two\n",
        3,
        "rules[0].approvals: Input should be a valid integer",
    ),
    (
        "wrong type, deep",
        "rules:\n  - name: p\n    escalate:\n      - after: soon\n        channels: [slack:C1]\n",
        4,
        "rules[0].escalate[0].after: a duration is a number of seconds",
    ),
    ("too few seconds", "rules:\n  - name: p\n    remind_every: 10s\n", 3, "greater than or equal to 60"),
    ("no name", "rules:\n  - match: {domain: production}\n", 2, "rules[0].name: Field required"),
    ("bad channel", "rules:\n  - name: p\n    channels: [C0AUDIT]\n", 3, "rules[0].channels[0]: String should match"),
    (
        "unknown platform",
        "rules:\n  - name: p\n    escalate:\n      - after: 1h\n        channels: [slak:C0ONCALL]\n",
        5,
        "rules[0].escalate[0].channels[0]: 'slak' is not a chat platform here (slack, teams)",
    ),
    (
        "auto_approve with more",
        "rules:\n  - name: p\n    auto_approve: true\n    approvals: 2\n",
        2,
        "auto_approve decides the event at creation: approvals would never apply",
    ),
    ("not a list of rules", "rules: production\n", 1, "rules: Input should be a valid list"),
]


@pytest.mark.parametrize(("text", "line", "problem"), [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_a_bad_policy_file_is_one_line_naming_the_line(tmp_path: Path, text: str, line: int, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as refused:
        load_policy(str(path))
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"{path}, line {line}: "), message
    assert problem in message


def test_an_empty_or_missing_file_is_one_line_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="the policy file is empty"):
        load_policy(str(write(tmp_path, "# nothing yet\n")))
    with pytest.raises(ConfigError, match=f"no policy file at {tmp_path}/absent.yaml"):
        load_policy(str(tmp_path / "absent.yaml"))


# -- where the file lives: a path, file://, s3:// --------------------------------------------------


def test_a_policy_is_read_from_a_path_or_a_file_url(tmp_path: Path) -> None:
    path = write(tmp_path, POLICY)
    assert load_policy(str(path)) == load_policy(path.as_uri()) == parse_policy(POLICY, "x")


def test_a_policy_is_read_from_s3_with_the_stores_credentials(s3_store_url: str) -> None:
    import s3fs

    url = f"s3://{S3_BUCKET}/{s3_store_url.split('/')[3]}/policy.yaml"
    s3fs.S3FileSystem(skip_instance_cache=True).pipe_file(url, POLICY.encode())
    assert load_policy(url) == parse_policy(POLICY, "x")
    with pytest.raises(ConfigError, match="no policy file at s3://"):
        load_policy(url.replace("policy.yaml", "absent.yaml"))
    broken = url.replace("policy.yaml", "broken.yaml")
    s3fs.S3FileSystem(skip_instance_cache=True).pipe_file(broken, b"rules:\n  - name: p\n    aproovals: 2\n")
    with pytest.raises(ConfigError, match=f"^{broken}, line 3: rules\\[0\\].aproovals: unknown key"):
        load_policy(broken)


# -- `hitl-chatops policy check` -----------------------------------------------------------------


def test_policy_check_prints_what_each_rule_does(tmp_path: Path) -> None:
    done = run_cli("policy", "check", str(write(tmp_path, POLICY)))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{tmp_path}/policy.yaml: valid, 2 rules.",
        "1. production (domain production):",
        "   - needs at least 2 approvals",
        "   - only people who are also in slack:S0SRE may answer",
        "   - reminds every 30m at most",
        "   - escalates: after 2h, posted to slack:C0ONCALL",
        "   - also posts to slack:C0AUDIT",
        "2. development (domain development, event release_*):",
        "   - approves the event when it is created (bool events, or events with an `initial` value)",
    ]


def test_policy_check_says_what_happens_to_one_event(tmp_path: Path) -> None:
    path = str(write(tmp_path, POLICY))
    done = run_cli("policy", "check", path, "--project", "ml", "--domain", "production", "--event", "deploy")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:3] == [
        "An event named deploy in project ml, domain production matches rule production, which:",
        "  - needs at least 2 approvals",
    ]
    done = run_cli("policy", "check", path, "--domain", "staging")
    assert done.stdout.splitlines()[1] == "An event in domain staging matches no rule: the task's own settings apply."


def test_policy_check_and_serve_refuse_a_bad_file_in_one_line(tmp_path: Path) -> None:
    path = str(write(tmp_path, "rules:\n  - name: p\n    approvals: two\n"))
    done = run_cli("policy", "check", path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"hitl-chatops: {path}, line 3: rules[0].approvals: Input should be a valid integer, " + (
        "unable to parse string as an integer\n"
    )
    done = run_cli("serve", "--port", "0", env=dict(os.environ, HITL_CHATOPS_POLICY=path))
    assert done.returncode == 2, "a bot does not start with a policy the plugin would refuse"
    assert done.stderr.startswith(f"hitl-chatops: HITL_CHATOPS_POLICY: {path}, line 3: ")
    assert done.stderr.count("\n") == 1


# -- applied when the event is created (real Flyte local runs) -------------------------------------


@pytest.fixture
def flyte_domain() -> Iterator[Callable[[str], None]]:
    """A local run has no project or domain of its own: a policy matches the ones `flyte.init` was given."""
    yield lambda domain: flyte.init(project="ml", domain=domain)
    flyte.init()


@pytest.fixture
def policy_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = write(tmp_path, POLICY)
    monkeypatch.setenv("HITL_CHATOPS_POLICY", str(path))
    return path


async def created(store: Store, seconds: float = 30) -> str:
    """The one event the run created, once it exists."""
    for _ in range(int(seconds / 0.05)):
        if ids := await store.pending_ids():
            return ids[0]
        await asyncio.sleep(0.05)
    raise AssertionError("the run created no event")


async def post(url: str, **kwargs: Any) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.post(url, **kwargs) as reply:
        return reply.status, await reply.text()


@pytest.mark.e2e
async def test_a_policy_requiring_two_approvals_in_production_tightens_an_event_asking_for_one(
    start_bot: Callable[..., BotThread], policy_file: Path, flyte_domain: Callable[[str], None]
) -> None:
    flyte_domain("production")
    bot = start_bot()
    store = bot.service.store
    run = Run(team_workflows.release_gate)
    request = await store.get_request(await created(store))

    assert (request.approvals, request.policy) == (2, "production"), "frozen in request.json at creation"
    assert request.responders == ["slack:S0SRE"] and request.remind_every == 1800.0
    assert request.channels == ["slack:C0AUDIT"] and request.escalate == [], "2h escalation: past the 1h deadline"
    assert request.team_event

    # A team decision now: the form (no identity) takes no vote, and only the policy's people count.
    status, page = await post(bot.service.form_url(request.request_id), data={"value": "true"})
    assert status == 403 and "0 of 2 approvals" in page
    outsider = {"platform": "slack", "user_id": "U0DEV"}
    status, body = await post(
        f"{bot.url}/api/v1/events/{request.request_id}/response",
        json={"value": True, "responder": outsider},
        headers=AUTH,
    )
    assert status == 403 and "Only slack:S0SRE may answer this event." in body
    assert await store.get_response(request.request_id) is None

    status, _ = await post(
        f"{bot.url}/api/v1/events/{request.request_id}/cancel", json={"reason": "test"}, headers=AUTH
    )
    assert status == 200
    with pytest.raises(Exception, match="cancelled"):
        await run.finish()


@pytest.mark.e2e
async def test_auto_approve_in_development_returns_true_at_once_recorded_as_the_policy(
    start_bot: Callable[..., BotThread], policy_file: Path, flyte_domain: Callable[[str], None]
) -> None:
    flyte_domain("development")
    bot = start_bot()
    assert await Run(team_workflows.release_gate).finish() is True
    [record], _ = await bot.service.store.outcomes("completed", limit=10)
    response = await bot.service.store.get_response(record.request_id)
    assert response is not None and (response.value, response.via) == (True, "policy")
    assert response.responder_label == "policy development"
    assert (await bot.service.store.get_request(record.request_id)).policy == "development"
    assert await bot.service.store.pending_ids() == [], "never pending"


async def test_auto_approve_takes_a_complete_initial_and_refuses_an_event_without_one(
    policy_file: Path, flyte_domain: Callable[[str], None]
) -> None:
    flyte_domain("development")
    with pytest.raises(
        ValueError,
        match=r"'release_size' is none of these \(data type int, no complete `initial`\): give it `initial=`",
    ):
        await hitl.new_event.aio("release_size", data_type=int)
    event = await hitl.new_event.aio("release_size", data_type=int, initial=3, poll_interval_seconds=0.05)
    assert await event.wait.aio() == 3
    assert (await event.result.aio()).via == "policy"


async def test_a_bad_policy_fails_the_event_at_creation_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "rules:\n  - name: p\n    aproovals: 2\n")
    monkeypatch.setenv("HITL_CHATOPS_POLICY", str(path))
    with pytest.raises(ConfigError, match=f"^HITL_CHATOPS_POLICY: {path}, line 3: rules\\[0\\].aproovals: unknown key"):
        await hitl.new_event.aio("gate", data_type=bool)
