"""Seconds to audit a chat dataset, beside the same checks written naively, on the same file.

rung's audit runs every check (format, size, exact and near duplicates, contradictions, class
balance, leakage, PII, token lengths against SmolLM2's tokenizer, diversity on a 1,000-example
embedding sample, review sample) on a generated `--n`-example file, reading included.

Baseline (named "naive-all-pairs"): the same audit with its three similarity checks (near
duplicates, contradictions, leakage) replaced by what a user writes without MinHash: one pass
over every pair of inputs computing exact Jaccard of their word 3-shingles, keeping the pairs
at or above the lowest threshold (0.8), from which near-duplicate groups (>= 0.8),
contradictions (>= 0.9 with different answers) and leakage (a val/test input near a train
one, on the audit's own split) are read. The other checks run as rung runs them, on the same
file, after a warm-up audit has loaded the tokenizer and MiniLM for both. Both sides are timed on the same n: the ratio is measured, not extrapolated (all-pairs
grows with n^2, so the default n is the largest that runs in a couple of minutes here).

Same answers: the near-duplicate groups, contradiction groups and leaked examples each side
found are compared; MinHash LSH is probabilistic (~95% recall at the threshold), so the share of
the naive side's findings that rung also found is printed and must be at least 90%.

`--big N` also times rung alone on an N-example file (default 100,000; 0 skips it); no
naive figure is given for it, since all-pairs there would take hours.

    python benchmarks/audit_speed.py [--n 10000] [--big 100000]

Last line: JSON with ratio, rung_seconds, naive_seconds, found (per check), seconds_big, ...
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from audit_data import write_chat_file  # noqa: E402

from rung.data.audit.duplicates import CONTRADICTION_THRESHOLD, _user_text, \
    normalise_text  # noqa: E402
from rung.data.audit.report import AuditInput, audit_input, run_audit  # noqa: E402
from rung.data.audit.similarity import UnionFind, _shingles  # noqa: E402
from rung.data.example import Example  # noqa: E402
from rung.data.splits import split_examples  # noqa: E402

SIMILARITY_CHECKS = ("near-duplicates", "contradictions", "leakage")
NEAR_THRESHOLD = 0.8


def all_pairs(examples: list[Example], threshold: float) -> list[tuple[int, int, float]]:
    """One pass over every pair of inputs: (i, j, exact Jaccard) where it reaches `threshold`."""
    sets = [_shingles(_user_text(ex), 3) for ex in examples]
    found = []
    for i, a in enumerate(sets):
        for j in range(i + 1, len(sets)):
            b = sets[j]
            union = len(a | b)
            similarity = len(a & b) / union if union else 1.0
            if similarity >= threshold:
                found.append((i, j, similarity))
    return found


def groups_of(n: int, pairs: list[tuple[int, int, float]], threshold: float) -> list[list[int]]:
    union = UnionFind(n)
    for i, j, similarity in pairs:
        if similarity >= threshold:
            union.union(i, j)
    return union.groups()


def naive_findings(inp: AuditInput, examples: list[Example]) -> dict[str, set]:
    """Near-duplicate groups, contradiction groups and leaked lines from one all-pairs pass."""
    pairs = all_pairs(examples, NEAR_THRESHOLD)
    near = near_groups_without_exact(
        examples, [sorted(examples[p].line for p in g)
                   for g in groups_of(len(examples), pairs, NEAR_THRESHOLD)])
    outputs = [normalise_text(ex.output) for ex in examples]
    contradictions = {tuple(sorted(examples[p].line for p in g))
                      for g in groups_of(len(examples), pairs, CONTRADICTION_THRESHOLD)
                      if len({outputs[p] for p in g}) > 1}
    train, held_out = held_out_lines(inp, examples)
    leaked = set()
    for i, j, _ in pairs:  # exact copies have Jaccard 1, so they are among the pairs
        a, b = examples[i].line, examples[j].line
        if a in train and b in held_out:
            leaked.add(b)
        elif b in train and a in held_out:
            leaked.add(a)
    return {"near-duplicates": near, "contradictions": contradictions, "leakage": leaked}


def near_groups_without_exact(examples: list[Example], groups: list[list[int]]) -> set:
    """Near-duplicate groups as rung reports them: exact conversation copies folded away."""
    by_line = {ex.line: ex for ex in examples}
    first: dict[tuple, int] = {}
    out = set()
    for group in groups:
        lines = []
        for line in group:
            key = tuple((m.role, normalise_text(m.content)) for m in by_line[line].messages)
            if first.setdefault(key, line) == line:
                lines.append(line)
        if len(lines) > 1:
            out.add(tuple(lines))
    return out


def held_out_lines(inp: AuditInput, examples: list[Example]) -> tuple[set[int], set[int]]:
    """Train and val/test lines of the split the audit's leakage check makes."""
    s = inp.split
    split = split_examples(examples, seed=inp.seed, fractions=(s.train, s.val, s.test),
                           stratify=inp.kind == "classification", group_key=s.group_key)
    return {ex.line for ex in split.train}, {ex.line for ex in split.val + split.test}


