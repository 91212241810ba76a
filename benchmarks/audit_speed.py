"""Seconds to audit 100,000 chat examples, beside the same checks written naively.

rung's audit runs every check (format, size, exact and near duplicates, contradictions, class
balance, leakage, PII, token lengths against SmolLM2's tokenizer, diversity on a 1,000-example
embedding sample, review sample) on a generated 100,000-example file, reading included.

Baseline (named "naive-all-pairs"): the three similarity checks (near duplicates,
contradictions, leakage) written the plain way, exact Jaccard over every pair of inputs, on a
5,000-example subset of the same file; the other checks have no naive variant and are timed as
rung runs them on the same subset. The naive time grows with n^2, so `naive_seconds_100k_est`
extrapolates it (x400 for the all-pairs part). `agree_5k` says whether both found the same
near-duplicate groups on the subset (MinHash LSH is probabilistic; recall ~95% at threshold).

    python benchmarks/audit_speed.py [--n 100000] [--subset 5000]

Last line: JSON with seconds_100k, naive_seconds_5k, naive_seconds_100k_est, ratio_est, ...
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

from rung.data.audit.duplicates import _user_text, normalise_text  # noqa: E402
from rung.data.audit.report import audit_input, run_audit  # noqa: E402
from rung.data.audit.similarity import UnionFind, _shingles  # noqa: E402
from rung.data.example import Example  # noqa: E402
from rung.data.formats import read_examples  # noqa: E402
from rung.data.splits import split_examples  # noqa: E402


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def naive_pairs(examples: list[Example], threshold: float) -> list[tuple[int, int]]:
    """Every pair of examples, exact Jaccard of their input shingles."""
    sets = [_shingles(_user_text(ex), 3) for ex in examples]
    return [(i, j) for i in range(len(sets)) for j in range(i + 1, len(sets))
            if jaccard(sets[i], sets[j]) >= threshold]


def naive_near_duplicates(examples: list[Example], threshold: float = 0.8) -> list[list[int]]:
    union = UnionFind(len(examples))
    for i, j in naive_pairs(examples, threshold):
        union.union(i, j)
    return sorted(sorted(examples[p].line for p in g) for g in union.groups())


def naive_contradictions(examples: list[Example], threshold: float = 0.9) -> list[list[int]]:
    outputs = [normalise_text(ex.output) for ex in examples]
    union = UnionFind(len(examples))
    for i, j in naive_pairs(examples, threshold):
        union.union(i, j)
    return sorted(sorted(examples[p].line for p in g) for g in union.groups()
                  if len({outputs[p] for p in g}) > 1)


def naive_leakage(examples: list[Example], threshold: float = 0.8) -> int:
    split = split_examples(examples, seed=0)
    train = [_shingles(_user_text(ex), 3) for ex in split.train]
    leaked = 0
    for ex in split.val + split.test:
        s = _shingles(_user_text(ex), 3)
        leaked += any(jaccard(s, t) >= threshold for t in train)
    return leaked


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--subset", type=int, default=5_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="rung-audit-bench-"))
    big = write_chat_file(folder / "chat-100k.jsonl", args.n)
    small = folder / "chat-5k.jsonl"
    with big.open() as src, small.open("w") as dst:
        for _, line in zip(range(args.subset), src):
            dst.write(line)

    start = time.perf_counter()
    report, _ = run_audit(audit_input(big, kind="classification"), review_folder=folder / "review")
    seconds_100k = time.perf_counter() - start

    # naive: the similarity family all-pairs, the rest as rung runs them, on the subset
    rest_start = time.perf_counter()
    subset_report, _ = run_audit(audit_input(small, kind="classification"),
                                 review_folder=folder / "review-5k",
                                 skip=("near-duplicates", "contradictions", "leakage"))
    rest_seconds = time.perf_counter() - rest_start
    examples = read_examples(small)
    naive_start = time.perf_counter()
    near = naive_near_duplicates(examples)
    naive_contradictions(examples)
    naive_leakage(examples)
    all_pairs_seconds = time.perf_counter() - naive_start
    naive_seconds_5k = rest_seconds + all_pairs_seconds
    scale = (args.n / args.subset) ** 2
    naive_100k_est = rest_seconds * args.n / args.subset + all_pairs_seconds * scale

    rung_small, _ = run_audit(audit_input(small, kind="classification"),
                              skip=("diversity", "token-lengths", "pii", "review-sample"))
    rung_groups = {tuple(g) for g in rung_small.check("near-duplicates").rows}
    naive_groups = near_groups_without_exact(examples, near)
    found = len(rung_groups & naive_groups) / max(len(naive_groups), 1)

    print(f"rung audit, {args.n} examples: {seconds_100k:.1f} s "
          f"(per check: {json.dumps(report.seconds)})")
    print(f"naive-all-pairs, {args.subset} examples: {naive_seconds_5k:.1f} s "
          f"(all-pairs {all_pairs_seconds:.1f} s + other checks {rest_seconds:.1f} s); "
          f"extrapolated to {args.n}: {naive_100k_est / 3600:.1f} h")
    print(f"near-duplicate groups on the subset: rung {len(rung_groups)}, naive "
          f"{len(naive_groups)}, rung found {found:.0%} of the naive ones")
    print(f"verdict on the 100k file: {report.verdict}")
    print(json.dumps({
        "seconds_100k": round(seconds_100k, 1), "naive_seconds_5k": round(naive_seconds_5k, 1),
        "naive_seconds_100k_est": round(naive_100k_est, 0),
        "ratio_est": round(naive_100k_est / seconds_100k, 1),
        "near_groups_found": round(found, 3), "baseline": "naive-all-pairs",
        "n": args.n, "subset": args.subset, "cores": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
