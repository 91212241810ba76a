"""Retrieval speed on a synthetic corpus of 100,000 chunks, beside the plain alternatives.

rung's retrievers (bm25s BM25, exact numpy dense search, reciprocal rank fusion) against, in
the same run: rank_bm25 (baseline for BM25, given the same tokens), a plain numpy search
(full argsort, baseline for dense), and the two embedded stores the RAG issue names, SQLite
FTS5 (bm25() over OR-ed query words) and LanceDB (flat vector search and its full-text
index); sqlite-vec is tried and reported unavailable where this Python's sqlite3 cannot load
extensions.

Chunks are ~100 words drawn from a Zipf vocabulary; vectors are random unit vectors (384-d)
and each query vector sits near one chunk's, because embedding 100,000 chunks with MiniLM on
2 cores would take most of an hour: the embedding rate is measured on a 1,000-chunk sample
of the same texts and reported on its own. Query latency excludes the query embedding
(measured separately too), as the issue's target says.

    python benchmarks/retrieval.py [--n 100000] [--queries 200]

Last line: JSON with bm25_ratio, hybrid_p95_ms, and the rest.
"""

from __future__ import annotations

import argparse
import json
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


def timings(run: Callable[[int], object], n: int) -> dict[str, float]:
    times = []
    for i in range(n):
        start = time.perf_counter()
        run(i)
        times.append((time.perf_counter() - start) * 1000)
    p50, p95 = np.percentile(times, [50, 95])
    return {"p50_ms": round(float(p50), 2), "p95_ms": round(float(p95), 2), "queries": n}


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
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    chunks, vectors, texts, targets = corpus(args.n)
    rng = np.random.default_rng(1)
    targets = targets[:args.queries]
    queries = [" ".join(rng.choice(texts[t].split(), size=6, replace=False)) for t in targets]
    qvecs = vectors[targets] + 0.05 * rng.standard_normal((len(targets), DIM)).astype(np.float32)
    qvecs /= np.linalg.norm(qvecs, axis=1, keepdims=True)
    out: dict[str, object] = {"n": args.n, "cores": os.cpu_count()}

    # --- rung -----------------------------------------------------------------------------
    start = time.perf_counter()
    bm25 = BM25Retriever(chunks)
    out["bm25_build_chunks_per_s"] = round(args.n / (time.perf_counter() - start))
    dense = DenseRetriever(chunks, vectors, embed=lambda q: qvecs[:len(q)])
    hybrid = HybridRetriever(bm25, dense)
    out["rung_bm25"] = timings(lambda i: bm25.search_many([queries[i]], 10), len(queries))
    out["rung_dense"] = timings(lambda i: dense.search_vectors(qvecs[i:i + 1], 10), len(queries))

    def hybrid_query(i: int) -> None:
        lexical = bm25.search_many([queries[i]], hybrid.pool)[0]
        semantic = dense.search_vectors(qvecs[i:i + 1], hybrid.pool)[0]
        hybrid.fuse(lexical, semantic, 10)
    out["rung_hybrid"] = timings(hybrid_query, len(queries))
    found = sum(dense.search_vectors(qvecs[i:i + 1], 1)[0][0].chunk is chunks[t]
                for i, t in enumerate(targets))
    out["dense_top1_is_target"] = round(found / len(targets), 3)

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

    default_embedder(texts[:32])  # load the model outside the timing
    start = time.perf_counter()
    default_embedder([c.indexed_text for c in chunks[:1000]])
    out["embed_chunks_per_s"] = round(1000 / (time.perf_counter() - start), 1)
    out["query_embedding"] = timings(lambda i: default_embedder([queries[i]]), 50)

    # --- baselines ------------------------------------------------------------------------
    from rank_bm25 import BM25Okapi

    tokenized = [bm25.tokens(t) for t in texts]
    start = time.perf_counter()
    plain = BM25Okapi(tokenized)
    out["rank_bm25_build_chunks_per_s"] = round(args.n / (time.perf_counter() - start))
    query_tokens = [bm25.tokens(q) for q in queries]
    sample = min(30, len(queries))
    out["rank_bm25"] = timings(lambda i: np.argsort(-plain.get_scores(query_tokens[i]))[:10],
                               sample)
    position = {id(c): i for i, c in enumerate(chunks)}
    overlap = [len({position[id(h.chunk)] for h in bm25.search_many([queries[i]], 10)[0]}
                   & set(np.argsort(-plain.get_scores(query_tokens[i]))[:10].tolist())) / 10
               for i in range(sample)]
    out["bm25_top10_overlap"] = round(float(np.mean(overlap)), 3)
    out["numpy_naive_dense"] = timings(
        lambda i: np.argsort(-(vectors @ qvecs[i]))[:10], len(queries))

    out["fts5"] = fts5(texts, queries)
    out["sqlite_vec"] = sqlite_vec()
    out["lancedb"] = lance(folder, texts, vectors, queries, qvecs)

    ratio = out["rank_bm25"]["p50_ms"] / out["rung_bm25"]["p50_ms"]  # type: ignore[index]
    dense_ratio = (out["numpy_naive_dense"]["p50_ms"]  # type: ignore[index]
                   / out["rung_dense"]["p50_ms"])  # type: ignore[index]
    for key, value in out.items():
        print(f"{key}: {value}")
    print(json.dumps({"bm25_ratio": round(ratio, 1),
                      "hybrid_p95_ms": out["rung_hybrid"]["p95_ms"],  # type: ignore[index]
                      "dense_ratio": round(dense_ratio, 2), "baselines": ["rank_bm25",
                      "numpy-argsort"], **{k: v for k, v in out.items()
                                           if not isinstance(v, dict)}}))


def fts5(texts: list[str], queries: list[str]) -> dict[str, object]:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE f USING fts5(text)")
    start = time.perf_counter()
    conn.executemany("INSERT INTO f(text) VALUES (?)", ((t,) for t in texts))
    conn.commit()
    build = len(texts) / (time.perf_counter() - start)
    sql = "SELECT rowid, bm25(f) FROM f WHERE f MATCH ? ORDER BY bm25(f) LIMIT 10"
    result = timings(lambda i: conn.execute(
        sql, (" OR ".join(f'"{w}"' for w in queries[i].split()),)).fetchall(), len(queries))
    return {**result, "build_chunks_per_s": round(build)}


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
          qvecs: np.ndarray) -> dict[str, object]:
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
    n = min(50, len(queries))
    return {
        "build_chunks_per_s": round(build),
        "flat_vector": timings(lambda i: table.search(qvecs[i], vector_column_name="vector")
                               .limit(10).to_list(), n),
        "fts": timings(lambda i: table.search(queries[i], query_type="fts").limit(10).to_list(),
                       n),
    }


if __name__ == "__main__":
    main()
