"""Read and write examples in the file formats people already have.

Users bring data shaped for whatever tool they used last (OpenAI or Anthropic fine-tuning,
Alpaca, ShareGPT, a spreadsheet, a Hugging Face dataset of text/label or prompt/completion
lines), so rung reads all of them into `Example` and can write any of them back. Bad data
stops the run at the first bad line with a `DataError` naming the file, the line and the fix:
a row dropped silently would skew every score computed from the rest.

Each reader turns one record (a JSON object, or a CSV row as a dict) into one Example and each
writer does the reverse; they are registered in `_READERS` and `_WRITERS`, so a new format is
one function each. Keys a format does not own travel in `Example.extra`, so ids and group keys
survive conversion.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rung.data.example import Example, Message, shared_system, with_shared_system
from rung.data.records import CSV_PAIRS, SEE, csv_records, error, json_kind, json_records
from rung.errors import DataError, ProblemList
from rung.files import atomic_write

# JSON lines of one input and its output under a CSV pair's keys, as Hugging Face datasets
# and TRL's prompt-completion data have them: each pair is a format of its own, so a file is
# written back with the keys it was read with.
PAIRS = {f"{source}-{target}": (source, target) for source, target in CSV_PAIRS}
FORMATS = ("openai", "anthropic", "alpaca", "sharegpt", "csv", *PAIRS)

_CHAT = ("openai", "anthropic")
# The keys each format owns when writing; any other key of a record goes to Example.extra.
_CORE: dict[str, tuple[str, ...]] = {
    "openai": ("messages",),
    "anthropic": ("messages", "system"),
    "alpaca": ("instruction", "input", "output"),
    "sharegpt": ("conversations",),
    "csv": ("system", "input", "output"),
} | {name: ("system", *pair) for name, pair in PAIRS.items()}
ROLES: dict[str, dict[str, str]] = {
    # "developer" is OpenAI's newer name for the system message (its o1 models and later)
    "openai": {"system": "system", "developer": "system", "user": "user",
               "assistant": "assistant"},
    "anthropic": {"user": "user", "assistant": "assistant"},
    "sharegpt": {"system": "system", "human": "user", "gpt": "assistant",
                 "user": "user", "assistant": "assistant"},
}
_SHAREGPT_FROM = {"system": "system", "user": "human", "assistant": "gpt"}


def read_examples(path: str | Path, fmt: str | None = None) -> list[Example]:
    """Read every example in `path`: either the whole file is valid or nothing is returned."""
    return _scan(_existing(path), _known(fmt, path) if fmt is not None else None)[1]


def detect_format(path: str | Path) -> str:
    """Name the format of `path`; it reads the whole file, since one odd line makes a file mixed."""
    return _scan(_existing(path), None)[0]


def write_examples(examples: Sequence[Example], path: str | Path, fmt: str) -> None:
    """Write all examples or none: every record is built before the file is touched."""
    path = Path(path)
    fmt = _known(fmt, path)
    records = [_with_extra(_WRITERS[fmt](ex, path), ex, fmt, path) for ex in examples]
    if fmt == "csv":
        text = _csv_text(records)
    else:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    atomic_write(path, text)  # an interrupted write must not leave a half file


def convert(src: str | Path, dst: str | Path, fmt: str) -> int:
    """Convert `src` (format detected) to `dst` in `fmt`; return how many examples were written."""
    examples = read_examples(src)
    write_examples(examples, dst, fmt)
    return len(examples)


# --- reading: files to records ---------------------------------------------------------------


def scan_file(path: str | Path, fmt: str | None = None) -> ScanResult:
    """Read every example that can be read and collect the problems of the lines that cannot.

    The audit uses this to report every bad line at once; `read_examples` stops at the first.
    """
    path = _existing(path)
    problems: list[DataError] = []
    fmt, examples = _scan(path, _known(fmt, path) if fmt is not None else None, problems)
    return ScanResult(fmt, examples, problems)


@dataclass(frozen=True)
class ScanResult:
    format: str
    examples: list[Example]
    problems: list[DataError]  # one per unreadable line, in file order


def _scan(path: Path, fmt: str | None,
          problems: list[DataError] | None = None) -> tuple[str, list[Example]]:
    """Detect and read in one pass, so the first bad line is reported whatever is wrong with it.

    With `problems` given, a bad line is appended there and skipped instead of raised."""
    if fmt == "csv" or (fmt is None and path.suffix.lower() == ".csv"):
        fmt, records = "csv", csv_records(path)
    else:
        records = json_records(path)
    detector = _Detector(path)
    examples = []
    for line, record in records:
        try:
            if isinstance(record, DataError):
                raise record
            examples.append(_READERS[fmt or detector.see(line, record)](path, line, record))
        except DataError as problem:
            if problems is None:
                raise
            problems.append(problem)
    if not examples and problems:
        raise ProblemList(problems, file=path, shown=20)
    if not examples:
        raise DataError("no examples in file", file=path, fix="add at least one example: one JSON "
                        "object per line, or CSV rows under a header row; " + SEE)
    # a system prompt on every line is the data's, not any one input's (see shared_system)
    return fmt or detector.format, with_shared_system(examples, shared_system(examples))


class _Detector:
    """Settles a file's format line by line.

    Plain user/assistant chat lines fit openai and anthropic alike, so they only pin the chat
    family; the first line only one format fits pins the format.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.settled: tuple[str, int] | None = None
        self.chat_line: int | None = None

    @property
    def format(self) -> str:
        return self.settled[0] if self.settled else "openai"

    def see(self, line: int, record: dict[str, Any]) -> str:
        fmt, specific = _classify(self.path, line, record)
        label = fmt if specific else "chat"
        ref = self.settled or (("chat", self.chat_line) if self.chat_line else None)
        if ref and not (label == ref[0] or {label, ref[0]} in ({"chat", "openai"},
                                                               {"chat", "anthropic"})):
            raise error(self.path, line, f"mixed formats: line {line} is {_describe(label)} but "
                         f"line {ref[1]} set the file's format to {_describe(ref[0])}",
                         "keep one format per file: convert the odd lines or split the file "
                         "(openai puts the system prompt in a system message, anthropic in a "
                         'top-level "system" key); ' + SEE)
        if specific and not self.settled:
            self.settled = (fmt, line)
        if not specific and self.chat_line is None:
            self.chat_line = line
        return fmt


