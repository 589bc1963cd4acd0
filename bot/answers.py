"""What an answer looks like, and the one place raw input becomes a typed answer.

The contract every surface builds on:

- An event's answer is an `AnswerSchema`: a list of `AnswerField`s (bool, int, float, str or
  choice, with label, description, required/default, choices, bounds, max length, multiline).
  A scalar event (`data_type` bool/int/float/str, today's events, unchanged on the wire) has
  exactly one field named `value` and `schema.scalar` set; a structured one (`data_type:
  "object"`) is built from the Pydantic model's JSON Schema stored as `answer_schema`.
  `schema_of(request)` reads it from a stored request; `schema_from_type(tp)` builds it from a
  Python type at `new_event` time and refuses, naming the field, any field type not listed above.
- `parse_answer(request, raw)` is the only conversion and check: Slack, Teams, the web form, the
  API and the plugin's `wait()` all call it, so every accepted value is one `wait()` returns.
  `raw` is a scalar (or `{"value": x}`) for scalar events, a mapping field name → raw input for
  structured ones (strings from forms and chat, JSON values from the API; missing optional
  fields take their default, unknown keys are ignored). It returns `Accepted(value)` (a scalar,
  or a dict of every field) or `Rejected(errors, message)`: field name → a message a person can
  act on (scalar events use the key `value`, as does a structured answer that is not a mapping
  at all), and all of them in one line. `input_text` writes a value as a control holds it.
- `describe_answer` / `answer_text` render an answer for people, `context_rows` the context;
  `approval_field` finds the bool answered with Approve/Reject buttons (a scalar bool, or the
  "approve, with a reason" shape: one bool plus optional text) and `rejects` tells its Reject;
  `finite_number` reads a number as the core does; `prefill` gives each field's proposed value
  (the request's `initial`, else the default). What an event's state says to people is
  `bot/view.py`'s.
"""

from __future__ import annotations

import enum
import json
import math
import re
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict

from .errors import StoreError
from .protocol import Scalar, ScalarType
from .text import clip, format_number

if TYPE_CHECKING:
    from .protocol import DataType, Request, Response

__all__ = [
    "MAX_TEXT_LENGTH",
    "Accepted",
    "AnswerField",
    "AnswerSchema",
    "FieldKind",
    "Outcome",
    "Rejected",
    "answer_text",
    "approval_field",
    "context_rows",
    "describe_answer",
    "display",
    "field_text",
    "finite_number",
    "input_text",
    "number_hint",
    "parse_answer",
    "parse_fields",
    "prefill",
    "range_text",
    "rejects",
    "schema_from_type",
    "schema_of",
    "type_name",
]

MAX_TEXT_LENGTH = 2000
MAX_INT = 2**63  # Flyte's ints are 64-bit: |x| < 2**63
TRUE_WORDS = frozenset({"true", "yes", "y", "1", "approve", "approved"})
FALSE_WORDS = frozenset({"false", "no", "n", "0", "reject", "rejected"})
# Numbers as people type them, in ASCII only: `\d`, int() and float() also take other scripts' digits
# (Arabic-Indic, fullwidth), underscores ("1_0") and words ("infinity"). One sign, one point, an exponent.
_INT = re.compile(r"[+-]?[0-9]{1,24}")  # longer digit runs are not numbers people mean
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NOT_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
_FLOAT_CHARS = 64
_MULTILINE_OVER = 200  # text fields allowing more than this many characters get a multi-line input
FieldKind = Literal["bool", "int", "float", "str", "choice"]
_SUPPORTED = (
    "answer fields may be bool, int, float, str, a Literal or Enum of one of those types, "
    "or Optional of any of them, with Field(title=, description=, ge=, le=, max_length=, default=)"
)


