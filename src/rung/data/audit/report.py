"""Run every audit check on one dataset and reach a verdict: ready, ready with warnings, not ready.

The input is a rung.toml (kind, labels, model, split and [audit] settings come from it) or a
bare data file (the kind and labels are inferred from the outputs, the model defaults to the
packaged SmolLM2). Checks run cheapest first; each is timed, so the benchmark and a slow
audit can say where the time went.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rung.data.audit.base import CheckResult
from rung.data.audit.duplicates import (CONTRADICTION_THRESHOLD, contradictions, exact_duplicates,
                                        input_similarity, leakage, near_duplicates)
from rung.data.audit.format import format_check
from rung.data.audit.lengths import token_lengths
from rung.data.audit.outputs import json_outputs
from rung.data.audit.pii import pii_check
from rung.data.audit.review import read_verdicts, review_sample
from rung.data.audit.similarity import TextSimilarity
from rung.data.audit.size import class_balance, size_check
from rung.data.example import Example
from rung.data.formats import ScanResult, scan_file
from rung.data.splits import split_by_settings
from rung.errors import DataError
from rung.task import AuditTable, SplitTable, load_task

if TYPE_CHECKING:
    from rung.rungs.base import StageReporter
    from rung.task import TaskSpec

DEFAULT_MODEL = "smollm2-135m-instruct"
CHECKS = ("format", "size", "exact-duplicates", "near-duplicates", "contradictions",
          "class-balance", "json-outputs", "diversity", "pii", "token-lengths", "leakage",
          "review-sample")
VERDICTS = ("ready", "ready with warnings", "not ready")


@dataclass(frozen=True)
class AuditInput:
    """What to audit and against what: everything a check needs besides the examples."""

    data_path: Path
    kind: str  # classification, extraction, generation
    labels: tuple[str, ...]  # classification only
    model: str
    base_dir: Path | None
    store_dir: Path
    task_path: Path | None = None
    seed: int = 0
    split: SplitTable = SplitTable()
    settings: AuditTable = AuditTable()
    inferred: tuple[str, ...] = ()  # what was guessed rather than configured, for the report
    schema: dict | None = field(default=None, compare=False)  # [task] schema (extraction)
    # the file as read to infer kind and labels, with its (size, mtime): reused while unchanged
    scanned: tuple[tuple[int, int], ScanResult] | None = field(
        default=None, compare=False, repr=False)

    def scan(self) -> ScanResult:
        """The data file's examples and unreadable lines, read once per version of the file."""
        stat = self.data_path.stat()
        if self.scanned is not None and self.scanned[0] == (stat.st_size, stat.st_mtime_ns):
            return self.scanned[1]
        return scan_file(self.data_path)

    @property
    def profile(self) -> str:
        if self.settings.profile:
            return self.settings.profile
        return {"classification": "classification", "extraction": "extraction"}.get(
            self.kind, "style")


def data_file(path: str | Path) -> Path:
    """The data file an audit of `path` reads: the file itself, or a task's [task] data."""
    path = Path(path)
    if path.is_dir() or path.suffix == ".toml":
        return load_task(path).data_path
    return path.resolve()


def audit_input(path: str | Path, *, kind: str | None = None, model: str | None = None) -> AuditInput:
    """A rung.toml (or its folder) or a data file; `kind` and `model` override what is there."""
    path = Path(path)
    if path.is_dir() or path.suffix == ".toml":
        task = load_task(path)
        return AuditInput(
            data_path=task.data_path, kind=kind or task.task.kind,
            labels=tuple(task.task.labels), model=model or task.models.small,
            base_dir=task.root, store_dir=task.store_dir, task_path=task.path,
            seed=task.task.seed, split=task.split, settings=task.audit,
            schema=task.json_schema)
    stat = path.stat() if path.is_file() else None
    scan = scan_file(path)
    inferred_kind, labels = infer_kind(scan.examples)
    guessed = ("kind",) if kind is None else ()
    kind = kind or inferred_kind
    return AuditInput(
        data_path=path.resolve(), kind=kind,
        labels=labels if kind == "classification" else (), model=model or DEFAULT_MODEL,
        base_dir=path.resolve().parent, store_dir=path.resolve().parent / ".rung",
        inferred=guessed + (("labels",) if kind == "classification" else ())
        + (("model",) if model is None else ()),
        scanned=((stat.st_size, stat.st_mtime_ns), scan) if stat else None)