def rung_findings(report, held_out: set[int]) -> dict[str, set]:
    """The same three findings read off rung's report."""
    return {"near-duplicates": {tuple(g) for g in report.check("near-duplicates").rows},
            "contradictions": {tuple(sorted(g)) for g in report.check("contradictions").rows},
            "leakage": {line for g in report.check("leakage").rows for line in g
                        if line in held_out}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000, help="examples both sides audit")
    parser.add_argument("--big", type=int, default=100_000,
                        help="also time rung alone on this many examples (0: skip)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="rung-audit-bench-"))
    path = write_chat_file(folder / f"chat-{args.n}.jsonl", args.n)
    inp = audit_input(path, kind="classification")
    # warm-up: the tokenizer and MiniLM load once per process; neither side pays for it
    warm = write_chat_file(folder / "warm-up.jsonl", 200)
    run_audit(audit_input(warm, kind="classification"), review_folder=folder / "review-warm")

    start = time.perf_counter()
    report, _ = run_audit(inp, review_folder=folder / "review-rung")
    rung_seconds = time.perf_counter() - start

    start = time.perf_counter()
    rest, examples = run_audit(inp, review_folder=folder / "review-naive", skip=SIMILARITY_CHECKS)
    naive = naive_findings(inp, examples)
    naive_seconds = time.perf_counter() - start
    # identical work: both read the same file and ran the same non-similarity checks
    assert [c.check for c in rest.checks] == [c.check for c in report.checks
                                             if c.check not in SIMILARITY_CHECKS]
    ours = rung_findings(report, held_out_lines(inp, examples)[1])
    found = {name: (len(ours[name] & naive[name]) / len(naive[name]) if naive[name] else 1.0)
             for name in SIMILARITY_CHECKS}
    for name, share in found.items():
        assert share >= 0.9, f"rung found only {share:.0%} of the naive {name}"

    seconds_big = None
    if args.big:
        big = write_chat_file(folder / f"chat-{args.big}.jsonl", args.big)
        start = time.perf_counter()
        big_report, _ = run_audit(audit_input(big, kind="classification"),
                                  review_folder=folder / "review-big")
        seconds_big = time.perf_counter() - start

    ratio = naive_seconds / rung_seconds
    print(f"rung audit, {args.n} examples: {rung_seconds:.1f} s "
          f"(per check: {json.dumps(report.seconds)})")
    print(f"naive-all-pairs, same {args.n} examples: {naive_seconds:.1f} s")
    print("found by both: " + ", ".join(
        f"{name} rung {len(ours[name])} / naive {len(naive[name])} ({found[name]:.0%} of naive)"
        for name in SIMILARITY_CHECKS))
    print(f"ratio {ratio:.1f}x")
    if seconds_big is not None:
        print(f"rung audit, {args.big} examples: {seconds_big:.1f} s "
              f"(per check: {json.dumps(big_report.seconds)}); verdict {big_report.verdict}")
    print(json.dumps({
        "ratio": round(ratio, 2), "rung_seconds": round(rung_seconds, 2),
        "naive_seconds": round(naive_seconds, 2), "baseline": "naive-all-pairs",
        "n": args.n, "found": {k: round(v, 3) for k, v in found.items()},
        "counts": {name: {"rung": len(ours[name]), "naive": len(naive[name])}
                   for name in SIMILARITY_CHECKS},
        "seconds_big": None if seconds_big is None else round(seconds_big, 1),
        "big": args.big or None, "cores": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