def _classify(path: Path, line: int, record: dict[str, Any]) -> tuple[str, bool]:
    """Return the format a record belongs to, and whether no other format could read it."""
    if "messages" in record:
        items = record["messages"] if isinstance(record["messages"], list) else []
        items = [m for m in items if isinstance(m, dict)]
        openai = any(m.get("role") in ("system", "developer") for m in items)
        anthropic = "system" in record or any(isinstance(m.get("content"), list) for m in items)
        if openai and anthropic:
            raise error(path, line, "mixed formats within one record: a system message "
                         '(openai) and a top-level "system" or content blocks (anthropic)',
                         "use one convention: openai (system message, string contents) or "
                         'anthropic (top-level "system")')
        return ("anthropic" if anthropic else "openai"), openai or anthropic
    if "conversations" in record:
        return "sharegpt", True
    if "instruction" in record and "output" in record:
        return "alpaca", True
    pair = next((name for name, keys in PAIRS.items() if set(keys) <= record.keys()), None)
    if pair is not None:
        return pair, True
    half = next((f': it has "{s}" but no "{t}"' for s, t in CSV_PAIRS if s in record), "")
    raise error(path, line, f"record with keys {sorted(record)} matches no format{half}",
                 'use {"messages": [...]} (openai, anthropic), {"instruction", "input", '
                 '"output"} (alpaca), {"conversations": [...]} (sharegpt) or an input with '
                 'its output: {"input", "output"}, {"prompt", "completion"} or {"text", '
                 '"label"}; ' + SEE)


# --- reading: records to examples ------------------------------------------------------------


def _from_openai(path: Path, line: int, record: dict[str, Any]) -> Example:
    messages = _turns(path, line, record, "openai", "messages", ("role", "content"))
    return _chat_example(path, line, messages, _extra(record, _CORE["openai"]))


