"""The ladder, bottom to top: load and check the task, audit the data, split once, build and
measure each rung on the same test split, stop after the first whose choice on val reaches the
target, recommend the first that reaches it on test.

Progress is reported through a callback so the library itself never prints.
"""

from __future__ import annotations

import json
import time
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from rung.costs import rung_costs, rung_memory
from rung.data.audit.report import audit_for
from rung.data.example import Example, stripped_labels
from rung.data.formats import read_examples
from rung.data.splits import Split, split_by_settings
from rung.decide import decide, fast_enough, reaches, val_score
from rung.errors import ConfigError, DataError
from rung.eval.metrics import metric_spec, paired_test
from rung.eval.runner import evaluate
from rung.eval.stats import PairedComparison
from rung.files import atomic_write
from rung.finetune.artifacts import RETUNE, PastTune, checked_base, past_tune
from rung.finetune.record import TuneResult
from rung.finetune.train import NotReadyError, require_ready
from rung.models.cache import ResponseCache
from rung.models.budget import Budget, BudgetReached, set_budget
from rung.models.endpoint import is_remote
from rung.models.endpoint import prepare as prepare_endpoints
from rung.models.remote import spent, usage_before
from rung.models.registry import fingerprint
from rung.pipeline import Pipeline
from rung.rag.service import RefreshReport, file_progress, refresh_index
from rung.report import write_report
from rung.rungs import LADDER, Candidate, ClassifierRung, FewShotRung, PromptRung, Rung, \
    RungResult
from rung.rungs.base import StageReporter
from rung.rungs.bigger import BiggerModelRung, best_on_val, require_large
from rung.rungs.finetune import FineTuneRung
from rung.rungs.rag import RagRung
from rung.store import Store, file_hash
from rung.task import METRICS_BY_KIND, TaskSpec, load_task


def _quiet(stage: str, total: int) -> Callable[[int], None]:
    return lambda n: None


@dataclass
class ClimbResult:
    task: TaskSpec
    run_id: str
    split: Split
    results: list[RungResult]
    recommendation: dict[str, Any]
    index: dict[str, Any] | None = None  # what refreshing the corpus index did (rag only)
    report: Path | None = None  # the run's HTML report
    not_measured: dict[str, str] = field(default_factory=dict)  # rung -> why it was left out
    audit: dict[str, Any] | None = None  # the data audit's id, verdict and reasons
    # model answers this run took from the store ("hits") and asked a model for ("misses")
    cache: dict[str, int] | None = None
    # what the whole run sent each remote model, rungs built on val only included (a rung's
    # own `remote` block holds its own requests)
    spent: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        """The `rung climb --json` shape; documented in the README and kept stable."""
        return {
            "task": self.task.task.name,
            "metric": self.task.task.metric,
            "target": self.task.task.target,
            "run_id": self.run_id,
            "split": {name: len(part) for name, part in self.split.parts().items()},
            "rungs": [_with_costs(r.summary(), self.task) for r in self.results],
            "recommendation": self.recommendation,
            "not_measured": self.not_measured,
            "audit": self.audit,
            "index": self.index,
            "cache": self.cache,
            "spent": self.spent,
        }


def _with_costs(summary: dict[str, Any], task: TaskSpec) -> dict[str, Any]:
    return {**summary, "costs": rung_costs(summary, task.costs),
            "memory": rung_memory(summary, task.root)}


def load_examples(task: TaskSpec) -> list[Example]:
    """The task's examples, a classification label read as the label it names
    (stripped_labels)."""
    examples = read_examples(task.data_path)
    if task.task.kind != "classification":
        return examples
    allowed = set(task.task.labels)
    wrong = [ex for ex in examples if ex.output.strip() not in allowed]
    if wrong:  # every line at once, as the audit lists them, not one per run
        first = wrong[0].output.strip()
        cased = {label.lower(): label for label in task.task.labels}.get(first.lower())
        lines = ", ".join(str(ex.line) for ex in wrong[:10]) + (", ..." if len(wrong) > 10
                                                                 else "")
        raise DataError(
            f"label '{wrong[0].output}' is not one of the task's labels {task.task.labels}"
            + (f" (it differs from '{cased}' only in letter case)" if cased else "")
            + (f"; {len(wrong)} lines hold labels outside them: {lines}" if len(wrong) > 1
               else ""),
            file=task.data_path, line=wrong[0].line,
            fix="correct the labels, or add them to [task] labels in rung.toml (labels match "
                "letter case as written)")
    return stripped_labels(examples)


