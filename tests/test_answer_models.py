"""Structured answers: models become schemas, raw input becomes a dict the model validates, per field."""

from __future__ import annotations

import datetime
import enum
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator
from pydantic.alias_generators import to_camel

from hitl_chatops.bot.answers import (
    Accepted,
    Rejected,
    answer_text,
    approval_field,
    describe_answer,
    parse_answer,
    prefill,
    schema_from_type,
    schema_of,
    type_name,
)
from hitl_chatops.bot.protocol import Request, utcnow


class Color(enum.StrEnum):
    RED = "red"
    GREEN = "green"


class Level(enum.Enum):
    LOW = 1
    HIGH = 5


class Expense(BaseModel):
    approved: bool = Field(description="Whether the expense is approved")
    amount: float = Field(title="Approved amount", ge=0, le=10_000)
    nights: int = Field(default=1, ge=1, le=14)
    notes: str = Field(default="", max_length=500)
    code: str | None = Field(default=None, max_length=8)
    priority: Literal["low", "high"] = "low"
    color: Color
    level: Level | None = None
    answer: Literal["yes", "no", "later"]
    flag: Literal[0, 1, 5] = 0


class Approval(BaseModel):
    approved: bool
    reason: str = ""
    ticket: str | None = None


def request_for(model: type[BaseModel], **extra: Any) -> Request:
    """The stored request the plugin writes for `model` (read back from JSON, as the bot does)."""
    now = utcnow()
    request = Request(
        request_id="00000000-0000-4000-8000-000000000000",
        event_name="e",
        prompt="?",
        data_type=type_name(model),
        answer_schema=model.model_json_schema(),
        request_path="r",
        response_path="s",
        created_at=now,
        deadline=now,
        timeout_seconds=1,
        **extra,
    )
    return Request.model_validate_json(request.model_dump_json())


GOOD = {"approved": "true", "amount": "120.5", "color": "green", "answer": "later"}
DEFAULTS = {"nights": 1, "notes": "", "code": None, "priority": "low", "level": None, "flag": 0}

ACCEPTED: list[tuple[dict[str, Any], dict[str, Any]]] = [
    (GOOD, {"approved": True, "amount": 120.5, "color": "green", "answer": "later", **DEFAULTS}),
    (
        {**GOOD, "nights": "3", "notes": "  ok  ", "code": "AB-1", "priority": "high", "level": "5", "flag": "1"},
        {
            "approved": True,
            "amount": 120.5,
            "color": "green",
            "answer": "later",
            "nights": 3,
            "notes": "ok",
            "code": "AB-1",
            "priority": "high",
            "level": 5,
            "flag": 1,
        },
    ),
    # JSON values from the API; unknown keys ignored; blanks take defaults
    (
        {"approved": False, "amount": 0, "color": "RED", "answer": "no", "level": 1, "extra": [1], "notes": "  "},
        {"approved": False, "amount": 0.0, "color": "red", "answer": "no", **DEFAULTS, "level": 1},
    ),
]

REJECTED: list[tuple[dict[str, Any], dict[str, str]]] = [
    (
        {},
        {
            "approved": "yes or no",
            "amount": "Enter a number",
            "color": "Choose one of: red, green",
            "answer": "Choose one of: yes, no, later",
        },
    ),
    ({**GOOD, "approved": "maybe"}, {"approved": "yes or no"}),
    ({**GOOD, "amount": "-1"}, {"amount": "from 0 to 10000"}),
    ({**GOOD, "amount": "nan"}, {"amount": "finite"}),
    ({**GOOD, "nights": "15"}, {"nights": "from 1 to 14"}),
    ({**GOOD, "nights": 1e19}, {"nights": "19 digits"}),
    ({**GOOD, "nights": "2.5"}, {"nights": "not a whole number"}),
    ({**GOOD, "notes": "x" * 501}, {"notes": "under 500"}),
    ({**GOOD, "code": "123456789"}, {"code": "under 8"}),
    ({**GOOD, "priority": "urgent"}, {"priority": "Choose one of: low, high"}),
    ({**GOOD, "level": "3"}, {"level": "Choose one of: 1, 5"}),
    ({**GOOD, "answer": True}, {"answer": "Choose one of: yes, no, later"}),
    ({**GOOD, "flag": True}, {"flag": "Choose one of: 0, 1, 5"}),
    ({**GOOD, "notes": 5}, {"notes": "Enter text"}),
]


