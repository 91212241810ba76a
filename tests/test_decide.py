"""`decide` on constructed rung results: every branch of the seeds' tree, every kind of reason."""

from __future__ import annotations

import pytest

from rung.costs import CostsTable
from rung.data.audit.size import size_check
from rung.data.example import make_example
from rung.decide import decide
from rung.eval.metrics import Score
from rung.eval.runner import EvalResult, Prediction
from rung.eval.stats import PairedComparison
from rung.pipeline import Pipeline
from rung.rungs.base import Candidate, RungResult

NOT_READY = {"audit_id": "a1", "verdict": "not ready", "reasons": ["size: 40 examples, below 100"]}


def result(rung: str, score: float, *, ci: float = 0.05, versus: tuple[str, float, float] | None = None,
           format_failures: int = 0, n: int = 100, tokens: tuple[int, int] = (0, 0),
           training: dict | None = None, val: float | None = None,
           classifier: dict | None = None, **details: object) -> RungResult:
    """A rung at `score` (interval +-ci); `versus` = (cheaper rung, difference, p-value);
    `tokens` (in, out) of every request; `val`: its chosen candidate's score on val."""
    pipeline = Pipeline(rung=rung, kind="classification", model="m", instruction="i",
                        details=dict(details), classifier=classifier)
    wrong = round(n * (1 - score))
    requests = [Prediction(str(i), i, "q", "a", "a", True, *tokens) for i in range(n)]
    test = EvalResult(Score("accuracy", score, (score - ci, score + ci), n),
                      requests if any(tokens) else [],
                      failures={"correct": n - wrong, "format": format_failures,
                                "content": wrong - format_failures})
    compared = None
    if versus is not None:
        cheaper, diff, p = versus
        compared = (cheaper, PairedComparison("mcnemar-exact", score - diff, score, diff,
                                              (diff - 0.05, diff + 0.05), p, n, 0.0))
    candidates = [] if val is None else [Candidate("chosen", val, chosen=True)]
    return RungResult(rung, pipeline, test, candidates, 0.0, versus=compared, training=training)


def _recording_compare(ci: tuple[float, float], p_value: float):
    """A paired comparison that says `b` beat `a` by their test scores' difference, and the
    list of the pairs it was asked for."""
    asked: list[tuple[str, str]] = []

    def compare(a, b):
        asked.append((a.rung, b.rung))
        return PairedComparison("mcnemar-exact", a.test.score.value, b.test.score.value,
                                b.test.score.value - a.test.score.value, ci, p_value, 100, 0.0)

    return asked, compare


def kinds(decision) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in decision.reasons:
        out.setdefault(r.rung, []).append(r.kind)
    return out


def test_the_first_rung_that_reaches_the_target_is_chosen_and_costlier_ones_weighed() -> None:
    results = [result("prompt", 0.70), result("few-shot", 0.91, versus=("prompt", 0.21, 1e-6), k=8),
               result("finetune", 0.93, versus=("few-shot", 0.02, 0.40))]
    d = decide(results, target=0.9)
    assert d.rung == "few-shot" and d.next_step is None
    assert d.headline.startswith("use few-shot with k=8: it reaches 0.910 (0.860-0.960)")
    assert "+0.210 over prompt (p=1e-06)" in d.headline
    assert "finetune would add +0.020 (p=0.4), not significant" in d.headline
    assert kinds(d) == {"prompt": ["below-target"]}


def test_lower_bound_criterion_asks_the_interval_to_clear_the_target() -> None:
    results = [result("prompt", 0.91, ci=0.04), result("few-shot", 0.97, ci=0.02,
                                                        versus=("prompt", 0.06, 0.01))]
    assert decide(results, target=0.9).rung == "prompt"
    strict = decide(results, target=0.9, criterion="lower-bound")
    assert strict.rung == "few-shot" and "lower bound" in strict.headline


def test_format_failures_are_named_a_behaviour_problem() -> None:
    results = [result("prompt", 0.5, format_failures=30), result("few-shot", 0.55, format_failures=5,
                                                                 versus=("prompt", 0.05, 0.3))]
    d = decide(results, target=0.9)
    assert d.rung is None and kinds(d)["prompt"] == ["format"]
    assert "30% of its answers break the output format" in d.reasons[0].text
    assert kinds(d)["few-shot"] == ["no-gain"]
    assert d.next_step.startswith("fine-tune")


