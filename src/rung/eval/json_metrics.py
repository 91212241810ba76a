"""JSON answers: parse them, and score them as valid, equal or conforming to a schema.

Why apart from text_metrics.py: an extraction task's answer is a value, not prose, so it is
compared as parsed JSON (key order irrelevant, true is not 1), never by overlapping tokens.
The same parsing decides whether an answer breaks the task's output format (`failure_kind`),
and tells the audit where an expected answer breaks the schema (`schema_problem`).

jsonschema is imported on first use, and JSON Schema `$ref`s are resolved only within the
schema itself: nothing here reaches the network.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any, Sequence

from rung.errors import ConfigError, DataError
from rung.eval.metric_spec import KINDS, MetricSpec


# --------------------------------------------------------------------------- parsing and equality

_FENCE = re.compile(r"\A```[ \t]*(?:json)?[ \t]*\n?(.*?)\n?[ \t]*```\Z", re.DOTALL | re.IGNORECASE)
_NOT_PARSED = object()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json_answer(text: str) -> Any:
    """The JSON value in a model's answer, or `_NOT_PARSED`.

    Accepted: a JSON text with whitespace around it, or the whole answer being one fenced block
    (```json ... ``` or ``` ... ```), which small models often emit. Not accepted: prose before
    or after the JSON or the fence, trailing garbage, and NaN/Infinity (Python's json module
    takes them, but they are not JSON and strict parsers downstream reject them).
    """
    text = text.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError:  # JSONDecodeError is a ValueError
        return _NOT_PARSED


def json_valid(expected: str, predicted: str) -> float:
    """1.0 if the answer parses as JSON (surrounding whitespace and a ```json fenced block are
    allowed, see `parse_json_answer`), else 0.0. `expected` is not used."""
    return float(parse_json_answer(predicted) is not _NOT_PARSED)


def _json_equal(a: Any, b: Any) -> bool:
    """Equality of parsed JSON values: key order is irrelevant, list order is not, and true/false
    are not the numbers 1/0 (Python's == says True == 1). 1 and 1.0 are the same number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return False
    return a == b


def json_match(expected: str, predicted: str) -> float:
    """1.0 when the answer's JSON equals the expected JSON as parsed values (object key order
    and whitespace irrelevant, list order relevant), else 0.0. An answer that does not parse
    scores 0; an expected answer that does not parse is a data error."""
    want = parse_json_answer(expected)
    if want is _NOT_PARSED:
        raise DataError(
            f"expected answer is not JSON: {expected[:80]!r}",
            fix="make every expected answer of an extraction task scored with json_match valid JSON",
        )
    got = parse_json_answer(predicted)
    return float(got is not _NOT_PARSED and _json_equal(want, got))


# --------------------------------------------------------------------------- JSON Schema


@functools.lru_cache(maxsize=32)
def _validator_for(schema_json: str) -> Any:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    schema = json.loads(schema_json)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as err:
        raise ConfigError(
            f"the JSON Schema is not valid: {err.message} (at {err.json_path})",
            fix="correct the schema so it is a valid JSON Schema (Draft 2020-12); "
            "check it at that location against https://json-schema.org/draft/2020-12/schema",
        ) from None
    return Draft202012Validator(schema)


def _validator(schema: dict) -> Any:
    try:
        key = json.dumps(schema, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise ConfigError(
            f"the JSON Schema cannot be written as JSON: {err}",
            fix="use only JSON values (objects, arrays, strings, numbers, true/false/null) in the schema",
        ) from None
    return _validator_for(key)


def _conforms(schema: dict, value: Any) -> bool:
    from referencing.exceptions import Unresolvable

    validator = _validator(schema)
    try:
        return validator.is_valid(value)
    except Unresolvable as err:
        raise ConfigError(
            f"the JSON Schema has a $ref that cannot be resolved: {err}",
            fix="point every $ref inside the schema (e.g. #/$defs/name); rung fetches no remote schemas",
        ) from None


def schema_problem(schema: dict, value: Any) -> str | None:
    """Where and how `value` first breaks `schema` ("$.age: 'x' is not of type 'integer'"),
    or None when it conforms: what the audit tells a person to correct."""
    from referencing.exceptions import Unresolvable

    try:
        error = next(iter(_validator(schema).iter_errors(value)), None)
    except Unresolvable as err:
        raise ConfigError(
            f"the JSON Schema has a $ref that cannot be resolved: {err}",
            fix="point every $ref inside the schema (e.g. #/$defs/name); rung fetches no remote schemas",
        ) from None
    return None if error is None else f"{error.json_path}: {error.message}"


def json_schema_conforms(expected: str, predicted: str, *, schema: dict | None = None) -> float:
    """1.0 if the answer is JSON (as `json_valid`) and conforms to `schema`, else 0.0."""
    if schema is None:
        raise ConfigError(
            "the json_schema metric needs a JSON Schema",
            fix="give the task a schema, and build the metric with json_schema_metric(schema)",
        )
    value = parse_json_answer(predicted)
    return float(value is not _NOT_PARSED and _conforms(schema, value))


def json_schema_metric(schema: dict) -> MetricSpec:
    """The json_schema metric for this schema (Draft 2020-12, checked now: a bad schema raises
    ConfigError)."""
    _validator(schema)
    return MetricSpec(
        name="json_schema",
        kinds=("extraction",),
        per_example=functools.partial(json_schema_conforms, schema=schema),
        description="1 if the answer is JSON that conforms to the task's JSON Schema, else 0",
        binary=True,
    )


# --------------------------------------------------------------------------- format check


def failure_kind(kind: str, predicted: str, labels: Sequence[str], schema: dict | None) -> str | None:
    """"format" when the answer breaks the task's output format, else None.

    classification: the answer, stripped, is not exactly one of `labels`.
    extraction: the answer is not JSON (as `json_valid`), or breaks `schema` when one is given.
    generation: there is no format to break. Wrong but well-formed answers are the caller's call.
    """
    if kind == "classification":
        return None if predicted.strip() in set(labels) else "format"
    if kind == "extraction":
        value = parse_json_answer(predicted)
        if value is _NOT_PARSED:
            return "format"
        if schema is not None and not _conforms(schema, value):
            return "format"
        return None
    if kind == "generation":
        return None
    raise ConfigError(f"unknown task kind {kind!r}", fix=f"use one of: {', '.join(KINDS)}")