def check_models(task: TaskSpec, why_not: dict[str, str]) -> None:
    """Every local model [models] names that a rung to be measured uses resolves, before the
    audit and any rung: a misspelt name is said at once with its line, not after the
    classifier ran. `why_not` (left_out) says which rungs are left out: the large model is
    asked only when the bigger-model rung may run. A hub model (hf:) is fetched when first
    loaded and a remote one was checked with its key, so neither is asked here."""
    from rung.errors import ModelError, ProblemList
    from rung.models.registry import HUB, in_process, resolve

    used = {"small": any(not why_not.get(name) for name in ("prompt", "few-shot", "rag",
                                                             "bigger-model", "finetune")),
            "large": not why_not.get("bigger-model")}
    problems = []
    for key in [k for k, needed in used.items() if needed]:
        reference = getattr(task.models, key)
        if not reference or is_remote(reference) or reference.startswith(HUB) \
                or in_process(reference) is not None:
            continue
        try:
            resolve(reference, base_dir=task.root)
        except ModelError as err:
            problems.append(ConfigError(f"models.{key}: {err.message}", file=task.path,
                                        line=task.line_of("models", key), fix=err.fix))
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ProblemList(problems, file=task.path)


def make_split(task: TaskSpec, examples: list[Example]) -> Split:
    s = task.split
    split = split_by_settings(examples, s, seed=task.task.seed, kind=task.task.kind,
                              source=task.data_path)
    empty = [name for name, part in (("train", split.train), ("val", split.val),
                                     ("test", split.test)) if not part]
    if empty and s.group_key:
        groups = len({str(ex.extra.get(s.group_key)) for ex in examples})
        raise DataError(
            f"{len(examples)} examples in {groups} group(s) of [split] group_key "
            f"'{s.group_key}' leave the {' and '.join(empty)} split empty: a group stays whole "
            "in one split", file=task.data_path,
            fix="give the examples more distinct group_key values (a few per split at least), "
                "or drop [split] group_key")
    distinct = len({ex.id for ex in examples})
    if empty and distinct < len(examples):  # copies of one example stay together
        raise DataError(
            f"{len(examples)} examples, {distinct} of them distinct, leave the "
            f"{' and '.join(empty)} split empty: copies of an example stay in one split",
            file=task.data_path, fix="add distinct examples (rung audit PATH lists the copies "
                                     "under exact-duplicates)")
    if empty:
        raise DataError(
            f"{len(examples)} examples leave the {' and '.join(empty)} split empty",
            file=task.data_path, fix="add examples or raise the [split] fraction of that split")
    if task.task.kind == "classification":
        present = sorted({ex.output.strip() for ex in split.train})
        if len(present) < 2:
            raise DataError(
                f"every train example is labelled {present[0]}: nothing to tell apart",
                file=task.data_path,
                fix=f"add examples of the other labels ({', '.join(l for l in task.task.labels if l not in present)})")
    return split


