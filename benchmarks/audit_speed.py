"""Seconds to audit a chat dataset, beside the same checks with exact similarity, on the same file.

rung's audit runs every check (format, size, exact and near duplicates, contradictions, class
balance, leakage, PII, token lengths against SmolLM2's tokenizer, diversity on a 1,000-example
embedding sample, review sample) on a generated `--n`-example file, reading included.

Baseline (named "sparse-all-pairs"): the same audit with its three similarity checks (near
duplicates, contradictions, leakage) replaced by what a competent user writes without
MinHash: exact Jaccard of every pair of inputs' word 3-shingles, vectorised. The inputs
become a sparse binary example-by-shingle matrix X (scipy.sparse); X @ X.T, a block of rows
at a time, counts each pair's shared shingles, and Jaccard = shared / (|a| + |b| - shared)
from the row sums. The pairs at or above the lowest threshold (0.8) are kept, and from them
near-duplicate groups (>= 0.8), contradictions (>= 0.9 with different answers) and leakage (a
val/test input near a train one, on the split the audit's leakage check makes) are read. The
other checks run as rung runs them, on the same file, after a warm-up audit has loaded the
tokenizer and MiniLM for both. Both sides are timed on the same n: the ratio is measured, not
extrapolated.

Same answers (asserted): the exact side must find something in each of the three checks
(else the comparison tests nothing), and, MinHash LSH being probabilistic (~95% recall at
the threshold), rung must find at least 90% of the exact side's near-duplicate groups,
contradiction groups and leaked examples (recall) and at least 90% of what rung reports must
be in the exact side's findings (precision). The checks both sides run as rung does must give
equal results, except size and review-sample, which read the near-duplicate rows (size counts
the examples left once near-copies are dropped; the review sample favours flagged lines).

`--big N` also times rung alone on an N-example file (default 100,000; 0 skips it); no
baseline figure is given for it.

    python benchmarks/audit_speed.py [--n 10000] [--big 100000]

Last line: JSON with ratio, rung_seconds, baseline_seconds, similarity_ratio (the three
similarity checks against the exact pass alone, each side's reading and other checks left
out), recall and precision (per check), counts, seconds_big, ...
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

import numpy as np  # noqa: E402
from scipy import sparse  # noqa: E402

from rung.data.audit.duplicates import CONTRADICTION_THRESHOLD, _user_text, \
    normalise_text  # noqa: E402
from rung.data.audit.report import AuditInput, audit_input, run_audit  # noqa: E402
from rung.data.audit.similarity import UnionFind, _shingles  # noqa: E402
from rung.data.example import Example  # noqa: E402
from rung.data.splits import split_by_settings  # noqa: E402

SIMILARITY_CHECKS = ("near-duplicates", "contradictions", "leakage")
# read the near-duplicate rows, so they may differ where the baseline skipped that check
READS_SIMILARITY = ("size", "review-sample")
NEAR_THRESHOLD = 0.8
MIN_SHARE = 0.9  # recall and precision each side of MinHash's estimate
BLOCK = 2_000  # rows of X @ X.T at a time: bounds memory at ~BLOCK * n pair counts


def all_pairs(examples: list[Example], threshold: float) -> list[tuple[int, int, float]]:
    """(i, j, exact Jaccard) for every pair of inputs i < j where it reaches `threshold`.

    A sparse binary example-by-shingle matrix times its transpose gives every pair's shared
    shingles; the row sums give the set sizes. Exact, like a loop over the pairs, but in
    scipy's compiled sparse product."""
    vocabulary: dict[bytes, int] = {}
    columns: list[int] = []
    indptr = [0]
    for ex in examples:
        columns.extend(vocabulary.setdefault(s, len(vocabulary))
                       for s in _shingles(_user_text(ex), 3))
        indptr.append(len(columns))
    n = len(examples)
    x = sparse.csr_matrix((np.ones(len(columns), dtype=np.int32), columns, indptr),
                          shape=(n, len(vocabulary)))
    sizes = np.diff(x.indptr).astype(np.int64)  # distinct shingles per input
    xt = x.T.tocsr()
    found: list[tuple[int, int, float]] = []
    for first in range(0, n, BLOCK):
        shared = (x[first:first + BLOCK] @ xt).tocoo()
        rows, cols = shared.row.astype(np.int64) + first, shared.col.astype(np.int64)
        upper = cols > rows
        rows, cols, both = rows[upper], cols[upper], shared.data[upper].astype(np.int64)
        similarity = both / (sizes[rows] + sizes[cols] - both)
        keep = similarity >= threshold
        found.extend(zip(rows[keep].tolist(), cols[keep].tolist(),
                         similarity[keep].tolist()))
    return found


