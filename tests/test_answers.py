"""The one validation function, as a table: every surface accepts and rejects exactly these."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hitl_chatops.bot.answers import (
    MAX_TEXT_LENGTH,
    Accepted,
    Rejected,
    display,
    finite_number,
    parse_answer,
    type_name,
)
from hitl_chatops.bot.protocol import DataType, Request, utcnow
from hitl_chatops.bot.text import format_number, whole


def scalar_request(data_type: DataType, **spec: Any) -> Request:
    """A stored scalar event as `parse_answer` sees it."""
    now = utcnow()
    return Request(
        request_id="00000000-0000-4000-8000-000000000000",
        event_name="e",
        prompt="?",
        data_type=data_type,
        request_path="r",
        response_path="s",
        created_at=now,
        deadline=now,
        timeout_seconds=1,
        **spec,
    )


def parse_value(raw: Any, *, data_type: DataType, **spec: Any) -> Accepted | Rejected:
    return parse_answer(scalar_request(data_type, **spec), raw)


ACCEPTED: list[tuple[DataType, Any, dict[str, Any], Any]] = [
    ("bool", "true", {}, True),
    ("bool", " YES ", {}, True),
    ("bool", "approve", {}, True),
    ("bool", "1", {}, True),
    ("bool", True, {}, True),
    ("bool", "false", {}, False),
    ("bool", "No", {}, False),
    ("bool", "reject", {}, False),
    ("bool", "0", {}, False),
    ("bool", False, {}, False),
    ("int", "42", {}, 42),
    ("int", " -7 ", {}, -7),
    ("int", "+3", {}, 3),
    ("int", 5, {}, 5),
    ("int", 5.0, {}, 5),
    ("int", "10", {"min_value": 1, "max_value": 10}, 10),
    ("int", "1", {"min_value": 1, "max_value": 10}, 1),
    ("int", "2", {"choices": [1, 2, 3]}, 2),
    ("float", "0.5", {}, 0.5),
    ("float", "1e3", {}, 1000.0),
    ("float", "-2", {}, -2.0),
    ("float", 3, {}, 3.0),
    ("float", "0.25", {"min_value": 0, "max_value": 1}, 0.25),
    ("str", "hello", {}, "hello"),
    ("str", "  padded  ", {}, "padded"),
    ("str", "x" * MAX_TEXT_LENGTH, {}, "x" * MAX_TEXT_LENGTH),
    ("str", "model-b", {"choices": ["model-a", "model-b"]}, "model-b"),
    ("str", "MODEL-B", {"choices": ["model-a", "model-b"]}, "model-b"),
]

REJECTED: list[tuple[DataType, Any, dict[str, Any], str]] = [
    ("bool", "maybe", {}, "yes or no"),
    ("bool", "", {}, "yes or no"),
    ("bool", "truee", {}, "yes or no"),
    ("bool", None, {}, "yes or no"),
    ("bool", 2, {}, "yes or no"),
    ("int", "4.5", {}, "not a whole number"),
    ("int", "abc", {}, "not a whole number"),
    ("int", "", {}, "whole number"),
    ("int", "1e3", {}, "not a whole number"),
    ("int", "9" * 400, {}, "not a whole number"),
    ("int", True, {}, "whole number"),
    ("int", 4.5, {}, "whole number"),
    ("int", 2**63, {}, "at most 19 digits"),
    ("int", "11", {"min_value": 1, "max_value": 10}, "from 1 to 10"),
    ("int", "0", {"min_value": 1}, "at least 1"),
    ("int", "4", {"choices": [1, 2, 3]}, "Choose one of: 1, 2, 3"),
    ("float", "nan", {}, "finite"),
    ("float", "inf", {}, "finite"),
    ("float", "-Infinity", {}, "finite"),
    ("float", "1e999", {}, "finite"),
    ("float", float("nan"), {}, "finite"),
    ("float", 10**400, {}, "finite"),
    ("float", "1,5", {}, "not a number"),
    ("float", "", {}, "Enter a number"),
    ("float", "1.5", {"max_value": 1}, "at most 1"),
    ("float", "-0.1", {"min_value": 0, "max_value": 1}, "from 0 to 1"),
    ("str", "", {}, "cannot be empty"),
    ("str", "   ", {}, "cannot be empty"),
    ("str", None, {}, "cannot be empty"),
    ("str", "x" * (MAX_TEXT_LENGTH + 1), {}, f"under {MAX_TEXT_LENGTH}"),
    ("str", "a\x00b", {}, "NUL"),
    ("str", "model-c", {"choices": ["model-a", "model-b"]}, "Choose one of: model-a, model-b"),
]


@pytest.mark.parametrize(("data_type", "raw", "spec", "expected"), ACCEPTED)
def test_accepted(data_type: DataType, raw: Any, spec: dict[str, Any], expected: Any) -> None:
    outcome = parse_value(raw, data_type=data_type, **spec)
    assert outcome == Accepted(expected)
    assert type(outcome.value) is type(expected)


@pytest.mark.parametrize(("data_type", "raw", "spec", "fragment"), REJECTED)
def test_rejected_with_actionable_message(data_type: DataType, raw: Any, spec: dict[str, Any], fragment: str) -> None:
    outcome = parse_value(raw, data_type=data_type, **spec)
    assert isinstance(outcome, Rejected)
    assert fragment in outcome.message
    assert len(outcome.message) < 200, "messages are shown inline; keep them short"


def test_type_names_refuse_unknown_types() -> None:
    assert [type_name(t) for t in (bool, int, float, str)] == ["bool", "int", "float", "str"]
    with pytest.raises(TypeError, match="bool, int, float, str"):
        type_name(dict)


def test_display() -> None:
    assert (display(True), display(False), display(3.0), display(0.5), display("x")) == (
        "Approve",
        "Reject",
        "3",
        "0.5",
        "x",
    )


# -- issue 13: choices keep their type, numbers stay readable ---------------------------------


@pytest.mark.parametrize(
    ("data_type", "choices", "raw", "expected"),
    [
        ("str", ["yes", "no", "later"], "yes", "yes"),
        ("str", ["yes", "no", "later"], "later", "later"),
        ("str", ["on", "off", "1", "t", "2"], "1", "1"),
        ("str", ["on", "off", "1", "t", "2"], "on", "on"),
        ("int", [0, 1, 5], 1, 1),
        ("int", [0, 1, 5], "0", 0),
        ("int", [0, 1, 5], 5.0, 5),
    ],
)
def test_choices_are_stored_and_compared_as_given(
    data_type: DataType, choices: list[Any], raw: Any, expected: Any
) -> None:
    request = Request.model_validate_json(scalar_request(data_type, choices=choices).model_dump_json())
    assert request.choices == choices
    assert [type(c) for c in request.choices] == [type(c) for c in choices]
    outcome = parse_answer(request, raw)
    assert outcome == Accepted(expected)
    assert type(outcome.value) is type(expected)


@pytest.mark.parametrize(("choices", "raw"), [(["yes", "no"], True), ([0, 1, 5], True), ([0, 1, 5], "yes")])
def test_choices_refuse_lookalikes(choices: list[Any], raw: Any) -> None:
    data_type: DataType = "int" if isinstance(choices[0], int) else "str"
    outcome = parse_answer(scalar_request(data_type, choices=choices), raw)
    assert isinstance(outcome, Rejected)
    assert outcome.message.startswith("Choose one of:")


@pytest.mark.parametrize("raw", [1e19, 1e30, 2**64, -(2**63), "10000000000000000000", 9.3e18])
def test_ints_are_bounded_whatever_the_form(raw: Any) -> None:
    outcome = parse_answer(scalar_request("int"), raw)
    assert isinstance(outcome, Rejected)
    assert "19 digits" in outcome.message


def test_largest_int_is_accepted() -> None:
    assert parse_answer(scalar_request("int"), str(2**63 - 1)) == Accepted(2**63 - 1)


def test_version_1_objects_are_still_read() -> None:
    from hitl_chatops.bot.protocol import Response

    v1 = (
        '{"request_id": "00000000-0000-4000-8000-000000000000", "event_name": "e", "scope": "run", "prompt": "?",'
        ' "data_type": "int", "status": "pending", "request_path": "r", "response_path": "s", "schema_version": 1,'
        ' "created_at": "2026-01-01T00:00:00Z", "deadline": "2026-01-01T01:00:00Z", "timeout_seconds": 3600,'
        ' "choices": [1, 2], "min_value": null, "max_value": null, "responders": [], "channels": [],'
        ' "details": null, "run": {}}'
    )
    request = Request.model_validate_json(v1)
    assert (request.schema_version, request.on_timeout, request.context, request.answer_schema) == (1, None, None, None)
    assert parse_answer(request, "2") == Accepted(2)
    answer = Response.model_validate_json(
        '{"value": 2, "status": "completed", "request_id": "00000000-0000-4000-8000-000000000000",'
        ' "data_type": "int", "via": "web"}'
    )
    assert (answer.status, answer.reason, answer.cancelled, answer.defaulted) == ("completed", None, False, False)


# -- issue 21: numbers in ASCII only, on every surface -------------------------------------------

# (data_type, text) -> the value, or None for a refusal. Other scripts' digits, fullwidth digits and
# Python's own spellings (underscores, hex floats, words) are what `\\d`, int() and float() took.
NUMBERS: dict[tuple[DataType, str], Any] = {
    ("int", "42"): 42,
    ("int", "+7"): 7,
    ("int", "-7"): -7,
    ("int", " 12 "): 12,
    ("int", "\u0663"): None,  # ٣ Arabic-Indic three
    ("int", "\uff11\uff12"): None,  # fullwidth one two
    ("int", "\U0001d7d1"): None,  # mathematical bold three
    ("int", "1_0"): None,
    ("int", "0x10"): None,
    ("int", "1e3"): None,
    ("int", "--1"): None,
    ("int", "+-1"): None,
    ("int", "1 000"): None,
    ("float", "0.5"): 0.5,
    ("float", ".5"): 0.5,
    ("float", "1."): 1.0,
    ("float", "-2.5e3"): -2500.0,
    ("float", "1E-2"): 0.01,
    ("float", "+3"): 3.0,
    ("float", "\u0663.\u0665"): None,  # Arabic-Indic 3.5
    ("float", "\uff11\uff12"): None,
    ("float", "1e\u0662"): None,  # an exponent in another script
    ("float", "1_0"): None,
    ("float", "1_0.5"): None,
    ("float", "1.2.3"): None,
    ("float", "1e"): None,
    ("float", "e5"): None,
    ("float", "."): None,
    ("float", "0x1p3"): None,
    ("float", "1,5"): None,
    ("float", "++1"): None,
    ("float", "1" * 65): None,
}


@pytest.mark.parametrize(("data_type", "text"), list(NUMBERS), ids=[f"{t}-{ascii(x)[:24]}" for t, x in NUMBERS])
def test_numbers_are_ascii_with_one_sign_one_point_and_an_exponent(data_type: DataType, text: str) -> None:
    outcome = parse_value(text, data_type=data_type)
    expected = NUMBERS[data_type, text]
    if expected is None:
        assert isinstance(outcome, Rejected)
        assert "number" in outcome.message and len(outcome.message) < 200
    else:
        assert outcome == Accepted(expected) and type(outcome.value) is type(expected)


def number_oracle(data_type: DataType, text: str) -> Any:
    """What a number field should accept, written with Python's own parsers kept to ASCII without '_'."""
    text = text.strip()
    if not text.isascii() or "_" in text:
        return None
    try:
        if data_type == "int":
            value: Any = int(text)
            return value if len(text.lstrip("+-")) <= 24 and abs(value) < 2**63 else None
        value = float(text)
    except ValueError:
        return None
    words = text.lstrip("+-").lower() in ("nan", "inf", "infinity")
    return value if math.isfinite(value) and len(text) <= 64 and not words else None


