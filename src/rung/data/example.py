"""The unit of data: one conversation whose last assistant turn is the target."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True)
class Example:
    """One labelled example as read from a file.

    `messages` keeps the whole conversation so conversion between formats loses nothing;
    `input` and `output` are the views the ladder uses: the last user turn and the last
    assistant turn. `line` is the 1-based line (or CSV row) it came from, for error messages
    and audits. `extra` holds any other fields of the record (ids, group keys, sources).
    """

    messages: tuple[Message, ...]
    line: int = 0
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def system(self) -> str | None:
        return next((m.content for m in self.messages if m.role == "system"), None)

    @property
    def input(self) -> str:
        return next((m.content for m in reversed(self.messages) if m.role == "user"), "")

    @property
    def output(self) -> str:
        return next((m.content for m in reversed(self.messages) if m.role == "assistant"), "")

    @property
    def id(self) -> str:
        """Content hash: stable across files and formats, used to key splits and rows."""
        payload = json.dumps([[m.role, m.content] for m in self.messages], ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def make_example(
    user: str, assistant: str, *, system: str | None = None, line: int = 0, **extra: Any
) -> Example:
    """Build a single-turn example; tests and generators use it."""
    messages = [Message("user", user), Message("assistant", assistant)]
    if system is not None:
        messages.insert(0, Message("system", system))
    return Example(tuple(messages), line=line, extra=dict(extra))


def stripped_labels(examples: list[Example]) -> list[Example]:
    """Classification examples with each label as the label it names: a CSV cell's
    'BILLING ' is BILLING, or the classifier, the split's strata and the few-shot groups
    would each count a class of its own. The climb and the audit's leakage check both read
    labels this way, so the audit checks the split the climb makes."""
    return [ex if ex.output == ex.output.strip() else _with_output(ex, ex.output.strip())
            for ex in examples]


def _with_output(ex: Example, output: str) -> Example:
    """`ex` with its last assistant turn (the target) set to `output`."""
    last = max(i for i, m in enumerate(ex.messages) if m.role == "assistant")
    messages = list(ex.messages)
    messages[last] = Message("assistant", output)
    return Example(tuple(messages), line=ex.line, extra=dict(ex.extra))
