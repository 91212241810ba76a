"""Model responses remembered in the run store, so a re-run of a climb costs nothing.

A response is keyed by the model's fingerprint, the operation, the exact messages and the
parameters: change any of them and the model is asked again. The wrapped model is loaded only
on the first miss, so a fully cached run never loads weights.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

from rung.data.example import Message
from rung.models.base import ChoiceScores, Generation, Model
from rung.models.registry import fingerprint as model_fingerprint
from rung.models.registry import load_model


class ResponseCache:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(fingerprint: str, operation: str, payload: Any) -> str:
        text = json.dumps([fingerprint, operation, payload], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for start in range(0, len(keys), 500):  # SQLite caps the number of parameters
            chunk = list(keys[start:start + 500])
            marks = ",".join("?" * len(chunk))
            for key, value in self.conn.execute(
                f"SELECT key, value FROM responses WHERE key IN ({marks})", chunk
            ):
                found[key] = json.loads(value)
        self.hits += len(found)
        self.misses += len(set(keys)) - len(found)
        return found

    def put_many(self, fingerprint: str, operation: str, items: dict[str, Any]) -> None:
        with self.conn:
            self.conn.executemany(
                "INSERT OR REPLACE INTO responses (key, model, operation, value) VALUES (?,?,?,?)",
                [(k, fingerprint, operation, json.dumps(v)) for k, v in items.items()],
            )


def _messages(prompt: Sequence[Message]) -> list[list[str]]:
    return [[m.role, m.content] for m in prompt]


class CachedModel:
    """A Model that answers from the cache where it can and asks `reference` for the rest."""

    def __init__(self, reference: str, cache: ResponseCache, *, base_dir: Path | None = None) -> None:
        self.name = reference
        self.reference = reference
        self.base_dir = base_dir
        self.cache = cache
        self._inner: Model | None = None
        self._fingerprint: str | None = None

    @property
    def inner(self) -> Model:
        if self._inner is None:
            self._inner = load_model(self.reference, base_dir=self.base_dir)
        return self._inner

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(self.reference, base_dir=self.base_dir)
        return self._fingerprint

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return self.inner.count_tokens(messages)

    def score_choices(
        self, prompts: Sequence[Sequence[Message]], choices: Sequence[str]
    ) -> list[ChoiceScores]:
        keys = [self.cache.key(self.fingerprint, "score", [_messages(p), list(choices)]) for p in prompts]
        found = self.cache.get_many(keys)
        missing = [i for i, k in enumerate(keys) if k not in found]
        if missing:
            fresh = self.inner.score_choices([prompts[i] for i in missing], choices)
            new = {keys[i]: asdict(s) for i, s in zip(missing, fresh)}
            self.cache.put_many(self.fingerprint, "score",
                                {k: v for k, v in new.items() if not v["error"]})
            found.update(new)
        return [ChoiceScores(**found[k]) for k in keys]

    def generate(
        self, prompts: Sequence[Sequence[Message]], max_new_tokens: int = 64
    ) -> list[Generation]:
        keys = [
            self.cache.key(self.fingerprint, "generate", [_messages(p), {"max_new_tokens": max_new_tokens, "greedy": True}])
            for p in prompts
        ]
        found = self.cache.get_many(keys)
        missing = [i for i, k in enumerate(keys) if k not in found]
        if missing:
            fresh = self.inner.generate([prompts[i] for i in missing], max_new_tokens=max_new_tokens)
            new = {keys[i]: asdict(g) for i, g in zip(missing, fresh)}
            self.cache.put_many(self.fingerprint, "generate",
                                {k: v for k, v in new.items() if not v["error"]})
            found.update(new)
        return [Generation(**found[k]) for k in keys]