def test_retrieval_significantly_better_is_a_knowledge_gap_below_it() -> None:
    results = [result("prompt", 0.1), result("few-shot", 0.12, versus=("prompt", 0.02, 0.5)),
               result("rag", 0.92, versus=("few-shot", 0.80, 1e-9))]
    d = decide(results, target=0.9)
    assert d.rung == "rag"
    # rag was paired with few-shot: without a comparison of its own, prompt gets no gap
    assert kinds(d) == {"prompt": ["below-target"], "few-shot": ["knowledge-gap", "no-gain"]}
    assert "retrieval adds +0.800" in d.reasons[1].text
    asked, compare = _recording_compare((0.7, 0.9), 1e-9)
    d = decide(results, target=0.9, compare=compare)
    assert ("prompt", "rag") in asked  # paired with rag itself, on the same test examples
    assert kinds(d) == {"prompt": ["knowledge-gap"], "few-shot": ["knowledge-gap", "no-gain"]}
    assert "retrieval adds +0.820" in d.reasons[0].text


def test_a_knowledge_gap_is_only_a_reason_for_a_rung_retrieval_beat() -> None:
    """Rag was paired with the prompt (best on val) and beat it; few-shot beat rag on the
    same test examples. "few-shot: the model lacks the knowledge: retrieval adds +0.250" read
    the prompt's comparison as few-shot's, and was false."""
    results = [result("prompt", 0.50, val=0.6), result("few-shot", 0.85, val=0.55),
               result("rag", 0.75, val=0.5, versus=("prompt", 0.25, 1e-6))]
    asked, compare = _recording_compare((-0.15, -0.05), 0.002)
    d = decide(results, target=0.9, compare=compare)
    assert ("few-shot", "rag") in asked
    assert "knowledge-gap" in kinds(d)["prompt"]
    assert "knowledge-gap" not in kinds(d)["few-shot"]


def test_a_significantly_better_bigger_model_is_a_capacity_gap() -> None:
    results = [result("prompt", 0.6), result("few-shot", 0.62, versus=("prompt", 0.02, 0.6)),
               result("bigger-model", 0.8, versus=("few-shot", 0.18, 1e-4))]
    d = decide(results, target=0.9)
    assert d.rung is None and "capacity-gap" in kinds(d)["few-shot"]
    # the prompt was not the pipeline the bigger model ran: its gain over the prompt would
    # mix the model with the demonstrations, so it is no capacity reason for the prompt
    assert "capacity-gap" not in kinds(d)["prompt"]
    assert d.next_step.startswith("a different base model")


def test_not_ready_data_is_the_reason_and_the_next_step() -> None:
    results = [result("prompt", 0.3), result("finetune", 0.35, versus=("prompt", 0.05, 0.2))]
    d = decide(results, target=0.9, audit=NOT_READY)
    assert kinds(d)["finetune"] == ["data", "no-gain"]
    assert d.next_step == ("more and cleaner data first: the audit calls it not ready (size: "
                           "40 examples, below 100); climb again once `rung audit` passes")


def _sized_audit(count: int, verdict: str, profile: str = "domain") -> dict:
    """An audit summary whose size check is the real one on `count` distinct examples."""
    examples = [make_example(f"question {i}", f"answer {i}", line=i + 1) for i in range(count)]
    check = size_check(examples, count, profile).to_dict()
    return {"audit_id": "a2", "verdict": verdict, "reasons": [f"size: {check['finding']}"],
            "checks": [check]}