@pytest.mark.parametrize(("raw", "expected"), ACCEPTED)
def test_accepted_answers_are_what_the_model_validates(raw: dict[str, Any], expected: dict[str, Any]) -> None:
    outcome = parse_answer(request_for(Expense), raw)
    assert outcome == Accepted(expected)
    assert Expense.model_validate(outcome.value).model_dump(mode="json") == expected
    assert parse_answer(request_for(Expense), outcome.value) == outcome, "parsing an answer again changes nothing"


@pytest.mark.parametrize(("raw", "fragments"), REJECTED)
def test_rejected_per_field(raw: dict[str, Any], fragments: dict[str, str]) -> None:
    outcome = parse_answer(request_for(Expense), raw)
    assert isinstance(outcome, Rejected)
    assert set(outcome.errors) == set(fragments)
    for name, fragment in fragments.items():
        assert fragment in outcome.errors[name]
    schema = schema_of(request_for(Expense))
    assert all(schema.field(name).label in outcome.message for name in fragments)  # type: ignore[union-attr]


def test_a_structured_event_needs_an_object() -> None:
    outcome = parse_answer(request_for(Expense), "yes")
    assert isinstance(outcome, Rejected)
    assert "approved, amount" in outcome.errors["value"]


def test_schema_from_the_model_matches_the_stored_one() -> None:
    schema = schema_from_type(Expense)
    assert schema == schema_of(request_for(Expense))
    assert not schema.scalar
    fields = {f.name: f for f in schema.fields}
    assert [f.kind for f in schema.fields] == [
        "bool",
        "float",
        "int",
        "str",
        "str",
        "choice",
        "choice",
        "choice",
        "choice",
        "choice",
    ]
    assert fields["amount"].label == "Approved amount"
    assert (fields["amount"].min_value, fields["amount"].max_value) == (0, 10_000)
    assert fields["approved"].description == "Whether the expense is approved"
    assert fields["approved"].required and not fields["notes"].required and not fields["code"].required
    assert fields["notes"].multiline and not fields["code"].multiline
    assert (fields["code"].nullable, fields["code"].has_default, fields["code"].default) == (True, True, None)
    assert fields["level"].choices == [1, 5] and fields["level"].value_type == "int"
    assert fields["flag"].choices == [0, 1, 5] and [type(c) for c in fields["flag"].choices] == [int] * 3
    assert fields["answer"].choices == ["yes", "no", "later"]


class Nested(BaseModel):
    inner: Approval


class WithList(BaseModel):
    tags: list[str]


class WithDict(BaseModel):
    labels: dict[str, str]


class WithDate(BaseModel):
    when: datetime.date


class WithUnion(BaseModel):
    size: int | str


class WithMixedLiteral(BaseModel):
    pick: Literal["a", 1]


class WithGt(BaseModel):
    amount: float = Field(gt=0)


class WithValidator(BaseModel):
    name: str

    @field_validator("name")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()


@pytest.mark.parametrize(
    ("model", "fragment"),
    [
        (Nested, "Nested.inner: Approval is not supported"),
        (WithList, "WithList.tags"),
        (WithDict, "WithDict.labels"),
        (WithDate, "WithDate.when: date is not supported"),
        (WithUnion, "WithUnion.size"),
        (WithMixedLiteral, "WithMixedLiteral.pick"),
        (WithGt, "WithGt.amount: the constraint"),
        (WithValidator, "has validators"),
    ],
)
def test_unsupported_models_are_refused_naming_the_field(model: type[BaseModel], fragment: str) -> None:
    with pytest.raises(TypeError) as error:
        type_name(model)
    assert fragment in str(error.value)
    assert "bool, int, float, str" in str(error.value) or "Field(ge=" in str(error.value)


