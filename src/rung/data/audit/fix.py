"""Cleaned and redacted copies of a dataset, written beside it; the input is never touched.

`--fix OUT` keeps the first example of every exact-copy and near-copy group, sets every example
of a contradicting group aside in its own file (the audit cannot know which answer is right),
redacts personal data in what is kept, and writes a log of what happened to every input line,
so nothing is lost without a trace. Lines the reader could not use are listed in the log too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rung.data.audit.pii_find import redact_example
from rung.data.audit.report import AuditReport
from rung.data.example import Example
from rung.data.formats import write_examples
from rung.files import atomic_write, claim


def companion(out: Path, name: str) -> Path:
    """`clean.jsonl` -> `clean.<name>.jsonl`: files that belong with OUT."""
    return out.with_name(f"{out.stem}.{name}{out.suffix}")


def fixed_paths(out: Path) -> tuple[Path, Path, Path]:
    """What `--fix OUT` writes: the cleaned copy, the set-aside contradictions, the log."""
    return out, companion(out, "contradictions"), companion(out, "fix").with_suffix(".json")


def write_fixed(report: AuditReport, examples: Sequence[Example], out: str | Path, *,
                force: bool = False) -> dict[str, Any]:
    """Write the cleaned copy, the set-aside contradictions and the log; return the summary.
    None of them may be the input; none may exist unless `force` (then they are replaced)."""
    out = Path(out)
    source = report.input.data_path
    out, aside_path, log_path = claim(fixed_paths(out), inputs=[source], force=force)
    fate: dict[int, str] = {}
    for name, reason in (("contradictions", "set aside: contradicting outputs"),
                         ("exact-duplicates", "removed: exact copy of line {first}"),
                         ("near-duplicates", "removed: near-copy of line {first}")):
        check = report.check(name)
        for group in check.rows if check else []:
            members = group if name == "contradictions" else group[1:]
            # the copies of a line set aside go aside with it: removed, the one version of
            # them kept would be a line the cleaned file does not hold either
            aside_first = fate.get(group[0], "").startswith("set aside")
            for line in members:
                fate.setdefault(line, f"set aside with line {group[0]}, which it copies"
                                if aside_first else reason.format(first=group[0]))
    review = report.check("review-sample")
    if review is not None and review.status != "pass":  # its rows: outputs a person marked bad
        for line in review.rows:
            fate.setdefault(line, "removed: marked bad in human review")
    kept = [ex for ex in examples if ex.line not in fate]
    aside = [ex for ex in examples if fate.get(ex.line, "").startswith("set aside")]
    keep = _split_fields(report)
    redacted = [ex.line for ex in kept if _changed(ex, redact_example(ex, keep))]
    fmt = "csv" if out.suffix.lower() == ".csv" else (
        report.format if report.format != "csv" else "openai")
    write_examples([redact_example(ex, keep) for ex in kept], out, fmt)
    if aside:
        write_examples([redact_example(ex, keep) for ex in aside], aside_path, fmt)
    elif aside_path.exists():  # replaced with --force: an old set-aside file would mislead
        aside_path.unlink()
    problems = report.check("format")
    unreadable = problems.details.get("unreadable_lines", []) if problems else []
    summary = {
        "input": str(source), "output": str(out), "format": fmt, "read": len(examples),
        "kept": len(kept), "redacted": len(redacted),
        "removed": sum(1 for f in fate.values() if f.startswith("removed")),
        "set_aside": len(aside), "contradictions_file": str(aside_path) if aside else None,
        "unreadable": report.lines - report.examples,
        "lines": {str(line): fate[line] for line in sorted(fate)}
        | {str(line): "dropped: unreadable (see the format check)" for line in unreadable}
        | {str(line): "kept, personal data redacted" for line in redacted},
    }
    atomic_write(log_path, json.dumps(summary, indent=2) + "\n")
    return summary


def write_redacted(report: AuditReport, examples: Sequence[Example], out: str | Path, *,
                   force: bool = False) -> int:
    """Every readable example with personal data replaced; returns how many changed."""
    [out] = claim([out], inputs=[report.input.data_path], force=force)
    fmt = report.format
    cleaned = [redact_example(ex, _split_fields(report)) for ex in examples]
    write_examples(cleaned, out, fmt)
    return sum(1 for a, b in zip(examples, cleaned) if _changed(a, b))


def _split_fields(report: AuditReport) -> tuple[str, ...]:
    """The fields the split reads (group_key, order_key): kept as they are, or redacting
    them would merge groups or lose the order."""
    split = report.input.split
    return tuple(key for key in (split.group_key, split.order_key) if key)


def _changed(a: Example, b: Example) -> bool:
    return a.messages != b.messages or a.extra != b.extra  # Example == ignores extra