def recommend(task: TaskSpec, results: list[RungResult], audit: dict[str, Any] | None,
              stopped: str | None = None, alone: str | None = None) -> dict[str, Any]:
    """The decision (rung.decide) in the run's JSON: the rung, the headline as `reason`, a
    reason per rung below it, and the next step when none reached the target. A run of one
    rung measured `alone` (rung eval) recommends nothing: the cheaper rungs were not
    measured beside it, so "use few-shot" could name a rung a classifier beats; its rung is
    the run's `best` (what serve and gate take when the run is named)."""
    spec = metric_spec(task.task.metric, task.json_schema)
    decision = decide(results, target=task.task.target, criterion=task.eval.decide_on,
                      audit=audit, prices=task.costs, stopped=stopped,
                      # a corpus-level metric (macro-F1) is no share of examples: its
                      # power is read off its interval
                      binary=spec.binary and not spec.corpus_level,
                      compare=lambda a, b: paired(task, a, b),
                      max_latency_ms=task.eval.max_latency_ms)
    record = decision.to_dict()
    record["reason"] = record.pop("headline")
    if alone is not None and results:
        asked = next(r for r in results if r.rung == alone)
        score, beside = asked.test.score, [r.rung for r in results if r is not asked]
        versus = "" if asked.versus is None else (
            f", {asked.versus[1].difference:+.3f} over {asked.versus[0]} "
            f"(p={asked.versus[1].p_value:.2g})")
        record.update(rung=None, best=alone, alone=True, next_step=None, labelling=None,
                      reason=f"{alone}, measured "
                             + (f"beside {', '.join(beside)} only" if beside else "alone")
                             + f", scores {score.value:.3f} ({score.ci[0]:.3f}-"
                             f"{score.ci[1]:.3f}) against a target of {task.task.target}"
                             + versus + "; no recommendation: the rungs below it were not "
                             "all measured in this run (`rung climb` measures them and "
                             "decides)")
    elif decision.rung is not None:
        record.pop("best")  # only a climb that reached nothing falls back on one
    return record


def paired(task: TaskSpec, a: RungResult, b: RungResult) -> PairedComparison:
    """B against A on the same test examples, by the test the task's metric calls for
    (metrics.paired_test: McNemar's exact test for a 0/1 metric, the sign-flip permutation
    test for a graded one, the test that swaps the rungs' answers per example for a
    corpus-level one such as macro-F1), with the task's min_gain, resamples and seed.

    A 0/1 metric is paired on the correctness the evaluator stored, so a judge-backed metric
    is not asked again; a graded one's values are computed from the stored answers.
    """
    spec = metric_spec(task.task.metric, task.json_schema)
    stored = tuple([float(p.correct) for p in r.test.predictions] for r in (a, b))
    return paired_test(spec, [p.expected for p in a.test.predictions],
                       *([p.output for p in r.test.predictions] for r in (a, b)),
                       task.task.labels, min_gain=task.eval.min_gain,
                       n_bootstrap=task.eval.bootstrap, seed=task.task.seed,
                       values=stored if spec.binary else None)


def compare_with_cheaper(task: TaskSpec, results: list[RungResult]) -> None:
    """Pair each rung with a cheaper one on the same test examples. Which one is a choice,
    so it is made on val: the bigger-model rung with the pipeline it ran (its `from`), every
    other rung with the cheaper rung whose choice scored best on val (a tie goes to the
    cheaper). The test split only measures the pair."""
    for i, result in enumerate(results[1:], start=1):
        cheaper = results[:i]
        source = result.pipeline.details.get("from") if result.rung == "bigger-model" else None
        partner = next((r for r in cheaper if r.rung == source), None)
        result.paired_with = "built-from"
        if partner is None:
            partner = max(cheaper, key=val_score)  # the first of equals: the cheaper
            result.paired_with = "best-on-val"
        result.versus = (partner.rung, paired(task, partner, result))


REMOTE_TUNE = ("[models] small is a remote model ({small}): the fine-tune trains weights on "
               "this machine")
REMOTE_TUNE_FIX = ("name a local copy of the model to tune it (hosted fine-tuning is not "
                   "supported)")


def require_local_small(task: TaskSpec) -> None:
    """A tune of a served model is refused before the prompt rung pays for its requests."""
    if is_remote(task.models.small):
        raise ConfigError(REMOTE_TUNE.format(small=task.models.small), file=task.path,
                          line=task.line_of("models", "small"), fix=REMOTE_TUNE_FIX)