def test_rendering_for_people() -> None:
    schema = schema_from_type(Approval)
    assert describe_answer(schema, {"approved": True, "reason": "ok", "ticket": None}) == [
        ("Approved", "Yes"),
        ("Reason", "ok"),
        ("Ticket", "—"),
    ]
    assert answer_text(schema, {"approved": False, "reason": "", "ticket": None}) == (
        "Approved: No · Reason: — · Ticket: —"
    )
    assert describe_answer(schema_from_type(bool), True) == [("Answer", "Approve")]
    assert answer_text(schema_from_type(float), 3.0) == "3"


def test_approval_shape() -> None:
    assert getattr(approval_field(schema_from_type(Approval)), "name", None) == "approved"
    assert getattr(approval_field(schema_from_type(bool)), "name", None) == "value"
    assert approval_field(schema_from_type(Expense)) is None, "a required amount is typed, not clicked"
    assert approval_field(schema_from_type(int)) is None


def test_prefill_takes_the_proposal_then_defaults() -> None:
    request = request_for(Expense, initial={"amount": 99.5, "approved": True})
    assert prefill(request) == {
        "approved": True,
        "amount": 99.5,
        "nights": 1,
        "notes": "",
        "priority": "low",
        "flag": 0,
    }
    from tests.test_answers import scalar_request

    assert prefill(scalar_request("int", initial=3)) == {"value": 3}
    assert prefill(scalar_request("int")) == {}


def test_control_text_reads_back_as_the_value() -> None:
    from hitl_chatops.bot.answers import input_text

    request = request_for(Expense)
    raw = {name: input_text(value) for name, value in ACCEPTED[1][1].items()}
    assert parse_answer(request, raw) == Accepted(ACCEPTED[1][1])


class BadDefaultBounds(BaseModel):
    amount: float = Field(default=-1, ge=0)


class BadDefaultNone(BaseModel):
    notes: str = None  # type: ignore[assignment]


class BadDefaultChoice(BaseModel):
    region: Literal["eu", "us"] = "ap"  # type: ignore[assignment]


@pytest.mark.parametrize("model", [BadDefaultBounds, BadDefaultNone, BadDefaultChoice])
def test_defaults_must_be_valid_answers(model: type[BaseModel]) -> None:
    field = next(iter(model.model_fields))
    with pytest.raises(TypeError, match=rf"{model.__name__}\.{field}: the default .* is not a valid answer"):
        type_name(model)


def test_context_rows_for_people() -> None:
    from hitl_chatops.bot.answers import context_rows

    request = request_for(
        Approval, context={"amount": 120.0, "ok": True, "who": "<dana>", "tags": ["a", "b"], "x": None}
    )
    assert context_rows(request) == [
        ("amount", "120"),
        ("ok", "Yes"),
        ("who", "<dana>"),
        ("tags", '["a", "b"]'),
        ("x", "—"),
    ]


NEAR = {
    "approved": st.sampled_from([True, False, "true", "no", "maybe", None, 1, 2]),
    "amount": st.one_of(st.floats(-100, 20_000), st.integers(-5, 20_000), st.sampled_from(["120.5", "nan", "", "1e3"])),
    "color": st.sampled_from(["red", "GREEN", "blue", "", None, 1]),
    "answer": st.sampled_from(["yes", "no", "later", "Later", True, ""]),
    "nights": st.one_of(st.integers(-2, 20), st.sampled_from(["3", "2.5", "1e19", 1e19, "", 3.0])),
    "notes": st.one_of(st.text(max_size=30), st.sampled_from(["x" * 600, "  ", None, 5])),
    "code": st.sampled_from([None, "", "AB-1", "123456789", " ab "]),
    "priority": st.sampled_from(["low", "high", "HIGH", "urgent", ""]),
    "level": st.sampled_from([1, 5, "5", "3", None, "", True, 1.0]),
    "flag": st.sampled_from([0, 1, 5, "1", True, 2, ""]),
    "extra": st.text(max_size=5),
}
REQUIRED = ("approved", "amount", "color", "answer")


