"""The request's team-decision fields (schema_version 3) and the plugin's call-site checks of them."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import hitl_chatops.plugin as hitl
from hitl_chatops.bot.protocol import SCHEMA_VERSION, Escalation, Request, Response, Rule
from hitl_chatops.bot.store import Store, outcome_kind
from tests.fakes.events import make_request

TEAM = {
    "approvals": 2,
    "rules": [{"name": "security", "responders": ["slack:S0SEC"], "approvals": 1}],
    "requester": "dana@example.com",
    "remind_every": 3600.0,
    "escalate": [{"after": 7200.0, "responders": ["slack:S0ONCALL"], "channels": ["slack:C0ONCALL"]}],
    "policy": "production",
    "policy_responders": ["slack:S0SRE"],
}
V2 = (
    '{"request_id": "00000000-0000-4000-8000-000000000000", "event_name": "e", "scope": "run", "prompt": "?",'
    ' "data_type": "bool", "status": "pending", "request_path": "r", "response_path": "s", "schema_version": 2,'
    ' "created_at": "2026-01-01T00:00:00Z", "deadline": "2026-01-01T01:00:00Z", "timeout_seconds": 3600,'
    ' "responders": ["U0ALICE"], "channels": [], "details": null, "run": {}, "title": "t", "prompt_type": "text"}'
)


def test_team_fields_round_trip_through_request_json(tmp_path: Path) -> None:
    request = make_request(Store(tmp_path.as_uri()), timeout=3 * 3600, **TEAM)
    assert request.schema_version == SCHEMA_VERSION == 3
    stored = json.loads(request.model_dump_json())
    assert {key: stored[key] for key in TEAM} == TEAM
    again = Request.model_validate_json(request.model_dump_json())
    assert again == request and again.team_event
    assert again.rules == [Rule(name="security", responders=["slack:S0SEC"])]
    assert again.escalate == [Escalation(after=7200, responders=["slack:S0ONCALL"], channels=["slack:C0ONCALL"])]


def test_version_2_requests_read_as_simple_events() -> None:
    request = Request.model_validate_json(V2)
    assert (request.schema_version, request.approvals, request.rules, request.requester) == (2, 1, [], None)
    assert (request.remind_every, request.escalate, request.policy, request.policy_responders) == (None, [], None, [])
    assert not request.team_event


@pytest.mark.parametrize(
    "fields",
    [
        {"approvals": 2},
        {"rules": [{"responders": ["S0SRE"]}]},
        {"requester": "slack:U0DANA"},
        {"escalate": [{"after": 60, "channels": ["slack:C0ONCALL"]}]},
        {"policy_responders": ["S0SRE"]},
    ],
)
def test_what_makes_a_team_event(fields: dict[str, Any]) -> None:
    assert Request.model_validate_json(V2).model_copy(update=fields).team_event
    assert Request.model_validate(json.loads(V2) | fields).team_event


def test_reminders_alone_leave_an_event_simple() -> None:
    assert not Request.model_validate(json.loads(V2) | {"remind_every": 600}).team_event


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"approvals": 0}, "approvals"),
        ({"approvals": 51}, "approvals"),
        ({"rules": [{"responders": []}]}, "at least one responder"),
        ({"rules": [{"responders": ["slack:S0 SRE"]}]}, "rules.0.responders.0"),
        ({"remind_every": 30}, "remind_every"),
        ({"escalate": [{"after": 60}]}, "responders, channels or both"),
        ({"escalate": [{"after": 0, "channels": ["slack:C1"]}]}, "after"),
        ({"escalate": [{"after": 60, "channels": ["C0ONCALL"]}]}, "channels"),
        ({"requester": "U0DANA"}, "requester"),
        ({"requester": "dana at example.com"}, "requester"),
    ],
)
def test_request_json_refuses_bad_team_fields(fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        Request.model_validate(json.loads(V2) | fields)


def test_a_policy_approval_is_an_answer_recorded_as_the_policy() -> None:
    request = Request.model_validate(json.loads(V2) | {"policy": "development"})
    response = Response.by_policy(request, True)
    assert (response.value, response.via, response.responded_at) == (True, "policy", request.created_at)
    assert response.responder_label == "policy development" and outcome_kind(response, None) == "completed"


# -- the plugin: errors at the call site, naming the argument -----------------------------------


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"approvals": 0}, ValueError, "approvals must be a whole number from 1 to 50"),
        ({"approvals": 51}, ValueError, "approvals must be a whole number from 1 to 50"),
        ({"approvals": True}, ValueError, "approvals must be a whole number"),
        ({"rules": [{"responders": []}]}, ValueError, r"rules\[0\].responders: a rule needs at least one responder"),
        ({"rules": [{"responders": ["S0SRE"], "approvals": 0}]}, ValueError, r"rules\[0\].approvals"),
        ({"rules": ["S0SRE"]}, TypeError, r"rules\[0\] must be a hitl.Rule \(got str\)"),
        ({"remind_every": 30}, ValueError, "remind_every must be at least 60 seconds"),
        ({"remind_every": timedelta(seconds=59)}, ValueError, "remind_every must be at least 60 seconds"),
        ({"remind_every": "1h"}, TypeError, "remind_every must be seconds or a timedelta"),
        (
            {"escalate": [hitl.Escalation(after=timedelta(hours=2), channels=["slack:C0ONCALL"])]},
            ValueError,
            r"escalate\[0\].after \(7200 s\) is not before the event's timeout \(3600 s\)",
        ),
        (
            {"escalate": [{"after": 60, "channels": ["mattermost:town-square"]}]},
            ValueError,
            r"escalate\[0\].channels entries look like",
        ),
        ({"escalate": [{"after": 60}]}, ValueError, r"escalate\[0\]: an escalation needs responders, channels or"),
        ({"requester": "U0DANA"}, ValueError, "requester is a chat identity"),
        ({"requester": "mattermost:dana"}, ValueError, "requester is a chat identity"),
    ],
)
def test_new_event_refuses_bad_team_arguments(arguments: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        hitl.new_event("gate", data_type=bool, **arguments)
    assert asyncio.run(Store(os.environ["HITL_CHATOPS_STORE"]).pending_ids()) == [], "checked before any write"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"approvals": 0}, "approvals must be a whole number"),
        ({"remind_every": 10}, "remind_every must be at least 60 seconds"),
        (
            {"timeout": timedelta(minutes=30), "escalate": [{"after": timedelta(hours=1), "responders": ["S0SRE"]}]},
            r"escalate\[0\].after \(3600 s\) is not before the event's timeout \(1800 s\)",
        ),
    ],
)
def test_human_refuses_bad_team_arguments_where_the_step_is_defined(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        hitl.Human("gate", "Ship?", bool, **arguments)


def test_rule_and_escalation_are_the_plugins_public_names() -> None:
    assert {"Rule", "Escalation"} <= set(hitl.__all__)
    level = hitl.Escalation(after=timedelta(minutes=30), responders=["slack:S0ONCALL"])
    assert level.after == 1800.0, "a timedelta is stored as seconds"
    with pytest.raises(ValidationError, match="at least one responder"):
        hitl.Rule(responders=[])
    with pytest.raises(ValidationError, match="greater than 0"):
        hitl.Escalation(after=0, channels=["slack:C0ONCALL"])