def require_a_rung(task: TaskSpec, why_not: dict[str, str]) -> None:
    """A ladder with every rung left out has nothing to measure or decide: said before the
    audit, with why each rung is out."""
    if all(why_not.values()):
        raise ConfigError(
            "no rung is left to measure (" + "; ".join(f"{name}: {why}" for name, why
                                                       in why_not.items()) + ")",
            file=task.path, line=task.line_of("ladder", "skip"),
            fix="take a rung out of [ladder] skip, or give one what it needs ([task] corpus "
                "for rag, [models] large for bigger-model, a [finetune] table)")


def left_out(task: TaskSpec, only: str | None, tune_from: str | None) -> dict[str, str]:
    """The rungs this climb would measure, and why each other one is left out."""
    if only is not None:  # a tune is measured beside the base model's best prompt, as the
        # seeds ask of every tune: built on val anyway, it costs its test requests alone
        asked = {only, "prompt"} if only == "finetune" else {only}
        return {name: "" if name in asked else "not asked for (rung eval --rung)"
                for name in LADDER}
    why: dict[str, str] = {name: "" for name in LADDER}
    if task.task.kind != "classification":
        why["classifier"] = f"{task.task.kind} tasks have no labels to classify"
    if task.corpus_path is None:
        why["rag"] = "no [task] corpus"
    if task.models.large is None:
        why["bigger-model"] = "no [models] large"
    if "finetune" not in task.model_fields_set and tune_from is None:
        why["finetune"] = "no [finetune] table (or rung eval --rung finetune)"
    elif is_remote(task.models.small) and tune_from is None:
        why["finetune"] = REMOTE_TUNE.format(small=task.models.small) + "; " + REMOTE_TUNE_FIX
    for name in task.ladder.skip:
        why[name] = "[ladder] skip"
    return why


