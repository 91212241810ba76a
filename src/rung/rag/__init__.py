"""Retrieval-augmented generation: a corpus folder, its persistent index, and retrievers.

`retrieve` is what a Pipeline calls: it opens the index named in the pipeline's retrieval
settings once per process and index version, so a refreshed index is picked up at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rung.errors import DataError
from rung.rag.retrieval import Hit, Retriever

_OPEN: dict[tuple[str, str], dict[str, Retriever]] = {}


def retrievers(base_dir: Path, retrieval: dict[str, Any]) -> dict[str, Retriever]:
    """The three retrievers over the index at base_dir/retrieval["index"], built once."""
    from rung.rag.index import CorpusIndex, default_embedder
    from rung.rag.retrieval import build_retrievers

    path = (base_dir / retrieval["index"]).resolve()
    if not path.exists():  # opening would create an empty index that answers nothing
        raise DataError("no corpus index here", file=path,
                        fix="build it with: rung index PATH (rung climb and rung ask do too)")
    index = CorpusIndex(path, chunk_tokens=retrieval["chunk_tokens"],
                        overlap=retrieval["overlap"])
    try:
        key = (str(path), index.version)
        if key not in _OPEN:
            for stale in [k for k in _OPEN if k[0] == key[0]]:
                del _OPEN[stale]
            chunks, matrix = index.load()
            _OPEN[key] = build_retrievers(chunks, matrix, default_embedder)
        return _OPEN[key]
    finally:
        index.close()


def retrieve(base_dir: Path, retrieval: dict[str, Any], queries: list[str]) -> list[list[Hit]]:
    found = retrievers(base_dir, retrieval)[retrieval["method"]]
    return found.search_many(queries, int(retrieval["k"]))
