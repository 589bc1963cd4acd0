"""What an event and its Flyte condition share: the condition's type, the payload, and the check of a
value signalled in Flyte (for structured events, JSON text checked field by field)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from hitl_chatops.bot.answers import Accepted, Rejected
from hitl_chatops.bot.conditions import check_value, condition_type, payload
from hitl_chatops.bot.protocol import Request
from hitl_chatops.bot.store import Store
from tests.fakes.events import make_request


class Spend(BaseModel):
    approved: bool
    amount: float = Field(ge=0, le=100)
    notes: str = ""


@pytest.fixture
def structured(tmp_path: Path) -> Request:
    return make_request(Store(tmp_path.as_uri()), data_type="object", answer_schema=Spend.model_json_schema())


def test_a_structured_event_is_a_str_condition_holding_its_json(structured: Request) -> None:
    assert condition_type("object") is str and condition_type("int") is int
    sent = payload(structured, {"approved": True, "amount": 40.0, "notes": ""})
    assert isinstance(sent, str) and json.loads(sent) == {"approved": True, "amount": 40.0, "notes": ""}
    assert check_value(structured, sent) == Accepted({"approved": True, "amount": 40.0, "notes": ""})


def test_json_signalled_in_flyte_is_checked_field_by_field(structured: Request) -> None:
    refused = check_value(structured, '{"approved": "maybe", "amount": 500}')
    assert isinstance(refused, Rejected) and set(refused.errors) == {"approved", "amount"}
    not_json = check_value(structured, "approve it")
    assert isinstance(not_json, Rejected) and "JSON object" in not_json.errors["value"]
    assert isinstance(check_value(structured, "[1, 2]"), Rejected), "JSON, but not an object"


def test_scalar_values_are_checked_as_they_are(tmp_path: Path) -> None:
    request = make_request(Store(tmp_path.as_uri()), data_type="int", min_value=1, max_value=10)
    assert check_value(request, 3) == Accepted(3) and payload(request, 3) == 3
    assert isinstance(check_value(request, 42), Rejected)