def climb(
    path: str | Path,
    *,
    reporter: StageReporter = _quiet,
    use_cache: bool = True,
    only: str | None = None,
    force: bool = False,
    tune_from: str | None = None,
    climb_all: bool = False,
    budget: float | None = None,
    store_dir: Path | None = None,
    leave_out: dict[str, str] | None = None,
    on_plan: Callable[[dict[str, Any]], None] | None = None,
) -> ClimbResult:
    """Climb the ladder cheapest first, stopping after the first rung whose choice on val
    reaches the target (`climb_all`, or [ladder] all, measures every rung). With `only`,
    measure one rung (building on val what it stands on). `tune_from` names a past run whose
    fine-tune is measured again instead of training. `budget` caps the dollars spent at remote
    models. `store_dir` and `leave_out` (rung -> why) are for the dry run. `on_plan` is handed
    the work ahead (rung.plan.work_plan) after the checks and the audit, before any model
    call."""
    if only is not None and only not in LADDER:
        raise ConfigError(f"unknown rung '{only}'", fix=f"use one of: {', '.join(LADDER)}")
    task = load_task(path)
    if only == "bigger-model":
        require_large(task)  # before any expensive work
    if only == "finetune" and tune_from is None:
        require_local_small(task)
    if only == "rag" and task.corpus_path is None:
        raise ConfigError("the rag rung needs a corpus", file=task.path,
                          fix='add corpus = "docs/" (a folder of documents) under [task]')
    if only == "classifier" and task.task.kind != "classification":
        raise ConfigError(f"the classifier rung needs a classification task, not "
                          f"{task.task.kind}", file=task.path,
                          fix="measure another rung (rung eval PATH --rung prompt)")
    # a past tune is compared with every cheaper rung: one the stop rule cut could beat it
    climb_all = climb_all or task.ladder.all or tune_from is not None
    prepare_endpoints(task.models.endpoints())  # keys first: a missing one stops here
    skipped = left_out(task, only, tune_from)
    check_models(task, skipped)
    why_not = {**skipped, **(leave_out or {})}
    require_a_rung(task, why_not)
    if tune_from is not None:  # the past run must have a tune before any rung is measured
        with closing(Store(task.store_dir)) as store:
            store.measured(tune_from, "finetune", "fine-tune")
    spending = _budget(task, budget)
    examples = load_examples(task)
    split = make_split(task, examples)
    audit = audit_for(task, reporter)  # before any rung: its verdict shapes the next step
    if not why_not["finetune"] and tune_from is None:
        try:  # the tune's refusal comes before the cheaper rungs' work, not after it
            require_ready(task, force=force)
        except NotReadyError as refused:
            if only == "finetune":
                raise
            why_not["finetune"] = f"{refused.message}; fix: {refused.fix}"
            require_a_rung(task, why_not)  # the tune was all there was to measure
    if on_plan is not None:
        from rung.plan import work_plan

        on_plan(work_plan(task, split, why_not, cached=use_cache))
    store = Store(store_dir or task.store_dir)
    run_id: str | None = None
    results: list[RungResult] = []
    remote = [m for m in dict.fromkeys((task.models.small, task.models.large)) if m
              and is_remote(m)]
    at_start = {m: usage_before(m) for m in remote}
    set_budget(spending)
    try:
        run_id = store.start_run(
            task=task.task.name, task_path=str(task.path), kind=task.task.kind,
            metric=task.task.metric, target=task.task.target, seed=task.task.seed,
            config_hash=task.config_hash(), data_hash=file_hash(task.data_path),
            split_hash=split.hash(), settings=task.settings(),
        )
        split.save(store.artifacts(run_id) / "split.json")
        cache = store.response_cache() if use_cache else None
        stop: list[str] = []  # the rung whose choice reached the target on val, if any
        cut: list[str] = []  # rungs left out because the climb stopped

        def climbing(name: str) -> bool:
            """Whether the stop rule still lets `name` be measured."""
            return not stop or climb_all or only is not None

        def going(name: str) -> bool:
            """Measure this rung? It applies, and the climb has not stopped below it."""
            if why_not[name]:
                return False
            if not climbing(name):
                why_not[name] = (f"the climb stopped at {stop[0]}: its choice reached the "
                                 "target on val (`rung climb --all` measures the rest)")
                cut.append(name)
                return False
            return True

        def needed(*later: str) -> bool:
            """Whether a rung still to be measured stands on the one being considered."""
            return any(not why_not[n] and climbing(n) for n in later)

        def measure(rung: Rung) -> RungResult:
            before = {m: usage_before(m) for m in (task.models.small, task.models.large) if m}
            result = _run_rung(task, rung, split, reporter, cache)
            model = result.pipeline.model
            result.remote = spent(model, before.get(model), task.costs)
            if isinstance(rung, FineTuneRung) and rung.tune is not None:
                result.training = rung.tune.summary()
                store.add_curves(run_id, rung.name, rung.tune.curves)
            _record(task, store, run_id, len(results), result)
            results.append(result)
            choice = result.choice
            if not stop and reaches(choice.val_score, choice.val_ci, task.task.target,
                                    task.eval.decide_on) and fast_enough(
                    result, task.eval.max_latency_ms):
                stop.append(rung.name)
            return result

        built: list[tuple[Pipeline, list[Candidate]]] = []  # LLM rungs, for bigger-model

        def climb_to(rung: Rung, *later: str) -> Pipeline | None:
            """Measure a rung the climb asks for; only build (on val) one that a later rung
            to be measured stands on."""
            if going(rung.name):
                result = measure(rung)
                built.append((result.pipeline, result.candidates))
            elif needed(*later):
                built.append(_build(task, rung, split, reporter, cache)[:2])
            else:
                return None
            return built[-1][0]

        refreshed = None
        if only == "rag":  # an empty corpus is said before the prompt rung's val work is paid
            refreshed = refresh_index(task, file_progress(reporter, "rag: indexing corpus"))
            if not refreshed.chunks:
                raise ConfigError(_empty_corpus(task, refreshed), file=task.path,
                                  fix="put documents with text in the corpus folder")
        if going("classifier"):
            measure(ClassifierRung(task.store_dir / "classifiers"))
        best_prompt = climb_to(PromptRung(), "few-shot", "rag", "bigger-model", "finetune")
        if best_prompt is not None:
            climb_to(FewShotRung(best_prompt), "bigger-model")
        index = None
        if best_prompt is not None and task.corpus_path is not None and (
                going("rag") or needed("bigger-model")):
            refreshed = refreshed or refresh_index(
                task, file_progress(reporter, "rag: indexing corpus"))
            index = refreshed.to_dict()
            if refreshed.chunks:
                climb_to(RagRung(best_prompt), "bigger-model")
            elif going("rag"):  # retrieval over nothing would be a prompt rung, paid again
                why_not["rag"] = _empty_corpus(task, refreshed)
        if going("bigger-model") and built:
            measure(BiggerModelRung(best_on_val(built)))
        past = _past_tune(task, store, split, tune_from, force=force) if tune_from else None
        if best_prompt is not None and going("finetune"):
            measure(FineTuneRung(best_prompt, task.store_dir / "tunes", force=force, past=past))
        measured = {r.rung for r in results}
        for name in (n for n in LADDER if n not in measured):  # say why each was left out
            if going(name):
                why_not[name] = "no cheaper LLM rung was built for it to stand on"
        if not results:  # every rung asked for fell away on the way: nothing to decide on
            raise ConfigError(
                "no rung could be measured: " + "; ".join(
                    f"{name}: {why}" for name, why in why_not.items()
                    if why and not why.startswith(("not asked for", "[ladder] skip"))),
                file=task.path, fix="mend what the reasons name, or measure another rung")
        compare_with_cheaper(task, results)
        stopped = stop[0] if cut else None  # only a stop that left something out counts
        outcome = ClimbResult(task, run_id, split, results,
                              recommend(task, results, audit, stopped, alone=only), index,
                              not_measured={n: w for n, w in why_not.items() if w},
                              audit=_audit_brief(audit),
                              cache=None if cache is None else
                              {"hits": cache.hits, "misses": cache.misses},
                              spent={m: spent(m, at_start[m], task.costs) for m in remote}
                              or None)
        store.finish_run(run_id, outcome.summary())
        outcome.report = write_report(store, run_id)
        return outcome
    except BaseException as error:  # the run says how it ended; what it stored stays
        if isinstance(error, BudgetReached):  # say how far the money went
            done = ", ".join(r.rung for r in results) or "no rung yet"
            error = BudgetReached(f"{error.message}; measured before it: {done}",
                                  fix=error.fix)
        if run_id is not None and (row := store.run(run_id)) and row["status"] == "running":
            store.fail_run(run_id, error)
        if isinstance(error, BudgetReached):
            raise error from None
        raise
    finally:
        set_budget(None)
        store.close()


