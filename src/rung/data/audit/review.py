"""The human review sample the seeds ask for ("clean outputs: human review sample").

No automatic check tells a wrong answer from a right one, so the audit draws N examples at
random and writes them as a page to read and a CSV to annotate (with an empty `verdict` and
`note` column). Examples other checks flagged are marked, so a reviewer sees why they might
look odd.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Mapping, Sequence
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from rung.data.audit.base import CheckResult
from rung.data.example import Example
from rung.files import atomic_write

DEFAULT_SAMPLE = 25


def review_sample(
    examples: Sequence[Example], folder: Path, *, n: int = DEFAULT_SAMPLE, seed: int = 0,
    source: str = "", flags: Mapping[int, list[str]] | None = None,
) -> CheckResult:
    """Write review.html and review.csv into `folder`; `flags` maps a line to the checks that
    named it."""
    flags = flags or {}
    picked = sorted(random.Random(seed).sample(list(examples), min(n, len(examples))),
                    key=lambda ex: ex.line)
    folder.mkdir(parents=True, exist_ok=True)
    html_path, csv_path = folder / "review.html", folder / "review.csv"
    env = Environment(loader=PackageLoader("rung.data.audit", "templates"),
                      autoescape=select_autoescape(["html"]))
    page = env.get_template("review.html").render(
        examples=[{"line": ex.line, "messages": ex.messages, "flags": flags.get(ex.line, [])}
                  for ex in picked],
        total=len(examples), source=source, seed=seed)
    atomic_write(html_path, page)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["line", "system", "input", "output", "flagged_by", "verdict", "note"])
    for ex in picked:
        writer.writerow([ex.line, ex.system or "", ex.input, ex.output,
                         " ".join(flags.get(ex.line, [])), "", ""])
    atomic_write(csv_path, buffer.getvalue())
    return CheckResult(
        "review-sample", "pass",
        f"{len(picked)} random examples written for human review: {html_path}",
        fix="read them (the seeds' 'clean outputs' check); mark each in the CSV's verdict column",
        rows=[ex.line for ex in picked],
        details={"html": str(html_path), "csv": str(csv_path), "seed": seed, "n": len(picked)})
