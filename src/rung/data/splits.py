"""Deterministic train/val/test splits that every rung shares.

The same examples and seed always give the same split, whatever order the file lists them
in: assignment depends on content hashes, not positions. Related examples (one customer's
tickets, one document's questions) share a group key and land in the same split, so the test
split never rewards memorising a near-copy seen in training. With an order key (a date or a
number on every record) the split is by time instead, as the seeds ask where the data
drifts: the newest examples are the test split, the ones before them val, the rest train, so
every score is a forecast of examples newer than anything the model saw.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rung.data.example import Example, stripped_labels
from rung.data.normalise import copy_key
from rung.errors import DataError
from rung.files import atomic_write

if TYPE_CHECKING:
    from rung.task import SplitTable


@dataclass(frozen=True)
class Split:
    train: list[Example]
    val: list[Example]
    test: list[Example]

    def hash(self) -> str:
        ids = {name: [e.id for e in part] for name, part in self.parts().items()}
        return hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:16]

    def parts(self) -> dict[str, list[Example]]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def save(self, path: Path) -> None:
        """Write ids and hashes so a later run (or a person) can check what was held out."""
        record = {
            "split_hash": self.hash(),
            "counts": {name: len(part) for name, part in self.parts().items()},
            "ids": {name: [e.id for e in part] for name, part in self.parts().items()},
            "lines": {name: [e.line for e in part] for name, part in self.parts().items()},
        }
        atomic_write(path, json.dumps(record, indent=1))


def split_examples(
    examples: list[Example],
    *,
    seed: int,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    stratify: bool = True,
    group_key: str | None = None,
    order_key: str | None = None,
    source: str | Path | None = None,
) -> Split:
    """Split into train/val/test, stratified by label (the output) and grouped by `group_key`.

    Groups are the unit that moves: each group goes to one split. Without a group key, copies
    of one example are a group, copies as the audit counts them (the same conversation but for
    case, spacing and punctuation: `copy_key`): a copy in train and another in test would
    score memory, and keying on the line number would move every example after an inserted
    or deleted line. Test, then val, get their fraction of the examples (rounded
    half up), drawn across the labels (a group's most common label) by _held_out.
    """
    total = len(examples)
    wants = {"test": _share(total, fractions[2]), "val": _share(total, fractions[1])}
    copies = _copies(examples) if group_key is None else {}
    groups: dict[str, list[Example]] = defaultdict(list)
    for ex in examples:
        if group_key is None:
            key = copies[ex.id]
        else:
            if group_key not in ex.extra:
                raise DataError(
                    f"record has no '{group_key}' field, which [split] group_key names",
                    file=source, line=ex.line,
                    fix=f"add \"{group_key}\" to every record or remove group_key from rung.toml",
                )
            key = str(ex.extra[group_key])
        groups[key].append(ex)

    if order_key is not None:  # by time: a group goes where its newest record falls
        when = _order_values(examples, order_key, source)
        newest = {k: max(when[id(m)] for m in members) for k, members in groups.items()}
        keys = sorted(groups, key=lambda k: (newest[k], _seeded_hash(seed, k)), reverse=True)
        assigned = {"train": [], "val": [], "test": []}
        for name, chosen in _deal(keys, [len(groups[k]) for k in keys], wants).items():
            for k in chosen:
                assigned[name].extend(groups[k])
        return _shuffled(assigned, seed)

    strata: dict[str, list[str]] = defaultdict(list)
    for key, members in groups.items():
        label = _majority([m.output for m in members]) if stratify else ""
        strata[label].append(key)

    left = {label: sorted(keys, key=lambda k: _seeded_hash(seed, k))
            for label, keys in strata.items()}
    sizes = {k: len(members) for k, members in groups.items()}
    assigned: dict[str, list[Example]] = {"train": [], "val": [], "test": []}
    for name in ("test", "val"):
        chosen = _held_out(left, sizes, wants[name], seed)
        for k in sorted(chosen):
            assigned[name].extend(groups[k])
        left = {label: [k for k in keys if k not in chosen] for label, keys in left.items()}
    assigned["train"] = [ex for keys in left.values() for k in keys for ex in groups[k]]
    return _shuffled(assigned, seed)


def _copies(examples: list[Example]) -> dict[str, str]:
    """Each example's id -> the smallest id among its copies, its group key: examples with
    no copy but an identical one keep their own id, so their split is as it was."""
    smallest: dict[str, str] = {}
    for ex in examples:
        key = copy_key(ex)
        smallest[key] = min(smallest.get(key, ex.id), ex.id)
    return {ex.id: smallest[copy_key(ex)] for ex in examples}


def split_by_settings(examples: list[Example], table: "SplitTable", *, seed: int, kind: str,
                      source: str | Path | None = None) -> Split:
    """The split a task's [split] table and seed make: the climb's, and the one the audit
    checks for leaks, so the two cannot drift apart. Classification labels are read as the
    labels they name (stripped_labels) and stratify the split."""
    if kind == "classification":
        examples = stripped_labels(examples)
    return split_examples(examples, seed=seed, fractions=(table.train, table.val, table.test),
                          stratify=kind == "classification", group_key=table.group_key,
                          order_key=table.order_key, source=source)


def _held_out(strata: dict[str, list[str]], sizes: dict[str, int], want: int,
              seed: int) -> set[str]:
    """Groups for one held-out split of about `want` examples, drawn across the labels in
    proportion: each label's groups (in seeded order) are spaced evenly over [0, 1) and taken
    in that order, so every label with a group left gives its first one before any gives a
    second (a small label is not rounded out of val and test while the total allows), and
    after that each label gives in proportion to its size. A label's last group stays in
    train, so no label is held out whole: one seen only in val and test could be scored but
    never learnt. A group is taken only where it brings the split no further from `want`
    than it was: one big group cannot swallow the split, it stays in train."""
    order = sorted((rank / len(keys), _seeded_hash(seed, label), rank, label)
                   for label, keys in strata.items() for rank in range(len(keys) - 1))
    chosen: set[str] = set()
    got = 0
    for _, _, rank, label in order:
        room = want - got
        if room <= 0:
            break
        key = strata[label][rank]
        if sizes[key] - room <= room:
            chosen.add(key)
            got += sizes[key]
    return chosen


def _share(total: int, fraction: float) -> int:
    """total x fraction rounded half up: Python's round() takes 0.5 to 0, which emptied the
    test split of ten examples at 5%."""
    return math.floor(total * fraction + 0.5 + 1e-9)


def _shuffled(assigned: dict[str, list[Example]], seed: int) -> Split:
    rng = np.random.default_rng(seed)
    for name in assigned:  # a stable, seeded order inside each split
        part = sorted(assigned[name], key=lambda e: (e.id, e.line))
        assigned[name] = [part[i] for i in rng.permutation(len(part))]
    return Split(**assigned)


def _order_values(examples: list[Example], key: str,
                  source: str | Path | None) -> dict[int, Any]:
    """Each record's `key` as something that sorts in time: numbers as they are, strings
    as ISO 8601 dates or times. One kind for the whole file, or the order means nothing."""
    values: dict[int, Any] = {}
    kinds: dict[str, int] = {}
    for ex in examples:
        raw = ex.extra.get(key)
        fix = (f"give every record a \"{key}\" that is an ISO 8601 date or time "
               "(\"2026-03-01\", \"2026-03-01T09:30:00\") or a number, or remove "
               "[split] order_key")
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            what = "has no" if raw is None else f"has a {type(raw).__name__} in its"
            raise DataError(f"record {what} '{key}' field, which [split] order_key names",
                            file=source, line=ex.line, fix=fix)
        kind, value = _moment(raw)
        if kind == "text":
            raise DataError(f"'{key}' is {raw!r}, not an ISO 8601 date or time or a number",
                            file=source, line=ex.line, fix=fix)
        if kind == "number" and not math.isfinite(value):
            raise DataError(f"'{key}' is {raw}, which has no place in time", file=source,
                            line=ex.line, fix=fix)
        values[id(ex)] = value
        kinds.setdefault(kind, ex.line)
        if len(kinds) > 1:
            other = next(k for k in kinds if k != kind)
            raise DataError(f"'{key}' is a {kind} here and a {other} on line {kinds[other]}",
                            file=source, line=ex.line, fix=fix)
    return values


def _moment(raw: int | float | str) -> tuple[str, Any]:
    """("date", a naive UTC datetime), ("number", the number) or ("text", None). A date is
    its day's first moment; a time without a zone is read as UTC and one with a zone taken to
    UTC, so the split is the same on every machine. Text that is a number is one: a CSV cell
    is text, and "1712345678" there is 1712345678 in JSON Lines (digits alone are always a
    number, so a column of 8-digit ids is not read as part dates, part numbers)."""
    if not isinstance(raw, str):
        return "number", raw
    text = raw.strip()
    if re.fullmatch(r"[+-]?\d+", text):  # before dates: "20260301" is a number here, and
        return "number", int(text)       # an int keeps nanosecond stamps apart
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            return "number", float(text)
        except ValueError:
            return "text", None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(timezone.utc)
    return "date", parsed.replace(tzinfo=None)


def _deal(keys: list[str], sizes: list[int], want: dict[str, int]) -> dict[str, list[str]]:
    """By time: the newest keys to test until it has its share of examples (not of groups),
    the next to val, the rest to train; a group is never split, whatever its size."""
    out: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    got = {"test": 0, "val": 0}
    for key, size in zip(keys, sizes):
        name = next((n for n in ("test", "val") if got[n] < want[n]), "train")
        out[name].append(key)
        if name != "train":
            got[name] += size
    return out


def _majority(labels: list[str]) -> str:
    counts: dict[str, int] = defaultdict(int)
    for label in labels:
        counts[label] += 1
    return max(sorted(counts), key=lambda label: counts[label])


def _seeded_hash(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()
