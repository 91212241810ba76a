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
from typing import Any, Callable, Sequence

from rung.data.example import Message
from rung.errors import ModelError
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
        keys = [self.cache.key(self.fingerprint, "score", [_messages(p), list(choices)])
                for p in prompts]
        found = self._answer("score", keys, prompts,
                             lambda asked: self.inner.score_choices(asked, choices))
        return [ChoiceScores(**found[k]) for k in keys]

    def generate(
        self, prompts: Sequence[Sequence[Message]], max_new_tokens: int = 64
    ) -> list[Generation]:
        settings = {"max_new_tokens": max_new_tokens, "greedy": True}
        keys = [self.cache.key(self.fingerprint, "generate", [_messages(p), settings])
                for p in prompts]
        found = self._answer("generate", keys, prompts,
                             lambda asked: self.inner.generate(
                                 asked, max_new_tokens=max_new_tokens))
        return [Generation(**found[k]) for k in keys]

    def _answer(self, operation: str, keys: list[str], prompts: Sequence[Sequence[Message]],
                ask: Callable[[list[Sequence[Message]]], list[Any]]) -> dict[str, Any]:
        """Answers by key: from the cache, else from the model. Failed answers are not kept
        (the next run asks again); when the model stops partway (a budget reached, too many
        errors), the answers it did give are kept before the error goes on."""
        found = self.cache.get_many(keys)
        missing = [i for i, k in enumerate(keys) if k not in found]
        if not missing:
            return found
        try:
            fresh = ask([prompts[i] for i in missing])
        except ModelError as stopped:
            self._keep(operation, {keys[missing[j]]: a for j, a in stopped.answered.items()})
            raise
        found.update(self._keep(operation, {keys[i]: a for i, a in zip(missing, fresh)}))
        return found

    def _keep(self, operation: str, answers: dict[str, Any]) -> dict[str, Any]:
        rows = {key: asdict(answer) for key, answer in answers.items()}
        self.cache.put_many(self.fingerprint, operation,
                            {k: v for k, v in rows.items() if not v["error"]})
        return rows