def _from_anthropic(path: Path, line: int, record: dict[str, Any]) -> Example:
    messages = _turns(path, line, record, "anthropic", "messages", ("role", "content"))
    if "system" in record:
        system = _text(path, line, record["system"], 'top-level "system"', blocks=True)
        messages.insert(0, Message("system", system))
    return _chat_example(path, line, messages, _extra(record, _CORE["anthropic"]))


def _from_sharegpt(path: Path, line: int, record: dict[str, Any]) -> Example:
    messages = _turns(path, line, record, "sharegpt", "conversations", ("from", "value"))
    return _chat_example(path, line, messages, _extra(record, _CORE["sharegpt"]))


def _from_alpaca(path: Path, line: int, record: dict[str, Any]) -> Example:
    for key in ("instruction", "output"):
        if key not in record:
            raise error(path, line, f'alpaca record has no "{key}"',
                         'alpaca needs "instruction" and "output", "input" is optional; ' + SEE)
    instruction = _text(path, line, record["instruction"], '"instruction"')
    output = _text(path, line, record["output"], '"output"')
    given = record.get("input")
    if given is None:
        given = ""
    if not isinstance(given, str):
        raise error(path, line, f'"input" must be a string, got {json_kind(given)}',
                     'put the input in a JSON string, or use "" when there is none')
    if given.strip():  # with an input, the instruction plays the system prompt
        messages = [Message("system", instruction), Message("user", given)]
    else:
        messages = [Message("user", instruction)]
    messages.append(Message("assistant", output))
    return Example(tuple(messages), line=line, extra=_extra(record, _CORE["alpaca"]))


def _from_csv(path: Path, line: int, row: dict[str, Any]) -> Example:
    source, target = next(pair for pair in CSV_PAIRS if set(pair) <= row.keys())
    messages = [Message("user", _text(path, line, row[source], f'"{source}" cell')),
                Message("assistant", _text(path, line, row[target], f'"{target}" cell'))]
    if row.get("system", "").strip():  # the system column is optional per row too
        messages.insert(0, Message("system", row["system"]))
    return Example(tuple(messages), line=line, extra=_extra(row, (source, target, "system")))


def _pair_reader(name: str) -> Callable[[Path, int, dict[str, Any]], Example]:
    source, target = PAIRS[name]

    def read(path: Path, line: int, record: dict[str, Any]) -> Example:
        missing = [f'"{key}"' for key in (source, target) if key not in record]
        if missing:
            raise error(path, line, f"{name} record has no {' or '.join(missing)}",
                        f'write {{"{source}": ..., "{target}": ...}} on every line; ' + SEE)
        conversation = next((k for k in (source, target) if isinstance(record[k], list)), None)
        if conversation is not None:  # TRL's conversational prompt-completion
            raise error(path, line, f'"{conversation}" is a list of messages, not a text',
                        'write the whole conversation as {"messages": [...]} (openai), or '
                        f'"{conversation}" as a string; ' + SEE)
        if isinstance(record[target], (int, float)):  # a dataset's class number
            raise error(path, line, f'"{target}" must be a string, got '
                        f"{json_kind(record[target])}", f'write the label\'s name, e.g. '
                        f'"{target}": "refund": the models read names, not class numbers')
        messages = [Message("user", _text(path, line, record[source], f'"{source}"')),
                    Message("assistant", _text(path, line, record[target], f'"{target}"'))]
        system = record.get("system")
        if system is not None and not (isinstance(system, str) and not system.strip()):
            messages.insert(0, Message("system", _text(path, line, system, '"system"')))
        return Example(tuple(messages), line=line, extra=_extra(record, _CORE[name]))

    return read


