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
pairs and keeps those whose estimated Jaccard similarity reaches the threshold. Each check then
joins examples with a union-find (`_UnionFind`), linking only the pairs it cares about.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from datasketch import MinHash, MinHashLSH

from rung.data.audit.base import CheckResult, Status
from rung.data.example import Example
from rung.data.splits import Split

# LSH weights (false positives, false negatives). Every candidate is verified against the
# threshold afterwards, so a false positive only costs one comparison while a false negative
# is a duplicate never reported: favour recall. At threshold 0.8 and 128 permutations this picks
# 16 bands of 8 rows, which finds ~95% of pairs at the threshold (the default 0.5/0.5 finds 40%).
_LSH_WEIGHTS = (0.05, 0.95)
# Buckets up to this size are verified pair by pair; a larger bucket (a big cluster of
# near-copies) is verified against one exemplar per cluster, which keeps the cost linear.
_PAIRWISE_LIMIT = 256
_HELD_OUT = ("val", "test")


class _PunctuationTable(dict[int, int | None]):
    """str.translate table deleting Unicode punctuation (categories P*), filled lazily."""

    def __missing__(self, code: int) -> int | None:
        value = None if unicodedata.category(chr(code)).startswith("P") else code
        self[code] = value
        return value


_PUNCTUATION = _PunctuationTable()


def normalise_text(text: str) -> str:
    """Lowercase, NFKC, drop punctuation and collapse whitespace.

    Copies made by hand or by scraping differ in case, spacing, full-width characters or a
    trailing full stop; hashing this form catches them as the same text.
    """
    text = unicodedata.normalize("NFKC", text).lower().translate(_PUNCTUATION)
    return " ".join(text.split())


def _user_text(example: Example) -> str:
    """The input the similarity checks compare: every user turn, normalised."""
    return normalise_text("\n".join(m.content for m in example.messages if m.role == "user"))


def _conversation_hash(example: Example) -> str:
    payload = [[m.role, normalise_text(m.content)] for m in example.messages]
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode("utf-8")).hexdigest()


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


# --- shared machinery: shingles, MinHash signatures, LSH candidates, union-find -------------


def _shingles(text: str, size: int) -> set[bytes]:
    """Word `size`-shingles, or character ones for texts shorter than `size` words.

    The default size is 3: with 5-word shingles one changed word in a 30-word ticket drops
    Jaccard to 0.68 and the pair is missed at 0.8; with 3 it stays at 0.81."""
    words = text.split()
    if len(words) >= size:
        return {" ".join(words[i:i + size]).encode("utf-8") for i in range(len(words) - size + 1)}
    if len(text) >= size:
        return {text[i:i + size].encode("utf-8") for i in range(len(text) - size + 1)}
    return {text.encode("utf-8")}


def _similar_pairs(
    texts: Sequence[str], *, threshold: float, num_perm: int, shingle: int, seed: int
) -> list[tuple[int, int]]:
    """Index pairs (i < j) of `texts` whose estimated Jaccard similarity is >= `threshold`.

    `texts` should be distinct (equal texts are better grouped by their hash first). Each text
    is MinHashed once (`MinHash.generator`, which reuses the permutations and hashes a whole
    shingle set with one `update_batch`); the LSH buckets give candidate pairs, which are
    verified on the signature matrix with numpy.
    """
    if len(texts) < 2:
        return []
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=_LSH_WEIGHTS)
    signatures: np.ndarray | None = None
    sets = (_shingles(text, shingle) for text in texts)
    for i, minhash in enumerate(MinHash.generator(sets, num_perm=num_perm, seed=seed)):
        if signatures is None:
            signatures = np.empty((len(texts), num_perm), dtype=minhash.hashvalues.dtype)
        signatures[i] = minhash.hashvalues
        lsh.insert(i, minhash, check_duplication=False)
    assert signatures is not None

    found: set[tuple[int, int]] = set()
    checked: set[tuple[int, int]] = set()
    for table in lsh.hashtables:
        for key in table.keys():
            members = table.get(key)
            if len(members) < 2:
                continue
            found.update(_verify_bucket(sorted(members), signatures, threshold, checked))
    return sorted(found)