number_texts = st.text(
    st.one_of(
        st.sampled_from("0123456789+-.eE_ x"),
        st.characters(categories=["Nd", "No"]),  # every script's digits, superscripts, fractions
    ),
    max_size=12,
)


@settings(max_examples=500, deadline=None)
@given(data_type=st.sampled_from(["int", "float"]), text=number_texts)
def test_number_fields_accept_exactly_ascii_numbers(data_type: DataType, text: str) -> None:
    outcome = parse_value(text, data_type=data_type)
    expected = number_oracle(data_type, text)
    if expected is None:
        assert isinstance(outcome, Rejected), (text, outcome)
    else:
        assert outcome == Accepted(expected) and type(outcome.value) is type(expected)


@pytest.mark.parametrize(
    ("raw", "number"),
    [("1e3", 1000.0), (" -2.5 ", -2.5), (7, 7.0), ("٤٢", None), ("1_0", None), ("nan", None), (True, None), ("", None)],
)
def test_a_number_is_read_as_the_core_reads_one(raw: object, number: float | None) -> None:
    """What a number input may hold again (Teams' cards): exactly what `parse_answer` takes as a float."""
    assert finite_number(raw) == number
    assert isinstance(parse_value(raw, data_type="float"), Accepted) == (number is not None)


@pytest.mark.parametrize(("number", "shown"), [(3.0, "3"), (3, "3"), (2.5, "2.5"), (1e16, "1e+16"), (-0.0, "0")])
def test_whole_numbers_are_shown_without_a_point(number: float, shown: str) -> None:
    assert format_number(number) == shown
    assert str(whole(number)) == shown