def _empty_corpus(task: TaskSpec, refreshed: RefreshReport) -> str:
    unread = "; ".join(str(p) for p in refreshed.problems[:3])
    return (f"the corpus index is empty: no text in {task.corpus_path}"
            + (f" ({unread})" if unread else ""))


def _budget(task: TaskSpec, dollars: float | None) -> Budget | None:
    """The climb's spending cap; every remote model it may call needs a price to count."""
    if dollars is None:
        return None
    unpriced = [e.reference for e in task.models.endpoints() if e.model not in task.costs.api]
    if unpriced:
        raise ConfigError(
            f"--budget needs a price for {', '.join(unpriced)}", file=task.path,
            fix="add its prices under [costs.api.MODEL] (train_per_million, input_per_million, "
                "output_per_million)")
    return Budget(dollars, dict(task.costs.api))


def _audit_brief(audit: dict[str, Any] | None) -> dict[str, Any] | None:
    if audit is None:
        return None
    return {k: audit.get(k) for k in ("audit_id", "verdict", "reasons", "examples")}


def _past_tune(task: TaskSpec, store: Store, split: Split, run_id: str, *,
               force: bool) -> PastTune:
    """A past run's tune, refused when it trained on any of today's test examples: its
    score there would measure memory, not skill; and refused when its base model changed
    since it was trained (checked_base, as export and serve check it)."""
    past = past_tune(store, run_id, base_dir=str(task.root))
    seen = [ex.line for ex in split.test if ex.id in past.train_ids]
    if seen and not force:
        raise DataError(
            f"the fine-tune of run {run_id} trained on {len(seen)} of today's "
            f"{len(split.test)} test examples (lines {', '.join(map(str, seen[:10]))}), so "
            "its score on them would be inflated", file=task.data_path,
            fix="re-tune on today's split (rung eval PATH --rung finetune), or pass --force")
    checked_base(past.tune.artifact, run_id=run_id, use="measured", force=force,
                 fix=f"{RETUNE}, or pass --force to measure it on the base as it is")
    return past