@settings(max_examples=300, deadline=None)
@given(
    raw=st.fixed_dictionaries(
        {name: NEAR[name] for name in REQUIRED},
        optional={name: strategy for name, strategy in NEAR.items() if name not in REQUIRED},
    )
)
def test_accepted_means_the_model_validates_it_and_parsing_again_changes_nothing(raw: dict[str, Any]) -> None:
    request = request_for(Expense)
    outcome = parse_answer(request, raw)
    if isinstance(outcome, Accepted):
        Expense.model_validate(outcome.value)
        assert parse_answer(request, outcome.value) == outcome
    else:
        assert outcome.errors and set(outcome.errors) <= set(Expense.model_fields)


# -- issue 21: model_config settings the JSON Schema cannot carry ------------------------------


def configured(name: str, config: ConfigDict, **namespace: Any) -> type[BaseModel]:
    """A one-text-field answer model with `config` (and any methods in `namespace`)."""
    return type(name, (BaseModel,), {"model_config": config, "__annotations__": {"reason": str}, **namespace})


@pytest.mark.parametrize(
    ("config", "named"),
    [
        (ConfigDict(str_min_length=5), "str_min_length=5"),
        (ConfigDict(str_max_length=10), "str_max_length=10"),
        (ConfigDict(str_to_lower=True), "str_to_lower=True"),
        (ConfigDict(str_to_upper=True), "str_to_upper=True"),
        (ConfigDict(validate_by_alias=False, validate_by_name=True), "validate_by_alias=False"),
        (ConfigDict(json_schema_mode_override="serialization"), "json_schema_mode_override='serialization'"),
    ],
)
def test_settings_that_tighten_validation_are_refused_naming_the_setting(config: ConfigDict, named: str) -> None:
    with pytest.raises(TypeError) as error:
        type_name(configured("Review", config))
    assert f"Review: model_config sets {named}" in str(error.value)
    assert "wait() could refuse" in str(error.value)


def test_a_model_post_init_is_refused_like_a_validator() -> None:
    def model_post_init(self: BaseModel, context: Any) -> None:
        raise ValueError("too short")

    with pytest.raises(TypeError, match="Review defines model_post_init"):
        type_name(configured("Review", ConfigDict(), model_post_init=model_post_init))


class Tier(enum.Enum):
    BRONZE = "bronze"
    GOLD = "gold"


# The `model_config` settings the bot lets through, at their tightest (the fuzz tests answer a model with them).
TIGHTEST = ConfigDict(
    strict=True,
    extra="forbid",
    frozen=True,
    allow_inf_nan=False,
    str_strip_whitespace=True,
    validate_default=True,
    alias_generator=to_camel,
    populate_by_name=True,
)


class Strictest(BaseModel):
    model_config = ConfigDict(
        **TIGHTEST,
        title="Strict review",
        str_min_length=0,  # neutral values of refused settings pass
        str_to_lower=False,
    )
    tier: Tier = Tier.BRONZE
    max_nights: int = Field(default=1, ge=1, le=14, strict=True)
    ratio: float = Field(ge=0, le=1)
    page_oncall: bool
    _seen: int = PrivateAttr(default=0)  # pydantic's own model_post_init, not the model's


def test_settings_that_change_nothing_about_validation_are_allowed() -> None:
    schema = schema_from_type(Strictest)
    assert [f.name for f in schema.fields] == ["tier", "maxNights", "ratio", "pageOncall"]
    outcome = parse_answer(request_for(Strictest), {"tier": "GOLD", "maxNights": "3", "ratio": "1", "pageOncall": "no"})
    assert outcome == Accepted({"tier": "gold", "maxNights": 3, "ratio": 1.0, "pageOncall": False})
