"""Is there enough data, and is it spread over the labels? Size and class-balance checks.

The seeds' table of recommended dataset sizes (minimum / good / excellent) is the yardstick:
below the minimum fails (not enough signal to fine-tune on), at or above it passes, and the
finding names the tier and what "good" would take.
For classification rung applies it to each label (the seeds' rows count the whole file):
fifty examples spread over twenty labels is two and a half per label, which teaches nothing. Sizes count distinct examples: copies and
near-copies add weight to one pattern, not information, so a team with 140 examples of which
a third are near-duplicates learns that it has fewer than 100.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from sklearn.utils.class_weight import compute_class_weight

from rung.data.audit.base import CheckResult, Status
from rung.data.example import Example

SizeProfile = Literal["classification", "extraction", "style", "domain", "code"]

# The seeds' "Recommended Dataset Sizes" table: (minimum, good, excellent).
SIZE_TABLE: dict[str, tuple[int, int, int]] = {
    "classification": (50, 500, 5_000),
    "extraction": (100, 1_000, 10_000),
    "style": (200, 1_000, 5_000),
    "domain": (500, 5_000, 50_000),
    "code": (1_000, 10_000, 100_000),
}
_ROW_NAMES = {"classification": "Classification", "extraction": "Structured extraction",
              "style": "Style/tone transfer", "domain": "Domain expertise",
              "code": "Code generation"}
BALANCE_WARN = 3.0  # largest label / smallest label above this: warn
BALANCE_FAIL = 20.0  # and above this: the minority labels are noise to the model


def tier(count: int, profile: str) -> str:
    minimum, good, excellent = SIZE_TABLE[profile]
    if count >= excellent:
        return "excellent"
    if count >= good:
        return "good"
    if count >= minimum:
        return "minimum"
    return "below minimum"


def to_collect(details: dict[str, Any]) -> dict[str, int]:
    """Distinct examples still to label to reach the table's minimum and "good", from a size
    check's details (per label, summed, when it counted per label). Read off the details so
    an audit stored before this figure was kept gives it too."""
    table = details["table"]
    counts = [v["count"] for v in details["per_label"].values()] if "per_label" in details \
        else [details["distinct"]]
    return {tier_name: sum(max(table[tier_name] - c, 0) for c in counts)
            for tier_name in ("minimum", "good")}


def size_check(
    distinct: Sequence[Example], total: int, profile: str, labels: Sequence[str] = ()
) -> CheckResult:
    """`distinct` are the examples left once copies and near-copies are set aside; `total` is
    the file's count. With `labels`, each label is measured against the table on its own."""
    minimum, good, excellent = SIZE_TABLE[profile]
    n = len(distinct)
    row = _ROW_NAMES[profile]
    details: dict[str, Any] = {"examples": total, "distinct": n, "profile": profile,
                               "table": {"minimum": minimum, "good": good,
                                         "excellent": excellent}, "tier": tier(n, profile)}
    counted = f"{n} distinct examples" + (f" (of {total})" if n != total else "")
    counts = Counter(ex.output.strip() for ex in distinct)
    per_label = {label: counts.get(label, 0) for label in labels}
    if labels:
        details["per_label"] = {label: {"count": c, "tier": tier(c, profile)}
                                for label, c in per_label.items()}
    # what is left to label: the seeds' "hidden boss", priced by the decision ([costs])
    details["to_collect"] = to_collect(details)
    if labels:
        short = [label for label, c in per_label.items() if c < minimum]
        thin = [label for label, c in per_label.items() if minimum <= c < good]
        rows = sorted(ex.line for ex in distinct if ex.output.strip() in short)
        if short:
            listed = ", ".join(f"{label} {per_label[label]}" for label in short)
            return CheckResult(
                "size", "fail",
                f"{counted}; {len(short)} of {len(labels)} labels are below the seeds' minimum "
                f"of {minimum} ({row} row; rung asks it of each label): {listed}",
                fix=f"collect at least {minimum} distinct examples of each label "
                    f"({details['to_collect']['minimum']} more in all; the seeds call {good} "
                    "good), or merge rare labels; until then prefer few-shot or RAG",
                rows=rows, details=details)
        weakest = min(per_label.values())
        finding = (f"{counted}; every label has at least {weakest} "
                   f"({tier(weakest, profile)} tier of the seeds' {row} row: "
                   f"{minimum} / {good} / {excellent}+, which rung asks of each label)")
        if thin:
            finding += f"; {good} per label would be good ({', '.join(thin)} below it)"
        return CheckResult("size", "pass", finding, details=details)
    if n < minimum:
        return CheckResult(
            "size", "fail",
            f"{counted}: below the seeds' minimum of {minimum} ({row} row: "
            f"{minimum} / {good} / {excellent}+)",
            fix=f"collect at least {minimum} distinct examples ({minimum - n} more) before "
                "fine-tuning; until then prefer prompting, few-shot or RAG", details=details)
    finding = (f"{counted}: {tier(n, profile)} tier of the seeds' {row} row "
               f"({minimum} / {good} / {excellent}+)")
    if n < good:
        finding += f"; {good} would be good"
    return CheckResult("size", "pass", finding, details=details)