def _turns(path: Path, line: int, record: dict[str, Any], fmt: str, key: str,
           fields: tuple[str, str]) -> list[Message]:
    role_key, content_key = fields
    items = record.get(key)
    if not isinstance(items, list):
        problem = f'"{key}" must be a list, got {json_kind(items)}' if key in record else \
            f'{fmt} record has no "{key}"'
        raise error(path, line, problem, f'write {{"{key}": [{{"{role_key}": ..., '
                     f'"{content_key}": ...}}, ...]}}; ' + SEE)
    roles = ROLES[fmt]
    messages = []
    for n, item in enumerate(items, 1):
        missing = [f'"{k}"' for k in fields if not isinstance(item, dict) or k not in item]
        if missing:
            raise error(path, line, f"message {n} has no {' or '.join(missing)}",
                         f'every message needs "{role_key}" and "{content_key}"; ' + SEE)
        role = item[role_key]
        if not isinstance(role, str) or role not in roles:
            hint = ('; anthropic keeps the system prompt in a top-level "system" key'
                    if fmt == "anthropic" and role == "system" else "")
            raise error(path, line, f'message {n} has unknown {role_key} {json.dumps(role)}',
                         f'set "{role_key}" to one of: {", ".join(roles)}{hint}')
        content = _text(path, line, item[content_key], f'message {n} "{content_key}"',
                        blocks=fmt == "anthropic")
        messages.append(Message(roles[role], content))
    targets = [n for n, item in enumerate(items, 1) if roles[item[role_key]] == "assistant"]
    if targets and items[targets[-1] - 1].get("weight") == 0:
        # OpenAI's "do not train on this turn"; the last assistant turn is what rung trains
        # on and scores, so reading on would train on what the file says not to
        raise error(path, line, f'message {targets[-1]}, the assistant turn rung trains on '
                    'and scores, has "weight": 0', "remove the example, or the weight if the "
                    "turn is to be learned")
    return messages


def text_of_blocks(blocks: list[Any]) -> str | None:
    """Content given as blocks ({"type": "text", "text": ...}) as one text, the blocks joined
    with a newline; None when a block is not text. The data reader and `rung serve` both read
    content this way, so a conversation sent in parts is the input measured for it."""
    if not all(isinstance(b, dict) and b.get("type") == "text"
               and isinstance(b.get("text"), str) for b in blocks):
        return None
    return "\n".join(b["text"] for b in blocks)


def _text(path: Path, line: int, value: Any, what: str, blocks: bool = False) -> str:
    if blocks and isinstance(value, list):  # anthropic content blocks; only text is trainable
        value = text_of_blocks(value)
        if value is None:
            raise error(path, line, f"{what} has a block that is not a text block",
                         'use only {"type": "text", "text": "..."} blocks')
    if not isinstance(value, str):
        raise error(path, line, f"{what} must be a string, got {json_kind(value)}",
                     f"put the text of {what} in a JSON string")
    if not value.strip():
        raise error(path, line, f"{what} is empty", "write the text, or remove the example")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:  # JSON's "\ud800" escape parses to a lone surrogate
        raise error(path, line, f"{what} holds {value[e.start]!r}, half of a surrogate pair "
                    "that is no character", "write the character itself (or both halves of "
                    "its \\ud83d\\ude80-style escape), or remove it") from None
    return value


def _chat_example(path: Path, line: int, messages: list[Message], extra: dict[str, Any]) -> Example:
    """Enforce the shape the ladder relies on: the last turn is an assistant target."""
    roles = [m.role for m in messages]
    if "user" not in roles:
        raise error(path, line, "no user turn", "add the user message the assistant answers")
    if "assistant" not in roles:
        raise error(path, line, "no assistant turn (the target)",
                     "add the assistant reply the model should learn to give")
    body = roles[1:] if roles[0] == "system" else roles
    if body != [("user", "assistant")[i % 2] for i in range(len(body))] or body[-1] != "assistant":
        raise error(path, line, "roles in invalid order: " + " -> ".join(roles),
                     "use an optional system message first, then user and assistant turns "
                     "alternating, starting with user and ending with assistant")
    return Example(tuple(messages), line=line, extra=extra)


# --- writing ---------------------------------------------------------------------------------


def _to_openai(ex: Example, path: Path) -> dict[str, Any]:
    return {"messages": [{"role": m.role, "content": m.content} for m in ex.messages]}


