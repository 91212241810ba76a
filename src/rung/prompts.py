"""Prompt variants: the ways rung phrases one task for a model.

The seeds ask for several structured variants tried before anyone concludes prompting fails.
Each variant turns (instruction, labels, input) into a system message and a user message;
the prompt rung tries them all on val and keeps the best. A new variant joins by adding a
function to VARIANTS.
"""

from __future__ import annotations

from typing import Callable, Sequence

Render = Callable[[str, Sequence[str], str], tuple[str | None, str]]


def _constraint(labels: Sequence[str]) -> str:
    if labels:
        return f"Reply with exactly one label from: {', '.join(labels)}. No other words."
    return "Reply with the answer only: no preamble, no explanation."


def instruction_only(instruction: str, labels: Sequence[str], text: str) -> tuple[str | None, str]:
    """The baseline a team writes first: the task description as the system prompt."""
    return instruction.strip(), text


def constrained(instruction: str, labels: Sequence[str], text: str) -> tuple[str | None, str]:
    """Adds an explicit output constraint, the seeds' first fix for format drift."""
    return f"{instruction.strip()}\n\n{_constraint(labels)}", text


def inline(instruction: str, labels: Sequence[str], text: str) -> tuple[str | None, str]:
    """Everything in the user turn: small models often attend to it more than to the system."""
    answer = "Label:" if labels else "Answer:"
    return None, f"{instruction.strip()}\n{_constraint(labels)}\n\nInput:\n{text}\n\n{answer}"


def role_and_steps(instruction: str, labels: Sequence[str], text: str) -> tuple[str | None, str]:
    """A structured system prompt: role, task, rules; the input clearly delimited."""
    role = "You are a meticulous triage assistant." if labels else "You are a precise assistant."
    system = f"{role}\n\n## Task\n{instruction.strip()}\n\n## Rules\n- {_constraint(labels)}"
    return system, f"<input>\n{text}\n</input>"


VARIANTS: dict[str, Render] = {
    "instruction": instruction_only,
    "constrained": constrained,
    "inline": inline,
    "role": role_and_steps,
}


def inline_demonstration(instruction: str, labels: Sequence[str], text: str) -> tuple[str | None, str]:
    """A demonstration's turn in the inline variant: the input and the answer cue only. The
    instruction is said once, in the real input's turn, not again in every example."""
    return None, f"Input:\n{text}\n\n{'Label:' if labels else 'Answer:'}"


# How a demonstration's user turn is phrased, where it differs from the variant's own turn.
DEMONSTRATION_VARIANTS: dict[str, Render] = {"inline": inline_demonstration}
