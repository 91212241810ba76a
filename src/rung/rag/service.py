"""The task-level retrieval jobs behind `rung index` and `rung ask`.

Both refresh the index first (hashing the corpus files is cheap when nothing changed), so an
edited document is what the next answer reads: there is no separate "publish" step to forget.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rung.errors import ConfigError
from rung.rag.index import CorpusIndex, RefreshReport
from rung.task import TaskSpec, load_task

if TYPE_CHECKING:
    from rung.pipeline import Pipeline
    from rung.rungs.base import StageReporter

DEFAULT_METHOD, DEFAULT_K = "hybrid", 3


def retrieval_settings(task: TaskSpec, method: str, k: int) -> dict[str, Any]:
    return {"corpus": task.task.corpus, "index": task.rag.index, "method": method, "k": k,
            "chunk_tokens": task.rag.chunk_tokens, "overlap": task.rag.overlap}


def refresh_index(task: TaskSpec, progress: Callable[[int, int], None] | None = None
                  ) -> RefreshReport:
    """Bring the task's index in line with its corpus folder (only changed files are read)."""
    if task.corpus_path is None:
        raise ConfigError("this task has no corpus to index", file=task.path,
                          fix='add corpus = "docs/" (a folder of documents) under [task]')
    index = CorpusIndex(task.root / task.rag.index, chunk_tokens=task.rag.chunk_tokens,
                        overlap=task.rag.overlap)
    try:
        return index.refresh(task.corpus_path, progress)
    finally:
        index.close()


def file_progress(reporter: "StageReporter", stage: str) -> Callable[[int, int], None]:
    """Adapt the index's (done, total) callback to a stage that needs its total up front."""
    advance: Callable[[int], None] | None = None

    def on_file(done: int, total: int) -> None:
        nonlocal advance
        if advance is None:
            advance = reporter(stage, total)
        advance(1)
    return on_file


def index_task(path: str | Path, reporter: "StageReporter | None" = None) -> RefreshReport:
    task = load_task(path)
    return refresh_index(task, file_progress(reporter, "indexing") if reporter else None)


def ask(path: str | Path, question: str, *, method: str | None = None,
        k: int | None = None) -> dict[str, Any]:
    """Answer through the last climb's rag pipeline (or the best guess before any climb)."""
    from dataclasses import replace

    from rung.rag import retrievers

    from rung.models.endpoint import prepare

    from rung.errors import DataError

    if not question.strip():
        raise ConfigError("the question is empty", fix='ask one: rung ask PATH "How do I ...?"')
    task = load_task(path)
    prepare(task.models.endpoints())
    refreshed = refresh_index(task)
    if refreshed.chunks == 0:  # an answer with nothing to read is made up
        raise DataError("the corpus has no text to retrieve from", file=task.corpus_path,
                        fix="put documents (.md, .txt, .html, .pdf) in the corpus folder; "
                            "`rung index PATH` lists the files it could not read")
    pipeline, origin = _rag_pipeline(task)
    settings = dict(pipeline.retrieval or {})
    settings.update({k_: v for k_, v in (("method", method), ("k", k)) if v is not None})
    pipeline = replace(pipeline, retrieval=settings)
    output = pipeline.predict([question])[0]
    by_key = {c.key: c for c in retrievers(task.root, settings)["bm25"].chunks}
    used = [by_key[key] for key in output.sources]
    return {"question": question, "answer": output.text.strip(), "method": settings["method"],
            "k": settings["k"], "pipeline": origin,
            "sources": [{"citation": c.citation, "source": c.source, "heading": c.heading,
                         "start": c.start, "end": c.end, "span_in_file": c.span_in_file}
                        for c in used]}


def _rag_pipeline(task: TaskSpec) -> tuple["Pipeline", str]:
    from rung.pipeline import Pipeline
    from rung.store import Store

    if (task.store_dir / "runs.db").exists():
        store = Store(task.store_dir)
        try:
            row = store.latest_pipeline("rag")
        finally:
            store.close()
        if row is not None:
            pipeline = Pipeline.from_dict(json.loads(row["pipeline_json"]), base_dir=str(task.root))
            return pipeline, f"chosen in run {row['run_id']}"
    return Pipeline(
        rung="rag", kind=task.task.kind, model=task.models.small,
        instruction=task.task.instruction, labels=list(task.task.labels),
        max_new_tokens=task.eval.max_new_tokens, base_dir=str(task.root),
        retrieval=retrieval_settings(task, DEFAULT_METHOD, DEFAULT_K),
    ), "default (no climb yet)"
