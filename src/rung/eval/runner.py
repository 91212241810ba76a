"""Run a Pipeline over examples and measure it: scores with intervals, latency, tokens.

Scoring runs the whole split in one batch (the backend shares work across it). Latency is
measured separately, one request at a time after a warm-up call, because that is what a user
of the shipped pipeline waits for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from rung.data.example import Example
from rung.eval.json_metrics import failure_kind
from rung.eval.metrics import Score, is_correct, metric_spec, score_predictions
from rung.models.registry import fingerprint
from rung.pipeline import Pipeline
from rung.rag.metrics import is_grounded, retrieval_metrics

if TYPE_CHECKING:
    from rung.models.cache import ResponseCache


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
    loss: float | None = None
    sources: tuple[str, ...] = ()  # retrieved chunks the prompt carried, best first
    grounded: bool | None = None  # answer supported by those chunks (None: not checked)


@dataclass
class EvalResult:
    score: Score
    predictions: list[Prediction]
    extra_scores: dict[str, Score] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    latency_samples_ms: list[float] = field(default_factory=list)  # each timed request
    seconds: float = 0.0
    failures: dict[str, int] = field(default_factory=dict)
    retrieval: dict[str, float] | None = None  # hit@k, recall@k, MRR where gold sources exist

    @property
    def grounding(self) -> dict[str, float] | None:
        checked = [p.grounded for p in self.predictions if p.grounded is not None]
        if not checked:
            return None
        return {"grounded": round(sum(checked) / len(checked), 4), "n": len(checked)}

    @property
    def tokens_per_request(self) -> float:
        return self.tokens_in + self.tokens_out

    @property
    def loss(self) -> float | None:
        losses = [p.loss for p in self.predictions if p.loss is not None]
        return float(np.mean(losses)) if losses else None

    @property
    def tokens_in(self) -> float:
        return float(np.mean([p.tokens_in for p in self.predictions])) if self.predictions else 0.0

    @property
    def tokens_out(self) -> float:
        return float(np.mean([p.tokens_out for p in self.predictions])) if self.predictions else 0.0


def evaluate(
    pipeline: Pipeline,
    examples: Sequence[Example],
    *,
    metric: str,
    extra_metrics: Sequence[str] = (),
    n_resamples: int = 2000,
    latency_samples: int = 0,
    latency_inputs: Sequence[str] | None = None,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    batch_size: int = 32,
    cache: "ResponseCache | None" = None,
    schema: dict | None = None,
) -> EvalResult:
    started = time.perf_counter()
    outputs = []
    for start in range(0, len(examples), batch_size):
        chunk = examples[start:start + batch_size]
        outputs.extend(pipeline.predict([e.input for e in chunk], cache=cache))
        if progress:
            progress(len(chunk))
    spec = metric_spec(metric, schema)  # once: a custom metric is imported and probed
    predictions = [
        Prediction(
            e.id, e.line, e.input, e.output, o.text, is_correct(spec, e.output, o.text),
            o.tokens_in, o.tokens_out, o.loss(pipeline.labels, e.output), o.sources,
            is_grounded(o.text, o.context, e.input) if o.context else None,
        )
        for e, o in zip(examples, outputs)
    ]
    expected = [p.expected for p in predictions]
    predicted = [p.output for p in predictions]

    def scored(name: str) -> Score:
        return score_predictions(
            name, expected, predicted, labels=pipeline.labels, n_resamples=n_resamples, seed=seed,
            schema=schema,
        )

    result = EvalResult(
        score=scored(metric),
        predictions=predictions,
        extra_scores={m: scored(m) for m in extra_metrics if m != metric},
        failures=failure_breakdown(pipeline, predictions, schema),
    )
    if pipeline.retrieval is not None:
        result.retrieval = retrieval_metrics(examples, [p.sources for p in predictions],
                                             pipeline.retrieval.get("corpus", ""))
    if latency_samples:
        texts = list(latency_inputs if latency_inputs is not None
                     else [e.input for e in examples])[:latency_samples]
        measured = _latency(pipeline, texts, cache)
        result.latency_samples_ms = measured.pop("samples", [])
        result.latency_ms = measured
    result.seconds = time.perf_counter() - started
    return result


def failure_breakdown(
    pipeline: Pipeline, predictions: Sequence[Prediction], schema: dict | None = None
) -> dict[str, int]:
    """Wrong answers split into format violations (not a label, not JSON) and wrong content:
    the first is a behaviour problem a prompt or fine-tune can fix, the second may be missing
    knowledge."""
    counts = {"correct": 0, "format": 0, "content": 0}
    for p in predictions:
        if p.correct:
            counts["correct"] += 1
        elif failure_kind(pipeline.kind, p.output, pipeline.labels, schema) == "format":
            counts["format"] += 1
        else:
            counts["content"] += 1
    return counts


def _latency(pipeline: Pipeline, texts: list[str], cache: "ResponseCache | None") -> dict[str, Any]:
    """Measured once per (pipeline, model, requests): a re-run reuses the measurement rather
    than pretending a cache hit is what a user would wait for."""
    if cache is None:
        return measure_latency(pipeline, texts)
    model = fingerprint(pipeline.model, base_dir=Path(pipeline.base_dir) if pipeline.base_dir else None)
    key = cache.key(model, "latency-samples", [pipeline.hash(), texts])
    found = cache.get_many([key])
    if key not in found:
        found[key] = measure_latency(pipeline, texts)
        cache.put_many(model, "latency-samples", {key: found[key]})
    return found[key]


def measure_latency(pipeline: Pipeline, texts: Sequence[str]) -> dict[str, Any]:
    """Single requests, after one warm-up call, in milliseconds: the percentiles and every
    sample (the report draws their distribution)."""
    if not texts:
        return {}
    pipeline.predict([texts[0]])
    times = []
    for text in texts:
        t0 = time.perf_counter()
        pipeline.predict([text])
        times.append((time.perf_counter() - t0) * 1000)
    p50, p95, p99 = np.percentile(times, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "n": float(len(times)),
            "samples": [round(t, 2) for t in times]}
