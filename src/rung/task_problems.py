"""Where a problem in rung.toml is, and how to say it: pydantic's errors, the checks across
a table's keys it skipped, and the files [task] names that are not there, each with the line
that sets it, gathered so one run of a command lists them all."""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from rung.errors import ConfigError, ProblemList, RungError
from rung.eval.json_metrics import json_schema_metric

if TYPE_CHECKING:
    from rung.task import TaskSpec


def missing_files(raw: dict[str, Any], path: Path, text: str) -> list[RungError]:
    """The data file, corpus folder and schema file [task] names that are not there. Read from
    the raw table, so they are reported beside the problems pydantic finds, not a round later."""
    table = raw.get("task") if isinstance(raw.get("task"), dict) else {}
    root = path.resolve().parent
    problems: list[RungError] = []
    wanted = (("data", Path.exists, "data file", "set [task] data to a path relative to rung.toml"),
              ("corpus", Path.is_dir, "corpus folder", "set [task] corpus to a folder of "
               "documents relative to rung.toml, or remove it"),
              ("schema", Path.is_file, "schema file", "set [task] schema to a JSON Schema file "
               "relative to rung.toml"))
    for key, there, what, fix in wanted:
        value = table.get(key)
        if isinstance(value, str) and value and not there((root / value).resolve()):
            problems.append(ConfigError(
                f"{what} '{value}' not found (looked at {(root / value).resolve()})",
                file=path, line=line_of(text, "task", key), fix=fix))
    return problems


def all_of(*found: RungError | list[RungError]) -> RungError:
    problems: list[RungError] = []
    for item in found:
        problems.extend(item.problems if isinstance(item, ProblemList)
                        else item if isinstance(item, list) else [item])
    if len(problems) == 1:
        return problems[0]
    return ProblemList(problems, file=problems[0].file)


def check_schema(spec: "TaskSpec", text: str, path: Path) -> None:
    line = line_of(text, "task", "schema")
    schema_path = spec.root / str(spec.task.schema_file)
    try:
        schema = spec.json_schema
    except json.JSONDecodeError as err:
        raise ConfigError(f"{schema_path} is not valid JSON: {err}", file=path, line=line,
                          fix="fix the schema file") from None
    try:
        json_schema_metric(schema or {})
    except ConfigError as err:
        raise ConfigError(err.message, file=path, line=line, fix=err.fix) from None


def problems_from(err: ValidationError, text: str, path: Path, raw: dict[str, Any],
                  spec: type[BaseModel]) -> RungError:
    problems: list[ConfigError] = []
    for e in [*err.errors(), *_unrun_table_checks(err, raw, spec)]:
        loc = [str(p) for p in e["loc"] if not isinstance(p, int)]
        section = loc[0] if loc else ""
        key = loc[1] if len(loc) > 1 else ""
        if section and not key:  # a check across a table's keys: the key its message names
            key = _named_key(e["msg"], raw.get(section))
            loc = loc + [key] if key else loc
        dotted = ".".join(loc) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            close = _close_key(spec, loc)
            msg = f"unknown key '{dotted}'" + (f" (did you mean '{close}'?)" if close else "")
            fix = "remove it or check its spelling (see README)"
        elif e["type"] == "string_type" and isinstance(e.get("input"), (int, float, bool)):
            value = (raw.get(section) or {}).get(key) if isinstance(raw.get(section), dict) \
                else None
            if isinstance(value, list):  # labels = [0, 1]: said once, for the whole list
                msg = f"{dotted}: holds numbers where text is wanted"
                fix = f"quote each one: {key} = {json.dumps([str(v) for v in value])}"
            else:
                msg = f"{dotted}: {e['input']!r} is a number where text is wanted"
                fix = f"quote it: {key} = \"{e['input']}\""
        elif e["type"] == "missing":
            msg, fix = (f"missing key '{dotted}'", f"add '{key} = ...' under [{section}]") \
                if key else (f"missing table [{section}]",
                             f"add a [{section}] table (the README's rung.toml shows its keys)")
        else:
            fix = f"change '{dotted}'"
            msg = f"{dotted}: {msg}"
        line = line_of(text, section, key) if key else line_of_section(text, section)
        problem = ConfigError(msg, file=path, line=line, fix=fix)
        if all(str(problem) != str(seen) for seen in problems):  # labels [0, 1]: once
            problems.append(problem)
    if len(problems) == 1:
        return problems[0]
    return ProblemList(list(problems), file=path)


def _unrun_table_checks(err: ValidationError, raw: dict[str, Any],
                        spec: type[BaseModel]) -> list[dict[str, Any]]:
    """pydantic skips a table's checks across keys when one of its keys failed, so a wrong
    metric would be reported only once the target was mended. Run them here on the keys that
    passed; a check that needs a failed key is skipped (neither the user's value nor the
    default would give a true answer). Errors come in pydantic's own shape."""
    failed: dict[str, set[str]] = {}
    for e in err.errors():
        loc = [str(p) for p in e["loc"] if not isinstance(p, int)]
        if len(loc) >= 2:
            failed.setdefault(loc[0], set()).add(loc[1])
    found = []
    for section, bad_keys in failed.items():
        field = spec.model_fields.get(section)
        table = raw.get(section)
        model = field.annotation if field is not None else None
        if not isinstance(table, dict) or not isinstance(model, type) \
                or not issubclass(model, BaseModel):
            continue
        checks = [d.func for d in model.__pydantic_decorators__.model_validators.values()
                  if d.info.mode == "after"]
        partial = model.model_construct(**{k: v for k, v in table.items() if k not in bad_keys})
        for key in bad_keys:  # not its default either: a check that reads it cannot be made
            partial.__dict__.pop(key, None)
        for check in checks:
            try:
                check(partial)
            except ValueError as problem:
                found.append({"loc": (section,), "msg": str(problem), "type": "value_error"})
            except Exception:  # a required key that failed, a value of the wrong type: no
                continue  # check can be made without it, and pydantic named it already
    return found


def _close_key(spec: type[BaseModel], loc: list[str]) -> str:
    """The known key (or table) an unknown one is likely a misspelling of, or ""."""
    model: Any = spec
    for part in loc[:-1]:
        field = model.model_fields.get(part) if isinstance(model, type) and issubclass(
            model, BaseModel) else None
        model = field.annotation if field is not None else None
    if not (isinstance(model, type) and issubclass(model, BaseModel)) or not loc:
        return ""
    names = [field.alias or name for name, field in model.model_fields.items()
             if name != "path"]
    close = difflib.get_close_matches(loc[-1], names, n=1, cutoff=0.7)
    return close[0] if close else ""


def _named_key(message: str, table: Any) -> str:
    """The first of the table's keys the message names, as a word ("metric 'x' does not fit"):
    where a check across keys points the user."""
    if not isinstance(table, dict):
        return ""
    found = [(m.start(), k) for k in table for m in [re.search(rf"\b{re.escape(k)}\b", message)]
             if m is not None]
    return min(found)[1] if found else ""


def line_of_section(text: str, section: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() == f"[{section}]":
            return number
    return None


def line_of(text: str, section: str, key: str) -> int | None:
    """The line where `key` is set inside [section]; tomllib keeps no positions."""
    current = ""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            current = stripped.strip("[]").strip()
        elif current == section and re.match(rf"{re.escape(key)}\s*=", stripped):
            return number
    return line_of_section(text, section)


def line_from_message(message: str) -> int | None:
    match = re.search(r"line (\d+)", message)
    return int(match.group(1)) if match else None
