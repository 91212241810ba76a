"""Near-duplicate machinery: shingles, MinHash signatures, LSH candidates, union-find.

The audit's similarity checks (near duplicates, contradictions, leakage) all ask one question,
"which of these texts are near-copies?", and answer it here the same way: MinHash each
distinct text once, let a MinHashLSH index propose candidate pairs, keep those whose estimated
Jaccard similarity reaches the threshold, and group with a union-find.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np
from datasketch import MinHash, MinHashLSH

# LSH weights (false positives, false negatives). Every candidate is verified against the
# threshold afterwards, so a false positive only costs one comparison while a false negative
# is a duplicate never reported: favour recall. At threshold 0.8 and 128 permutations this picks
# 16 bands of 8 rows, which finds ~95% of pairs at the threshold (the default 0.5/0.5 finds 40%).
_LSH_WEIGHTS = (0.05, 0.95)
# Buckets up to this size are verified pair by pair; a larger bucket (a big cluster of
# near-copies) is verified against one exemplar per cluster, which keeps the cost linear.
_PAIRWISE_LIMIT = 256


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


def similar_pairs(
    texts: Sequence[str], *, threshold: float, num_perm: int, shingle: int, seed: int
) -> list[tuple[int, int]]:
    """Index pairs (i < j) of `texts` whose estimated Jaccard similarity is >= `threshold`."""
    return [(i, j) for i, j, _ in scored_pairs(texts, threshold=threshold, num_perm=num_perm,
                                               shingle=shingle, seed=seed)]


def scored_pairs(
    texts: Sequence[str], *, threshold: float, num_perm: int, shingle: int, seed: int
) -> list[tuple[int, int, float]]:
    """Pairs (i < j, similarity) of `texts` whose estimated Jaccard is >= `threshold`.

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

    found: dict[tuple[int, int], float] = {}
    checked: set[tuple[int, int]] = set()
    for table in lsh.hashtables:
        for key in table.keys():
            members = table.get(key)
            if len(members) < 2:
                continue
            found.update(_verify_bucket(sorted(members), signatures, threshold, checked))
    return [(i, j, sim) for (i, j), sim in sorted(found.items())]


class TextSimilarity:
    """Similar pairs among a fixed set of distinct texts, found once and shared by every check.

    The near-duplicate, contradiction and leakage checks look at the same inputs with
    different thresholds; MinHashing 100,000 inputs three times would triple the cost. The
    pairs are found at the lowest threshold any check asks for (on first use), and each check
    keeps the pairs at or above its own.
    """

    def __init__(self, texts: Iterable[str], *, threshold: float, num_perm: int = 128,
                 shingle: int = 3, seed: int = 1) -> None:
        self.index: dict[str, int] = {}
        for text in texts:
            self.index.setdefault(text, len(self.index))
        self.threshold, self.num_perm, self.shingle, self.seed = threshold, num_perm, shingle, seed
        self._pairs: list[tuple[int, int, float]] | None = None

    def serves(self, *, threshold: float, num_perm: int, shingle: int, seed: int) -> bool:
        return (threshold >= self.threshold and (num_perm, shingle, seed)
                == (self.num_perm, self.shingle, self.seed))

    def pairs(self, threshold: float) -> list[tuple[int, int]]:
        if self._pairs is None:
            self._pairs = scored_pairs(list(self.index), threshold=self.threshold,
                                       num_perm=self.num_perm, shingle=self.shingle,
                                       seed=self.seed)
        return [(i, j) for i, j, sim in self._pairs if sim >= threshold]


def _verify_bucket(
    members: list[int], signatures: np.ndarray, threshold: float, checked: set[tuple[int, int]]
) -> dict[tuple[int, int], float]:
    """The pairs of one LSH bucket whose signatures agree on >= `threshold` of their slots."""
    if len(members) == 2:
        pair = (members[0], members[1])
        if pair in checked:
            return {}
        checked.add(pair)
        a, b = signatures[members[0]], signatures[members[1]]
        similarity = float(np.count_nonzero(a == b) / a.size)
        return {pair: similarity} if similarity >= threshold else {}
    sig = signatures[members]
    if len(members) <= _PAIRWISE_LIMIT:
        similarity = (sig[:, None, :] == sig[None, :, :]).mean(axis=2)
        rows, cols = np.nonzero(np.triu(similarity >= threshold, k=1))
        return {(members[r], members[c]): float(similarity[r, c])
                for r, c in zip(rows.tolist(), cols.tolist())}
    # A huge bucket: compare each member with one exemplar per cluster seen so far (leader
    # clustering) instead of with every member, so the cost stays linear in the bucket size.
    pairs: dict[tuple[int, int], float] = {}
    exemplars: list[int] = []
    for position, member in enumerate(members):
        if exemplars:
            similarity = (sig[exemplars] == sig[position]).mean(axis=1)
            hits = np.nonzero(similarity >= threshold)[0].tolist()
            pairs.update({(members[exemplars[k]], member): float(similarity[k]) for k in hits})
            if hits:
                continue
        exemplars.append(position)
    return pairs


class UnionFind:
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
