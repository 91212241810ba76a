"""What a rung hands back: the pipeline it built, how it chose it, and its test measurement."""

from __future__ import annotations

import math
from contextvars import ContextVar
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
    # candidates raced on val under [eval] selection = "race"; a rung whose candidates cost
    # no model call (the classifier) scores them all on all of val: racing would save nothing
    raced: bool = True

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
        progress = reporter(f"{self.name}: choosing on val", val_work(
            task, len(pipelines), len(val), race=self.raced)) if reporter else None
        return choose_on_val(task, pipelines, val, progress, cache, race=self.raced)


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
            "seconds": {"choose": round(self.build_seconds, 1),
                        "test": round(self.test.seconds, 1)},
            "model": self.pipeline.model,
            "remote": self.remote,
            "training": self.training,
            "versus": (
                {"rung": self.versus[0], "paired_with": self.paired_with,
                 **self.versus[1].to_dict()} if self.versus else None
            ),
        }


def val_work(task: TaskSpec, n_candidates: int, n_val: int, *, race: bool = True) -> int:
    """Candidate-examples choosing among `n_candidates` scores on val, before it starts."""
    n_val = min(n_val, task.eval.val_limit or n_val)
    if race and task.eval.selection == "race" and n_candidates > 1:
        return race_work(n_candidates, n_val, task.eval.race_start)
    return n_candidates * n_val


# Set by the dry run, whose stand-in answers nothing so that every candidate ties: each
# candidate is then scored on all of val (a race's survivors depend on answers it cannot
# give) and a tie keeps the costliest (most tokens sent on val), so the test requests it
# counts bound those of whichever candidate a real model makes the choice.
COUNTING: ContextVar[bool] = ContextVar("rung_counting", default=False)


def choose_on_val(
    task: TaskSpec,
    pipelines: Sequence[tuple[str, Pipeline]],
    val: Sequence[Example],
    progress: Callable[[int], None] | None = None,
    cache: "ResponseCache | None" = None,
    *,
    race: bool = True,
) -> tuple[Pipeline, list[Candidate]]:
    """Score each candidate on val and keep the best; ties go to the earlier (cheaper) one.
    Each keeps its val interval too: the stop rule may ask for its lower bound. Raced
    (see _race) when [eval] selection says so and `race` allows."""
    limit = task.eval.val_limit
    val = list(val[:limit] if limit else val)
    counting = COUNTING.get()
    if race and task.eval.selection == "race" and len(pipelines) > 1 and val and not counting:
        return _race(task, pipelines, val, progress, cache)
    candidates: list[Candidate] = []
    best: int | None = None
    sent: list[int] = []  # tokens each candidate sent on val, for the dry run's ties
    for label, pipeline in pipelines:
        result = evaluate(
            pipeline, val, metric=task.task.metric, n_resamples=task.eval.bootstrap,
            seed=task.task.seed, progress=progress, cache=cache, schema=task.json_schema,
        )
        candidates.append(Candidate(label, result.score.value,
                                    {**pipeline.details, "val_n": result.score.n},
                                    val_ci=result.score.ci))
        sent.append(sum(p.tokens_in for p in result.predictions) if counting else 0)
        if best is None or result.score.value > candidates[best].val_score or (
                counting and result.score.value == candidates[best].val_score
                and sent[-1] > sent[best]):
            best = len(candidates) - 1
    assert best is not None, "a rung must try at least one candidate"
    candidates[best] = replace(candidates[best], chosen=True)
    return pipelines[best][1], candidates


def race_schedule(n_candidates: int, n_val: int, start: int) -> list[tuple[int, int]]:
    """Successive halving's rounds as (candidates still in, val examples each has seen by the
    end of the round). Each round keeps the better half; the sizes double so that the last
    pair is compared on all of val, and none is smaller than `start` (or val). Whether a
    candidate goes on depends on scores, but how many do does not, so the work is known
    before the first call: the progress bar's total and the dry run's count."""
    rounds = max(1, math.ceil(math.log2(max(n_candidates, 2))))
    floor = min(start, n_val)
    sizes = [min(n_val, max(floor, math.ceil(n_val / 2 ** (rounds - 1 - r))))
             for r in range(rounds)]
    schedule, alive = [], n_candidates
    for size in sizes:
        schedule.append((alive, size))
        alive = math.ceil(alive / 2)
    return schedule


def race_work(n_candidates: int, n_val: int, start: int, asking: int | None = None) -> int:
    """Candidate-examples a race scores, every repeat of an example counted once; with
    `asking`, at most that many of the candidates in a round ask the model (the plan's count
    of requests: calibrated twins reuse their originals' answers)."""
    seen, work = 0, 0
    for alive, size in race_schedule(n_candidates, n_val, start):
        work += min(alive, asking if asking is not None else alive) * (size - seen)
        seen = size
    return work


def _race(
    task: TaskSpec,
    pipelines: Sequence[tuple[str, Pipeline]],
    val: list[Example],
    progress: Callable[[int], None] | None,
    cache: "ResponseCache | None",
) -> tuple[Pipeline, list[Candidate]]:
    """Successive halving on val (see race_schedule): every candidate answers the first few
    val examples, the better half goes on to twice as many, until the last two are compared
    on all of val. Ranks are by the task's metric on the examples seen; a tie goes to the
    earlier (cheaper) candidate, as in full selection. So the choice differs from full
    selection's only when full selection's winner was in the weaker half on a prefix of val.
    Each candidate answers each example once; the rounds add examples, never repeat them."""
    from rung.eval.metrics import score_predictions

    answered: dict[int, list[Any]] = {i: [] for i in range(len(pipelines))}
    scores: dict[int, Any] = {}
    stopped: dict[int, str] = {}
    alive, seen = list(range(len(pipelines))), 0
    for _, size in race_schedule(len(pipelines), len(val), task.eval.race_start):
        for i in alive:
            if size > seen:
                answered[i] += evaluate(
                    pipelines[i][1], val[seen:size], metric=task.task.metric, n_resamples=1,
                    seed=task.task.seed, progress=progress, cache=cache,
                    schema=task.json_schema).predictions
            scores[i] = score_predictions(
                task.task.metric, [p.expected for p in answered[i]],
                [p.output for p in answered[i]], labels=pipelines[i][1].labels,
                n_resamples=task.eval.bootstrap, seed=task.task.seed, schema=task.json_schema)
        seen = size
        ranked = sorted(alive, key=lambda i: (-scores[i].value, i))
        kept = ranked[:math.ceil(len(ranked) / 2)]
        last = kept[-1]
        for i in ranked[len(kept):]:
            stopped[i] = (
                f"in the weaker half on {size} val examples: {scores[i].value:.3f}, tied with "
                f"{pipelines[last][0]}, which comes first (cheaper)"
                if scores[i].value == scores[last].value else
                f"in the weaker half on {size} val examples: {scores[i].value:.3f} against "
                f"{scores[last].value:.3f} for {pipelines[last][0]}")
        alive = sorted(kept)
    [best] = alive
    candidates = []
    for i, (label, pipeline) in enumerate(pipelines):
        score = scores[i]
        details = {**pipeline.details, "val_n": score.n,
                   "stopped": stopped.get(i, "kept: raced to the end of val")}
        candidates.append(Candidate(label, score.value, details, val_ci=score.ci,
                                    chosen=i == best))
    return pipelines[best][1], candidates
