"""What a climb will ask its models, counted before the first call, and how long it has left.

The plan is per rung: how many candidates it tries, how many candidate-examples choosing
among them scores on val (the race's schedule, or every candidate on all of val), the test
examples and timed latency requests that measure the one kept, the requests sent while its
candidates are prepared, and about how many tokens a request carries. It has a row for every
rung the ladder would measure and for every rung built on val only because a measured one
stands on it (`rung eval --rung few-shot` chooses the prompt rung's instruction on val first;
bigger-model chooses among the cheaper rungs' pipelines): such a row has its val and prepare
requests and no test ones (`measured` false). Candidates are the rungs' own, built without the
model. A calibrated twin is a candidate of its own (steps on val); with the response cache
it reuses its original's answers, so a pair costs one request per val example either answers
(in a race the twin may go on where its original stopped, and then asks itself), and its
content-free prompts (three per calibrated candidate, and three again on the large model when
the pipeline it carries up is calibrated) are the rung's prepare requests, as is the
fine-tune's general-capability suite on the base and the tuned model. Tokens in are estimated
at about four characters a token, a retrieved passage as its index's mean chunk
(`chunk_tokens` before the first index), a prepare request as one of the rung's; tokens out
are the most a request may write. A fine-tune adds its optimizer steps (at most: early
stopping may end it sooner).

The request total is an upper bound on what a first climb sends, and equal to it when
every rung it counts is climbed, under full selection, with distinct prompts. It is above it
when the climb stops early; when a race's survivors happen to share calibrated pairs (the
bound takes them to be from different pairs); when two candidates send the same prompt
(retrievers that find the same passages), which the response cache answers the second time;
when the bigger-model rung carries up an uncalibrated pipeline, or a model gives no
probabilities to calibrate with; when the corpus index is empty; when a finished tune is
picked up; and by every answer already in the store. It counts the prompts a pipeline sends,
not a server's retries, nor the second request an OpenAI-compatible server without
log-probabilities is sent for its first label question(s) while the scoring method settles.

The ETA weighs answers by tokens: a rag example with nine passages costs more than a
zero-shot one, so "examples left" would mislead. Training is counted in steps at a rate of
its own. Throughput is measured as the climb goes.
"""

from __future__ import annotations

import math
import sqlite3
import time
from contextlib import closing
from dataclasses import asdict, dataclass
from statistics import fmean
from typing import Any, Callable, Sequence

from rung.calibration import CONTENT_FREE
from rung.data.example import Example
from rung.data.splits import Split
from rung.models.usage import estimate_tokens
from rung.pipeline import Pipeline
from rung.rungs import FewShotRung, PromptRung
from rung.rungs.base import race_work, val_work
from rung.rungs.prompt import can_calibrate
from rung.rungs.rag import RagRung
from rung.task import TaskSpec

SAMPLE = 8  # val inputs whose prompts are rendered to estimate tokens per request


@dataclass(frozen=True)
class RungPlan:
    rung: str
    model: str
    candidates: int
    val_examples: int  # candidate-examples scored while choosing: the stage's steps
    val_requests: int  # of which asked of the model (a calibrated twin reuses answers)
    test_examples: int
    latency_requests: int  # single timed requests after a warm-up
    tokens_in: int  # per request, estimated
    tokens_out: int  # per request, at most
    train_steps: int = 0  # the fine-tune's optimizer steps, at most (early stopping may cut)
    # asked while the candidates are prepared: calibration's content-free prompts, the
    # fine-tune's general-capability suite (base and tuned)
    prepare_requests: int = 0
    measured: bool = True  # false: built on val only, for a measured rung to stand on

    @property
    def requests(self) -> int:
        return (self.prepare_requests + self.val_requests + self.test_examples
                + self.latency_requests)

    @property
    def tokens(self) -> int:
        return self.requests * (self.tokens_in + self.tokens_out)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "requests": self.requests, "tokens": self.tokens}