def test_more_data_says_how_many_examples_and_prices_labelling_them_when_told_how() -> None:
    """The seeds' "hidden boss": labelled data. 402 distinct examples of domain QA are short
    of the seeds' minimum of 500 by 98; at 6 minutes each and $100 an hour, 9.8 hours, $980."""
    results = [result("prompt", 0.3), result("finetune", 0.35, versus=("prompt", 0.05, 0.2))]
    audit = _sized_audit(402, "not ready")
    unpriced = decide(results, target=0.9, audit=audit)
    assert unpriced.next_step.endswith(
        "; 98 more distinct labelled examples reach the seeds' minimum (500); set [costs] "
        "label_minutes_per_example to price labelling them, the seeds' \"hidden boss\" of "
        "the bill")
    assert unpriced.labelling == {"tier": "minimum", "reaches": 500, "examples": 98,
                                  "minutes_per_example": None, "person_hours": None,
                                  "dollars": None}
    stored_before = _sized_audit(402, "not ready")  # an audit stored before the figure was
    stored_before["checks"][0]["details"].pop("to_collect")  # kept: worked out again
    assert decide(results, target=0.9, audit=stored_before).labelling == unpriced.labelling
    priced = decide(results, target=0.9, audit=audit,
                    prices=CostsTable(label_minutes_per_example=6))
    assert priced.next_step.endswith("; 98 more distinct labelled examples reach the seeds' "
                                     "minimum (500), about 9.8 person-hours to label at 6 min "
                                     "each ($980)")
    assert priced.to_dict()["labelling"]["dollars"] == 980.0
    # a tune that helped but fell short on data past the minimum: the way to "good" (5,000)
    helped = [result("prompt", 0.3), result("finetune", 0.8, versus=("prompt", 0.5, 1e-9))]
    more = decide(helped, target=0.9, audit=_sized_audit(600, "ready"),
                  prices=CostsTable(label_minutes_per_example=2, person_hour=30))
    assert more.next_step.startswith("more data: fine-tuning helped significantly")
    assert more.labelling["tier"] == "good" and more.labelling["examples"] == 4_400
    assert more.next_step.endswith("4,400 more distinct labelled examples reach the seeds' "
                                   "good (5,000), about 146.7 person-hours to label at 2 min "
                                   "each ($4,400)")
    # a step that asks for no data carries no labelling
    other = decide([result("prompt", 0.3), result("bigger-model", 0.8,
                                                  versus=("prompt", 0.5, 1e-9))],
                   target=0.9, audit=_sized_audit(600, "ready"))
    assert other.labelling is None and "labelled" not in other.next_step


def test_retrieval_helped_but_the_data_is_not_ready_yet() -> None:
    results = [result("prompt", 0.0), result("rag", 0.42, versus=("prompt", 0.42, 1e-7)),
               result("bigger-model", 0.17, versus=("rag", -0.25, 0.004))]
    d = decide(results, target=0.6, audit=NOT_READY)
    # data the audit calls not ready comes first, and no training is suggested on it; the
    # knowledge gap stays in the reasons
    assert d.next_step.startswith("more and cleaner data first: the audit calls it not ready")
    assert "fine-tun" not in d.next_step and kinds(d)["prompt"] == ["knowledge-gap"]
    [worse] = [r for r in d.reasons if r.rung == "bigger-model"]
    assert worse.kind == "no-gain" and worse.text.startswith(
        "bigger-model: significantly worse than rag (-0.250")


@pytest.mark.parametrize("rag_helped, expected", [(False, "more data"),
                                                  (True, "RAG plus fine-tune: both")])
def test_a_fine_tune_that_helped_but_fell_short(rag_helped: bool, expected: str) -> None:
    results = [result("prompt", 0.3, val=0.3)]
    if rag_helped:
        results.append(result("rag", 0.5, versus=("prompt", 0.2, 1e-5), val=0.5))
    results.append(result("finetune", 0.8, versus=("rag" if rag_helped else "prompt", 0.3, 1e-6),
                          val=0.8))
    d = decide(results, target=0.9)
    assert d.rung is None and d.next_step.startswith(expected)
    assert "the best on val is finetune at 0.800" in d.headline and d.best == "finetune"


def test_a_tune_is_judged_against_the_base_model_with_its_best_prompt() -> None:
    """The classifier scored best on val, so the tune's own pairing is with it, and no
    better; the seeds ask what the tune adds to the base model with its best prompt, so it is
    paired again with the prompted rung best on val (few-shot), on the same test examples."""
    results = [result("classifier", 0.78, val=0.8, classifier=TFIDF, **TFIDF),
               result("prompt", 0.35, val=0.3), result("few-shot", 0.3, val=0.4),
               result("finetune", 0.8, val=0.79, versus=("classifier", 0.02, 0.6))]
    asked, compare = _recording_compare((0.4, 0.6), 1e-12)
    d = decide(results, target=0.9, compare=compare)
    assert ("few-shot", "finetune") in asked  # best on val, though prompt is better on test
    assert d.next_step.startswith("more data: fine-tuning helped significantly")
    alone = decide(results, target=0.9)  # nothing to re-pair with: its own pairing decides
    assert alone.next_step.startswith("a different base model or a redefined task")