def _verify_bucket(
    members: list[int], signatures: np.ndarray, threshold: float, checked: set[tuple[int, int]]
) -> Iterable[tuple[int, int]]:
    """The pairs of one LSH bucket whose signatures agree on >= `threshold` of their slots."""
    if len(members) == 2:
        pair = (members[0], members[1])
        if pair in checked:
            return []
        checked.add(pair)
        a, b = signatures[members[0]], signatures[members[1]]
        return [pair] if np.count_nonzero(a == b) / a.size >= threshold else []
    sig = signatures[members]
    if len(members) <= _PAIRWISE_LIMIT:
        similarity = (sig[:, None, :] == sig[None, :, :]).mean(axis=2)
        rows, cols = np.nonzero(np.triu(similarity >= threshold, k=1))
        return [(members[r], members[c]) for r, c in zip(rows.tolist(), cols.tolist())]
    # A huge bucket: compare each member with one exemplar per cluster seen so far (leader
    # clustering) instead of with every member, so the cost stays linear in the bucket size.
    pairs: list[tuple[int, int]] = []
    exemplars: list[int] = []
    for position, member in enumerate(members):
        if exemplars:
            similarity = (sig[exemplars] == sig[position]).mean(axis=1)
            hits = [exemplars[k] for k in np.nonzero(similarity >= threshold)[0].tolist()]
            pairs.extend((members[e], member) for e in hits)
            if hits:
                continue
        exemplars.append(position)
    return pairs


class _UnionFind:
    """Connected components over 0..n-1 (path halving, union by size)."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))
        self.size = [1] * n

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        a, b = self.find(a), self.find(b)
        if a == b:
            return
        if self.size[a] < self.size[b]:
            a, b = b, a
        self.parent[b] = a
        self.size[a] += self.size[b]

    def union_all(self, items: Sequence[int]) -> None:
        for item in items[1:]:
            self.union(items[0], item)

    def groups(self, members: Iterable[int] | None = None) -> list[list[int]]:
        """Components with two or more of `members` (all items by default)."""
        by_root: dict[int, list[int]] = defaultdict(list)
        for item in range(len(self.parent)) if members is None else members:
            by_root[self.find(item)].append(item)
        return [group for group in by_root.values() if len(group) > 1]


@dataclass(frozen=True)
class _InputIndex:
    """Examples grouped by equal normalised input (nodes), and the similar node pairs."""

    node_of: list[int]  # example position -> node
    nodes: list[list[int]]  # node -> example positions, in order
    pairs: list[tuple[int, int]]  # similar nodes (u < v), equal inputs excluded


def _index_inputs(
    examples: Sequence[Example], *, threshold: float, num_perm: int, shingle: int, seed: int
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
    pairs = _similar_pairs(list(node_by_text), threshold=threshold, num_perm=num_perm,
                           shingle=shingle, seed=seed)
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
        by_hash[_conversation_hash(example)].append(position)
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
        firsts.setdefault(_conversation_hash(example), position)
    kept = [examples[p] for p in sorted(firsts.values())]
    index = _index_inputs(kept, threshold=threshold, num_perm=num_perm, shingle=shingle, seed=seed)
    union = _UnionFind(len(kept))
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
        f"{involved} examples have near-duplicate inputs ({len(rows)} groups, largest "
        f"{details['largest_group']}, Jaccard >= {threshold})",
        fix="review each group and keep one example of each (or make them genuinely different); "
            "near-copies overweight their pattern in training",
        rows=rows, details=details,
    )


def contradictions(
    examples: Sequence[Example],
    *,
    threshold: float = 0.9,
    num_perm: int = 128,
    shingle: int = 3,
    seed: int = 1,
) -> CheckResult:
    """The same (or nearly the same, Jaccard >= `threshold`) input with different outputs.

    Contradictory labels confuse the model: it learns that either answer is right, and at least
    one of them is usually a labelling mistake. Outputs are compared normalised, so "BUG" and
    "bug." agree; examples only conflict when their system prompt and earlier turns match too.
    """
    index = _index_inputs(examples, threshold=threshold, num_perm=num_perm, shingle=shingle,
                          seed=seed)
    contexts: list[dict[tuple[str, ...], list[int]]] = []
    for members in index.nodes:
        by_context: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for position in members:
            by_context[_context_key(examples[position])].append(position)
        contexts.append(by_context)
    union = _UnionFind(len(examples))
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
                          seed=seed)
    by_split: list[dict[str, list[int]]] = []
    for members in index.nodes:
        parts: dict[str, list[int]] = defaultdict(list)
        for position in members:
            parts[split_of[position]].append(position)
        by_split.append(parts)

    union = _UnionFind(len(examples))
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