def plan_climb(task: TaskSpec, split: Split, rungs: Sequence[str], *,
               cached: bool = True) -> list[RungPlan]:
    """The plan for the LLM rungs among `rungs` (the ones the climb would measure) and for the
    ones it builds on val for them (see climb's climb_to and needed): the prompt rung under
    any LLM rung, few-shot and rag under bigger-model. `cached`: the climb keeps a response
    cache (without one a calibrated twin asks every val example again)."""
    plain = task.model_copy(update={  # candidates without asking the model for calibration
        "prompt": task.prompt.model_copy(update={"calibrate": False}),
        "few_shot": task.few_shot.model_copy(update={"calibrate": False})})
    measured = set(rungs)
    bigger = "bigger-model" in measured and task.models.large is not None
    wanted = {"prompt": bool(measured & {"prompt", "few-shot", "rag", "bigger-model",
                                         "finetune"}),
              "few-shot": bool(measured & {"few-shot"}) or bigger,
              "rag": task.corpus_path is not None and ("rag" in measured or bigger)}
    if not wanted["prompt"]:  # every other LLM rung stands on the prompt rung
        return []
    n_val = len(split.val)
    timed = min(task.eval.latency_samples, n_val or len(split.test))  # val inputs, timed
    latency = timed + 1 if timed else 0  # after a warm-up request
    out_tokens = (max(len(label) for label in task.task.labels) // 4 + 2
                  if task.task.kind == "classification" else task.eval.max_new_tokens)
    sample = [e.input for e in split.val[:SAMPLE]] or [""]
    prompt = PromptRung().candidates(plain, split.train)
    base = prompt[0][1]
    built: dict[str, list[Pipeline]] = {"prompt": [p for _, p in prompt]}
    if wanted["few-shot"]:
        built["few-shot"] = [p for _, p in FewShotRung(base).candidates(plain, split.train)]
    if wanted["rag"]:
        built["rag"] = [p for _, p in RagRung(base).candidates(plain, split.train)]
    passage = _passage_tokens(task) if "rag" in built else 0.0
    plans = []
    for name, pipelines in built.items():
        twins = sum(_calibrates(task, name, p) for p in pipelines)
        n = len(pipelines) + twins
        on_test = name in measured
        plans.append(RungPlan(
            name, task.models.small, n, val_work(task, n, n_val),
            val_requests(task, n, len(pipelines), n_val, cached=cached),
            len(split.test) if on_test else 0, latency if on_test else 0,
            round(fmean(_tokens_in(p, sample, split.train, passage) for p in pipelines)),
            out_tokens, prepare_requests=twins * len(CONTENT_FREE), measured=on_test))
    if bigger:
        below = [p for p in plans if p.rung != "prompt"] or plans
        # a calibrated pipeline carried up is calibrated again on the large model
        again = any(p.prepare_requests for p in plans)
        n = val_work(task, 1, n_val)
        plans.append(RungPlan("bigger-model", task.models.large, 1, n, n, len(split.test),
                              latency, max(p.tokens_in for p in below), out_tokens,
                              prepare_requests=len(CONTENT_FREE) if again else 0))
    if "finetune" in measured:
        n = val_work(task, 1, n_val)  # the tune's val score, for the stop rule
        plans.append(RungPlan("finetune", task.models.small, 1, n, n, len(split.test), latency,
                              plans[0].tokens_in, out_tokens,
                              train_steps(task, len(split.train)),
                              prepare_requests=2 * _suite_size()))
    return plans


def val_requests(task: TaskSpec, n_candidates: int, n_pipelines: int, n_val: int, *,
                 cached: bool = True) -> int:
    """The requests choosing among `n_candidates` on val sends, where `n_pipelines` of them
    ask the model and the rest are calibrated twins. With the response cache a twin asks
    nothing its original answered, so a round of the race costs one request per example for
    each pair still in it: at most as many as there are candidates still in, or pairs."""
    if not cached:
        return val_work(task, n_candidates, n_val)
    n_val = min(n_val, task.eval.val_limit or n_val)
    if task.eval.selection != "race" or n_candidates <= 1:
        return n_pipelines * n_val
    return race_work(n_candidates, n_val, task.eval.race_start, asking=n_pipelines)


def _suite_size() -> int:
    """The general-capability suite's items: each asked of the base and the tuned model."""
    from rung.finetune.regression import load_suite

    return len(load_suite())


def train_steps(task: TaskSpec, n_train: int) -> int:
    """The Trainer's max_steps on one process: batches per epoch, over gradient
    accumulation (a last short group still steps), times epochs."""
    settings = task.finetune
    batches = math.ceil(n_train / settings.batch_size)
    per_epoch = max(math.ceil(batches / settings.gradient_accumulation), 1)
    return math.ceil(settings.epochs * per_epoch)


