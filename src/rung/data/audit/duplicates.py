"""Duplicate, near-duplicate, contradiction and leakage checks.

Why these matter (the seeds' checklist):

* Deduplication: a model trained on many copies of one example overfits to it, and the copies
  weigh as much as the rest of the data in the loss. Exact copies are found by hashing a
  normalised form of the conversation, near-copies by MinHash over word shingles.
* No contradictions: the same input with two different answers teaches the model that either
  is right, and confuses it; one of the two labels is usually a mistake.
* Leakage: a val or test example that also sits in train measures memory, not skill, and
  inflates test scores, so every rung of the ladder would look better than it is.

The three similarity checks share one helper: `_index_inputs` collapses equal normalised inputs
into one node, MinHashes each distinct input once, asks a `MinHashLSH` index for candidate
pairs and keeps those whose estimated Jaccard similarity reaches the threshold. Given a
`TextSimilarity` built once (`input_similarity`), all three reuse its pairs instead of
MinHashing again. Each check then joins examples with a union-find (`UnionFind`, in
similarity.py), linking only the pairs it cares about.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


from rung.data.audit.base import CheckResult, Status
from rung.data.normalise import copy_key, normalise_text
from rung.data.audit.similarity import TextSimilarity, UnionFind, similar_pairs
from rung.data.example import Example
from rung.data.splits import Split

_HELD_OUT = ("val", "test")
CONTRADICTION_THRESHOLD = 0.9  # near-same inputs: stricter than near-duplicates


def _user_text(example: Example) -> str:
    """The input the similarity checks compare: every user turn, normalised."""
    return normalise_text(example.said)


def _context_key(example: Example) -> tuple[str, ...]:
    """What shapes the answer besides the user turns: system prompt and earlier assistant turns.

    Two examples only contradict each other when this matches too; the same text under a
    different instruction may rightly get a different answer.
    """
    last = max((i for i, m in enumerate(example.messages) if m.role == "assistant"), default=-1)
    return tuple(
        f"{m.role}:{normalise_text(m.content)}"
        for i, m in enumerate(example.messages)
        if m.role != "user" and i != last
    )


@dataclass(frozen=True)
class _InputIndex:
    """Examples grouped by equal normalised input (nodes), and the similar node pairs."""

    node_of: list[int]  # example position -> node
    nodes: list[list[int]]  # node -> example positions, in order
    pairs: list[tuple[int, int]]  # similar nodes (u < v), equal inputs excluded


def input_similarity(examples: Sequence[Example], *, threshold: float) -> TextSimilarity:
    """One similarity index over the examples' inputs, to pass to every check as `similarity`."""
    return TextSimilarity((_user_text(ex) for ex in examples), threshold=threshold)


def _index_inputs(
    examples: Sequence[Example], *, threshold: float, num_perm: int, shingle: int, seed: int,
    similarity: TextSimilarity | None = None,
) -> _InputIndex:
    node_by_text: dict[str, int] = {}
    node_of: list[int] = []
    nodes: list[list[int]] = []
    for position, example in enumerate(examples):
        node = node_by_text.setdefault(_user_text(example), len(nodes))
        if node == len(nodes):
            nodes.append([])
        nodes[node].append(position)
        node_of.append(node)
    texts = list(node_by_text)
    if similarity is not None and similarity.serves(threshold=threshold, num_perm=num_perm,
                                                    shingle=shingle, seed=seed):
        # Same texts, other numbering: translate the shared index's pairs to this one's nodes.
        shared = similarity.index
        node_of_shared = {shared[text]: node for node, text in enumerate(texts) if text in shared}
        pairs = sorted(
            (min(u, v), max(u, v)) for u, v in (
                (node_of_shared.get(a), node_of_shared.get(b))
                for a, b in similarity.pairs(threshold))
            if u is not None and v is not None)
    else:
        pairs = similar_pairs(texts, threshold=threshold, num_perm=num_perm, shingle=shingle,
                              seed=seed)
    return _InputIndex(node_of, nodes, pairs)


def _line_groups(groups: Iterable[Iterable[int]], examples: Sequence[Example]) -> list[list[int]]:
    """Positions -> sorted 1-based lines, groups ordered by their first line."""
    return sorted(sorted(examples[p].line for p in group) for group in groups)


def _share(count: int, total: int) -> float:
    return round(count / total, 4) if total else 0.0


# --- the checks -------------------------------------------------------------------------------


