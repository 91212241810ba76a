"""Run a Pipeline over examples and measure it: scores with intervals, latency, tokens.

Scoring runs the whole split in one batch (the backend shares work across it). Latency is
measured separately, one request at a time after a warm-up call, because that is what a user
of the shipped pipeline waits for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from rung.data.example import Example
from rung.eval.metrics import Score, is_correct, score_predictions
from rung.pipeline import Pipeline


@dataclass(frozen=True)
class Prediction:
    example_id: str
    line: int
    input: str
    expected: str
    output: str
    correct: bool
    tokens_in: int
    tokens_out: int


@dataclass
class EvalResult:
    score: Score
    predictions: list[Prediction]
    extra_scores: dict[str, Score] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def tokens_per_request(self) -> float:
        if not self.predictions:
            return 0.0
        return float(np.mean([p.tokens_in + p.tokens_out for p in self.predictions]))


def evaluate(
    pipeline: Pipeline,
    examples: Sequence[Example],
    *,
    metric: str,
    extra_metrics: Sequence[str] = (),
    n_resamples: int = 2000,
    latency_samples: int = 0,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    batch_size: int = 32,
) -> EvalResult:
    started = time.perf_counter()
    outputs = []
    for start in range(0, len(examples), batch_size):
        chunk = examples[start:start + batch_size]
        outputs.extend(pipeline.predict([e.input for e in chunk]))
        if progress:
            progress(len(chunk))
    predictions = [
        Prediction(
            e.id, e.line, e.input, e.output, o.text, is_correct(metric, e.output, o.text),
            o.tokens_in, o.tokens_out,
        )
        for e, o in zip(examples, outputs)
    ]
    expected = [p.expected for p in predictions]
    predicted = [p.output for p in predictions]

    def scored(name: str) -> Score:
        return score_predictions(
            name, expected, predicted, labels=pipeline.labels, n_resamples=n_resamples, seed=seed
        )

    result = EvalResult(
        score=scored(metric),
        predictions=predictions,
        extra_scores={m: scored(m) for m in extra_metrics if m != metric},
    )
    if latency_samples:
        result.latency_ms = measure_latency(pipeline, [e.input for e in examples[:latency_samples]])
    result.seconds = time.perf_counter() - started
    return result


def measure_latency(pipeline: Pipeline, texts: Sequence[str]) -> dict[str, float]:
    """Single requests, after one warm-up call, in milliseconds."""
    if not texts:
        return {}
    pipeline.predict([texts[0]])
    times = []
    for text in texts:
        t0 = time.perf_counter()
        pipeline.predict([text])
        times.append((time.perf_counter() - t0) * 1000)
    p50, p95, p99 = np.percentile(times, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "n": float(len(times))}
