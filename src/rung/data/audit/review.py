"""The human review sample the seeds ask for ("clean outputs: human review sample").

No automatic check tells a wrong answer from a right one, so the audit draws N examples at
random and writes them as a page to read and a CSV to annotate (with an empty `verdict` and
`note` column). Examples other checks flagged are marked, so a reviewer sees why they might
look odd. The next audit of the same data reads the verdicts back (`ok` or `bad`), carries
them into its own CSV, and lets them count: outputs a person marked wrong are what no
automatic check could find, so they warn, and a tenth or more of the reviewed marked bad
fails the data.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Mapping, Sequence
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from rung.data.audit.base import CheckResult
from rung.data.example import Example, conversation_text
from rung.errors import DataError
from rung.files import atomic_write

DEFAULT_SAMPLE = 25
BAD_SHARE = 0.1  # of the reviewed outputs marked bad: the data is not ready
OK, BAD = ("ok", "good", "right", "pass"), ("bad", "wrong", "fail")


def read_verdicts(csvs: Sequence[Path], examples: Sequence[Example]) -> dict[int, tuple[str, str]]:
    """Line -> (ok|bad, note) from review CSVs a person filled in, the newest first (the
    first verdict for a line wins). A row counts only while its output is still the
    example's on that line; a verdict that is neither ok nor bad is an error naming its row."""
    outputs = {ex.line: ex.output for ex in examples}
    verdicts: dict[int, tuple[str, str]] = {}
    for path in csvs:
        try:  # bytes decoded whole: newlines inside a quoted output stay as written
            text = path.read_bytes().decode("utf-8-sig")  # a spreadsheet may add a BOM
        except UnicodeDecodeError as err:
            raise DataError(f"not UTF-8: byte 0x{err.object[err.start]:02x} at byte offset "
                            f"{err.start}", file=path,
                            fix="save the review sheet as 'CSV UTF-8', or re-save it: iconv "
                                "-f cp1252 -t utf-8 in > out") from None
        reader = csv.DictReader(io.StringIO(text, newline=""))
        for row in reader:
            said = (row.get("verdict") or "").strip().lower()
            if not said:
                continue
            if said not in OK + BAD:
                raise DataError(f"the verdict {row['verdict']!r} is neither ok nor bad",
                                file=path, line=reader.line_num,
                                fix="write ok or bad in the verdict column, or leave it empty")
            line = int(row["line"]) if (row.get("line") or "").isdigit() else -1
            if outputs.get(line) == row.get("output") and line not in verdicts:
                verdicts[line] = ("ok" if said in OK else "bad", row.get("note") or "")
    return verdicts


def review_sample(
    examples: Sequence[Example], folder: Path, *, n: int = DEFAULT_SAMPLE, seed: int = 0,
    source: str = "", flags: Mapping[int, list[str]] | None = None,
    verdicts: Mapping[int, tuple[str, str]] | None = None,
) -> CheckResult:
    """Write review.html and review.csv into `folder`; `flags` maps a line to the checks that
    named it, `verdicts` a line to an earlier review's (ok|bad, note), written into the CSV
    again and counted."""
    flags, verdicts = flags or {}, verdicts or {}
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
        # the system prompt has its own column: the input is the rest of the conversation
        said = conversation_text([m for m in ex.messages if m.role != "system"])
        writer.writerow([ex.line, ex.system or "", said, ex.output,
                         " ".join(flags.get(ex.line, [])), *verdicts.get(ex.line, ("", ""))])
    atomic_write(csv_path, buffer.getvalue())
    lines = [ex.line for ex in picked]
    reviewed = [line for line in lines if line in verdicts]
    bad = [line for line in reviewed if verdicts[line][0] == "bad"]
    details = {"html": str(html_path), "csv": str(csv_path), "seed": seed, "n": len(picked),
               "reviewed": len(reviewed), "bad": bad}
    written = f"{len(picked)} random examples written for human review: {csv_path}"
    if not bad:
        so_far = f"; {len(reviewed)} reviewed, all ok" if reviewed else ""
        return CheckResult(
            "review-sample", "pass", written + so_far,
            fix="read them (the seeds' 'clean outputs' check); mark each ok or bad in the CSV's "
                "verdict column: the next audit counts them",
            rows=lines, details=details)
    notes = "; ".join(f"line {line}: {verdicts[line][1]}" for line in bad if verdicts[line][1])
    return CheckResult(
        "review-sample", "fail" if len(bad) >= BAD_SHARE * len(reviewed) else "warn",
        f"reviewers marked {len(bad)} of {len(reviewed)} reviewed outputs bad"
        + (f" ({notes})" if notes else "") + f"; {written}",
        fix="correct those outputs or drop them (`rung audit --fix` drops them), and look for "
            "the same mistake in the rest: a sample's errors are the data's",
        rows=bad, details=details)
