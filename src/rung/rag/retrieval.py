"""Retrievers: BM25 (bm25s), dense (all-MiniLM-L6-v2, exact cosine), hybrid (reciprocal rank fusion).

One interface, `Retriever.search_many(queries, k)`, so the rag rung does not care which one it
has, and a server-backed index can be added later as another class. BM25 finds the rare exact
words (an error code, a setting name); the dense retriever finds paraphrases ("how much does
it cost" for a pricing table); fusing their rankings by 1/(60 + rank) needs no score
calibration between the two and is usually better than either alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from rung.rag.chunking import Chunk

METHODS = ("bm25", "dense", "hybrid")
RRF_K = 60  # the constant from Cormack et al. (2009); ranks past ~60 barely count


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float
    rank: int  # 1-based


class Retriever(Protocol):
    name: str
    chunks: list[Chunk]  # everything it searches, in index order

    def search_many(self, queries: Sequence[str], k: int) -> list[list[Hit]]: ...


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores, best first (ties by index, so results are stable)."""
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.lexsort((part, -scores[part]))]


class BM25Retriever:
    """Okapi BM25 over the chunks' heading + text, English stemming and stopwords."""

    name = "bm25"

    def __init__(self, chunks: Sequence[Chunk]) -> None:
        import bm25s
        import Stemmer

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets itself to DEBUG
        self.chunks = list(chunks)
        self._stemmer = Stemmer.Stemmer("english")
        self._bm25s = bm25s
        self.model = bm25s.BM25()
        if self.chunks:
            tokens = bm25s.tokenize([c.indexed_text for c in self.chunks], stopwords="en",
                                    stemmer=self._stemmer, show_progress=False)
            self.model.index(tokens, show_progress=False)

    def tokens(self, text: str) -> list[str]:
        """Lowercased, stopwords dropped, stemmed: what the index and a query are made of."""
        return self._bm25s.tokenize([text], stopwords="en", stemmer=self._stemmer,
                                    show_progress=False, return_ids=False)[0]

    def scores(self, query: str) -> np.ndarray:
        tokens = self.tokens(query)
        if not self.chunks or not tokens:  # "?", "a", "5": no word BM25 indexes matches
            return np.zeros(len(self.chunks))
        return np.asarray(self.model.get_scores(tokens), dtype=np.float64)

    def search_many(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        results = []
        for query in queries:
            scores = self.scores(query)
            top = [i for i in _top_k(scores, k) if scores[i] > 0]
            results.append([Hit(self.chunks[i], float(scores[i]), r)
                            for r, i in enumerate(top, 1)])
        return results


QUERY_VECTORS_KEPT = 10_000  # about 15 MB of MiniLM vectors; a climb asks far fewer


class DenseRetriever:
    """Exact cosine similarity against every chunk embedding (unit vectors, one matmul)."""

    name = "dense"

    def __init__(self, chunks: Sequence[Chunk], matrix: np.ndarray,
                 embed: Callable[[list[str]], np.ndarray]) -> None:
        self.chunks = list(chunks)
        self.matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        self.embed = embed
        # query text -> vector: every candidate (method x k) on val asks the same questions;
        # bounded (oldest out first), since under `rung serve` every request is a new one
        self._vectors: dict[str, np.ndarray] = {}

    def search_vectors(self, vectors: np.ndarray, k: int) -> list[list[Hit]]:
        if not self.chunks:
            return [[] for _ in range(len(vectors))]
        similarities = np.asarray(vectors, dtype=np.float32) @ self.matrix.T
        return [[Hit(self.chunks[i], float(row[i]), r) for r, i in enumerate(_top_k(row, k), 1)]
                for row in similarities]

    def search_many(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        if not queries:
            return []
        new = [q for q in dict.fromkeys(queries) if q not in self._vectors]
        fresh = dict(zip(new, self.embed(new))) if new else {}
        vectors = np.stack([fresh[q] if q in fresh else self._vectors[q] for q in queries])
        self._vectors.update(fresh)
        for oldest in list(self._vectors)[:max(0, len(self._vectors) - QUERY_VECTORS_KEPT)]:
            del self._vectors[oldest]
        return self.search_vectors(vectors, k)


class HybridRetriever:
    """Reciprocal rank fusion of BM25 and dense rankings over a deeper pool of each."""

    name = "hybrid"

    def __init__(self, bm25: BM25Retriever, dense: DenseRetriever, pool: int = 50) -> None:
        self.bm25, self.dense, self.pool = bm25, dense, pool
        self.chunks = bm25.chunks

    @staticmethod
    def fuse(lexical: list[Hit], semantic: list[Hit], k: int) -> list[Hit]:
        scores: dict[tuple[str, int], float] = {}
        chunks: dict[tuple[str, int], Chunk] = {}
        for hits in (lexical, semantic):
            for hit in hits:
                key = (hit.chunk.source, hit.chunk.position)
                scores[key] = scores.get(key, 0.0) + 1.0 / (RRF_K + hit.rank)
                chunks[key] = hit.chunk
        ranked = sorted(scores, key=lambda key: (-scores[key], key))[:k]
        return [Hit(chunks[key], scores[key], r) for r, key in enumerate(ranked, 1)]

    def search_many(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        depth = max(self.pool, k)
        lexical = self.bm25.search_many(queries, depth)
        semantic = self.dense.search_many(queries, depth)
        return [self.fuse(a, b, k) for a, b in zip(lexical, semantic)]


def build_retrievers(chunks: Sequence[Chunk], matrix: np.ndarray,
                     embed: Callable[[list[str]], np.ndarray]) -> dict[str, Retriever]:
    bm25 = BM25Retriever(chunks)
    dense = DenseRetriever(chunks, matrix, embed)
    return {"bm25": bm25, "dense": dense, "hybrid": HybridRetriever(bm25, dense)}