def test_a_tune_that_fell_short_names_its_settings_outside_the_seeds_ranges() -> None:
    odd = ["learning_rate = 0.05 (the seeds' typical range is 1e-05 to 0.0005)"]
    results = [result("prompt", 0.3), result("finetune", 0.31, versus=("prompt", 0.01, 0.8),
                                              format_failures=50,
                                              training={"unusual_settings": odd})]
    d = decide(results, target=0.9)
    assert kinds(d)["finetune"][:2] == ["settings", "format"]  # named first
    [settings] = [r for r in d.reasons if r.kind == "settings"]
    assert settings.text == ("finetune: trained with settings outside the seeds' typical "
                             "ranges: " + odd[0])


def test_retrieval_that_helped_without_a_tune_points_to_both() -> None:
    results = [result("prompt", 0.3), result("rag", 0.6, versus=("prompt", 0.3, 1e-6))]
    assert decide(results, target=0.9).next_step.startswith("RAG plus fine-tune: retrieval")


def test_nothing_moved_the_score() -> None:
    results = [result("prompt", 0.3), result("finetune", 0.31, versus=("prompt", 0.01, 0.8))]
    d = decide(results, target=0.9, audit={"verdict": "ready", "reasons": []})
    assert d.next_step.startswith("a different base model or a redefined task")
    assert kinds(d) == {"prompt": ["below-target"], "finetune": ["no-gain"]}


def test_the_order_is_the_seeds_whatever_order_results_come_in() -> None:
    results = [result("finetune", 0.95, versus=("prompt", 0.05, 0.01)), result("prompt", 0.9)]
    assert decide(results, target=0.9).rung == "prompt"


TRAINED = {"train_tokens": 3_600_000, "tokens_per_second": 2000.0}  # half an hour


def test_a_chosen_tune_is_priced_with_its_break_even_against_the_best_prompt() -> None:
    results = [result("prompt", 0.50, tokens=(500, 3)),
               result("finetune", 0.90, versus=("prompt", 0.40, 1e-9), tokens=(100, 3),
                      training=TRAINED)]
    d = decide(results, target=0.85)
    # build 0.5 h x $0.50; upkeep 3 retrains x (4 person-hours x $100 + $0.25) a quarter
    assert ("the tune costs $0.25 to build (0.50 h at $0.50/h, a GPU hour at the throughput "
            "measured on one) and 12 hours of upkeep a quarter ($1,201 with retraining)") \
        in d.headline
    on_cpu = decide(results[:1] + [result(
        "finetune", 0.90, versus=("prompt", 0.40, 1e-9), tokens=(100, 3),
        training={**TRAINED, "device": "cpu"})], target=0.85)
    assert ("costs $0.05 to build (0.50 h at $0.10/h, a CPU hour at the throughput measured "
            "on one)") in on_cpu.headline  # trained on a CPU: priced at [costs] cpu_hour
    # served self-hosted at 103 tokens ($20.60 per 1M requests) against the prompt's 503 tokens
    # self-hosted ($100.60), on gpt-4o-mini ($307.20) and on gpt-4o ($1,920): $1,201 a quarter
    # divided by the saving per request
    assert ("against prompt it pays for itself (requests a quarter): past 15.0M self-hosted, "
            "past 4.2M on gpt-4o-mini, past 632.3k on gpt-4o") in d.headline
    assert d.costs is not None and d.costs["prompted"] == "prompt"
    assert d.costs["break_even"]["gpt-4o-mini"]["requests_per_quarter"] == pytest.approx(
        1201 / (286.6 / 1e6), rel=1e-3)


def test_a_tune_above_the_choice_says_what_it_would_cost() -> None:
    results = [result("prompt", 0.50, tokens=(500, 3)),
               result("few-shot", 0.91, versus=("prompt", 0.41, 1e-9), tokens=(900, 3), k=4),
               result("finetune", 0.92, versus=("few-shot", 0.01, 0.6), tokens=(100, 3),
                      training=TRAINED)]
    d = decide(results, target=0.9)
    assert d.rung == "few-shot"
    assert ("finetune would add +0.010 (p=0.6), not significant; the tune would cost $0.25 to "
            "build" in d.headline)
    assert "pays for itself" not in d.headline  # a break-even argues for a tune not chosen


def test_a_tune_never_pays_off_when_it_serves_more_tokens() -> None:
    results = [result("prompt", 0.50, tokens=(50, 3)),
               result("finetune", 0.90, versus=("prompt", 0.40, 1e-9), tokens=(100, 3),
                      training=TRAINED)]
    d = decide(results, target=0.85)
    assert d.costs["break_even"]["self_hosted"]["requests_per_quarter"] is None
    assert "(requests a quarter): never self-hosted, past" in d.headline


