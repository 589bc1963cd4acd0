"""`require_approval` where it is written: what it refuses at decoration, and what it keeps of the function.

The gate's behaviour in runs is tests/test_gate_e2e.py's and tests/slack/test_slack_gate.py's.
"""

from __future__ import annotations

import inspect
import os
import re
from pathlib import Path
from typing import Annotated, Any

import flyte
import pytest
from pydantic import Field

import hitl_chatops.plugin as hitl
from hitl_chatops.bot.store import Store


def test_the_gate_keeps_the_functions_name_signature_docstring_and_kind() -> None:
    @hitl.require_approval()
    async def make_payment(amount: float, to: str, memo: str = "") -> str:
        """Pay a supplier."""
        return to

    @hitl.require_approval()
    def archive(path: str) -> str:
        return path

    assert (make_payment.__name__, make_payment.__doc__) == ("make_payment", "Pay a supplier.")
    assert str(inspect.signature(make_payment)) == "(amount: 'float', to: 'str', memo: 'str' = '') -> 'str'"
    assert inspect.iscoroutinefunction(make_payment) and not inspect.iscoroutinefunction(archive)


@pytest.mark.parametrize(
    ("keywords", "error", "message"),
    [
        ({"on_timeout": "run"}, ValueError, 'on_timeout must be "reject" or "approve"'),
        ({"channels": ["#payments"]}, ValueError, "channels entries look like"),
        ({"approvals": 0}, ValueError, "approvals must be a whole number from 1 to"),
        ({"timeout_seconds": 0}, ValueError, "timeout_seconds and poll_interval_seconds must be positive"),
        ({"prompt_type": "html"}, ValueError, 'prompt_type must be "text" or "markdown"'),
        ({"when": True}, TypeError, "when must be a function of the call's arguments"),
        ({"ask": True}, TypeError, "require_approval() got an unexpected keyword argument 'ask'"),
    ],
)
def test_bad_keywords_are_refused_where_the_gate_is_written(
    keywords: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):

        @hitl.require_approval(**keywords)
        def tool(x: int) -> int:
            return x


class Invoice:
    pass


def _list_parameter(lines: list[str]) -> list[str]:
    return lines


def _untyped(path):  # type: ignore[no-untyped-def]
    return path


def _many(*paths: str) -> None:
    return None


def _reason(amount: int, reason: str) -> None:
    return None


def _invoice(invoice: Invoice) -> None:
    return None


@pytest.mark.parametrize(
    ("function", "message"),
    [
        (_list_parameter, "_list_parameter's parameter 'lines' cannot be edited: _list_parameter.lines: list is not"),
        (_untyped, "_untyped's parameter 'path' has no type annotation"),
        (_many, "_many's parameter 'paths' takes any number of values"),
        (_reason, "_reason's parameter 'reason' has the name of the approval's own field"),
        (_invoice, "_invoice's parameter 'invoice' cannot be edited: an edited value is a bool, int"),
    ],
)
def test_editable_refuses_a_parameter_it_cannot_ask_for_naming_it(function: Any, message: str) -> None:
    with pytest.raises(TypeError, match=f"^require_approval\\(editable=True\\): {message}"):
        hitl.require_approval(editable=True)(function)


def test_the_gate_goes_below_the_task_decorator() -> None:
    env = flyte.TaskEnvironment(name="gate-order")

    @env.task
    async def pay(amount: float) -> str:
        return "paid"

    with pytest.raises(TypeError, match=re.escape("put @hitl.require_approval below @env.task, next to the function")):
        hitl.require_approval()(pay)


def test_when_must_say_true_or_false_and_nothing_is_asked_when_it_does_not(store_url: str) -> None:
    """A predicate that forgot its `return` must not skip the question (nor ask it)."""

    @hitl.require_approval(when=lambda call: None)
    def pay(amount: float) -> str:
        return "paid"

    with pytest.raises(TypeError, match=r"when=\.\.\.\) for pay must return True or False \(got None\)"):
        pay(5.0)
    assert not Path(store_url.removeprefix("file://")).exists()


def test_an_editable_call_with_values_its_signature_refuses_is_an_error_not_a_question(store_url: str) -> None:
    @hitl.require_approval(editable=True)
    def scale(replicas: Annotated[int, Field(ge=1, le=20)]) -> int:
        return replicas

    refused = "scale was called with values its signature refuses: Replicas: Enter a whole number from 1 to 20."
    with pytest.raises(ValueError, match=re.escape(refused)):
        scale(50)
    assert not Path(store_url.removeprefix("file://")).exists()


async def test_a_policy_that_approves_at_creation_approves_a_gate_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`auto_approve` in development: the call runs at once, recorded as approved by the policy."""
    policy = tmp_path / "policy.yaml"
    policy.write_text("rules:\n  - name: development\n    auto_approve: true\n")
    monkeypatch.setenv("HITL_CHATOPS_POLICY", str(policy))

    @hitl.require_approval(poll_interval_seconds=0.05)
    async def pay(amount: float) -> str:
        return f"paid {amount}"

    assert await pay(5.0) == "paid 5.0"
    [request_id] = [path.name for path in (tmp_path / "store" / "hitl-requests").iterdir()]
    outcome = await Store(os.environ["HITL_CHATOPS_STORE"]).get_response(request_id)
    assert outcome is not None and (outcome.value, outcome.via) == ({"approved": True, "reason": ""}, "policy")