def _calibrates(task: TaskSpec, rung: str, pipeline: Pipeline) -> bool:
    """Whether the rung adds a calibrated twin of this candidate (see with_calibrated; rag
    never calibrates)."""
    wanted = {"prompt": task.prompt.calibrate, "few-shot": task.few_shot.calibrate}
    return wanted.get(rung, False) and can_calibrate(task, pipeline)


def _tokens_in(pipeline: Pipeline, texts: Sequence[str], train: Sequence[Example],
               passage: float) -> float:
    """A request's tokens for a few val inputs: the rendered prompt, with the first train
    examples standing in for per-input demonstrations and `passage` tokens for each retrieved
    passage (the question's own and each demonstration's)."""
    shots = list(train[:pipeline.nearest]) if pipeline.nearest else None
    passages = 0
    if pipeline.retrieval is not None:
        passages = pipeline.retrieval["k"] * (1 + (pipeline.nearest or 0))
    return fmean(estimate_tokens(pipeline.messages(t, demonstrations=shots)) for t in texts) \
        + passages * passage


def _passage_tokens(task: TaskSpec) -> float:
    """A retrieved passage's tokens: its index's mean chunk where the corpus was indexed
    before, else the most a chunk may hold."""
    db = task.root / task.rag.index
    if db.is_file():
        try:
            with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
                [(chars,)] = conn.execute("SELECT avg(length(text)) FROM chunks").fetchall()
            if chars:
                return 4 + chars / 4  # as estimate_tokens counts a message
        except sqlite3.Error:
            pass  # a damaged index is the climb's to report
    return task.rag.chunk_tokens


def stage_rung(stage: str) -> str:
    """The rung a progress stage belongs to ("rag: choosing on val" -> "rag")."""
    return stage.split(":", 1)[0]