TFIDF = {"features": "tfidf", "estimator": "linear-svm", "C": 1.0}


def test_a_classifier_at_the_target_needs_no_llm_and_the_llm_rungs_are_weighed() -> None:
    results = [result("classifier", 0.95, classifier=TFIDF, **TFIDF),
               result("prompt", 0.30, versus=("classifier", -0.65, 1e-20)),
               result("few-shot", 0.40, versus=("classifier", -0.55, 1e-15), k=5)]
    d = decide(results, target=0.85)
    assert d.rung == "classifier" and d.reasons == [] and d.next_step is None
    assert d.headline.startswith("no LLM is needed for this task: use classifier (tfidf + "
                                 "linear-svm, C=1): it reaches 0.950 (0.900-1.000)")
    assert "prompt would add -0.650 (p=1e-20), significantly worse" in d.headline
    assert "few-shot would add -0.550 (p=1e-15), significantly worse" in d.headline


def test_costlier_rungs_are_paired_with_the_chosen_one_when_a_comparison_is_given() -> None:
    """few-shot was paired with prompt on val, but the headline weighs it against the
    chosen classifier: the comparison the climb supplies decides, not few-shot's own."""
    results = [result("classifier", 0.90, classifier=TFIDF, **TFIDF), result("prompt", 0.3),
               result("few-shot", 0.93, versus=("prompt", 0.63, 1e-12), k=5)]
    asked = []

    def compare(a, b):
        asked.append((a.rung, b.rung))
        return PairedComparison("mcnemar-exact", 0.9, b.test.score.value,
                                b.test.score.value - 0.9, (-0.1, 0.2), 0.31, 100, 0.0)

    d = decide(results, target=0.85, compare=compare)
    assert asked == [("classifier", "prompt"), ("classifier", "few-shot")]
    assert "few-shot would add +0.030 (p=0.31), not significant" in d.headline
    assert "+0.630" not in d.headline


def test_the_headline_says_when_the_test_split_is_too_small_to_decide() -> None:
    tiny = decide([result("prompt", 5 / 6, n=6, ci=0.17)], target=0.9)
    assert tiny.power.underpowered and tiny.power.min_detectable_difference == 1.0
    assert ("the test split is too small to decide: with 6 examples the paired test cannot "
            "call a difference under 1.00 significant, more than the gap of 0.067 to the "
            "target, and telling 0.833 from the target 0.9 takes about") in tiny.headline
    enough = decide([result("classifier", 0.97, n=90, classifier=TFIDF, **TFIDF)], target=0.85)
    assert not enough.power.underpowered and "too small" not in enough.headline
    assert enough.power.min_detectable_difference == pytest.approx(6 / 90)


def test_a_stopped_climb_says_what_it_did_not_measure() -> None:
    d = decide([result("classifier", 0.95, classifier=TFIDF, val=0.96, **TFIDF)], target=0.85,
               stopped="classifier")
    assert d.stopped == "classifier" and "`rung climb --all` measures them" in d.headline


def test_a_stop_on_val_that_misses_on_test_points_up_the_ladder() -> None:
    d = decide([result("classifier", 0.80, classifier=TFIDF, val=0.90, **TFIDF)], target=0.85,
               stopped="classifier")
    assert d.rung is None
    assert d.next_step.startswith("climb the rest of the ladder (`rung climb --all`): "
                                  "classifier reached the target on val (0.900) but not on test")


def test_the_tune_is_priced_against_the_prompted_rung_best_on_val_not_on_test() -> None:
    results = [result("classifier", 0.70, classifier=TFIDF, val=0.99, **TFIDF),
               result("prompt", 0.60, val=0.40, tokens=(500, 3)),
               result("few-shot", 0.50, val=0.45, tokens=(900, 3), k=5),
               result("finetune", 0.80, val=0.8, tokens=(100, 3), training=TRAINED)]
    d = decide(results, target=0.85)
    # few-shot is better on val, prompt on test; the classifier is no prompted LLM rung
    assert d.costs["prompted"] == "few-shot"


FORGOT = {"overfitting": [{"name": "overfitting", "evidence": "train loss fell 1.2 -> 0.3 while "
                           "val loss rose from its best 0.40 (evaluation 2) to 0.55",
                           "fix": "reduce epochs, add data"}],
          "regression": {"flagged": True, "drop": 0.09, "p_value": 0.01,
                         "finding": "The tuned model is worse than the base on general tasks.",
                         "fix": "lower LR, fewer epochs, LoRA"}}


