"""Diversity: do the inputs cover many topics, or mostly one?

The seeds' way: cluster by topic and look at the distribution. Inputs are embedded with the
packaged all-MiniLM-L6-v2 and grouped by average-linkage agglomerative clustering with a cosine
distance threshold, so the number of clusters comes from the data rather than being chosen.
At 0.6 (mean similarity 0.4) the bundled support tickets, one product's five kinds of request,
spread over ~120 clusters with none above 5%, while a set that is 80% rewordings of one
question puts 80% in one cluster. Large datasets are sampled: a few thousand inputs show the
shape of the distribution, and clustering is quadratic in the sample.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
from sklearn.cluster import AgglomerativeClustering

from rung.data.audit.base import CheckResult
from rung.data.example import Example

DISTANCE_THRESHOLD = 0.6
ONE_TOPIC_SHARE = 0.5  # the largest cluster holding more than this is "mostly one topic"
SAMPLE = 1000


def diversity_check(
    examples: Sequence[Example], *, sample: int = SAMPLE, seed: int = 0,
    threshold: float = DISTANCE_THRESHOLD,
) -> CheckResult:
    from rung.eval.semantic import embed_texts

    picked = list(examples)
    if len(picked) > sample:
        picked = sorted(random.Random(seed).sample(picked, sample), key=lambda ex: ex.line)
    details: dict[str, object] = {"examples": len(examples), "sampled": len(picked),
                                  "distance_threshold": threshold}
    if len(picked) < 2:
        return CheckResult("diversity", "pass", "too few examples to cluster", details=details)
    vectors = embed_texts([ex.said for ex in picked])
    labels = AgglomerativeClustering(n_clusters=None, distance_threshold=threshold,
                                     metric="cosine", linkage="average").fit_predict(vectors)
    sizes = np.bincount(labels)
    shares = sizes / sizes.sum()
    order = np.argsort(-sizes, kind="stable")
    effective = float(np.exp(-(shares * np.log(shares)).sum()))  # perplexity of the shares
    largest = int(order[0])
    members = [ex for ex, label in zip(picked, labels) if label == largest]
    centre = vectors[labels == largest].mean(axis=0)
    typical = members[int(np.argmax(vectors[labels == largest] @ centre))]
    details.update({
        "clusters": int(len(sizes)), "effective_clusters": round(effective, 1),
        "largest_share": round(float(shares[largest]), 4),
        "mean_similarity": round(float(_mean_similarity(vectors)), 3),
        "top_clusters": [
            {"size": int(sizes[c]), "share": round(float(shares[c]), 4),
             "lines": sorted(ex.line for ex, label in zip(picked, labels) if label == c)[:10]}
            for c in order[:5]
        ],
        "largest_example": {"line": typical.line, "input": typical.input[:200]},
    })
    sampled = f" (sample of {len(picked)})" if len(picked) < len(examples) else ""
    finding = (f"{len(sizes)} topic clusters{sampled}, the largest holds "
               f"{shares[largest]:.0%}; effectively {effective:.0f} equal-sized topics")
    if shares[largest] <= ONE_TOPIC_SHARE:
        return CheckResult("diversity", "pass", finding, details=details)
    return CheckResult(
        "diversity", "warn",
        f"mostly one topic: {finding}; e.g. line {typical.line}: {typical.input[:80]!r}",
        fix="add examples of the other inputs the model will meet, and thin out the dominant "
            "topic; a model tuned on one topic overfits to it",
        rows=sorted(ex.line for ex in members), details=details)


def _mean_similarity(vectors: np.ndarray) -> float:
    """Mean cosine similarity over distinct pairs, from the sum vector (no n x n matrix)."""
    n = len(vectors)
    total = vectors.sum(axis=0)
    return (float(total @ total) - n) / (n * (n - 1))


