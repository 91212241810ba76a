"""The seeds' "consistent format: validate JSON schema", asked of an extraction task's reference
outputs: every one parses as JSON and, when the task has a schema, meets it.

A tune learns to write what its examples write, so a reference that is prose, a truncated
object or a field of the wrong type teaches exactly that; and an expected answer that is not
JSON cannot be scored by json_match at all. The record-level `format` check cannot see this:
the line is a valid record whose answer is the problem.
"""

from __future__ import annotations

from collections.abc import Sequence

from rung.data.audit.base import CheckResult
from rung.data.example import Example

SHOWN = 3  # lines quoted in the finding, with what is wrong with each


def json_outputs(examples: Sequence[Example], schema: dict | None) -> CheckResult:
    """Fails on any reference output that is not JSON or does not meet `schema`: each is a
    line to correct or drop, and the finding names the first few with the reason."""
    from rung.eval.json_metrics import json_valid, parse_json_answer, schema_problem

    not_json: list[int] = []
    off_schema: list[tuple[int, str]] = []
    for ex in examples:
        if not json_valid("", ex.output):
            not_json.append(ex.line)
        elif schema is not None and (problem := schema_problem(
                schema, parse_json_answer(ex.output))) is not None:
            off_schema.append((ex.line, problem))
    details = {"checked": len(examples), "not_json": len(not_json),
               "off_schema": len(off_schema), "schema": schema is not None}
    if not not_json and not off_schema:
        against = " and meets the schema" if schema is not None else ""
        return CheckResult("json-outputs", "pass",
                           f"every one of {len(examples)} outputs is JSON{against}",
                           details=details)
    parts = []
    if not_json:
        lines = ", ".join(str(line) for line in not_json[:SHOWN])
        parts.append(f"{len(not_json)} outputs are not JSON (line {lines}"
                     f"{', ...' if len(not_json) > SHOWN else ''})")
    if off_schema:
        shown = "; ".join(f"line {line}: {why}" for line, why in off_schema[:SHOWN])
        parts.append(f"{len(off_schema)} do not meet the schema ({shown}"
                     f"{'; ...' if len(off_schema) > SHOWN else ''})")
    fix = "make every output one JSON value (no prose around it)"
    if off_schema:
        fix += " that meets [task] schema, or correct the schema if the data is right"
    fix += "; or drop those lines"
    rows = sorted(not_json + [line for line, _ in off_schema])
    return CheckResult("json-outputs", "fail", "; ".join(parts), fix, rows=rows,
                       details=details)