def infer_kind(examples: list[Example]) -> tuple[str, tuple[str, ...]]:
    """Few distinct short outputs that repeat: classification; JSON objects: extraction."""
    outputs = [ex.output.strip() for ex in examples]
    distinct = Counter(outputs)
    if (len(distinct) <= max(2, min(50, len(outputs) // 5))
            and all(len(o.split()) <= 4 for o in distinct)):
        return "classification", tuple(sorted(distinct))
    objects = sum(1 for o in outputs if o.startswith("{") and _is_json(o))
    if objects >= 0.8 * len(outputs):
        return "extraction", ()
    return "generation", ()


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


@dataclass
class AuditReport:
    input: AuditInput
    format: str
    examples: int
    lines: int
    checks: list[CheckResult]
    skipped: dict[str, str]  # check -> why it did not run
    seconds: dict[str, float]
    audit_id: str = ""
    created: str = ""
    fixes: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        statuses = {c.status for c in self.checks}
        return "not ready" if "fail" in statuses else \
            "ready with warnings" if "warn" in statuses else "ready"

    @property
    def reasons(self) -> list[str]:
        """Every failed check, or with none failed every warning: what stands between the data
        and a fine-tune."""
        worst = "fail" if self.verdict == "not ready" else "warn"
        return [f"{c.check}: {c.finding}" for c in self.checks if c.status == worst]

    def check(self, name: str) -> CheckResult | None:
        return next((c for c in self.checks if c.check == name), None)

    def to_dict(self) -> dict[str, Any]:
        inp = self.input
        return {
            "audit_id": self.audit_id, "created": self.created, "data": str(inp.data_path),
            "task": str(inp.task_path) if inp.task_path else None, "format": self.format,
            "kind": inp.kind, "labels": list(inp.labels), "model": inp.model,
            "profile": inp.profile, "inferred": list(inp.inferred), "examples": self.examples,
            "schema": _fingerprint(inp.schema),
            "settings": _settings(inp.seed, inp.split, inp.settings, inp.model),
            "lines": self.lines, "verdict": self.verdict, "reasons": self.reasons,
            "checks": [c.to_dict() for c in self.checks], "skipped": self.skipped,
            "seconds": self.seconds,
        }


def _quiet(stage: str, total: int) -> Callable[[int], None]:
    return lambda n: None


def run_audit(
    inp: AuditInput,
    *,
    review_folder: Path | None = None,
    reviewed: tuple[Path, ...] = (),
    skip: tuple[str, ...] = (),
    reporter: "StageReporter" = _quiet,
    diversity_sample: int | None = None,
) -> tuple[AuditReport, list[Example]]:
    """Run the checks; returns the report and the examples that could be read (for --fix).

    `review_folder` is where the review sample goes (no sample without one), `reviewed` the
    review CSVs of earlier audits of the same data, newest first, whose verdicts count; `skip` names
    checks not to run (e.g. "diversity" where the embedding model is not wanted)."""
    scan = inp.scan()
    examples = scan.examples
    checks: list[CheckResult] = []
    skipped: dict[str, str] = {name: "skipped on request" for name in skip}
    seconds: dict[str, float] = {}
    advance = reporter("audit", len(CHECKS))

    def run(name: str, make: Callable[[], CheckResult | None], why_not: str = "") -> None:
        if name in skipped:
            advance(1)
            return
        if why_not:
            skipped[name] = why_not
            advance(1)
            return
        start = time.perf_counter()
        result = make()
        seconds[name] = round(time.perf_counter() - start, 3)
        if result is not None:
            checks.append(result)
        advance(1)

    settings = inp.settings
    threshold = settings.near_duplicate_threshold
    classification = inp.kind == "classification"
    run("format", lambda: format_check(scan.format, examples, scan.problems))
    run("exact-duplicates", lambda: exact_duplicates(examples))
    # one MinHash pass over the inputs serves near-duplicates, contradictions and leakage
    similar = input_similarity(examples, threshold=min(threshold, CONTRADICTION_THRESHOLD))
    run("near-duplicates",
        lambda: near_duplicates(examples, threshold=threshold, similarity=similar))
    run("size", lambda: size_check(_distinct(examples, checks), len(examples), inp.profile,
                                   inp.labels if classification else ()))
    run("contradictions", lambda: contradictions(examples, threshold=CONTRADICTION_THRESHOLD,
                                                 similarity=similar))
    run("class-balance", lambda: class_balance(examples, inp.labels),
        "" if classification else f"not a classification task ({inp.kind})")
    run("json-outputs", lambda: json_outputs(examples, inp.schema),
        "" if inp.kind == "extraction" else f"not an extraction task ({inp.kind})")
    run("leakage", lambda: _leakage(inp, examples, threshold, similar))
    run("pii", lambda: pii_check(examples))
    run("token-lengths", lambda: _token_lengths(inp, examples))
    run("diversity", lambda: _diversity(examples, inp.seed, diversity_sample))
    flags: dict[int, list[str]] = {}
    for c in checks:
        for row in c.rows:
            for line in row if isinstance(row, list) else [row]:
                flags.setdefault(line, []).append(c.check)
    run("review-sample",
        lambda: review_sample(examples, review_folder, n=settings.review_sample, seed=inp.seed,
                              source=str(inp.data_path), flags=flags,  # type: ignore[arg-type]
                              verdicts=read_verdicts(reviewed, examples))
        if settings.review_sample else None,
        "no folder to write it to" if review_folder is None else
        "" if settings.review_sample else "[audit] review_sample = 0")
    checks.sort(key=lambda c: CHECKS.index(c.check))
    lines = len(examples) + len(scan.problems)
    return AuditReport(inp, scan.format, len(examples), lines, checks, skipped, seconds), examples


def _distinct(examples: list[Example], checks: list[CheckResult]) -> list[Example]:
    """The examples left once every copy and near-copy but the first of its group is gone."""
    dropped: set[int] = set()
    for c in checks:
        if c.check in ("exact-duplicates", "near-duplicates"):
            for group in c.rows:
                dropped.update(group[1:])
    return [ex for ex in examples if ex.line not in dropped]


def _leakage(inp: AuditInput, examples: list[Example], threshold: float,
             similar: TextSimilarity) -> CheckResult:
    """Checked on the split the climb makes (split_by_settings: by time with an order_key),
    or the audit would pass a leak the climb then measures."""
    try:
        split = split_by_settings(examples, inp.split, seed=inp.seed, kind=inp.kind,
                                  source=inp.data_path)
    except DataError as err:
        return CheckResult("leakage", "warn", f"could not split the data: {err.message}",
                           fix=err.fix or "")
    return leakage(split, threshold=threshold, similarity=similar)


def _token_lengths(inp: AuditInput, examples: list[Example]) -> CheckResult:
    from rung.models.tokens import token_counter

    counter = token_counter(inp.model, base_dir=inp.base_dir)
    return token_lengths(examples, counter, inp.settings.max_seq_length)


def _diversity(examples: list[Example], seed: int, sample: int | None) -> CheckResult:
    from rung.data.audit.diversity import SAMPLE, diversity_check

    return diversity_check(examples, sample=sample or SAMPLE, seed=seed)


def audit_dataset(
    path: str | Path,
    *,
    kind: str | None = None,
    model: str | None = None,
    skip: tuple[str, ...] = (),
    reporter: "StageReporter" = _quiet,
    diversity_sample: int | None = None,
) -> tuple[AuditReport, list[Example]]:
    """The `rung audit` job: audit, write the review sample beside the store, record it all."""
    from datetime import datetime, timezone

    from rung.store import Store, file_hash

    inp = audit_input(path, kind=kind, model=model)
    if "token-lengths" not in skip:  # a misspelt --model is said before the checks run
        from rung.models.tokens import token_counter

        token_counter(inp.model, base_dir=inp.base_dir)
    store = Store(inp.store_dir)
    try:
        audit_id = store.new_id()
        data_hash = file_hash(inp.data_path)
        folders = inp.store_dir / "audits"
        reviewed = tuple(folders / earlier / "review.csv" for earlier in store.audit_ids(data_hash)
                         if (folders / earlier / "review.csv").is_file())
        report, examples = run_audit(inp, review_folder=folders / audit_id, reviewed=reviewed,
                                     skip=skip, reporter=reporter,
                                     diversity_sample=diversity_sample)
        report.audit_id = audit_id
        report.created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        store.add_audit(report.to_dict(), data_hash=data_hash)
    finally:
        store.close()
    return report, examples


def audit_for(task: "TaskSpec", reporter: "StageReporter" = _quiet) -> dict[str, Any]:
    """The latest audit of exactly this task's data file (same bytes), or a new one, stored.
    The climb asks it first (its verdict shapes the next step), the fine-tune before training
    (it refuses data the audit calls not ready)."""
    from rung.store import Store, file_hash

    store = Store(task.store_dir)
    try:
        row = store.latest_audit(file_hash(task.data_path))
    finally:
        store.close()
    if row is not None:
        summary = json.loads(row["summary_json"])
        if _still_applies(summary, task):
            return summary
    report, _ = audit_dataset(task.path, reporter=reporter)
    return report.to_dict()


def _still_applies(summary: dict[str, Any], task: "TaskSpec") -> bool:
    """A stored audit of the same bytes stands for this task while it was made for the same
    kind, labels and schema, and ran (or skipped) every check this version of rung has: an
    audit from before a check existed, or for other labels, is made again. So is one made
    under other settings that shape its findings (seed, [split], [audit], the small model):
    else a user who raises max_seq_length or adds an order_key is refused a tune on the old
    verdict."""
    covered = {c["check"] for c in summary.get("checks", [])} | set(summary.get("skipped", {}))
    return (summary.get("kind") == task.task.kind
            and summary.get("labels") == list(task.task.labels)
            and summary.get("schema") == _fingerprint(task.json_schema)
            and summary.get("settings") == _settings(task.task.seed, task.split, task.audit,
                                                     task.models.small)
            and covered >= set(CHECKS))


def _settings(seed: int, split: SplitTable, audit: AuditTable, model: str) -> str:
    return _fingerprint({"seed": seed, "split": split.model_dump(),
                         "audit": audit.model_dump(), "model": model}) or ""


def _fingerprint(schema: dict | None) -> str | None:
    if schema is None:
        return None
    return hashlib.sha256(json.dumps(schema, sort_keys=True).encode()).hexdigest()[:16]
