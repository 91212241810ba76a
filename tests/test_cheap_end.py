"""The cheap end of the ladder: the classifier rung, similar-example demonstrations,
contextual calibration, the stop rule on val, and choices that never look at test."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import LABELS, FakeModel, ticket_records, write_task
from rung.calibration import CONTENT_FREE, calibrated
from rung.cli import app
from rung.climb import climb, compare_with_cheaper, load_examples, make_split
from rung.decide import reaches
from rung.data.example import make_example
from rung.eval.metrics import Score
from rung.eval.runner import EvalResult, Prediction
from rung.models.base import ChoiceScores
from rung.models.registry import fingerprint, register_model, unregister_model
from rung.pipeline import Pipeline, nearest_examples
from rung.rungs.base import Candidate, RungResult
from rung.task import load_task

runner = CliRunner()


def _named(text: str) -> str:
    return next((label for label in LABELS if label.lower() in text.lower()), "BILLING")


# -- the classifier rung ---------------------------------------------------------------------

def test_the_classifier_comes_first_and_a_classifier_at_target_stops_the_climb(task_dir,
                                                                               fake_model):
    """The tickets name their label, so TF-IDF gets them all: no LLM is asked anything."""
    result = climb(write_task(task_dir, ladder={}))
    summary = result.summary()
    [classifier] = summary["rungs"]
    assert classifier["rung"] == "classifier" and classifier["score"] == 1.0
    assert classifier["tokens_per_request"] == 0 and set(classifier["latency_ms"]) >= {"p50", "p95",
                                                                                      "p99"}
    assert 0 < classifier["costs"]["serving_per_million_requests"]["self_hosted"] < 1
    assert classifier["memory"]["serving_bytes"] > 0
    labels = [c["label"] for c in classifier["candidates"]]
    assert labels[0] == "tfidf + logistic-regression, C=1" and len(labels) == 16
    # the weighted twins come after every plain candidate: a tie on val goes to the plain one
    assert labels[8:] == [label + ", balanced" for label in labels[:8]]
    assert sum(c["chosen"] for c in classifier["candidates"]) == 1
    rec = summary["recommendation"]
    assert rec["rung"] == "classifier" and rec["reason"].startswith(
        "no LLM is needed for this task: use classifier (tfidf + logistic-regression, C=1)")
    assert "`rung climb --all` measures them" in rec["reason"] and rec["stopped"] == "classifier"
    cost = classifier["costs"]["serving_per_million_requests"]["self_hosted"]
    assert f"ms (p50) on a CPU for ${cost:.2g} a million requests" in rec["reason"]
    assert "climb stopped at classifier" in summary["not_measured"]["prompt"]
    assert summary["not_measured"]["rag"] == "no [task] corpus"
    assert fake_model.calls == []  # not one prompt: the classifier answered everything
    # the model is saved, versioned like a tune, and a rerun loads it instead of training
    folder = task_dir / ".rung" / "classifiers"
    [saved] = [p for p in folder.iterdir() if p.name == classifier["model"].split("/")[-1]]
    manifest = json.loads((saved / "classifier.json").read_text())
    assert manifest["labels"] == LABELS and manifest["memory_bytes"] > 0
    stamp = (saved / "classifier.joblib").stat().st_mtime_ns
    again = climb(task_dir).summary()["rungs"][0]
    assert again["model"] == classifier["model"] and again["score"] == 1.0
    assert (saved / "classifier.joblib").stat().st_mtime_ns == stamp


def test_all_climbs_past_a_classifier_at_target_and_weighs_the_llm_rungs(task_dir, fake_model):
    fake_model.rule = lambda p: "BILLING"
    result = climb(write_task(task_dir, ladder={}), climb_all=True)
    summary = result.summary()
    assert [r["rung"] for r in summary["rungs"]] == ["classifier", "prompt", "few-shot"]
    assert summary["not_measured"] == {"rag": "no [task] corpus",
                                       "bigger-model": "no [models] large",
                                       "finetune": "no [finetune] table (or rung eval --rung "
                                                   "finetune)"}
    prompt, few_shot = summary["rungs"][1:]
    assert prompt["versus"]["rung"] == "classifier" and prompt["versus"]["worse"]
    assert few_shot["versus"]["rung"] == "classifier"  # best on val of the two below it
    assert few_shot["versus"]["paired_with"] == "best-on-val"
    rec = summary["recommendation"]
    assert rec["rung"] == "classifier" and rec["stopped"] is None
    assert "prompt would add" in rec["reason"] and "significantly worse" in rec["reason"]


def test_the_cli_all_flag_and_ladder_skip(task_dir, fake_model):
    toml = write_task(task_dir, ladder={"skip": ["few-shot"]})
    out = runner.invoke(app, ["climb", str(toml), "--all", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert [r["rung"] for r in data["rungs"]] == ["classifier", "prompt"]
    assert data["not_measured"]["few-shot"] == "[ladder] skip"
    bad = runner.invoke(app, ["climb", str(write_task(task_dir, ladder={"skip": ["prompts"]}))])
    assert bad.exit_code == 2 and "ladder.skip" in bad.stderr and "rung.toml" in bad.stderr


def test_eval_of_the_classifier_alone_and_not_on_a_generation_task(task_dir, fake_model):
    out = runner.invoke(app, ["eval", str(write_task(task_dir)), "--rung", "classifier", "--json"])
    assert out.exit_code == 0, out.output
    assert [r["rung"] for r in json.loads(out.stdout)["rungs"]] == ["classifier"]
    toml = task_dir / "rung.toml"
    toml.write_text(toml.read_text().replace('kind = "classification"', 'kind = "generation"')
                    .replace('metric = "accuracy"', 'metric = "exact_match"')
                    .replace('labels = ["BILLING", "BUG", "FEATURE"]', ''))
    bad = runner.invoke(app, ["eval", str(toml), "--rung", "classifier"])
    assert bad.exit_code == 2 and "needs a classification task" in bad.stderr
    assert not fake_model.calls


def test_a_classifier_answers_with_label_log_probabilities_and_a_fingerprint(task_dir, tmp_path):
    from rung.rungs.classifier import fitted

    task = load_task(write_task(task_dir))
    examples = load_examples(task)
    spec = {"features": "tfidf", "estimator": "logistic-regression", "C": 10.0}
    folder = fitted(task, spec, examples[:45], tmp_path / "classifiers")
    pipeline = Pipeline(rung="classifier", kind="classification", model=str(folder),
                        instruction="", labels=LABELS, classifier=spec)
    outputs = pipeline.predict([e.input for e in examples[45:]])
    assert [o.text for o in outputs] == [e.output for e in examples[45:]]
    for o in outputs:  # log-probabilities in label order, the answer the most likely
        assert np.isclose(np.logaddexp.reduce(o.label_logprobs), 0.0, atol=1e-6)
        assert LABELS[int(np.argmax(o.label_logprobs))] == o.text and o.tokens_in == 0
    svm = fitted(task, {**spec, "estimator": "linear-svm"}, examples[:45], tmp_path / "classifiers")
    assert fingerprint(str(svm)) != fingerprint(str(folder))
    no_proba = replace(pipeline, model=str(svm)).predict([examples[50].input])[0]
    assert no_proba.label_logprobs == () and no_proba.loss(LABELS, "BUG") is None


# -- similar-example demonstrations ----------------------------------------------------------

POOL = [make_example(text, label, line=i) for i, (text, label) in enumerate([
    ("I was charged twice for my subscription this month", "BILLING"),
    ("Please refund the duplicate payment on my card", "BILLING"),
    ("The app crashes when I open the calendar", "BUG"),
    ("Export to CSV fails with an error 500", "BUG"),
    ("Could you add a dark mode to the dashboard?", "FEATURE"),
    ("Please support exporting reports as Excel files", "FEATURE"),
], start=1)]


def test_nearest_examples_are_the_most_similar_by_meaning_the_nearest_last():
    [demos] = nearest_examples(POOL, ["my credit card was billed two times"], 2)
    assert {d.output for d in demos} == {"BILLING"}
    assert demos[-1].input == "I was charged twice for my subscription this month"
    [crash] = nearest_examples(POOL, ["the calendar screen crashes on launch"], 1)
    assert crash[0].output == "BUG"


def test_a_similar_pipeline_sends_each_input_its_own_demonstrations(fake_model):
    pipeline = Pipeline(rung="few-shot", kind="classification", model="fake",
                        instruction="Classify.", labels=LABELS, nearest=2, pool=POOL)
    pipeline.predict(["refund me, you billed me twice", "please add dark mode and Excel exports"])
    [(_, prompts)] = fake_model.calls
    shown = [[m.content for m in p if m.role == "assistant"] for p in prompts]
    assert shown == [["BILLING", "BILLING"], ["FEATURE", "FEATURE"]]
    back = Pipeline.from_dict(json.loads(json.dumps(pipeline.to_dict())))
    assert back.pool == POOL and back.nearest == 2 and back.hash() == pipeline.hash()


def test_the_few_shot_rung_offers_similar_and_calibrated_candidates_for_generation_too(
        task_dir, fake_model):
    """Generation has no labels: stratified means random there, and nothing is calibrated."""
    toml = write_task(task_dir)
    text = toml.read_text().replace('kind = "classification"', 'kind = "generation"') \
        .replace('metric = "accuracy"', 'metric = "exact_match"')
    toml.write_text(text.replace('labels = ["BILLING", "BUG", "FEATURE"]', ''))
    fake_model.rule = lambda p: _named(p[-1].content) if sum(m.role == "assistant" for m in p) \
        and all(_named(m.content) == _named(p[-1].content) for m in p if m.role == "user"
                and m is not p[-1]) else "?"
    summary = climb(toml).summary()
    few_shot = summary["rungs"][1]
    assert [c["label"] for c in few_shot["candidates"]] == ["k=3 random", "k=6 random",
                                                            "k=3 similar", "k=6 similar"]
    # only demonstrations that name the same label as the input help this fake: the
    # similar ones do
    assert few_shot["chosen"]["selection"] == "similar" and few_shot["score"] == 1.0


# -- contextual calibration ------------------------------------------------------------------

class BiasedModel(FakeModel):
    """Knows each ticket's label but prefers BILLING by 4 nats whatever the input: the
    majority-label bias Zhao et al. calibrate away."""

    def score_choices(self, prompts, choices):
        self.calls.append(("score", [list(p) for p in prompts]))
        out = []
        for p in prompts:
            right = _named(p[-1].content) if p[-1].content not in CONTENT_FREE else None
            logprobs = [(-1.0 if c == right else -4.0) + (4.0 if c == "BILLING" else 0.0)
                        for c in choices]
            out.append(ChoiceScores(logprobs, 5, [1] * len(choices)))
        return out


def test_calibration_divides_out_a_label_bias_and_is_chosen_on_val(task_dir):
    biased = BiasedModel(name="biased")
    register_model("biased", biased)
    try:
        toml = write_task(task_dir, model="biased")
        toml.write_text(toml.read_text() + '\n[prompt]\nvariants = ["instruction"]\n')
        summary = climb(toml).summary()
    finally:
        unregister_model("biased")
    prompt = summary["rungs"][0]
    scores = {c["label"]: c["val_score"] for c in prompt["candidates"]}
    assert scores["instruction"] < 0.5 and scores["instruction, calibrated"] == 1.0
    assert prompt["chosen"] == {"variant": "instruction", "calibrated": True}
    assert prompt["score"] == 1.0
    stored = json.loads((task_dir / ".rung" / "artifacts" / summary["run_id"]
                         / "pipeline-prompt.json").read_text())
    # the content-free probabilities are in what is stored and served: BILLING dominates
    assert stored["calibration"] is not None and np.argmax(stored["calibration"]) == 0
    assert [r["rung"] for r in summary["rungs"]] == ["prompt"]  # it reached the target on val


def test_calibrated_needs_fixed_demonstrations(fake_model):
    pipeline = Pipeline(rung="few-shot", kind="classification", model="fake",
                        instruction="Classify.", labels=LABELS, nearest=2, pool=POOL)
    with pytest.raises(ValueError, match="change with the input"):
        calibrated(pipeline)
    plain = replace(pipeline, nearest=0, pool=[])
    done = calibrated(plain)
    assert done.details["calibrated"] and len(done.calibration) == 3
    assert [p[-1].content for p in fake_model.calls[0][1]] == list(CONTENT_FREE)


# -- choices on val only ---------------------------------------------------------------------

def test_every_choice_is_made_on_val_and_no_test_input_reaches_a_model_while_building(task_dir):
    """A model that behaves one way on val and the other on test: the 'role' phrasing is
    right on val and wrong on test, the plain one the reverse. Choosing on test would pick
    the plain phrasing and report it right; choosing on val picks 'role' and measures it
    wrong on test. The climb also stops on val (role reaches the target there), so its
    next step is to climb on. Every request is logged with the stage it came in."""
    toml = write_task(task_dir)
    task = load_task(toml)
    split = make_split(task, load_examples(task))
    val, test = {e.input for e in split.val}, {e.input for e in split.test}
    stage = ["start"]
    seen: list[tuple[str, str]] = []

    def rule(prompt):
        text = prompt[-1].content.replace("<input>\n", "").replace("\n</input>", "")
        seen.append((stage[0], "\n".join(m.content for m in prompt)))
        role = "<input>" in prompt[-1].content
        if text in val:
            return _named(text) if role else "FEATURE"
        if text in test:
            return "FEATURE" if role else _named(text)
        return "BILLING"

    def reporter(name, total):
        stage[0] = name
        return lambda n: None

    model = FakeModel(name="two-faced", rule=rule)
    register_model("two-faced", model)
    try:
        toml.write_text(toml.read_text().replace('small = "fake"', 'small = "two-faced"'))
        result = climb(toml, reporter=reporter)
    finally:
        unregister_model("two-faced")
    [prompt] = result.results
    assert prompt.pipeline.variant == "role" and prompt.choice.val_score == 1.0
    assert prompt.test.score.value < 0.5  # what choosing on val costs on this model, honestly
    rec = result.recommendation
    assert rec["rung"] is None and rec["stopped"] == "prompt"
    assert "climb stopped at prompt" in result.not_measured["few-shot"]
    building = [sent for name, sent in seen if not name.endswith(": test")]
    assert building and not [t for sent in building for t in test if t in sent]
    tested = [sent for name, sent in seen if name == "prompt: test"]
    assert all(any(t in sent for sent in tested) for t in test)  # the check can see them


def _measured(rung: str, val: float, test_correct: list[bool], **details) -> RungResult:
    n = len(test_correct)
    predictions = [Prediction(str(i), i, "q", "a", "a" if c else "b", c, 1, 1)
                   for i, c in enumerate(test_correct)]
    score = sum(test_correct) / n
    pipeline = Pipeline(rung=rung, kind="classification", model="m", instruction="i",
                        details=details)
    return RungResult(rung, pipeline, EvalResult(Score("accuracy", score, (score, score), n),
                                                 predictions),
                      [Candidate("c", val, chosen=True)], 0.0)


def test_pairing_picks_the_cheaper_rung_on_val_and_the_bigger_model_its_source(task_dir,
                                                                               fake_model):
    task = load_task(write_task(task_dir))
    # prompt is best on val, few-shot best on test
    prompt = _measured("prompt", 0.9, [True] * 5 + [False] * 15)
    few_shot = _measured("few-shot", 0.5, [True] * 18 + [False] * 2)
    rag = _measured("rag", 0.6, [True] * 10 + [False] * 10)
    bigger = _measured("bigger-model", 0.6, [True] * 10 + [False] * 10, **{"from": "few-shot"})
    results = [prompt, few_shot, rag, bigger]
    compare_with_cheaper(task, results)
    assert (rag.versus[0], rag.paired_with) == ("prompt", "best-on-val")
    assert (bigger.versus[0], bigger.paired_with) == ("few-shot", "built-from")
    assert rag.versus[1].difference == pytest.approx(0.25)  # rag minus prompt, on test


# -- small, dirty data -----------------------------------------------------------------------

def tiny_dirty_records() -> list[dict]:
    """57 rows: 8 distinct tickets a label, 24 exact copies, 9 contradicting labels; the
    words carry no label, so neither the classifier nor the model can learn it."""
    rng = random.Random(3)
    words = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima".split()
    rows = []
    for label in LABELS:
        for i in range(8):
            rows.append((" ".join(rng.sample(words, 6)) + f" {i}", label))
    rows += [rows[i] for i in rng.choices(range(24), k=24)]  # exact copies
    rows += [(text, LABELS[(LABELS.index(label) + 1) % 3]) for text, label in
             rng.sample(rows[:24], 9)]  # the same ticket, another label
    assert len(rows) == 57
    return [{"messages": [{"role": "user", "content": text},
                          {"role": "assistant", "content": label}], "customer": f"c{i}"}
            for i, (text, label) in enumerate(rows)]


@pytest.mark.parametrize("ladder", [{}, {"skip": ["classifier"]}])
def test_tiny_duplicated_contradictory_data_never_points_to_fine_tuning(task_dir, fake_model,
                                                                        ladder):
    result = climb(write_task(task_dir, records=tiny_dirty_records(), group_key=False,
                              ladder=ladder))
    rec = result.recommendation
    assert result.audit["verdict"] == "not ready"
    assert "too small to decide" in rec["reason"] and rec["power"]["underpowered"]
    assert rec["power"]["n"] == len(result.split.test) <= 10
    if rec["rung"] is None:
        assert rec["next_step"].startswith("more and cleaner data first")
        assert "fine-tun" not in rec["next_step"]
    assert all(r.rung != "finetune" for r in result.results)


def test_the_classifier_of_a_run_exports_with_its_provenance(task_dir, fake_model, tmp_path):
    import joblib

    result = climb(write_task(task_dir, ladder={}))
    out = tmp_path / "exported"
    done = runner.invoke(app, ["export", result.run_id, "--task", str(task_dir), "--rung",
                               "classifier", "--out", str(out)])
    assert done.exit_code == 0, done.output
    provenance = json.loads((out / "rung_export.json").read_text())
    assert provenance["run"] == result.run_id and provenance["test_score"] == 1.0
    assert provenance["split_hash"] == result.split.hash()
    model = joblib.load(out / "classifier.joblib")
    assert list(model.predict(["ticket 99 about feature number 3"])) == ["FEATURE"]
    again = runner.invoke(app, ["export", result.run_id, "--task", str(task_dir), "--rung",
                                "classifier", "--out", str(out)])
    assert again.exit_code == 2 and "not empty" in again.stderr
    none = runner.invoke(app, ["export", result.run_id, "--task", str(task_dir), "--rung",
                               "finetune", "--out", str(tmp_path / "x")])
    assert none.exit_code == 2 and "has no fine-tune" in none.stderr


def test_progress_is_a_line_per_stage_when_stderr_is_not_a_terminal(task_dir, fake_model):
    task = write_task(task_dir, records=ticket_records(40))
    out = runner.invoke(app, ["climb", str(task), "--json"])
    assert out.exit_code == 0, out.output
    json.loads(out.stdout)  # the JSON alone on stdout
    lines = out.stderr.splitlines()
    # 8 candidates raced on 14 val examples: all on the first 10, the better two on the rest
    assert "prompt: choosing on val (88 steps)" in lines
    assert any(line.startswith("  prompt: test: ") and " after " in line for line in lines)


def test_a_label_missing_from_train_is_never_the_classifiers_answer(task_dir, tmp_path):
    from rung.rungs.classifier import fitted

    task = load_task(write_task(task_dir))
    train = [e for e in load_examples(task) if e.output != "FEATURE"][:30]
    spec = {"features": "tfidf", "estimator": "logistic-regression", "C": 1.0}
    pipeline = Pipeline(rung="classifier", kind="classification", instruction="",
                        model=str(fitted(task, spec, train, tmp_path)), labels=LABELS,
                        classifier=spec)
    [out] = pipeline.predict(["ticket 3 about feature number 11"])
    assert out.text in ("BILLING", "BUG") and out.label_logprobs[2] == pytest.approx(
        np.log(1e-12))
    assert out.loss(LABELS, "FEATURE") == pytest.approx(-np.log(1e-12))  # a number, not inf


@pytest.mark.parametrize("decide_on", ["point", "lower-bound"])
def test_the_stop_rule_on_val_honours_decide_on(task_dir, fake_model, decide_on):
    """Zero-shot misses one val example: 0.9+ on val by its point estimate, with an interval
    reaching well below the target. "point" stops there; "lower-bound" climbs on. One
    function (decide.reaches) is the rule for both the climb and the decision."""
    toml = write_task(task_dir, records=ticket_records(40), extra=f'decide_on = "{decide_on}"\n')
    task = load_task(toml)
    split = make_split(task, load_examples(task))
    assert len(split.val) >= 10  # one miss still leaves 0.9 or more
    missed = split.val[0].input

    def rule(prompt):
        shown = any(m.role == "assistant" for m in prompt)
        if not shown and missed in prompt[-1].content:
            return next(label for label in LABELS if label != _named(missed))
        return _named(prompt[-1].content)

    fake_model.rule = rule
    summary = climb(toml).summary()
    [prompt, *rest] = summary["rungs"]
    chosen = next(c for c in prompt["candidates"] if c["chosen"])
    assert chosen["val_score"] >= 0.9 > chosen["val_ci"][0]
    if decide_on == "point":
        assert rest == [] and summary["recommendation"]["stopped"] == "prompt"
        assert "climb stopped at prompt" in summary["not_measured"]["few-shot"]
    else:
        assert [r["rung"] for r in rest] == ["few-shot"]
        assert "few-shot" not in summary["not_measured"]
    # the decision applies the same rule to the test scores: zero-shot is right on all of
    # test, a perfect score whose interval on so few examples still reaches below 0.9
    on_test = reaches(prompt["score"], prompt["ci"], 0.9, decide_on)
    assert prompt["score"] == 1.0 and on_test == (decide_on == "point")
    assert summary["recommendation"]["rung"] == ("prompt" if on_test else None)


def test_a_balanced_classifier_finds_the_rare_label_a_plain_one_trades_away() -> None:
    """95 common tickets to 5 rare ones: plain logistic regression never says RARE; weighed
    by the inverse of each class's share it finds most rare tickets (the seeds' fix)."""
    import random

    from rung.rungs.classifier import make_estimator

    rng = random.Random(0)
    words = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta", "iota", "kappa"]

    def ticket(label: str) -> str:
        said = [rng.choice(words) for _ in range(6)]
        if rng.random() < (0.8 if label == "RARE" else 0.1):
            said.append("refund")
        return " ".join(said)

    train = [(ticket(label), label) for label in ["COMMON"] * 95 + ["RARE"] * 5]
    test = [(ticket(label), label) for label in ["COMMON"] * 50 + ["RARE"] * 50]
    found = {}
    for weight in (None, "balanced"):
        model = make_estimator("tfidf", "logistic-regression", 1.0, 0, weight)
        model.fit([t for t, _ in train], [label for _, label in train])
        said = model.predict([t for t, _ in test])
        found[weight] = sum(p == label == "RARE" for p, (_, label) in zip(said, test))
    assert found[None] == 0 and found["balanced"] >= 25
