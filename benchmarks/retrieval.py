"""Retrieval speed on a synthetic corpus of 100,000 chunks, beside the plain alternatives.

rung's retrievers (bm25s BM25, exact numpy dense search, reciprocal rank fusion) against, in
the same run: rank_bm25 (baseline for BM25: its BM25Okapi given the same tokens of the same
text, with its IDF set at build time to the Lucene formula bm25s scores with, so both rank
by one formula; get_scores, the part timed, is rank_bm25's own), a plain
numpy search (one matrix-vector product, argpartition and a sort of the top k: the baseline
for dense), and the two embedded stores the RAG issue names, SQLite FTS5 (bm25() over OR-ed
query words) and LanceDB (flat vector search and its full-text index, returning only the id
column); sqlite-vec is tried and reported unavailable where this Python's sqlite3 cannot load
extensions. Every side indexes the same text, what rung indexes (`Chunk.indexed_text`: the
heading, a line break and the chunk's text), and is timed on the same queries (`--queries`,
the first of one seeded draw, for every side).

Same answers (asserted): rung's dense top 10 and the numpy baseline's are the same set for
every query (both exact); rung's BM25 top 10 and rank_bm25's overlap by at least
MIN_BM25_OVERLAP on average (the same formula: only float ties at rank 10 may swap); both
lexical sides tokenise alike (rung's tokenizer) and every store holds all n chunks. With
BM25Okapi's own IDF (log((N - n + 0.5) / (n + 0.5)), floored for words in over half the
chunks) the overlap was ~0.79 on 50 queries at 3,000 and at 20,000 chunks (measured while
writing this benchmark; it does not print it): the ranking differs, the per-query cost does
not. The stores' top-10 overlap with rung's is printed,
not asserted (their tokenisers and scoring differ).

Chunks are ~100 words drawn from a Zipf vocabulary; vectors are random unit vectors (384-d)
and each query vector sits near one chunk's, because embedding 100,000 chunks with MiniLM on
2 cores would take most of an hour: the embedding rate is measured on a 1,000-chunk sample
of the same texts and reported on its own. Query latency excludes the query embedding
(measured separately too), as the issue's target says.

    python benchmarks/retrieval.py [--n 100000] [--queries 200]

Last line: JSON with bm25_ratio, dense_ratio, hybrid_p95_ms, bm25_top10_overlap, and the rest.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rung.rag.chunking import Chunk
from rung.rag.index import CorpusIndex
from rung.rag.retrieval import BM25Retriever, DenseRetriever, HybridRetriever

DIM = 384
K = 10
MIN_BM25_OVERLAP = 0.99  # one formula both sides: only float ties at rank 10 may differ


def timings(run: Callable[[int], object], n: int) -> tuple[dict[str, float], list]:
    """Latency of `run` on query indices 0..n-1, and what it returned for each."""
    times, results = [], []
    for i in range(n):
        start = time.perf_counter()
        results.append(run(i))
        times.append((time.perf_counter() - start) * 1000)
    p50, p95 = np.percentile(times, [50, 95])
    return {"p50_ms": round(float(p50), 2), "p95_ms": round(float(p95), 2), "queries": n}, results


def top_k(scores: np.ndarray, k: int = K) -> np.ndarray:
    """The k best indices, best first: argpartition, then a sort of those k."""
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.argsort(-scores[part])]


def overlap(a: list[set[int]], b: list[set[int]]) -> float:
    return round(float(np.mean([len(x & y) / K for x, y in zip(a, b)])), 3)


def corpus(n: int, seed: int = 0) -> tuple[list[Chunk], np.ndarray, list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(30_000)])
    p = 1.0 / np.arange(1, len(vocab) + 1)
    words = rng.choice(vocab, size=(n, 100), p=p / p.sum())
    texts = [" ".join(row) for row in words]
    chunks = [Chunk(f"doc{i // 20}.md", i % 20, 0, len(t), f"Section {i % 7}", t)
              for i, t in enumerate(texts)]
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return chunks, vectors, texts, rng.integers(0, n, size=10_000)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200,
                        help="queries every side is timed on (the same ones)")
    args = parser.parse_args()
    chunks, vectors, texts, targets = corpus(args.n)
    indexed = [c.indexed_text for c in chunks]  # what rung's BM25 indexes; every side gets it
    rng = np.random.default_rng(1)
    targets = targets[:args.queries]
    queries = [" ".join(rng.choice(texts[t].split(), size=6, replace=False)) for t in targets]
    qvecs = vectors[targets] + 0.05 * rng.standard_normal((len(targets), DIM)).astype(np.float32)
    qvecs /= np.linalg.norm(qvecs, axis=1, keepdims=True)
    nq = len(queries)
    out: dict[str, object] = {"n": args.n, "cores": os.cpu_count()}
    position = {id(c): i for i, c in enumerate(chunks)}

    def ids(hits: list) -> set[int]:
        return {position[id(h.chunk)] for h in hits}

    # --- rung -----------------------------------------------------------------------------
    start = time.perf_counter()
    bm25 = BM25Retriever(chunks)
    out["bm25_build_chunks_per_s"] = round(args.n / (time.perf_counter() - start))
    dense = DenseRetriever(chunks, vectors, embed=lambda q: qvecs[:len(q)])
    hybrid = HybridRetriever(bm25, dense)
    out["rung_bm25"], rung_lexical = timings(lambda i: bm25.search_many([queries[i]], K)[0], nq)
    out["rung_dense"], rung_semantic = timings(
        lambda i: dense.search_vectors(qvecs[i:i + 1], K)[0], nq)

    def hybrid_query(i: int) -> None:
        lexical = bm25.search_many([queries[i]], hybrid.pool)[0]
        semantic = dense.search_vectors(qvecs[i:i + 1], hybrid.pool)[0]
        hybrid.fuse(lexical, semantic, K)
    out["rung_hybrid"], _ = timings(hybrid_query, nq)
    found = sum(hits[0].chunk is chunks[t] for hits, t in zip(rung_semantic, targets))
    out["dense_top1_is_target"] = round(found / nq, 3)
    rung_lexical_ids = [ids(hits) for hits in rung_lexical]
    rung_semantic_ids = [ids(hits) for hits in rung_semantic]

    # the persistent index: chunks + vectors into SQLite (a stand-in embedder returns the
    # synthetic vectors), then the real embedder's rate on a sample
    folder = Path(tempfile.mkdtemp(prefix="rung-retrieval-"))
    index = CorpusIndex(folder / "index.db")
    start = time.perf_counter()
    for first in range(0, args.n, 20):  # one document of 20 chunks at a time, as refresh does
        index._replace(chunks[first].source, f"{first:064d}", chunks[first:first + 20],
                       vectors[first:first + 20])
    out["store_chunks_per_s"] = round(args.n / (time.perf_counter() - start))
    start = time.perf_counter()
    index.load()
    out["load_seconds"] = round(time.perf_counter() - start, 2)
    index.close()
    from rung.rag.index import default_embedder

    default_embedder(indexed[:32])  # load the model outside the timing
    start = time.perf_counter()
    default_embedder(indexed[:1000])
    out["embed_chunks_per_s"] = round(1000 / (time.perf_counter() - start), 1)
    out["query_embedding"], _ = timings(lambda i: default_embedder([queries[i]]), nq)

    # --- baselines ------------------------------------------------------------------------
    from rank_bm25 import BM25Okapi

    class LuceneIdf(BM25Okapi):
        """BM25Okapi ranking by bm25s's IDF, log(1 + (N - n + 0.5) / (n + 0.5))."""

        def _calc_idf(self, nd: dict) -> None:
            for word, freq in nd.items():
                self.idf[word] = math.log(1 + (self.corpus_size - freq + 0.5) / (freq + 0.5))

    tokenized = [bm25.tokens(t) for t in indexed]  # rung's own tokens of rung's own text
    start = time.perf_counter()
    plain = LuceneIdf(tokenized)
    out["rank_bm25_build_chunks_per_s"] = round(args.n / (time.perf_counter() - start))
    query_tokens = [bm25.tokens(q) for q in queries]
    out["rank_bm25"], plain_top = timings(lambda i: top_k(plain.get_scores(query_tokens[i])), nq)
    plain_ids = [set(t.tolist()) for t in plain_top]
    out["bm25_top10_overlap"] = overlap(rung_lexical_ids, plain_ids)
    out["bm25_top10_overlap_min"] = min(len(a & b) / K for a, b in zip(rung_lexical_ids,
                                                                       plain_ids))
    assert out["bm25_top10_overlap"] >= MIN_BM25_OVERLAP, \
        f"rung's BM25 top 10 shares only {out['bm25_top10_overlap']} with rank_bm25's"
    out["numpy_dense"], numpy_top = timings(lambda i: top_k(vectors @ qvecs[i]), nq)
    differ = [i for i, (a, b) in enumerate(zip(rung_semantic_ids, numpy_top))
              if a != set(b.tolist())]
    assert not differ, f"dense top 10 differs from numpy's on queries {differ[:10]}"

    out["fts5"], fts5_ids = fts5(indexed, queries)
    out["fts5"]["top10_overlap_with_rung_bm25"] = overlap(rung_lexical_ids, fts5_ids)
    out["sqlite_vec"] = sqlite_vec()
    out["lancedb"] = lance(folder, indexed, vectors, queries, qvecs, rung_lexical_ids,
                           rung_semantic_ids)

    ratio = out["rank_bm25"]["p50_ms"] / out["rung_bm25"]["p50_ms"]  # type: ignore[index]
    dense_ratio = (out["numpy_dense"]["p50_ms"]  # type: ignore[index]
                   / out["rung_dense"]["p50_ms"])  # type: ignore[index]
    for key, value in out.items():
        print(f"{key}: {value}")
    print(json.dumps({"bm25_ratio": round(ratio, 1),
                      "hybrid_p95_ms": out["rung_hybrid"]["p95_ms"],  # type: ignore[index]
                      "dense_ratio": round(dense_ratio, 2),
                      "baselines": ["rank_bm25 (BM25Okapi, Lucene IDF)", "numpy-argpartition"],
                      "queries": nq,
                      **{k: v for k, v in out.items() if not isinstance(v, dict)},
                      "p50_ms": {k: v["p50_ms"] for k, v in out.items()
                                 if isinstance(v, dict) and "p50_ms" in v}}))


