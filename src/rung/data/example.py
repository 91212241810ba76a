"""The unit of data: one conversation whose last assistant turn is the target."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

ROLES = ("system", "user", "assistant")
# How each role is named in a transcript (see conversation_text).
SPEAKERS = {"system": "System", "user": "User", "assistant": "Assistant"}


@dataclass(frozen=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True)
class Example:
    """One labelled example as read from a file.

    `messages` keeps the whole conversation so conversion between formats loses nothing;
    `input` and `output` are the views the ladder uses: everything the answer depends on
    (`conversation_text` of the turns before the target: the user's text alone for a single
    user turn, a transcript when there is a system prompt or earlier turns) and the last
    assistant turn. `line` is the 1-based line (or CSV row) it came from, for error messages
    and audits. `extra` holds any other fields of the record (ids, group keys, sources).
    `shared_system` is the system prompt every example of its file carries (see
    `shared_system`): the task's, not this example's, so `input` leaves it out.
    """

    messages: tuple[Message, ...]
    line: int = 0
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    shared_system: str | None = field(default=None, compare=False, hash=False, repr=False)

    @property
    def system(self) -> str | None:
        return next((m.content for m in self.messages if m.role == "system"), None)

    @property
    def input(self) -> str:
        """What every rung is asked with (classifier, prompts, demonstrations, retrieval
        queries, the fine-tune) and what `rung serve` derives from a request: see
        conversation_text."""
        return conversation_text(self.messages, self.shared_system)

    @property
    def has_context(self) -> bool:
        """Whether the answer depends on more than the last user turn (a system prompt of its
        own or earlier turns), so that `input` is a transcript rather than the user's text."""
        return len(_before_target(self.messages, self.shared_system)) > 1

    @property
    def said(self) -> str:
        """What the user wrote, every user turn, one per line: for the audit's checks that
        compare users' words (copies, topics), which a system prompt or an assistant's turn
        every example shares would otherwise pull together."""
        return "\n".join(m.content for m in self.messages if m.role == "user")

    @property
    def output(self) -> str:
        return next((m.content for m in reversed(self.messages) if m.role == "assistant"), "")

    @property
    def id(self) -> str:
        """Content hash: stable across files and formats, used to key splits and rows."""
        payload = json.dumps([[m.role, m.content] for m in self.messages], ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def conversation_text(messages: Sequence[Message], shared_system: str | None = None) -> str:
    """The input the ladder sees for a conversation: every turn up to and including the last
    user turn (what the answer after it depends on), as one text.

    A conversation that is one user turn is that turn's text, byte for byte, so single-turn
    data reads as it always has. Anything more (a system prompt, such as an Alpaca record's
    instruction or a CSV `system` cell, or earlier user and assistant turns) is a transcript:
    one paragraph per turn, in order, each starting with its speaker ("System: ", "User: ",
    "Assistant: ") and separated by a blank line:

        System: You are a support bot.

        User: I ordered item 4 and want my money back

        Assistant: Could you tell me more?

        User: Yes, please help, order 4

    A turn's own text is kept as written (line breaks too). Turns after the last user turn
    (the target, in an example) are not part of it. A system prompt equal to `shared_system`
    (the one every example of the data carries) is not part of it either: it tells no example
    from another, and a long one would fill the window of every embedding and retrieval query
    with the same words. `rung serve` reads a chat request's messages with this same function
    and the data's shared prompt, so a client sending the conversation the data holds is asked
    exactly what the pipeline was measured on."""
    context = _before_target(messages, shared_system)
    if len(context) == 1:
        return context[0].content
    return "\n\n".join(f"{SPEAKERS.get(m.role, m.role.title())}: {m.content}" for m in context)


def _before_target(messages: Sequence[Message],
                   shared_system: str | None = None) -> Sequence[Message]:
    """The turns up to and including the last user turn, less the shared system prompt; none
    without a user turn."""
    last = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
    return [m for m in messages[:last + 1]
            if not (m.role == "system" and shared_system is not None
                    and m.content == shared_system)]


def shared_system(examples: Sequence[Example]) -> str | None:
    """The system prompt every one of two or more examples carries word for word: the seeds'
    chat format repeats the app's system prompt on each line. It is the task's, as rung.toml's
    instruction is, not part of what sets one input apart from another."""
    prompts = {ex.system for ex in examples}
    return prompts.pop() if len(examples) > 1 and len(prompts) == 1 else None


def with_shared_system(examples: Sequence[Example], text: str | None) -> list[Example]:
    """The examples with `text` left out of their inputs (see conversation_text); inputs read
    for a run (rung check, rung review --inputs) leave out the run's shared prompt, as
    rung serve does."""
    return [ex if ex.shared_system == text else replace(ex, shared_system=text)
            for ex in examples]


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
    return replace(ex, messages=tuple(messages), extra=dict(ex.extra))
