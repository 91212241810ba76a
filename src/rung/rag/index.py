"""The persistent corpus index: documents, chunks and their embeddings in SQLite beside the task.

Why SQLite and in-memory search rather than LanceDB or sqlite-vec (measured in
benchmarks/retrieval.py, 100,000 chunks, 2 cores): sqlite-vec needs a Python whose sqlite3
can load extensions, which the stock CPython on these machines (and many others) cannot;
FTS5's bm25() over OR-ed query words took p50 107 ms / p95 170 ms; LanceDB's flat vector scan
took p50 188 ms / p95 400 ms (an IVF index would make it approximate and need retraining as
documents change) and brings ~350 MB of dependencies. bm25s over a sparse matrix answers in
~2 ms and a numpy scan of 100,000 x 384 float32 in ~8 ms, exactly. So the database keeps what
must persist (chunks, embeddings, content hashes) with transactions that make an update
all-or-nothing, and search runs on matrices loaded from it.

Re-indexing is incremental by content hash: an unchanged file is not read again, a changed
one has its chunks replaced, a deleted one is removed; only new chunks are embedded. A file
that cannot be read (no permission, deleted while the folder is read, a link to nothing, not
a document rung reads) is named in the report's problems and the rest is indexed; its old
chunks are dropped, since what it says now is unknown.
"""

from __future__ import annotations

import errno
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rung.errors import DataError
from rung.rag.chunking import CHUNK_TOKENS, CHUNKING_VERSION, OVERLAP_TOKENS, Chunk, \
    chunk_document
from rung.rag.documents import corpus_files, file_hash, read_document

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    source TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    chunks INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL REFERENCES documents(source) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    heading TEXT NOT NULL,
    text TEXT NOT NULL,
    embedding BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_source ON chunks(source);
