"""Format consistency: every line readable in the file's one format, and conversations alike.

The seeds ask for a consistent format because variation the task does not need is noise the
model learns: a system prompt on some examples and not others, or answers that sometimes end
in a newline, get reproduced at random at inference time. Unreadable lines (bad JSON, another
format, roles out of order, empty turns) are found by the reader; this check lists them all.
It also says, for information, how many examples carry context (a system prompt or earlier
turns), which the ladder reads as a transcript (see `conversation_text`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rung.data.audit.base import CheckResult
from rung.errors import DataError
from rung.data.example import Example

# How a reader's error message maps to a kind of problem people can count.
_PROBLEM_KINDS = (
    ("invalid JSON", "invalid JSON"), ("not UTF-8", "not UTF-8"),
    ("expected a JSON object", "not an object"), ("mixed formats", "another format"),
    ("matches no format", "unknown format"), ("invalid order", "roles out of order"),
    ("is empty", "empty turn"), ("no user turn", "missing user turn"),
    ("no assistant turn", "missing assistant turn"), ("unknown", "unknown role"),
    ("cells", "wrong number of cells"),
)
DOMINANT = 0.5  # a system prompt on at least this share of examples is "the" system prompt


def problem_kind(problem: DataError) -> str:
    return next((kind for key, kind in _PROBLEM_KINDS if key in problem.message), "unreadable")


def format_check(fmt: str, examples: Sequence[Example], problems: Sequence[DataError]) -> CheckResult:
    """`problems` are the reader's errors for the lines it could not use (see `scan_file`)."""
    n = len(examples) + len(problems)
    details: dict[str, object] = {"format": fmt, "lines": n, "readable": len(examples)}
    parts: list[str] = []
    fixes: list[str] = []
    rows: set[int] = set()

    if problems:
        kinds = Counter(problem_kind(p) for p in problems)
        details["problems"] = dict(kinds.most_common())
        details["unreadable_lines"] = [p.line for p in problems]
        details["first_problems"] = [{"line": p.line, "message": p.message, "fix": p.fix}
                                     for p in problems[:20]]
        parts.append(f"{len(problems)} of {n} lines cannot be used ("
                     + ", ".join(f"{c} {k}" for k, c in kinds.most_common()) + ")")
        first = problems[0]
        fixes.append(f"fix each listed line (line {first.line}: {first.fix})")
        rows.update(p.line for p in problems if p.line)

    with_system = [ex for ex in examples if ex.system is not None]
    if with_system and len(with_system) < len(examples):
        minority = with_system if len(with_system) * 2 < len(examples) else \
            [ex for ex in examples if ex.system is None]
        has = "have" if minority is with_system else "lack"
        details["system_prompt_inconsistent"] = sorted(ex.line for ex in minority)
        parts.append(f"{len(minority)} examples {has} a system prompt the other "
                     f"{len(examples) - len(minority)} {'lack' if has == 'have' else 'have'}")
        fixes.append("give every example the same system prompt (or none)")
        rows.update(ex.line for ex in minority)
    prompts = Counter(ex.system for ex in with_system)
    details["system_prompts"] = len(prompts)
    if len(prompts) > 1:
        top, top_count = prompts.most_common(1)[0]
        if top_count >= DOMINANT * len(with_system):
            odd = [ex for ex in with_system if ex.system != top]
            details["system_prompt_variants"] = sorted(ex.line for ex in odd)
            parts.append(f"{len(odd)} examples use a different system prompt from the other "
                         f"{top_count} ({len(prompts) - 1} variants)")
            fixes.append("use one system prompt wording everywhere, unless the variants are "
                         "deliberate")
            rows.update(ex.line for ex in odd)

    # Not a problem, but worth saying: the answer of such an example depends on more than its
    # last user turn, and every rung (and rung serve) reads it as a transcript.
    context = [ex for ex in examples if ex.has_context]
    details["with_context"] = len(context)
    context_note = ""
    if context:
        turns = sum(1 for ex in context if sum(m.role == "user" for m in ex.messages) > 1)
        kinds = ", ".join(part for part in (
            f"{len(context) - turns} with a system prompt" if len(context) > turns else "",
            f"{turns} with earlier turns" if turns else "") if part)
        context_note = (f"{len(context)} of {len(examples)} examples carry context ({kinds}): "
                        "rung reads each as a transcript of the conversation up to its last "
                        "user turn (System:/User:/Assistant: paragraphs), for every rung and "
                        "for rung serve")

    padded = [ex for ex in examples if ex.output != ex.output.strip()]
    if padded and len(padded) < len(examples):
        details["output_whitespace"] = sorted(ex.line for ex in padded)
        parts.append(f"{len(padded)} outputs start or end with whitespace the others do not")
        fixes.append("strip leading and trailing whitespace from the answers")
        rows.update(ex.line for ex in padded)

    shared = examples[0].shared_system if examples else None
    details["shared_system"] = shared is not None
    if not parts:
        prompt_note = (f"; system prompt on every example ({len(prompts)} wording"
                       f"{'s' if len(prompts) != 1 else ''})" if with_system else "")
        if shared is not None:
            prompt_note = (
                "; the same system prompt on every example, read as the task's and left out of "
                "the inputs: the ladder's prompts say rung.toml's instruction (add this one to "
                "[prompt] instructions to measure it too)")
        return CheckResult("format", "pass",
                           f"all {n} lines read as {fmt}, roles in order, no empty turns"
                           + prompt_note + (f". {context_note}" if context_note else ""),
                           details=details)
    return CheckResult("format", "fail" if problems else "warn",
                       "; ".join(parts) + (f". Note: {context_note}" if context_note else ""),
                       fix="; ".join(fixes), rows=sorted(rows), details=details)