def _to_anthropic(ex: Example, path: Path) -> dict[str, Any]:
    record: dict[str, Any] = {"messages": [{"role": m.role, "content": m.content}
                                           for m in ex.messages if m.role != "system"]}
    if ex.system is not None:
        record["system"] = ex.system
    return record


def _to_alpaca(ex: Example, path: Path) -> dict[str, Any]:
    system, user, assistant = _single_turn(ex, "alpaca", path)
    if system is None:
        return {"instruction": user, "input": "", "output": assistant}
    return {"instruction": system, "input": user, "output": assistant}


def _to_sharegpt(ex: Example, path: Path) -> dict[str, Any]:
    return {"conversations": [{"from": _SHAREGPT_FROM[m.role], "value": m.content}
                              for m in ex.messages]}


def _to_csv(ex: Example, path: Path) -> dict[str, Any]:
    system, user, assistant = _single_turn(ex, "csv", path)
    return ({} if system is None else {"system": system}) | {"input": user, "output": assistant}


def _pair_writer(name: str) -> Callable[[Example, Path], dict[str, Any]]:
    source, target = PAIRS[name]

    def write(ex: Example, path: Path) -> dict[str, Any]:
        system, user, assistant = _single_turn(ex, name, path)
        return ({} if system is None else {"system": system}) | {source: user,
                                                                 target: assistant}

    return write


def _single_turn(ex: Example, fmt: str, path: Path) -> tuple[str | None, str, str]:
    """alpaca, csv and the pairs hold one exchange; refusing is better than keeping only the
    last turn."""
    roles = [m.role for m in ex.messages]
    if roles == ["user", "assistant"]:
        return None, ex.messages[0].content, ex.messages[1].content
    if roles == ["system", "user", "assistant"]:
        return ex.messages[0].content, ex.messages[1].content, ex.messages[2].content
    raise DataError(f"cannot write {path} as {fmt}: {_source(ex)} has {roles.count('user')} user "
                    f"turn(s) ({' -> '.join(roles)}), and {fmt} holds one exchange", line=ex.line,
                    fix="write it as openai or sharegpt, which keep whole conversations")


def _with_extra(record: dict[str, Any], ex: Example, fmt: str, path: Path) -> dict[str, Any]:
    clash = sorted(set(ex.extra) & set(_CORE[fmt]))
    if clash:
        raise DataError(f"cannot write {path} as {fmt}: {_source(ex)} has extra field(s) "
                        f"{clash} that {fmt} uses itself", line=ex.line,
                        fix="rename those fields in the source file")
    return record | ex.extra


def _csv_text(records: list[dict[str, Any]]) -> str:
    """Extra values that are not strings are stored as JSON, since a cell holds only text."""
    columns = list(dict.fromkeys(key for record in records for key in record))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
                         for k, v in record.items()})
    return buffer.getvalue()


_READERS: dict[str, Callable[[Path, int, dict[str, Any]], Example]] = {
    "openai": _from_openai, "anthropic": _from_anthropic, "alpaca": _from_alpaca,
    "sharegpt": _from_sharegpt, "csv": _from_csv,
} | {name: _pair_reader(name) for name in PAIRS}
_WRITERS: dict[str, Callable[[Example, Path], dict[str, Any]]] = {
    "openai": _to_openai, "anthropic": _to_anthropic, "alpaca": _to_alpaca,
    "sharegpt": _to_sharegpt, "csv": _to_csv,
} | {name: _pair_writer(name) for name in PAIRS}


# --- small helpers ---------------------------------------------------------------------------


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        problem = "is a directory, not a data file" if path.is_dir() else "file not found"
        raise DataError(problem, file=path, fix="check the path; data files are .jsonl or .csv")
    return path


def _known(fmt: str, path: str | Path) -> str:
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r}", file=path,
                        fix=f"use one of: {', '.join(FORMATS)}")
    return fmt


def _extra(record: dict[str, Any], core: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in core}








def _describe(label: str) -> str:
    return "openai/anthropic chat" if label == "chat" else label


def _source(ex: Example) -> str:
    return f"the example from source line {ex.line}" if ex.line else "an example"