def tune_task(path: str | Path, *, reporter: StageReporter = _quiet, force: bool = False,
              use_cache: bool = True) -> TuneResult:
    """Only the training: the best prompt chosen on val, then the tune, in the folder a later
    climb picks it up from. This is what `accelerate launch` runs on every process, each on
    its own GPU, chosen before anything touches CUDA (the prompt rung's inference copy, the
    trainable copy, the memory readings)."""
    from rung.finetune.device import select_device

    select_device()
    task = load_task(path)
    require_local_small(task)  # before the prompt rung's requests are paid for
    split = make_split(task, load_examples(task))
    store = Store(task.store_dir)
    try:
        cache = store.response_cache() if use_cache else None
        best_prompt, _, _ = _build(task, PromptRung(), split, reporter, cache)
    finally:
        store.close()
    rung = FineTuneRung(best_prompt, task.store_dir / "tunes", force=force)
    return rung.train(task, split.train, split.val, reporter)


def _build(
    task: TaskSpec, rung: Rung, split: Split, reporter: StageReporter,
    cache: ResponseCache | None,
) -> tuple[Pipeline, list[Candidate], float]:
    started = time.perf_counter()
    pipeline, candidates = rung.build(task, split.train, split.val, reporter, cache)
    if split.train and split.train[0].shared_system is not None:  # for serving (see Pipeline)
        pipeline = replace(pipeline, shared_system=split.train[0].shared_system)
    return pipeline, candidates, time.perf_counter() - started


def _run_rung(
    task: TaskSpec, rung: Rung, split: Split, reporter: StageReporter,
    cache: ResponseCache | None,
) -> RungResult:
    pipeline, candidates, build_seconds = _build(task, rung, split, reporter, cache)
    advance = reporter(f"{rung.name}: test", len(split.test))
    extra = [m for m in METRICS_BY_KIND[task.task.kind] if _reported_beside(task, m)]
    test = evaluate(
        pipeline, split.test, metric=task.task.metric, extra_metrics=extra,
        n_resamples=task.eval.bootstrap, latency_samples=task.eval.latency_samples,
        # timed on val inputs: a latency budget decides whether to climb on, and choices are
        # made on val
        latency_inputs=[e.input for e in split.val] or None,
        seed=task.task.seed, progress=advance, cache=cache, schema=task.json_schema,
    )
    return RungResult(rung.name, pipeline, test, candidates, build_seconds)


def _reported_beside(task: TaskSpec, metric: str) -> bool:
    """Which other metrics of the task's kind a rung's summary shows beside the chosen one."""
    if metric == task.task.metric or metric.startswith("exact_match_"):  # one exact match is enough
        return False
    if metric.startswith("json"):  # they need JSON answers, and json_schema needs a schema
        return task.task.metric.startswith("json") and (
            metric != "json_schema" or task.task.schema_file is not None)
    if metric == "answer_in_output":  # a question-answering measure: free-text answers only
        return task.task.kind == "generation"
    return True


def _record(task: TaskSpec, store: Store, run_id: str, position: int, result: RungResult) -> None:
    pipeline = result.pipeline
    atomic_write(store.artifacts(run_id) / f"pipeline-{result.rung}.json",
                 json.dumps(pipeline.to_dict(), indent=1))
    store.add_rung(
        run_id, position, result.summary(), model_hash=fingerprint(pipeline.model, base_dir=task.root),
        pipeline=pipeline.to_dict(), pipeline_hash=pipeline.hash(),
        predictions=[p.__dict__ for p in result.test.predictions],
    )