def test_a_chosen_tune_that_forgot_and_overfit_is_recommended_with_its_warning_signs() -> None:
    results = [result("prompt", 0.50),
               result("finetune", 0.90, versus=("prompt", 0.40, 1e-9), training=FORGOT)]
    d = decide(results, target=0.85)
    assert d.rung == "finetune"
    assert d.headline.endswith("check before shipping: the tune shows overfitting (fix: reduce "
                               "epochs, add data); forgetting (fix: lower LR, fewer epochs, LoRA)")
    assert kinds(d) == {"prompt": ["below-target"], "finetune": ["overfitting", "forgetting"]}
    healthy = decide([results[0], result("finetune", 0.90, versus=("prompt", 0.40, 1e-9),
                                         training={"overfitting": [],
                                                   "regression": {"flagged": False}})],
                     target=0.85)
    assert "check before shipping" not in healthy.headline and "finetune" not in kinds(healthy)


def test_a_chosen_tune_trained_on_personal_data_says_so() -> None:
    """The audit warns on e-mails and phone numbers and lets the tune train; the seeds'
    checklist says "PII removed", so the recommendation names it with the fix."""
    results = [result("prompt", 0.50),
               result("finetune", 0.90, versus=("prompt", 0.40, 1e-9))]
    audit = {"verdict": "ready with warnings", "reasons": [], "checks": [
        {"check": "pii", "status": "warn", "finding": "3 e-mail addresses in 3 examples"}]}
    d = decide(results, target=0.85, audit=audit)
    assert d.rung == "finetune" and kinds(d)["finetune"] == ["personal-data"]
    assert d.headline.endswith("check before shipping: the tune shows personal-data (fix: "
                               "tune on a redacted copy (rung audit DATA --redact writes one): "
                               "a tune can repeat what it was trained on)")
    clean = {**audit, "checks": [{"check": "pii", "status": "pass", "finding": "none"}]}
    assert "check before shipping" not in decide(results, target=0.85, audit=clean).headline
    prompted = decide([result("prompt", 0.90)], target=0.85, audit=audit)
    assert "check before shipping" not in prompted.headline  # nothing was trained on it


def test_a_tune_below_the_target_is_explained_by_its_warning_signs_too() -> None:
    d = decide([result("prompt", 0.50),
                result("finetune", 0.60, versus=("prompt", 0.10, 1e-3), training=FORGOT)],
               target=0.85)
    assert d.rung is None and kinds(d)["finetune"] == ["overfitting", "forgetting"]
    assert "val loss rose from its best 0.40" in d.reasons[-2].text


def test_a_knowledge_gap_is_read_against_the_best_llm_rung_when_rag_was_paired_with_the_classifier(
) -> None:
    """The classifier scored best on val, so rag's own pairing is with it; the gap is about
    what retrieval adds to the prompted model, so it is read against few-shot (best on val
    among prompt and few-shot), on the same test examples."""
    results = [result("classifier", 0.70, val=0.75, classifier=TFIDF, **TFIDF),
               result("prompt", 0.20, val=0.2), result("few-shot", 0.30, val=0.3),
               result("rag", 0.72, val=0.7, versus=("classifier", 0.02, 0.7))]
    asked, compare = _recording_compare((0.3, 0.54), 1e-9)
    d = decide(results, target=0.85, compare=compare)
    assert asked == [("few-shot", "rag"), ("prompt", "rag")]
    assert kinds(d)["few-shot"] == ["knowledge-gap"] and "retrieval adds +0.420" in d.reasons[2].text
    assert kinds(d)["prompt"] == ["knowledge-gap"] and "retrieval adds +0.520" in d.reasons[1].text
    assert d.next_step.startswith("RAG plus fine-tune")
    without = decide(results, target=0.85)  # no comparison to make: rag's own pairing only
    assert "knowledge-gap" not in kinds(without)["prompt"]