def fts5(texts: list[str], queries: list[str]) -> tuple[dict[str, object], list[set[int]]]:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE f USING fts5(text)")
    start = time.perf_counter()
    conn.executemany("INSERT INTO f(rowid, text) VALUES (?, ?)", enumerate(texts))
    conn.commit()
    build = len(texts) / (time.perf_counter() - start)
    assert conn.execute("SELECT count(*) FROM f").fetchone()[0] == len(texts)
    sql = f"SELECT rowid FROM f WHERE f MATCH ? ORDER BY bm25(f) LIMIT {K}"
    result, rows = timings(lambda i: conn.execute(
        sql, (" OR ".join(f'"{w}"' for w in queries[i].split()),)).fetchall(), len(queries))
    return {**result, "build_chunks_per_s": round(build)}, [{r[0] for r in hit} for hit in rows]


def sqlite_vec() -> dict[str, object]:
    conn = sqlite3.connect(":memory:")
    if not hasattr(conn, "enable_load_extension"):
        return {"available": False,
                "why": "this Python's sqlite3 was built without loadable extensions"}
    try:
        import sqlite_vec as vec
    except ImportError:
        return {"available": False, "why": "pip install sqlite-vec"}
    conn.enable_load_extension(True)
    vec.load(conn)
    return {"available": True, "why": "loadable; not measured further (see the index module)"}