class AnswerField(BaseModel):
    """One input of an answer. `default` counts only when `has_default` (a default may be None)."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: FieldKind
    label: str
    description: str | None = None
    required: bool = True  # the person must give a value (no default, and None is not allowed)
    has_default: bool = False
    default: Any = None
    nullable: bool = False  # Optional[...]: a blank input means None
    choices: list[Scalar] | None = None  # kind "choice": the exact values, typed as given
    min_value: float | None = None
    max_value: float | None = None
    max_length: int | None = None
    multiline: bool = False

    @property
    def value_type(self) -> ScalarType:
        """The type of this field's values; for a choice, the type of its choices."""
        if self.kind != "choice":
            return self.kind
        sample = (self.choices or [""])[0]
        return "bool" if isinstance(sample, bool) else _TYPE_NAMES.get(type(sample), "str")


class AnswerSchema(BaseModel):
    """The fields of an event's answer; `scalar` marks today's one-value events (one field, `value`)."""

    model_config = ConfigDict(frozen=True)

    fields: list[AnswerField]
    scalar: bool = False

    def field(self, name: str) -> AnswerField | None:
        return next((f for f in self.fields if f.name == name), None)


@dataclass(frozen=True)
class Accepted:
    value: Any


@dataclass(frozen=True)
class Rejected:
    """Why an answer was refused: per field (`errors`) and in one line (`message`)."""

    errors: dict[str, str] = field(default_factory=dict)
    message: str = ""


Outcome = Accepted | Rejected

# -- building schemas --------------------------------------------------------------------------

_TYPE_NAMES: dict[type, ScalarType] = {bool: "bool", int: "int", float: "float", str: "str"}


def type_name(data_type: object) -> DataType:
    """The protocol's `data_type` for a Python type: a scalar name, or "object" for a model."""
    if isinstance(data_type, type) and issubclass(data_type, BaseModel):
        schema_from_type(data_type)  # refuses unsupported fields here, at the call site
        return "object"
    if isinstance(data_type, type) and data_type in _TYPE_NAMES:
        return _TYPE_NAMES[data_type]
    raise TypeError(
        f"data_type must be bool, int, float, str or a pydantic BaseModel (got {data_type!r}); {_SUPPORTED}"
    )


def schema_from_type(data_type: object) -> AnswerSchema:
    """The schema `new_event(data_type=...)` asks for; raises TypeError naming an unsupported field.

    A model is checked field by field in Python (for the best message), then read back from its
    JSON Schema, the same way the bot reads it from `request.json`, so both sides agree.
    """
    if isinstance(data_type, type) and issubclass(data_type, BaseModel):
        _check_model(data_type)
        schema = _from_json_schema(data_type.model_json_schema())
        _check_defaults(data_type.__name__, schema)
        return schema
    kind = type_name(data_type)
    assert kind != "object"
    return _scalar_schema(kind)


def schema_of(request: Request) -> AnswerSchema:
    """The schema of a stored event (scalar fields of the request, or its `answer_schema`).

    A hand-written `answer_schema` the bot cannot ask for makes the event unreadable (`StoreError`),
    like any other malformed object in the store.
    """
    if request.data_type == "object":
        try:
            return _from_json_schema(request.answer_schema or {})
        except (ValueError, TypeError, AttributeError) as error:
            raise StoreError(
                f"event {request.request_id} has an answer_schema hitl-chatops cannot use: {error}"
            ) from None
    return _scalar_schema(
        request.data_type, choices=request.choices, min_value=request.min_value, max_value=request.max_value
    )


def _scalar_schema(
    kind: ScalarType,
    *,
    choices: Sequence[Any] | None = None,
    min_value: float | None = None,
    max_value: float | None = None,
) -> AnswerSchema:
    only = AnswerField(
        name="value",
        kind="choice" if choices else kind,
        label="Decision" if kind == "bool" else "Your answer",
        choices=list(choices) if choices else None,
        min_value=min_value,
        max_value=max_value,
        max_length=MAX_TEXT_LENGTH if kind == "str" else None,
    )
    return AnswerSchema(fields=[only], scalar=True)