def test_without_a_tune_the_next_step_asks_the_seeds_behaviour_or_facts_question() -> None:
    # broken formats on the rung best on val: behaviour, fine-tuning's ground
    broken = decide([result("prompt", 0.4, val=0.5, format_failures=40),
                     result("few-shot", 0.5, val=0.4, versus=("prompt", 0.1, 0.2))], target=0.9)
    assert broken.next_step.startswith("fine-tune: 40% of prompt's answers break the output "
                                       "format")
    # well-formed but wrong, no retrieval measured: maybe missing facts, retrieval first
    wrong = decide([result("prompt", 0.4, val=0.4), result("few-shot", 0.5, val=0.5,
                                                           versus=("prompt", 0.1, 0.2))],
                   target=0.9)
    assert wrong.next_step.startswith("fine-tune if what few-shot gets wrong (well-formed but "
                                      "wrong) is behaviour")
    assert "give the task a corpus ([task] corpus) and climb rag first" in wrong.next_step
    # retrieval measured and no gap: the facts were not what was missing
    climbed = decide([result("prompt", 0.4, val=0.4),
                      result("rag", 0.45, val=0.45, versus=("prompt", 0.05, 0.4))], target=0.9)
    assert climbed.next_step == "fine-tune: prompting, examples and retrieval fell short"


def _timed(r, p95: float):
    r.test.latency_ms = {"p50": p95 / 2, "p95": p95, "p99": p95}
    return r


def test_a_rung_at_the_target_but_over_the_latency_budget_is_not_chosen() -> None:
    """The seeds' "is the base model too slow? fine-tune a smaller model": the bigger model
    reaches the score but not the budget, so the next step is a smaller model tuned."""
    results = [_timed(result("prompt", 0.5), 80), _timed(result("few-shot", 0.6), 120),
               _timed(result("bigger-model", 0.92, versus=("few-shot", 0.32, 1e-9)), 900)]
    d = decide(results, target=0.9, max_latency_ms=300)
    assert d.rung is None and kinds(d)["bigger-model"] == ["too-slow"]
    assert d.reasons[-1].text == ("bigger-model: reaches the target (0.920 (0.870-0.970)) but "
                                  "answers in 900 ms at p95, over the 300 ms budget")
    assert d.next_step.startswith("fine-tune a smaller model: bigger-model reaches the target "
                                  "but answers in 900 ms at p95 against a 300 ms budget")
    assert decide(results, target=0.9).rung == "bigger-model"  # no budget: as before
    # a tune within the budget that reaches the target is chosen, the slow rung below it
    # explained by the budget alone
    tuned = results + [_timed(result("finetune", 0.91, versus=("bigger-model", -0.01, 0.8)), 150)]
    d = decide(tuned, target=0.9, max_latency_ms=300)
    assert d.rung == "finetune" and kinds(d)["bigger-model"] == ["too-slow"]
    assert "it answers within the 300 ms budget (150 ms at p95)" in d.headline
    # data the audit calls not ready still comes first
    assert decide(results, target=0.9, max_latency_ms=300,
                  audit=NOT_READY).next_step.startswith("more and cleaner data first")


def test_a_significant_gain_below_min_gain_is_called_that_not_insignificant() -> None:
    """p = 3e-5 is significant; the gain of 0.04 is below the team's min_gain of 0.05. The
    headline and the reason say so, instead of 'not significant'."""
    def gain(a, b, diff=0.04):
        return PairedComparison("mcnemar-exact", a, a + diff, diff, (0.02, 0.06), 3.1e-5, 400,
                                0.05)

    chosen = [result("prompt", 0.5), result("few-shot", 0.54)]
    d = decide(chosen, target=0.45, compare=lambda a, b: gain(a.test.score.value, 0))
    assert "few-shot would add +0.040 (p=3.1e-05), significant but below [eval] min_gain " \
        "(0.05)" in d.headline
    short = [result("prompt", 0.3), result("few-shot", 0.34)]
    short[1] = RungResult("few-shot", short[1].pipeline, short[1].test, [], 0.0,
                          versus=("prompt", gain(0.3, 0)))
    d = decide(short, target=0.9)
    [reason] = [r for r in d.reasons if r.rung == "few-shot" and r.kind == "no-gain"]
    assert reason.text.startswith("few-shot: a gain below [eval] min_gain (0.05) over prompt")


def test_a_data_parallel_tunes_build_is_said_in_gpu_hours():
    """Two GPUs for half an hour are one GPU-hour; the clause said "a GPU hour at the
    throughput measured on one", which reads as one GPU."""
    from rung.decide.economics import costs_clause as _costs_clause

    economics = {"build": 0.5, "build_hours": 1.0, "hour_price": 0.5, "device": "gpu",
                 "devices": 2, "upkeep_hours_per_quarter": 12, "upkeep_per_quarter": 1200.0}
    said = _costs_clause(economics, chosen=False)
    assert "1.00 GPU-hours at $0.50/h: 2 GPUs" in said and "measured on one" not in said
    one = _costs_clause({**economics, "devices": 1}, chosen=False)
    assert "1.00 h at $0.50/h, a GPU hour at the throughput measured on one" in one