def exact_duplicates(examples: Sequence[Example]) -> CheckResult:
    """Conversations that are the same once case, spacing and punctuation are ignored.

    Duplicates make the model overfit on the copied examples (they count several times in the
    loss) and, split across train and test, leak answers. Hash-based dedup is exact and cheap:
    sha256 of every turn's role and normalised content, in order.
    """
    by_hash: dict[str, list[int]] = defaultdict(list)
    for position, example in enumerate(examples):
        by_hash[copy_key(example)].append(position)
    rows = _line_groups((g for g in by_hash.values() if len(g) > 1), examples)
    copies = sum(len(group) - 1 for group in rows)
    n = len(examples)
    details = {"examples": n, "copies": copies, "groups": len(rows),
               "largest_group": max(map(len, rows), default=0), "fraction": _share(copies, n)}
    if not rows:
        return CheckResult("exact-duplicates", "pass", "No exact duplicates.", details=details)
    status: Status = "fail" if copies >= 0.10 * n else "warn"
    noun = "example is an exact copy" if copies == 1 else "examples are exact copies"
    group_word = "group" if len(rows) == 1 else "groups"
    return CheckResult(
        "exact-duplicates", status,
        f"{copies} {noun} of others ({len(rows)} {group_word})",
        fix="remove the copies: `rung audit --fix OUT` keeps the first of each group",
        rows=rows, details=details,
    )


def near_duplicates(
    examples: Sequence[Example],
    *,
    threshold: float = 0.8,
    num_perm: int = 128,
    shingle: int = 3,
    seed: int = 1,
    similarity: TextSimilarity | None = None,
) -> CheckResult:
    """Examples whose inputs (user turns) are near-copies: MinHash Jaccard >= `threshold`.

    Near-copies (a template with one field changed, a ticket pasted twice with a new greeting)
    overfit the model just like exact copies, but hashing misses them. Jaccard is over word
    `shingle`-grams, so one changed word alters up to `shingle` of them: with 5-grams and 0.8,
    a single substitution mid-text is flagged only in texts of about 50 words or more, and a
    change near either end sooner; lower `shingle` to catch smaller edits in short texts.
    Exact copies of a whole conversation are left to `exact_duplicates`: only the first of each
    copy group takes part here, so no pair is reported twice.
    """
    firsts: dict[str, int] = {}
    for position, example in enumerate(examples):
        firsts.setdefault(copy_key(example), position)
    kept = [examples[p] for p in sorted(firsts.values())]
    index = _index_inputs(kept, threshold=threshold, num_perm=num_perm, shingle=shingle, seed=seed,
                          similarity=similarity)
    union = UnionFind(len(kept))
    for members in index.nodes:
        union.union_all(members)
    for u, v in index.pairs:
        union.union(index.nodes[u][0], index.nodes[v][0])
    rows = _line_groups(union.groups(), kept)
    involved = sum(map(len, rows))
    n = len(examples)
    details = {"examples": n, "near_duplicates": involved, "groups": len(rows),
               "largest_group": max(map(len, rows), default=0), "threshold": threshold,
               "shingle": shingle, "num_perm": num_perm, "fraction": _share(involved, n)}
    if not rows:
        return CheckResult("near-duplicates", "pass",
                           f"No near-duplicate inputs (Jaccard >= {threshold}).", details=details)
    status: Status = "fail" if involved >= 0.30 * n else "warn"
    return CheckResult(
        "near-duplicates", status,
        f"{involved} examples have near-duplicate inputs ({len(rows)} "
        f"group{'s' if len(rows) != 1 else ''}, largest "
        f"{details['largest_group']}, Jaccard >= {threshold})",
        fix="review each group and keep one example of each (or make them genuinely different); "
            "near-copies overweight their pattern in training",
        rows=rows, details=details,
    )