def lance(folder: Path, texts: list[str], vectors: np.ndarray, queries: list[str],
          qvecs: np.ndarray, rung_lexical: list[set[int]],
          rung_semantic: list[set[int]]) -> dict[str, object]:
    try:
        import lancedb
        import pyarrow as pa
    except ImportError:
        return {"available": False, "why": "pip install 'rung[bench]'"}
    db = lancedb.connect(str(folder / "lance"))
    start = time.perf_counter()
    table = db.create_table("chunks", data=pa.table({
        "id": np.arange(len(texts)), "text": texts,
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), DIM)}))
    table.create_fts_index("text")
    build = len(texts) / (time.perf_counter() - start)
    assert table.count_rows() == len(texts)
    n = len(queries)
    flat, flat_rows = timings(lambda i: table.search(qvecs[i], vector_column_name="vector")
                              .select(["id"]).limit(K).to_list(), n)
    fts, fts_rows = timings(lambda i: table.search(queries[i], query_type="fts")
                            .select(["id"]).limit(K).to_list(), n)
    flat["top10_overlap_with_rung_dense"] = overlap(
        rung_semantic, [{r["id"] for r in rows} for rows in flat_rows])
    fts["top10_overlap_with_rung_bm25"] = overlap(
        rung_lexical, [{r["id"] for r in rows} for rows in fts_rows])
    return {"build_chunks_per_s": round(build), "flat_vector": flat, "fts": fts}


if __name__ == "__main__":
    main()