def test_the_headline_and_the_report_word_a_comparison_alike():
    """p < 0.05 with a gain at or above min_gain whose interval still holds 0: the report
    said "significant by p, but its 95% CI includes no gain", the headline "not significant"."""
    from itertools import product

    from rung.decide import comparison_verdict
    from rung.report.render import versus_verdict

    for meaningful, worse, significant, difference in product(
            (False, True), (False, True), (False, True), (-0.1, 0.02, 0.1)):
        versus = {"meaningful": meaningful, "worse": worse, "significant": significant,
                  "difference": difference, "min_gain": 0.05}
        words = comparison_verdict(meaningful, worse, significant, difference, 0.05)
        assert versus_verdict(versus)[0] == words
    assert comparison_verdict(False, False, True, 0.1, 0.05) == \
        "significant by p, but its 95% CI includes no gain"


def test_a_chosen_rung_that_does_not_beat_the_cheaper_one_says_so() -> None:
    """The prompt reaches 0.90 and the classifier 0.88 on the same 100 test examples, p=0.73:
    the first rung at the target is the prompt, but the headline must not let "use prompt"
    read as though it beat the classifier."""
    results = [result("classifier", 0.88, classifier=TFIDF, **TFIDF),
               result("prompt", 0.90, versus=("classifier", 0.02, 0.73))]
    d = decide(results, target=0.9)
    assert d.rung == "prompt"
    assert ("+0.020 over classifier (p=0.73), not significant: on these 100 test examples it "
            "is not told apart from the cheaper classifier (0.880), which may serve as well"
            ) in d.headline
    clear = decide([results[0], result("prompt", 0.95, versus=("classifier", 0.07, 1e-4))],
                   target=0.9)
    assert "+0.070 over classifier (p=0.0001)" in clear.headline
    assert "told apart" not in clear.headline and "may serve" not in clear.headline


def test_a_classifier_over_the_latency_budget_is_not_told_to_fine_tune_a_smaller_model() -> None:
    """A MiniLM classifier at the target but over a tight budget: there is no base model to
    shrink, and "fine-tune a smaller model: classifier reaches..." made no sense."""
    minilm = {"features": "minilm", "estimator": "logistic-regression", "C": 1.0}
    results = [_timed(result("classifier", 0.93, classifier=minilm, **minilm), 40),
               _timed(result("prompt", 0.5, versus=("classifier", -0.43, 1e-9)), 900)]
    d = decide(results, target=0.9, max_latency_ms=20)
    assert d.rung is None and kinds(d)["classifier"] == ["too-slow"]
    assert d.next_step.startswith("a faster classifier: classifier (minilm + "
                                  "logistic-regression, C=1) reaches the target but answers in "
                                  "40 ms at p95 against a 20 ms budget")
    assert "fine-tune" not in d.next_step


def test_a_rung_at_the_target_on_data_the_audit_calls_not_ready_says_so() -> None:
    """The classifier reached the target, and the audit found a test example with a copy in
    train: the headline read "no LLM is needed" and the leak sat only under the JSON's
    `audit`. The score that reached the target is the one a leak inflates."""
    leaky = {"audit_id": "a2", "verdict": "not ready",
             "reasons": ["contradictions: 3 inputs have conflicting outputs (6 examples)",
                         "leakage: 2 of 22 val/test examples have a copy in train"]}
    results = [result("classifier", 0.91, classifier=TFIDF, **TFIDF)]
    d = decide(results, target=0.8, audit=leaky)
    assert d.rung == "classifier"
    assert d.headline.endswith("; but the audit calls the data not ready, leakage among its "
                               "reasons, so the test score may be inflated: mend it and climb "
                               "again before trusting this")
    [data] = [r for r in d.reasons if r.kind == "data"]
    assert data.rung == "classifier" and "leakage: 2 of 22" in data.text
    assert "rung audit DATA" in data.evidence["fix"]
    small = decide(results, target=0.8, audit=NOT_READY)  # not ready, no leak
    assert small.headline.endswith("; but the audit calls the data not ready: mend it and "
                                   "climb again before trusting this")
    ready = decide(results, target=0.8, audit={"verdict": "ready with warnings", "reasons": []})
    assert "not ready" not in ready.headline and not [r for r in ready.reasons if r.kind == "data"]