def groups_of(n: int, pairs: list[tuple[int, int, float]], threshold: float) -> list[list[int]]:
    union = UnionFind(n)
    for i, j, similarity in pairs:
        if similarity >= threshold:
            union.union(i, j)
    return union.groups()


def exact_findings(inp: AuditInput, examples: list[Example]) -> dict[str, set]:
    """Near-duplicate groups, contradiction groups and leaked lines from one exact pass."""
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
    """Train and val/test lines of the split the audit's leakage check makes (the same call)."""
    split = split_by_settings(examples, inp.split, seed=inp.seed, kind=inp.kind,
                              source=inp.data_path)
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
    rest, examples = run_audit(inp, review_folder=folder / "review-exact",
                               skip=SIMILARITY_CHECKS)
    exact_start = time.perf_counter()
    exact = exact_findings(inp, examples)
    baseline_seconds = time.perf_counter() - start
    # the similarity part alone, each side: the three checks vs the exact pass and its reads
    similarity_seconds = {"rung": sum(report.seconds[c] for c in SIMILARITY_CHECKS),
                          "baseline": time.perf_counter() - exact_start}

    # identical work: both read the same file and ran the same other checks, with equal
    # results where a check does not read the similarity checks' rows
    assert [c.check for c in rest.checks] == [c.check for c in report.checks
                                             if c.check not in SIMILARITY_CHECKS]
    for a, b in zip(rest.checks, (c for c in report.checks
                                  if c.check not in SIMILARITY_CHECKS)):
        if a.check not in READS_SIMILARITY:
            assert a.to_dict() == b.to_dict(), f"{a.check} differs between the two sides"
    ours = rung_findings(report, held_out_lines(inp, examples)[1])
    recall, precision = {}, {}
    for name in SIMILARITY_CHECKS:
        # nothing planted found by the exact side: the comparison would test nothing
        assert exact[name], f"the exact side found no {name}; use a larger --n"
        assert ours[name], f"rung found no {name}; the exact side found {len(exact[name])}"
        both = len(ours[name] & exact[name])
        recall[name], precision[name] = both / len(exact[name]), both / len(ours[name])
        assert recall[name] >= MIN_SHARE, \
            f"rung found only {recall[name]:.0%} of the exact {name}"
        assert precision[name] >= MIN_SHARE, \
            f"only {precision[name]:.0%} of rung's {name} are in the exact set"

    seconds_big = None
    if args.big:
        big = write_chat_file(folder / f"chat-{args.big}.jsonl", args.big)
        start = time.perf_counter()
        big_report, _ = run_audit(audit_input(big, kind="classification"),
                                  review_folder=folder / "review-big")
        seconds_big = time.perf_counter() - start

    ratio = baseline_seconds / rung_seconds
    print(f"rung audit, {args.n} examples: {rung_seconds:.1f} s "
          f"(per check: {json.dumps(report.seconds)})")
    print(f"sparse-all-pairs, same {args.n} examples: {baseline_seconds:.1f} s "
          f"(per check: {json.dumps(rest.seconds)}; "
          f"reading and the exact pass {baseline_seconds - sum(rest.seconds.values()):.1f} s)")
    print(f"similarity checks alone: rung {similarity_seconds['rung']:.1f} s, exact pass "
          f"{similarity_seconds['baseline']:.1f} s "
          f"({similarity_seconds['baseline'] / similarity_seconds['rung']:.2f}x)")
    print("found: " + ", ".join(
        f"{name} rung {len(ours[name])} / exact {len(exact[name])} (recall {recall[name]:.0%}, "
        f"precision {precision[name]:.0%})" for name in SIMILARITY_CHECKS))
    print(f"ratio {ratio:.2f}x")
    if seconds_big is not None:
        print(f"rung audit, {args.big} examples: {seconds_big:.1f} s "
              f"(per check: {json.dumps(big_report.seconds)}); verdict {big_report.verdict}")
    print(json.dumps({
        "ratio": round(ratio, 2), "rung_seconds": round(rung_seconds, 2),
        "baseline_seconds": round(baseline_seconds, 2), "baseline": "sparse-all-pairs",
        "similarity_seconds": {k: round(v, 3) for k, v in similarity_seconds.items()},
        "similarity_ratio": round(similarity_seconds["baseline"] / similarity_seconds["rung"], 2),
        "n": args.n, "recall": {k: round(v, 3) for k, v in recall.items()},
        "precision": {k: round(v, 3) for k, v in precision.items()},
        "counts": {name: {"rung": len(ours[name]), "exact": len(exact[name]),
                          "both": len(ours[name] & exact[name])}
                   for name in SIMILARITY_CHECKS},
        "seconds_big": None if seconds_big is None else round(seconds_big, 1),
        "big": args.big or None, "cores": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
