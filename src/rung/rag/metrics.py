"""How good was retrieval, and is the answer supported by what was retrieved?

Retrieval metrics need examples that name their gold source (a `source` or `sources` field);
a chunk counts as a hit when it comes from a gold document. hit@k: at least one gold chunk
among the k retrieved; recall@k: the share of an example's gold documents found; MRR: the mean
of 1 / rank of the first gold chunk (0 when none). Grounding is lexical: an answer is grounded
when at least 80% of its content words (SQuAD-normalised, stopwords aside) occur in the
retrieved text or the question it restates, so a confident invention shows up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from rung.data.example import Example
from rung.eval.text_metrics import normalise_answer

GROUNDED_SHARE = 0.8


def gold_sources(example: Example, corpus: str = "") -> set[str]:
    """The example's gold documents, relative to the corpus folder."""
    raw = example.extra.get("sources", example.extra.get("source"))
    values = [raw] if isinstance(raw, str) else list(raw or [])
    prefix = corpus.strip("/") + "/" if corpus else ""
    return {v[len(prefix):] if prefix and v.startswith(prefix) else v for v in values}


def retrieval_metrics(examples: Sequence[Example], sources: Sequence[Sequence[str]],
                      corpus: str = "") -> dict[str, Any] | None:
    """`sources` are the chunk keys ("path#position") each example's prompt carried."""
    hits, recalls, reciprocal = [], [], []
    for example, keys in zip(examples, sources):
        gold = gold_sources(example, corpus)
        if not gold:
            continue
        docs = [key.rsplit("#", 1)[0] for key in keys]
        ranks = [rank for rank, doc in enumerate(docs, 1) if doc in gold]
        hits.append(1.0 if ranks else 0.0)
        recalls.append(len(gold & set(docs)) / len(gold))
        reciprocal.append(1.0 / ranks[0] if ranks else 0.0)
    if not hits:
        return None
    n = len(hits)
    return {"hit_at_k": round(sum(hits) / n, 4), "recall_at_k": round(sum(recalls) / n, 4),
            "mrr": round(sum(reciprocal) / n, 4), "n": n,
            "k": max((len(s) for s in sources), default=0)}


def is_grounded(answer: str, context: str, question: str = "") -> bool | None:
    """Whether the answer's content words come from the retrieved text (or the question it
    restates); stopwords (scikit-learn's English list) do not count either way. None when
    there is nothing to check."""
    words = [w for w in _normalise(answer).split() if w not in ENGLISH_STOP_WORDS]
    if not words or not context:
        return None
    available = set(_normalise(context).split()) | set(_normalise(question).split())
    return sum(w in available for w in words) >= GROUNDED_SHARE * len(words)


def _normalise(text: str) -> str:
    return normalise_answer(text, strip_punctuation=True, strip_articles=True)