def class_balance(examples: Sequence[Example], labels: Sequence[str]) -> CheckResult:
    """Label counts, imbalance ratio, labels missing, outputs that are not labels, and the
    weights that would even out the loss (scikit-learn's "balanced": n / (k * count)).

    A model trained on 90% BUG learns to say BUG; the ratio of the largest to the smallest
    label says how far that pull goes."""
    outputs = [ex.output.strip() for ex in examples]
    counts = Counter(outputs)
    known = set(labels)
    unknown = sorted(ex.line for ex, out in zip(examples, outputs) if out not in known)
    missing = [label for label in labels if counts.get(label, 0) == 0]
    present = [label for label in labels if counts.get(label, 0) > 0]
    details: dict[str, object] = {
        "counts": {label: counts.get(label, 0) for label in labels},
        "shares": {label: round(counts.get(label, 0) / max(len(outputs), 1), 4)
                   for label in labels},
        "unknown_outputs": dict(Counter(o for o in outputs if o not in known).most_common(10)),
    }
    if unknown or missing:
        parts = []
        if unknown:
            odd = ", ".join(repr(o) for o in details["unknown_outputs"])  # type: ignore[union-attr]
            parts.append(f"{len(unknown)} outputs are not among the labels ({odd})")
        if missing:
            parts.append(f"no examples of {', '.join(missing)}")
        case_only = [o for o in details["unknown_outputs"]  # type: ignore[union-attr]
                     if o.lower() in {label.lower() for label in labels}]
        fix = "make every output exactly one of the labels in rung.toml [task] labels"
        if case_only:
            fix += f" ({', '.join(map(repr, case_only))} differ only in case)"
        if missing:
            fix += "; add examples of the missing labels or drop them from [task] labels"
        return CheckResult("class-balance", "fail", "; ".join(parts), fix, rows=unknown,
                           details=details)
    y = np.array([out for out in outputs])
    weights = compute_class_weight("balanced", classes=np.array(present), y=y)
    ratio = max(counts[label] for label in present) / min(counts[label] for label in present)
    details["imbalance_ratio"] = round(ratio, 2)
    details["suggested_weights"] = {label: round(float(w), 3) for label, w in zip(present, weights)}
    largest = max(present, key=lambda label: counts[label])
    smallest = min(present, key=lambda label: counts[label])
    finding = (f"imbalance ratio {ratio:.1f} ({largest} {counts[largest]} vs {smallest} "
               f"{counts[smallest]})")
    if ratio <= BALANCE_WARN:
        return CheckResult("class-balance", "pass", finding, details=details)
    status: Status = "fail" if ratio > BALANCE_FAIL else "warn"
    weights_text = ", ".join(f"{k} {v}" for k, v in details["suggested_weights"].items())  # type: ignore[union-attr]
    rare = sorted(ex.line for ex, out in zip(examples, outputs)
                  if counts[out] * BALANCE_WARN < counts[largest])
    return CheckResult(
        "class-balance", status, finding + "; the model will lean towards the majority label",
        fix=f"collect more of the rare labels, downsample the common ones, or weight the loss "
            f"({weights_text}); and if the task measures accuracy, measure macro_f1 instead "
            "([task] metric = \"macro_f1\"): the majority label cannot game it",
        rows=rare, details=details)