def _check_model(model: type[BaseModel]) -> None:
    """Refuse what the bot cannot ask for or check exactly as the model would.

    The bot sees only the JSON Schema stored in request.json, and `wait()` validates the stored
    answer with the model itself: anything in the model that validates beyond that schema (validators,
    hooks, tightening `model_config` settings, other constraints) could refuse an answer the bot took.
    """
    decorators = model.__pydantic_decorators__
    if decorators.field_validators or decorators.model_validators or decorators.validators:
        raise TypeError(
            f"{model.__name__} has validators; the bot checks answers from the JSON Schema alone, "
            "so express constraints with Field(ge=, le=, max_length=) instead"
        )
    _check_hooks(model)
    _check_config(model)
    if not model.model_fields:
        raise TypeError(f"{model.__name__} has no fields to ask for")
    for name, info in model.model_fields.items():
        where = f"{model.__name__}.{name}"
        if not _supported(_unwrap_optional(info.annotation)):
            raise TypeError(f"{where}: {_type_text(info.annotation)} is not supported; {_SUPPORTED}")
        for constraint in info.metadata:
            if type(constraint).__name__ not in _SCHEMA_CONSTRAINTS:
                raise TypeError(f"{where}: the constraint {constraint!r} is not supported; {_SUPPORTED}")


# Field constraints the JSON Schema carries (`Strict` changes nothing: `wait()` validates the answer as
# the JSON it is stored as, and every accepted value already has its field's JSON type).
_SCHEMA_CONSTRAINTS = frozenset({"Ge", "Le", "MaxLen", "Strict"})

# `model_config` settings that change nothing about which answers validate, given that the bot sends
# the model exactly its schema's fields (no extras), with JSON values of the right type (so `strict`
# holds), finite numbers, stripped text, and every default filled in; the rest only name, document,
# serialise or freeze the model. Any other setting (including ones later pydantic versions add) is
# refused unless it has its neutral value (`_NEUTRAL_CONFIG`).
_HARMLESS_CONFIG = frozenset(
    {
        "alias_generator",
        "allow_inf_nan",
        "arbitrary_types_allowed",
        "cache_strings",
        "coerce_numbers_to_str",
        "defer_build",
        "extra",
        "field_title_generator",
        "from_attributes",
        "frozen",
        "hide_input_in_errors",
        "ignored_types",
        "json_encoders",
        "json_schema_extra",
        "json_schema_serialization_defaults_required",
        "loc_by_alias",
        "model_title_generator",
        "plugin_settings",
        "polymorphic_serialization",
        "populate_by_name",
        "protected_namespaces",
        "regex_engine",
        "revalidate_instances",
        "ser_json_bytes",
        "ser_json_inf_nan",
        "ser_json_temporal",
        "ser_json_timedelta",
        "serialize_by_alias",
        "str_strip_whitespace",
        "strict",
        "title",
        "url_preserve_empty_path",
        "use_attribute_docstrings",
        "use_enum_values",
        "val_json_bytes",
        "val_temporal_unit",
        "validate_assignment",
        "validate_by_name",
        "validate_default",
        "validate_return",
        "validation_error_cause",
    }
)
_NEUTRAL_CONFIG: dict[str, tuple[object, ...]] = {
    "str_min_length": (0,),
    "str_to_lower": (False,),
    "str_to_upper": (False,),
    "validate_by_alias": (True,),  # the stored schema names fields by their aliases
    "json_schema_mode_override": ("validation",),
}
_CONFIG_HINTS = {
    "str_max_length": "set Field(max_length=) on each text field instead",
    "str_min_length": "minimum lengths cannot be asked for; check the length after wait() returns",
    "str_to_lower": "change the case after wait() returns",
    "str_to_upper": "change the case after wait() returns",
}


def _check_config(model: type[BaseModel]) -> None:
    """Refuse, naming it, a `model_config` setting that could make `wait()` refuse an accepted answer."""
    for key, value in model.model_config.items():
        if key in _HARMLESS_CONFIG or value is None or value in _NEUTRAL_CONFIG.get(key, ()):
            continue
        hint = _CONFIG_HINTS.get(key, "remove it from the answer model")
        raise TypeError(
            f"{model.__name__}: model_config sets {key}={value!r}, which the bot cannot check from the "
            f"answer's JSON Schema, so wait() could refuse an answer people were told was saved; {hint}"
        )