def contradictions(
    examples: Sequence[Example],
    *,
    threshold: float = CONTRADICTION_THRESHOLD,
    num_perm: int = 128,
    shingle: int = 3,
    seed: int = 1,
    similarity: TextSimilarity | None = None,
) -> CheckResult:
    """The same (or nearly the same, Jaccard >= `threshold`) input with different outputs.

    Contradictory labels confuse the model: it learns that either answer is right, and at least
    one of them is usually a labelling mistake. Outputs are compared normalised, so "BUG" and
    "bug." agree; examples only conflict when their system prompt and earlier turns match too.
    """
    index = _index_inputs(examples, threshold=threshold, num_perm=num_perm, shingle=shingle,
                          seed=seed, similarity=similarity)
    contexts: list[dict[tuple[str, ...], list[int]]] = []
    for members in index.nodes:
        by_context: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for position in members:
            by_context[_context_key(examples[position])].append(position)
        contexts.append(by_context)
    union = UnionFind(len(examples))
    for by_context in contexts:
        for members in by_context.values():
            union.union_all(members)
    for u, v in index.pairs:
        for context in contexts[u].keys() & contexts[v].keys():
            union.union(contexts[u][context][0], contexts[v][context][0])

    outputs = [normalise_text(example.output) for example in examples]
    conflicting = [g for g in union.groups() if len({outputs[p] for p in g}) > 1]
    rows = _line_groups(conflicting, examples)
    involved = sum(map(len, rows))
    details: dict[str, object] = {"examples": len(examples), "inputs": len(rows),
                                  "conflicting_examples": involved, "threshold": threshold}
    if not rows:
        return CheckResult("contradictions", "pass", "No input has conflicting outputs.",
                           details=details)
    first = min(conflicting, key=lambda g: min(examples[p].line for p in g))
    a = min(first, key=lambda p: examples[p].line)
    b = min((p for p in first if outputs[p] != outputs[a]), key=lambda p: examples[p].line)
    details["example"] = {"lines": [examples[a].line, examples[b].line],
                          "outputs": [examples[a].output, examples[b].output]}
    noun = "input has" if len(rows) == 1 else "inputs have"
    return CheckResult(
        "contradictions", "fail",
        f"{len(rows)} {noun} conflicting outputs ({involved} examples), e.g. lines "
        f"{examples[a].line} and {examples[b].line}: {examples[a].output!r} vs "
        f"{examples[b].output!r}",
        fix="decide the right output for each group and fix or drop the others",
        rows=rows, details=details,
    )


def leakage(
    split: Split,
    *,
    threshold: float = 0.8,
    num_perm: int = 128,
    shingle: int = 3,
    seed: int = 1,
    similarity: TextSimilarity | None = None,
) -> CheckResult:
    """Val or test examples whose input (exactly, or MinHash Jaccard >= `threshold`) is in train.

    A held-out example the model has seen in training measures memory, not skill: it inflates
    test scores and makes every rung look better than it is. Rows are groups of lines, train
    lines first, then the val/test lines that copy them. Overlap between val and test is
    counted in details but does not fail the check.
    """
    examples: list[Example] = []
    split_of: list[str] = []
    for name, part in split.parts().items():
        examples.extend(part)
        split_of.extend([name] * len(part))
    index = _index_inputs(examples, threshold=threshold, num_perm=num_perm, shingle=shingle,
                          seed=seed, similarity=similarity)
    by_split: list[dict[str, list[int]]] = []
    for members in index.nodes:
        parts: dict[str, list[int]] = defaultdict(list)
        for position in members:
            parts[split_of[position]].append(position)
        by_split.append(parts)

    union = UnionFind(len(examples))
    copied_from: dict[str, set[int]] = {"train-val": set(), "train-test": set(), "val-test": set()}

    def link(source: dict[str, list[int]], target: dict[str, list[int]]) -> None:
        """Record that `target`'s held-out examples copy `source`'s train (or val) ones."""
        for held_out in _HELD_OUT:
            if source.get("train") and target.get(held_out):
                union.union_all(source["train"] + target[held_out])
                copied_from[f"train-{held_out}"].update(target[held_out])
        if source.get("val") and target.get("test"):
            copied_from["val-test"].update(target["test"])

    for parts in by_split:
        link(parts, parts)
    for u, v in index.pairs:
        link(by_split[u], by_split[v])
        link(by_split[v], by_split[u])

    leaked = copied_from["train-val"] | copied_from["train-test"]
    groups = union.groups()
    order = {"train": 0, "val": 1, "test": 2}
    rows = sorted(
        [examples[p].line for p in sorted(g, key=lambda p: (order[split_of[p]], examples[p].line))]
        for g in groups
    )
    counts = {pair: len(positions) for pair, positions in copied_from.items()}
    held_out = len(split.val) + len(split.test)
    details = {**counts, "leaked": len(leaked), "held_out": held_out, "groups": len(rows),
               "threshold": threshold}
    if not held_out:
        return CheckResult("leakage", "warn", "The split holds nothing out (no val or test "
                           "example), so there is nothing to check for leaks.",
                           fix="add examples or raise the [split] val and test fractions",
                           details=details)
    if not leaked:
        return CheckResult("leakage", "pass", "No val or test example has a copy in train.",
                           details=details)
    noun = "example has" if len(leaked) == 1 else "examples have"
    return CheckResult(
        "leakage", "fail",
        f"{len(leaked)} of {held_out} val/test {noun} a copy in train "
        f"(train-val {counts['train-val']}, train-test {counts['train-test']})",
        fix="remove the copies from train (or dedupe before splitting), or give related "
            "examples a shared group_key so they land in one split",
        rows=rows, details=details,
    )
