"""What a rung hands back: the pipeline it built, how it chose it, and its test measurement."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Sequence

from rung.data.example import Example
from rung.eval.metrics import per_class
from rung.eval.runner import EvalResult, evaluate
from rung.eval.stats import PairedComparison
from rung.pipeline import Pipeline
from rung.task import TaskSpec

if TYPE_CHECKING:
    from rung.models.cache import ResponseCache


# Given a stage name and how many steps it has, returns the function that advances it.
StageReporter = Callable[[str, int], Callable[[int], None]]


class Rung:
    """A rung proposes candidate pipelines from train and keeps the one that does best on val.

    Subclasses say only what their candidates are; choosing is the same for every rung.
    """

    name: str

    def candidates(self, task: TaskSpec, train: Sequence[Example],
                   cache: "ResponseCache | None" = None) -> list[tuple[str, Pipeline]]:
        """`cache` is for candidates that ask the model while being built (calibration)."""
        raise NotImplementedError

    def build(
        self, task: TaskSpec, train: Sequence[Example], val: Sequence[Example],
        reporter: "StageReporter | None" = None,
        cache: "ResponseCache | None" = None,
    ) -> tuple[Pipeline, list["Candidate"]]:
        # candidates may ask the model too (calibration), and embed the train examples
        prepared = reporter(f"{self.name}: preparing candidates", 1) if reporter else None
        pipelines = self.candidates(task, train, cache)
        if prepared:
            prepared(1)
        n_val = min(len(val), task.eval.val_limit or len(val))
        progress = reporter(f"{self.name}: choosing on val", len(pipelines) * n_val) if reporter else None
        return choose_on_val(task, pipelines, val, progress, cache)


@dataclass(frozen=True)
class Candidate:
    """One configuration a rung tried on val (a prompt variant, a value of k)."""

    label: str
    val_score: float
    details: dict[str, Any] = field(default_factory=dict)
    val_ci: tuple[float, float] | None = None
    chosen: bool = False  # the one the rung kept


@dataclass
class RungResult:
    rung: str
    pipeline: Pipeline
    test: EvalResult
    candidates: list[Candidate]
    build_seconds: float
    versus: tuple[str, PairedComparison] | None = None  # against a cheaper rung (see paired_with)
    training: dict[str, Any] | None = None  # fine-tune rungs: steps, best checkpoint, signals
    # how the cheaper rung in `versus` was picked: "built-from" (the pipeline this rung ran,
    # e.g. the bigger model's) or "best-on-val" (the cheaper rung whose choice scored best on val)
    paired_with: str | None = None
    # a remote model's spend on this rung (requests, errors, tokens, dollars, scoring method)
    remote: dict[str, Any] | None = None

    @property
    def choice(self) -> Candidate:
        """The candidate this rung kept, with its val score: what decides on climbing on."""
        return next(c for c in self.candidates if c.chosen)

    def summary(self) -> dict[str, Any]:
        """The stable JSON shape documented in the README."""
        s = self.test.score
        return {
            "rung": self.rung,
            "metric": s.metric,
            "score": round(s.value, 4),
            "ci": [round(s.ci[0], 4), round(s.ci[1], 4)],
            "n": s.n,
            "other_scores": {
                name: {"score": round(x.value, 4), "ci": [round(x.ci[0], 4), round(x.ci[1], 4)]}
                for name, x in self.test.extra_scores.items()
            },
            "latency_ms": {k: round(v, 1) for k, v in self.test.latency_ms.items() if k != "n"},
            "latency_samples_ms": self.test.latency_samples_ms,
            "tokens_per_request": round(self.test.tokens_per_request, 1),
            "loss": round(self.test.loss, 4) if self.test.loss is not None else None,
            "tokens_in": round(self.test.tokens_in, 1),
            "tokens_out": round(self.test.tokens_out, 1),
            "per_class": (
                per_class([p.expected for p in self.test.predictions],
                          [p.output for p in self.test.predictions], self.pipeline.labels)
                if self.pipeline.kind == "classification" else None
            ),
            "failures": self.test.failures,
            "retrieval": self.test.retrieval,
            "grounding": self.test.grounding,
            "chosen": self.pipeline.details,
            "candidates": [
                {"label": c.label, "val_score": round(c.val_score, 4),
                 "val_ci": [round(x, 4) for x in c.val_ci] if c.val_ci else None,
                 "chosen": c.chosen, **c.details}
                for c in self.candidates
            ],
            "model": self.pipeline.model,
            "remote": self.remote,
            "training": self.training,
            "versus": (
                {"rung": self.versus[0], "paired_with": self.paired_with,
                 **self.versus[1].to_dict()} if self.versus else None
            ),
        }


def choose_on_val(
    task: TaskSpec,
    pipelines: Sequence[tuple[str, Pipeline]],
    val: Sequence[Example],
    progress: Callable[[int], None] | None = None,
    cache: "ResponseCache | None" = None,
) -> tuple[Pipeline, list[Candidate]]:
    """Score each candidate on val and keep the best; ties go to the earlier (cheaper) one.
    Each keeps its val interval too: the stop rule may ask for its lower bound."""
    limit = task.eval.val_limit
    val = list(val[:limit] if limit else val)
    if task.eval.selection == "race" and len(pipelines) > 1:
        return _race(task, pipelines, val, progress, cache)
    candidates: list[Candidate] = []
    best: int | None = None
    for label, pipeline in pipelines:
        result = evaluate(
            pipeline, val, metric=task.task.metric, n_resamples=task.eval.bootstrap,
            seed=task.task.seed, progress=progress, cache=cache, schema=task.json_schema,
        )
        candidates.append(Candidate(label, result.score.value, dict(pipeline.details),
                                    val_ci=result.score.ci))
        if best is None or result.score.value > candidates[best].val_score:
            best = len(candidates) - 1
    assert best is not None, "a rung must try at least one candidate"
    candidates[best] = replace(candidates[best], chosen=True)
    return pipelines[best][1], candidates


def _race(
    task: TaskSpec,
    pipelines: Sequence[tuple[str, Pipeline]],
    val: list[Example],
    progress: Callable[[int], None] | None,
    cache: "ResponseCache | None",
) -> tuple[Pipeline, list[Candidate]]:
    """Every candidate on the first `race_start` val examples; one clearly behind the leader
    there (exact McNemar on the examples both answered, worse with p < race_alpha) stops; the
    rest go on to twice as many, until one is left or val is used up. The leader on the most
    val examples is chosen (ties to the earlier, cheaper one). Each scoring of a longer prefix
    repeats the shorter one from the response cache, not from the model."""
    from rung.eval.stats import mcnemar_exact

    alive = list(range(len(pipelines)))
    results: dict[int, Any] = {}
    stopped: dict[int, str] = {}
    size, scored, advanced = min(len(val), task.eval.race_start), 0, 0
    while True:
        for i in alive:
            results[i] = evaluate(
                pipelines[i][1], val[:size], metric=task.task.metric,
                n_resamples=task.eval.bootstrap, seed=task.task.seed, cache=cache,
                schema=task.json_schema)
        if progress:
            progress(len(alive) * (size - scored))
        advanced += len(alive) * (size - scored)
        scored = size
        leader = max(alive, key=lambda i: (results[i].score.value, -i))
        ahead = [p.correct for p in results[leader].predictions]
        for i in [i for i in alive if i != leader]:
            test = mcnemar_exact(ahead, [p.correct for p in results[i].predictions])
            if test.difference < 0 and test.p_value < task.eval.race_alpha:
                alive.remove(i)
                stopped[i] = (f"behind {pipelines[leader][0]} by {-test.difference:.3f} on "
                              f"{size} val examples (p={test.p_value:.2g})")
        if len(alive) == 1 or size == len(val):
            break
        size = min(len(val), size * 2)
    if len(alive) == 1 and size < len(val):  # the winner is measured on all of val
        [last] = alive
        results[last] = evaluate(
            pipelines[last][1], val, metric=task.task.metric, n_resamples=task.eval.bootstrap,
            seed=task.task.seed, cache=cache, schema=task.json_schema)
    if progress:  # the stage is done: what the stopped candidates did not need counts as done
        progress(len(pipelines) * len(val) - advanced)
    best = max(alive, key=lambda i: (results[i].score.value, -i))
    candidates = []
    for i, (label, pipeline) in enumerate(pipelines):
        score = results[i].score
        details = {**pipeline.details, "val_n": score.n,
                   "stopped": stopped.get(i, "raced to the end of val")}
        candidates.append(Candidate(label, score.value, details, val_ci=score.ci,
                                    chosen=i == best))
    return pipelines[best][1], candidates