"""

Embedder = Callable[[list[str]], np.ndarray]


@dataclass
class RefreshReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    chunks_embedded: int = 0
    chunks: int = 0  # in the index after the refresh
    problems: list[DataError] = field(default_factory=list)  # files that could not be read

    def to_dict(self) -> dict:
        return {"added": self.added, "changed": self.changed, "removed": self.removed,
                "unchanged": self.unchanged, "chunks_embedded": self.chunks_embedded,
                "chunks": self.chunks, "problems": [str(p) for p in self.problems]}


def default_embedder(texts: list[str]) -> np.ndarray:
    from rung.eval.semantic import embed_texts

    return np.asarray(embed_texts(texts, max_words=100_000), dtype=np.float32)


class CorpusIndex:
    def __init__(self, db_path: Path, *, chunk_tokens: int = CHUNK_TOKENS,
                 overlap: int = OVERLAP_TOKENS, embedder: Embedder = default_embedder) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self.db_path = db_path
        self.conn = sqlite3.connect(db_path)
        try:
            self.conn.execute("PRAGMA foreign_keys = ON")
            self.conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as error:  # the index, not the run store: say which
            self.conn.close()
            raise DataError(f"the retrieval index could not be used: {error}", file=db_path,
                            fix="it holds nothing but what the corpus makes: delete it (or move "
                                "it aside) and `rung index PATH` builds it again") from None
        self.settings = {"chunk_tokens": chunk_tokens, "overlap": overlap,
                         "embedder": getattr(embedder, "__qualname__", "custom"),
                         "chunking": CHUNKING_VERSION}  # an index chunked otherwise is rebuilt
        self.embedder = embedder
        self._loaded: tuple[list[Chunk], np.ndarray] | None = None

    def close(self) -> None:
        self.conn.close()

    @property
    def version(self) -> str:
        """Changes whenever the indexed content does: retrievers built on it key on this."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        return row[0] if row else ""

    def refresh(self, folder: Path, progress: Callable[[int, int], None] | None = None
                ) -> RefreshReport:
        """Bring the index in line with `folder`. Files are compared by content hash."""
        if not folder.is_dir():
            raise DataError("corpus folder not found", file=folder,
                            fix="set [task] corpus to a folder of documents, relative to rung.toml")
        report = RefreshReport()
        stored = dict(self.conn.execute("SELECT source, hash FROM documents"))
        if self._stored_settings() != self.settings:
            stored = {}  # chunking or embedder changed: every document is re-indexed
            with self.conn:
                self.conn.execute("DELETE FROM chunks")
                self.conn.execute("DELETE FROM documents")
        files = corpus_files(folder)
        seen: set[str] = set()
        for done, path in enumerate(files, 1):
            source = path.relative_to(folder).as_posix()
            seen.add(source)
            self._refresh_file(path, source, stored, report)
            if progress:
                progress(done, len(files))
        for source in sorted(set(stored) - seen):
            self._remove(source)
            report.removed.append(source)
        self._bump(report)  # always: a refresh cut off after writing a file left the
        # version behind its content, and this one may find nothing left to change
        report.chunks = self.conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        return report

    def _refresh_file(self, path: Path, source: str, stored: dict[str, str],
                      report: RefreshReport) -> None:
        try:
            data = path.read_bytes()
            digest = file_hash(data)
            if stored.get(source) == digest:
                report.unchanged += 1
                return
            doc = read_document(path, source, data)
        except (DataError, OSError) as error:
            report.problems.append(error if isinstance(error, DataError) else
                                   _unreadable(path, error))
            self._remove(source)  # an unreadable new version must not serve stale facts
            if source in stored:
                report.removed.append(source)
            return
        chunks = chunk_document(doc, size=self.settings["chunk_tokens"],
                                overlap=self.settings["overlap"])
        vectors = self.embedder([c.indexed_text for c in chunks]) if chunks else \
            np.zeros((0, 0), dtype=np.float32)
        self._replace(source, digest, chunks, vectors)
        report.chunks_embedded += len(chunks)
        (report.changed if source in stored else report.added).append(source)

    def _stored_settings(self) -> dict:
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'settings'").fetchone()
        return json.loads(row[0]) if row else {}

    def _replace(self, source: str, digest: str, chunks: list[Chunk], vectors: np.ndarray) -> None:
        with self.conn:  # one document's old chunks go and new ones come in one transaction
            self.conn.execute("DELETE FROM documents WHERE source = ?", (source,))
            self.conn.execute("INSERT INTO documents VALUES (?,?,?)", (source, digest, len(chunks)))
            self.conn.executemany(
                "INSERT INTO chunks (source, position, start, end, heading, text, embedding)"
                " VALUES (?,?,?,?,?,?,?)",
                [(c.source, c.position, c.start, c.end, c.heading, c.text,
                  np.asarray(v, dtype=np.float32).tobytes()) for c, v in zip(chunks, vectors)])

    def _remove(self, source: str) -> None:
        with self.conn:
            self.conn.execute("DELETE FROM documents WHERE source = ?", (source,))

    def _bump(self, report: RefreshReport) -> None:
        import hashlib

        rows = self.conn.execute("SELECT source, hash FROM documents ORDER BY source").fetchall()
        version = hashlib.sha256(json.dumps([rows, self.settings]).encode()).hexdigest()[:16]
        if version == self.version and self._stored_settings() == self.settings:
            return  # the content is what the version says: nothing to write
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (version,))
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('settings', ?)",
                              (json.dumps(self.settings),))
        self._loaded = None

    def load(self) -> tuple[list[Chunk], np.ndarray]:
        """All chunks in a stable order and their embeddings as one (n, dim) matrix."""
        if self._loaded is None:
            rows = self.conn.execute(
                "SELECT source, position, start, end, heading, text, embedding FROM chunks"
                " ORDER BY source, position").fetchall()
            chunks = [Chunk(*row[:6]) for row in rows]
            matrix = np.vstack([np.frombuffer(row[6], dtype=np.float32) for row in rows]) \
                if rows else np.zeros((0, 384), dtype=np.float32)
            self._loaded = (chunks, matrix)
        return self._loaded

    def documents(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT source, hash FROM documents ORDER BY source"))


def _unreadable(path: Path, error: OSError) -> DataError:
    """A file listed in the corpus folder that cannot be opened, said so a person can act."""
    if path.is_symlink() and not path.exists():
        return DataError(f"a link to '{path.readlink()}', which does not exist", file=path,
                         fix="point the link at a document, or remove it")
    if error.errno == errno.ENOENT:
        return DataError("deleted while the corpus was being read", file=path,
                         fix="nothing if that was meant; run `rung index PATH` again to be sure")
    if error.errno in (errno.EACCES, errno.EPERM):
        return DataError("cannot be read: permission denied", file=path,
                         fix="give read permission to the user running rung (chmod a+r), or "
                             "move it out of the corpus folder")
    return DataError(f"cannot be read: {error.strerror or error}", file=path,
                     fix="check the file can be opened, or move it out of the corpus folder")