class Eta:
    """Seconds left, from the work done so far and the time it took, in two kinds at their
    own rates: answers (weighed by tokens) and training (optimizer steps, far slower per
    token). Only the time between two steps of one kind is timed: the gap before a kind's
    first step is loading and setting up, and the hour a tune trains says nothing about how
    fast the next rung answers. Training not yet under way has no rate, so it is named
    instead of guessed ("plus training")."""

    def __init__(self, plans: Sequence[RungPlan],
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.per_request = {p.rung: p.tokens_in + p.tokens_out for p in plans}
        # a choosing step is a candidate-example; twins' steps cost no request, so each step
        # carries its share of the stage's requests
        self.per_val_step = {p.rung: p.val_requests * (p.tokens_in + p.tokens_out)
                             / max(p.val_examples, 1) for p in plans}
        # preparing is one step: all its requests (content-free prompts, the capability suite)
        self.per_prepare = {p.rung: p.prepare_requests * (p.tokens_in + p.tokens_out)
                            for p in plans}
        self.answer = _Rate(total=sum(p.tokens for p in plans))
        self.train = _Rate(total=sum(p.train_steps for p in plans))
        self.prepared: set[str] = set()  # rungs whose preparing is done or was passed over
        self.kind: str | None = None  # of the last step
        self.last = 0.0  # when the last step was done

    @classmethod
    def for_plan(cls, plan: dict[str, Any]) -> "Eta":
        """From plan_for's JSON shape."""
        fields = RungPlan.__dataclass_fields__
        return cls([RungPlan(**{k: row[k] for k in fields}) for row in plan["rungs"]])

    @property
    def total(self) -> float:
        """Tokens of all the answers ahead: the climb's bar (training is not on it)."""
        return self.answer.total

    @property
    def done(self) -> float:
        return self.answer.done

    def units(self, stage: str, requests: int) -> float:
        """Tokens `requests` of this stage stand for (0 for stages that ask no model)."""
        if stage.endswith((": choosing on val", ": scoring on val")):
            return requests * self.per_val_step.get(stage_rung(stage), 0)
        if stage.endswith(": test"):
            return requests * self.per_request.get(stage_rung(stage), 0)
        if _preparing(stage):
            return requests * self.per_prepare.get(stage_rung(stage), 0)
        return 0.0

    def begin(self, stage: str, total: int) -> None:
        """A stage opens: training's says its exact number of steps (the Trainer's
        max_steps), where the plan could only work it out; any later stage of the fine-tune
        says training is over (or was not needed: a finished tune is picked up). A rung that
        chooses on val without having prepared (a picked-up tune has its capability suite
        already) will not send its prepare requests: they leave the total."""
        rung = stage_rung(stage)
        if _preparing(stage):
            self.prepared.add(rung)
        elif stage.endswith((": choosing on val", ": scoring on val")) \
                and rung not in self.prepared:
            self.prepared.add(rung)
            self.answer.total -= self.per_prepare.get(rung, 0)
        if _training(stage):
            self.train.total = self.train.done + total
        elif rung == "finetune":
            self.train.total = self.train.done

    def step(self, stage: str, n: int) -> None:
        """`n` steps of `stage` are done (every stage's steps come here, so the time between
        steps is known)."""
        now = self.clock()
        since = now - self.last
        if _training(stage):
            kind = "train"
            self.train.add(n, since if self.kind == kind else None)
        else:  # the first answers' time is loading the model: the clock starts after them
            kind = "answer"
            self.answer.add(self.units(stage, n),
                            since if self.kind == kind and self.answer.done else None)
        self.kind, self.last = kind, now

    @property
    def training_unmeasured(self) -> bool:
        """Training is still ahead (or just begun) and has no rate yet."""
        return self.train.left > 0 and self.train.rate is None

    def seconds_left(self) -> float | None:
        """As of the last step, at each kind's rate so far, less the time since (from the kind
        at work): between steps the estimate counts down instead of growing as the rate seems
        to fall. None until answers have a rate; training without one is left out (see
        training_unmeasured)."""
        if self.answer.rate is None:
            return None
        since = self.clock() - self.last
        parts = {"answer": self.answer.left / self.answer.rate,
                 "train": self.train.left / self.train.rate if self.train.rate else 0.0}
        if self.kind is not None:
            parts[self.kind] = max(parts[self.kind] - since, 0.0)
        return parts["answer"] + parts["train"]


@dataclass
class _Rate:
    """Work of one kind: how much there is, how much is done, and how fast it went."""

    total: float
    done: float = 0.0
    timed: float = 0.0  # work done in timed intervals
    busy: float = 0.0  # and their seconds

    def add(self, work: float, seconds: float | None) -> None:
        self.done += work
        if seconds is not None:
            self.timed += work
            self.busy += seconds

    @property
    def rate(self) -> float | None:
        return self.timed / self.busy if self.timed > 0 and self.busy > 0 else None

    @property
    def left(self) -> float:
        return max(self.total - self.done, 0.0)


def _training(stage: str) -> bool:
    return stage.startswith("finetune: training")


def _preparing(stage: str) -> bool:
    """A stage whose one step stands for the rung's prepare requests."""
    return stage.endswith(": preparing candidates") or stage.startswith(
        "finetune: general-capability suite")


def plan_summary(plans: Sequence[RungPlan]) -> dict[str, Any]:
    return {"rungs": [p.to_dict() for p in plans],
            "total": {"requests": sum(p.requests for p in plans),
                      "tokens": sum(p.tokens for p in plans)},
            "note": "every rung the ladder would measure (a climb that stops early does less), "
                    "and the val work of the rungs built for them to stand on (measured: "
                    "false); val examples under [eval] selection; prepare requests are "
                    "calibration's content-free prompts and the fine-tune's capability suite; "
                    "tokens in estimated at ~4 characters a token, tokens out at the most a "
                    "request may write; answers already in the store are not asked again"}


def plan_for(path: Any, only: str | None = None, *, cached: bool = True) -> dict[str, Any]:
    """The plan of `rung climb PATH` (or `rung eval --rung ONLY`) without climbing: what
    `--dry-run` shows. `cached`: false for a climb without the response cache."""
    from rung.climb import left_out, load_examples, make_split
    from rung.task import load_task

    task = load_task(path)
    return work_plan(task, make_split(task, load_examples(task)), left_out(task, only, None),
                     cached=cached)


def work_plan(task: TaskSpec, split: Split, why_not: dict[str, str], *,
              cached: bool = True) -> dict[str, Any]:
    """The plan's JSON for the rungs `why_not` leaves in (an empty reason: measured), and for
    those they are built on; `cached`: the climb keeps a response cache."""
    plans = plan_climb(task, split, [name for name, why in why_not.items() if not why],
                       cached=cached)
    return {**plan_summary(plans), "selection": task.eval.selection,
            "split": {"train": len(split.train), "test": len(split.test),
                      "val": min(len(split.val), task.eval.val_limit or len(split.val))}}