def _check_hooks(model: type[BaseModel]) -> None:
    """`model_post_init` and a custom core schema run inside `wait()`'s validation, never in the bot's."""
    for klass in model.__mro__:
        if klass is BaseModel:
            return
        for hook in ("model_post_init", "__get_pydantic_core_schema__"):
            own = vars(klass).get(hook)
            if own is not None and getattr(own, "__name__", "") != "init_private_attributes":  # pydantic's own
                raise TypeError(
                    f"{model.__name__} defines {hook}; the bot checks answers from the JSON Schema alone, "
                    "so express constraints with Field(ge=, le=, max_length=) instead"
                )


def _unwrap_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [a for a in get_args(annotation) if a is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def _supported(annotation: Any) -> bool:
    """A scalar type, or a Literal/Enum whose values all have one scalar type."""
    if annotation in _TYPE_NAMES:
        return True
    if get_origin(annotation) is Literal:
        values: list[Any] = list(get_args(annotation))
    elif isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        values = [member.value for member in annotation]
    else:
        return False
    found = {type(v) for v in values}
    return len(found) == 1 and found <= set(_TYPE_NAMES)


def _check_defaults(model_name: str, schema: AnswerSchema) -> None:
    """A default is handed to the model like any answer, so it must be one (pydantic never checks it)."""
    for answer_field in schema.fields:
        default = answer_field.default
        if not answer_field.has_default or (answer_field.kind == "str" and default == ""):
            continue  # "" is how a text field says "nothing"; the model takes it as is
        if default is None:
            fits = answer_field.nullable
        else:
            strict = answer_field.model_copy(update={"required": True})
            fits = isinstance(_parse_field(strict, answer_field.default), Accepted)
        if not fits:
            raise TypeError(
                f"{model_name}.{answer_field.name}: the default {answer_field.default!r} is not a valid answer "
                "for the field (check its type, bounds and choices)"
            )


def _type_text(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or repr(annotation)


def _from_json_schema(schema: Mapping[str, Any]) -> AnswerSchema:
    """Read a Pydantic model's JSON Schema (flat fields only) into an `AnswerSchema`."""
    properties = schema.get("properties")
    if not isinstance(properties, Mapping) or not properties:
        raise ValueError("answer_schema must be a JSON Schema object with properties")
    required = set(schema.get("required") or [])
    defs = schema.get("$defs") or {}
    return AnswerSchema(
        fields=[_field_from(name, prop, name in required, defs) for name, prop in properties.items()],
    )


def _field_from(name: str, prop: Mapping[str, Any], listed: bool, defs: Mapping[str, Any]) -> AnswerField:
    body, nullable = _resolve(prop, defs)
    has_default = "default" in prop
    common: dict[str, Any] = {
        "name": name,
        "label": _label(name, prop.get("title")),
        "description": prop.get("description") or None,
        "has_default": has_default,
        "default": prop.get("default"),
        "nullable": nullable,
        "required": listed and not nullable,
    }
    choices = body.get("enum") if "enum" in body else ([body["const"]] if "const" in body else None)
    if choices is not None:
        return AnswerField(kind="choice", choices=list(choices), **common)
    kind = _JSON_KINDS.get(str(body.get("type")))
    if kind is None:
        raise ValueError(f"answer field {name!r} has an unsupported schema; {_SUPPORTED}")
    limit = min(int(body.get("maxLength", MAX_TEXT_LENGTH)), MAX_TEXT_LENGTH) if kind == "str" else None
    multiline = bool(prop.get("multiline", body.get("multiline", limit is not None and limit > _MULTILINE_OVER)))
    return AnswerField(
        kind=kind,
        min_value=body.get("minimum"),
        max_value=body.get("maximum"),
        max_length=limit,
        multiline=multiline and kind == "str",
        **common,
    )


def _label(name: str, title: object) -> str:
    """The field's title, or its name in sentence case where pydantic only title-cased the name."""
    words = name.replace("_", " ").strip()
    if not title or title == words.title():
        return words.capitalize() or name
    return str(title)


_JSON_KINDS: dict[str, FieldKind] = {"boolean": "bool", "integer": "int", "number": "float", "string": "str"}


def _resolve(prop: Mapping[str, Any], defs: Mapping[str, Any]) -> tuple[Mapping[str, Any], bool]:
    """The schema of one field's values with `$ref`, `allOf` and `anyOf [..., null]` taken apart."""
    nullable = False
    body: Mapping[str, Any] = prop
    if "anyOf" in body:
        options = [o for o in body["anyOf"] if o.get("type") != "null"]
        nullable = len(options) < len(body["anyOf"])
        if len(options) != 1:
            raise ValueError(f"unions are not supported in answer fields; {_SUPPORTED}")
        body = options[0]
    if "allOf" in body and len(body["allOf"]) == 1:
        body = body["allOf"][0]
    if "$ref" in body:
        body = defs.get(str(body["$ref"]).rsplit("/", 1)[-1], {})
    return body, nullable


# -- parsing -----------------------------------------------------------------------------------


def parse_answer(request: Request, raw: object) -> Outcome:
    """Convert and check `raw` for this event; see the module docstring for the contract."""
    return parse_fields(schema_of(request), raw)


def parse_fields(schema: AnswerSchema, raw: object, *, partial: bool = False) -> Outcome:
    """`parse_answer` for a schema at hand; `partial` checks only the fields present (proposals)."""
    if schema.scalar:
        only = schema.fields[0]
        given = raw.get("value") if isinstance(raw, Mapping) else raw
        outcome = _parse_field(only, given)
        if isinstance(outcome, str):
            return Rejected({only.name: outcome}, outcome)
        return Accepted(outcome.value)
    if not isinstance(raw, Mapping):
        names = ", ".join(f.name for f in schema.fields)
        message = f"Send an object with the fields {names}."
        return Rejected({"value": message}, message)
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for answer_field in schema.fields:
        if partial and answer_field.name not in raw:
            continue
        outcome = _parse_field(answer_field, raw.get(answer_field.name))
        if isinstance(outcome, str):
            errors[answer_field.name] = outcome
        else:
            values[answer_field.name] = outcome.value
    if errors:
        labels = {f.name: f.label for f in schema.fields}
        return Rejected(errors, " ".join(f"{labels[name]}: {message}" for name, message in errors.items()))
    return Accepted(values)


def _parse_field(answer_field: AnswerField, raw: object) -> Accepted | str:
    """The typed value, or a message saying what to enter."""
    if _blank(raw) and not answer_field.required:
        return Accepted(answer_field.default if answer_field.has_default else None)
    if answer_field.kind == "choice":
        return _pick_choice(raw, answer_field)
    converted = _CONVERTERS[answer_field.kind](raw, answer_field)
    if isinstance(converted, str) or answer_field.kind not in ("int", "float"):
        return converted
    return _check_bounds(converted.value, answer_field)


def _blank(raw: object) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


def _to_bool(raw: object, _: AnswerField) -> Accepted | str:
    if isinstance(raw, bool):
        return Accepted(raw)
    word = str(raw).strip().lower() if isinstance(raw, str | int) else ""
    if word in TRUE_WORDS:
        return Accepted(True)
    if word in FALSE_WORDS:
        return Accepted(False)
    return "Answer yes or no: approve (true) or reject (false)."


def _to_int(raw: object, _: AnswerField) -> Accepted | str:
    too_big = "Enter a whole number of at most 19 digits."
    if isinstance(raw, bool):
        return "Enter a whole number, like 42."
    if isinstance(raw, int):  # JSON ints are unbounded; Flyte's are 64-bit
        return Accepted(raw) if abs(raw) < MAX_INT else too_big
    if isinstance(raw, float):
        if not (math.isfinite(raw) and raw.is_integer()):
            return "Enter a whole number, like 42."
        return Accepted(int(raw)) if abs(raw) < MAX_INT else too_big
    text = raw.strip() if isinstance(raw, str) else ""
    if not text:
        return "Enter a whole number, like 42."
    if not _INT.fullmatch(text):
        return f"“{clip(text, 40)}” is not a whole number. Enter digits only, like 42."
    number = int(text)
    return Accepted(number) if abs(number) < MAX_INT else too_big


def _to_float(raw: object, _: AnswerField) -> Accepted | str:
    return _read_float(raw)


def finite_number(raw: object) -> float | None:
    """`raw` as the core reads a number (a JSON number, or ASCII digits; finite), else None."""
    found = _read_float(raw)
    return float(found.value) if isinstance(found, Accepted) else None


def _read_float(raw: object) -> Accepted | str:
    if isinstance(raw, bool):
        return "Enter a number, like 0.5."
    if isinstance(raw, int | float):
        try:
            number = float(raw)
        except OverflowError:  # an int too large for a float
            number = math.inf
    else:
        text = raw.strip() if isinstance(raw, str) else ""
        if not text:
            return "Enter a number, like 0.5."
        if _NOT_FINITE.fullmatch(text):
            number = math.nan
        elif len(text) > _FLOAT_CHARS:
            return f"Enter a number of at most {_FLOAT_CHARS} characters."
        elif _FLOAT.fullmatch(text):
            number = float(text)
        else:
            return f"“{clip(text, 40)}” is not a number. Enter something like 0.5 or 12."
    if not math.isfinite(number):
        return "Enter a finite number; NaN and infinity are not allowed."
    return Accepted(number)


def _to_str(raw: object, answer_field: AnswerField) -> Accepted | str:
    if raw is not None and not isinstance(raw, str):
        return "Enter text, not a number or a list."
    if raw is None or not raw.strip():
        return "Enter a value; the answer cannot be empty."
    limit = answer_field.max_length or MAX_TEXT_LENGTH
    text = raw.strip()
    if len(text) > limit:
        return f"Keep the answer under {limit} characters (it has {len(text)})."
    if "\x00" in text:
        return "The answer contains a NUL character; remove it and try again."
    return Accepted(text)


_CONVERTERS: dict[str, Callable[[object, AnswerField], Accepted | str]] = {
    "bool": _to_bool,
    "int": _to_int,
    "float": _to_float,
    "str": _to_str,
}


def _pick_choice(raw: object, answer_field: AnswerField) -> Accepted | str:
    """Exactly one of the choices, as given: the value converted to the choices' type, or text in any case."""
    choices = answer_field.choices or []
    converted = _CONVERTERS[answer_field.value_type](raw, answer_field)
    if isinstance(converted, Accepted):
        for choice in choices:
            if converted.value == choice and type(converted.value) is type(choice):
                return Accepted(choice)
    if isinstance(raw, str):
        folded = {c.casefold(): c for c in choices if isinstance(c, str)}
        if raw.strip().casefold() in folded:
            return Accepted(folded[raw.strip().casefold()])
    listed = ", ".join(input_text(c) for c in choices[:10]) + (", …" if len(choices) > 10 else "")
    return f"Choose one of: {listed}."


def input_text(value: object) -> str:
    """A value (a choice, a proposal) as a form or chat control holds it; `parse_answer` reads it back."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_number(value)
    return str(value)


def _check_bounds(value: float, answer_field: AnswerField) -> Accepted | str:
    low, high = answer_field.min_value, answer_field.max_value
    if (low is not None and value < low) or (high is not None and value > high):
        return number_hint(answer_field.kind, low, high)
    return Accepted(value)


def range_text(low: float | None, high: float | None) -> str | None:
    """The bounds in words ("from 1 to 10", "at least 0"), shared by every surface's hints."""
    if low is not None and high is not None:
        return f"from {format_number(low)} to {format_number(high)}"
    if low is not None:
        return f"of at least {format_number(low)}"
    if high is not None:
        return f"of at most {format_number(high)}"
    return None


def number_hint(kind: str, low: float | None, high: float | None) -> str:
    """ "Enter a whole number from 1 to 10." — the rejection and every input's hint."""
    what = "a whole number" if kind == "int" else "a number"
    bounds = range_text(low, high)
    return f"Enter {what} {bounds}." if bounds else f"Enter {what}."


# -- for people --------------------------------------------------------------------------------


def display(value: object) -> str:
    """A scalar event's answer as people read it: bools as the button pressed (Approve/Reject)."""
    if isinstance(value, bool):
        return "Approve" if value else "Reject"
    return field_text(value)


def field_text(value: object) -> str:
    """One field's value as people read it: Yes/No, 3 not 3.0, "—" for none."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, float):
        return format_number(value)
    return str(value)


def describe_answer(schema: AnswerSchema, value: object) -> list[tuple[str, str]]:
    """`(label, text)` per field: [("Answer", "Approve")] for a scalar bool, else each field's label."""
    if schema.scalar:
        return [("Answer", display(value))]
    given = value if isinstance(value, Mapping) else {}
    return [(f.label, field_text(given.get(f.name))) for f in schema.fields]


def context_rows(request: Request) -> list[tuple[str, str]]:
    """The event's `context` as (label, text) rows: scalars as `field_text` shows them, nested
    values as JSON. Nothing is clipped or escaped here: each surface does both its own way."""
    rows = []
    for key, value in (request.context or {}).items():
        plain = isinstance(value, str | bool | int | float) or value is None
        rows.append((str(key), field_text(value) if plain else json.dumps(value, ensure_ascii=False)))
    return rows


def answer_text(schema: AnswerSchema, value: object) -> str:
    """The answer in one line: "Approve", or "Approved: Yes · Amount: 120 · Notes: —"."""
    pairs = describe_answer(schema, value)
    if schema.scalar:
        return pairs[0][1]
    return " · ".join(f"{label}: {text}" for label, text in pairs)


def approval_field(schema: AnswerSchema) -> AnswerField | None:
    """The bool answered with Approve/Reject buttons, if the answer has that shape: a scalar bool,
    or one bool plus only optional text fields ("approve, with a reason", asked for after the click)."""
    bools = [f for f in schema.fields if f.kind == "bool"]
    others = [f for f in schema.fields if f.kind != "bool"]
    if len(bools) == 1 and all(f.kind == "str" and not f.required for f in others):
        return bools[0]
    return None


def rejects(request: Request | None, response: Response) -> bool:
    """Whether an answer says Reject: the event's Approve/Reject bool (`approval_field`) answered False.

    Without the request (an outcome settled on its own), a scalar bool answered False does. An event
    whose `answer_schema` the bot cannot use has no Approve/Reject.
    """
    if request is None:
        return response.data_type == "bool" and response.value is False
    try:
        schema = schema_of(request)
    except StoreError:
        return False
    approval = approval_field(schema)
    if approval is None:
        return False
    if schema.scalar:
        return response.value is False
    return isinstance(response.value, Mapping) and response.value.get(approval.name) is False


def prefill(request: Request) -> dict[str, Any]:
    """Each field's proposed value: the request's `initial` where given, else the field's default."""
    schema = schema_of(request)
    proposed: Mapping[str, Any]
    if schema.scalar:
        proposed = {} if request.initial is None else {"value": request.initial}
    else:
        proposed = request.initial if isinstance(request.initial, Mapping) else {}
    values: dict[str, Any] = {}
    for answer_field in schema.fields:
        if answer_field.name in proposed:
            values[answer_field.name] = proposed[answer_field.name]
        elif answer_field.has_default and answer_field.default is not None:
            values[answer_field.name] = answer_field.default
    return values
