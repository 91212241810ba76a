"""The ladder end to end on a fake model whose behaviour we choose, so the expected
recommendation is known in advance."""

import json
import sqlite3

import pytest
from typer.testing import CliRunner

from conftest import LABELS, ticket_records, write_task
from rung.cli import app
from rung.climb import climb
from rung.errors import ConfigError, DataError
from rung.rungs.few_shot import choose_demonstrations
from rung.task import load_task
from rung.data.example import make_example

runner = CliRunner()


def _label_in(text: str) -> str:
    """The label the ticket names; a content-free input (calibration's "N/A") names none."""
    return next((label for label in LABELS if label.lower() in text.lower()), "BILLING")


def learns_from_demonstrations(prompt):
    """Right only when shown at least 6 demonstrations; otherwise always 'BILLING'."""
    demos = sum(1 for m in prompt if m.role == "assistant")
    return _label_in(prompt[-1].content) if demos >= 6 else "BILLING"


def test_climb_recommends_the_first_rung_that_reaches_target(task_dir, fake_model):
    fake_model.rule = learns_from_demonstrations
    result = climb(write_task(task_dir))
    summary = result.summary()
    prompt, few_shot = summary["rungs"]
    assert prompt["rung"] == "prompt" and few_shot["rung"] == "few-shot"
    assert prompt["score"] == pytest.approx(sum(e.output == "BILLING" for e in result.split.test) / len(result.split.test), abs=1e-4)
    assert few_shot["score"] == 1.0 and few_shot["chosen"]["k"] == 6
    assert [c["label"] for c in few_shot["candidates"]] == [
        "k=3 stratified", "k=3 stratified, calibrated", "k=6 stratified",
        "k=6 stratified, calibrated", "k=3 similar", "k=6 similar"]
    assert [c["label"] for c in few_shot["candidates"] if c["chosen"]] == ["k=6 stratified"]
    assert summary["recommendation"]["rung"] == "few-shot"
    assert "reaches 1.000" in summary["recommendation"]["reason"]
    # both rungs were measured on exactly the same test examples
    assert prompt["n"] == few_shot["n"] == len(result.split.test)


def test_macro_f1_rungs_are_paired_on_macro_f1(task_dir, fake_model):
    """Each rung's comparison with the cheaper one is a difference of macro-F1 scores, tested
    as macro-F1: paired on label correctness it was an accuracy difference shown beside
    macro-F1 scores, and could point the other way."""
    fake_model.rule = learns_from_demonstrations
    toml = write_task(task_dir)
    toml.write_text(toml.read_text().replace('metric = "accuracy"', 'metric = "macro_f1"'))
    summary = climb(toml).summary()
    prompt, few_shot = summary["rungs"]
    versus = few_shot["versus"]
    assert versus["rung"] == "prompt" and versus["test"] == "permutation-macro-f1"
    assert versus["difference"] == pytest.approx(few_shot["score"] - prompt["score"], abs=1e-4)


def _answered(rung: str, expected: list[str], said: list[str]):
    """A measured rung whose test answers are `said` (RungResult, as the evaluator leaves it)."""
    from rung.eval.metrics import Score
    from rung.eval.runner import EvalResult, Prediction
    from rung.pipeline import Pipeline
    from rung.rungs.base import Candidate, RungResult

    predictions = [Prediction(str(i), i, "q", e, p, e == p, 1, 1)
                   for i, (e, p) in enumerate(zip(expected, said))]
    score = sum(p.correct for p in predictions) / len(predictions)
    return RungResult(rung, Pipeline(rung=rung, kind="classification", model="m",
                                     instruction="i"),
                      EvalResult(Score("accuracy", score, (score, score), len(said)),
                                 predictions), [Candidate("c", score, chosen=True)], 0.0)


@pytest.mark.parametrize("flagged", [True, False])
def test_a_corpus_level_metric_is_decided_and_paired_by_its_flag(task_dir, monkeypatch,
                                                                   flagged):
    """recommend and paired read the metric's spec, not its name: a corpus-level metric
    added beside macro-F1 has its power read off its interval (not a share of examples) and
    its rungs paired by the swap test on its statistic; the same metric unflagged is a 0/1
    metric (McNemar on correctness, power as a share)."""
    from dataclasses import replace
    from types import SimpleNamespace

    import rung.climb as climb_module
    from rung.eval.metrics import (CORPUS_STATISTICS, CorpusStatistic, _macro_f1_rows,
                                   macro_f1, metric_spec)

    monkeypatch.setitem(CORPUS_STATISTICS, "label_f1",
                        CorpusStatistic("label-F1", macro_f1, _macro_f1_rows))
    spec = replace(metric_spec("accuracy"), name="label_f1", corpus_level=flagged)
    monkeypatch.setattr(climb_module, "metric_spec", lambda metric, schema=None: spec)
    seen = {}

    def deciding(results, **options):
        seen.update(options)
        return SimpleNamespace(rung=None, to_dict=lambda: {"headline": "-"})

    monkeypatch.setattr(climb_module, "decide", deciding)
    climb_module.recommend(load_task(write_task(task_dir)), [], None)
    expected = ["BILLING"] * 8 + ["BUG"] * 4 + ["FEATURE"] * 2
    cheap = _answered("prompt", expected, ["BILLING"] * 14)
    dear = _answered("few-shot", expected, ["BILLING"] * 6 + ["BUG"] * 6 + ["FEATURE"] * 2)
    versus = seen["compare"](cheap, dear)
    assert seen["binary"] is not flagged
    assert versus.test == ("permutation-label-f1" if flagged else "mcnemar-exact")


def test_paired_intervals_use_the_task_s_bootstrap_setting(task_dir, fake_model):
    """[eval] bootstrap sets the resamples of every interval, the paired ones too: they
    took the library default of 2000 whatever the task said."""
    from rung.eval.stats import mcnemar_exact

    fake_model.rule = learns_from_demonstrations
    # conftest's task says bootstrap = 200; a test share big enough for percentiles to move
    result = climb(write_task(task_dir, fractions=(0.5, 0.1, 0.4)))
    prompt, few_shot = result.results
    correct = [[p.correct for p in r.test.predictions] for r in (prompt, few_shot)]
    assert few_shot.versus[1].ci == mcnemar_exact(*correct, n_resamples=200, seed=7).ci
    assert few_shot.versus[1].ci != mcnemar_exact(*correct, n_resamples=2000, seed=7).ci


def test_no_rung_reaches_target_names_the_best(task_dir, fake_model):
    fake_model.default = "BUG"
    summary = climb(write_task(task_dir)).summary()
    rec = summary["recommendation"]
    assert rec["rung"] is None and rec["best"] in ("prompt", "few-shot")
    assert rec["reason"].startswith("no rung reaches 0.9") and rec["next_step"]
    assert {r["rung"] for r in rec["reasons"]} == {"prompt", "few-shot"}  # a reason for each


def test_with_no_rung_at_the_target_the_best_is_named_by_val_not_test(task_dir, fake_model):
    """`best` is what `rung serve` and `rung gate` fall back on, so it is a choice: prompt
    is right on all val tickets but one and few-shot on all test tickets but one (so neither
    reaches a target of 1), and prompt is named."""
    fake_model.default = "BUG"
    toml = write_task(task_dir)
    split = climb(toml, use_cache=False).split
    answers = {ex.input: ex.output for ex in split.val + split.test}
    val, test = ({ex.input for ex in part} - {next(ex.input for ex in part
                                                   if ex.output != "BUG")}
                 for part in (split.val, split.test))

    def rule(prompt):
        text = prompt[-1].content
        shown = len(prompt) > 3  # few-shot shows demonstrations
        wanted = test if shown else val
        hit = next((q for q in wanted if q in text), None)
        return answers[hit] if hit else "BUG"

    fake_model.rule = rule
    toml.write_text(toml.read_text().replace("target = 0.9", "target = 1.0"))
    summary = climb(toml, use_cache=False).summary()
    scores = {r["rung"]: r["score"] for r in summary["rungs"]}
    assert scores["few-shot"] > scores["prompt"]  # on test
    assert summary["recommendation"]["best"] == "prompt"
    assert "the best on val is prompt" in summary["recommendation"]["reason"]


def test_prompt_variant_is_chosen_on_val(task_dir, fake_model):
    # Only the 'role' variant wraps the input in <input> tags; make it the one that works.
    fake_model.rule = lambda p: _label_in(p[-1].content) if "<input>" in p[-1].content else "BILLING"
    summary = climb(write_task(task_dir)).summary()
    prompt = summary["rungs"][0]
    assert prompt["chosen"] == {"variant": "role"}
    assert {c["label"]: c["val_score"] for c in prompt["candidates"]}["role"] == 1.0
    assert summary["recommendation"]["rung"] == "prompt"


def test_store_holds_run_rungs_and_every_test_example(task_dir, fake_model):
    fake_model.rule = learns_from_demonstrations
    result = climb(write_task(task_dir))
    db = sqlite3.connect(task_dir / ".rung" / "runs.db")
    run = db.execute("SELECT task, status, recommendation, data_hash, split_hash, config_hash FROM runs").fetchone()
    assert run[:3] == ("tiny-tickets", "done", "few-shot")
    assert run[4] == result.split.hash() and all(run[3:])
    rows = db.execute("SELECT rung, COUNT(*), SUM(correct) FROM predictions GROUP BY rung ORDER BY rung").fetchall()
    n = len(result.split.test)
    assert rows == [("few-shot", n, n), ("prompt", n, sum(e.output == "BILLING" for e in result.split.test))]
    model_hashes = {r[0] for r in db.execute("SELECT model_hash FROM rung_results")}
    assert model_hashes == {fake_model.fingerprint}
    artifacts = task_dir / ".rung" / "artifacts" / result.run_id
    assert json.loads((artifacts / "split.json").read_text())["split_hash"] == result.split.hash()
    assert json.loads((artifacts / "pipeline-few-shot.json").read_text())["details"]["k"] == 6


def test_same_seed_same_choices_and_scores(task_dir, fake_model):
    fake_model.rule = learns_from_demonstrations
    a = climb(write_task(task_dir)).summary()
    b = climb(task_dir).summary()
    strip = lambda s: [{k: v for k, v in r.items() if k != "latency_ms"} for r in s["rungs"]]
    assert strip(a) == strip(b) and a["run_id"] != b["run_id"]


def test_stratified_demonstrations_cover_every_label():
    train = [make_example(f"t{i}", LABELS[i % 3] if i < 60 else "BILLING") for i in range(100)]
    demos = choose_demonstrations(train, 6, seed=1)
    assert sorted(d.output for d in demos) == sorted(LABELS * 2)
    assert choose_demonstrations(train, 6, seed=1) == demos


def test_cli_climb_json_shape(task_dir, fake_model):
    fake_model.rule = learns_from_demonstrations
    result = runner.invoke(app, ["climb", str(write_task(task_dir)), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= {"task", "metric", "target", "run_id", "rungs", "recommendation"}
    for r in data["rungs"]:
        assert set(r) >= {"rung", "score", "ci", "latency_ms", "tokens_per_request"}
        assert len(r["ci"]) == 2 and r["ci"][0] <= r["score"] <= r["ci"][1]
        assert set(r["latency_ms"]) >= {"p50", "p95"}
        assert r["costs"]["serving_per_million_requests"]["self_hosted"] > 0
        assert len(r["latency_samples_ms"]) == 2  # [eval] latency_samples, each one kept
        assert r["memory"]["serving_bytes"] is None  # a fake model has no shape to size
    rec = data["recommendation"]
    assert rec["rung"] == "few-shot" and rec["next_step"] is None and rec["criterion"] == "point"
    # why the cheaper rung fell short; the test data is small enough for the audit to call it
    # not ready, which the chosen rung carries as a caution
    assert [r["rung"] for r in rec["reasons"] if r["kind"] != "data"] == ["prompt"]
    assert [r["rung"] for r in rec["reasons"] if r["kind"] == "data"] == (
        ["few-shot"] if data["audit"]["verdict"] == "not ready" else [])


def test_cli_climb_table_and_runs(task_dir, fake_model):
    fake_model.rule = learns_from_demonstrations
    result = runner.invoke(app, ["climb", str(write_task(task_dir))])
    assert result.exit_code == 0, result.output
    assert "few-shot" in result.stdout and "recommendation" in result.stdout
    run_id = json.loads(runner.invoke(app, ["runs", str(task_dir), "--json"]).stdout)[0]["id"]
    report = task_dir / ".rung" / "artifacts" / run_id / "report.html"
    assert f"report: {report}" in result.stdout.replace("\n", "") and report.exists()
    listed = runner.invoke(app, ["runs", str(task_dir), "--json"])
    rows = json.loads(listed.stdout)
    assert len(rows) == 1 and rows[0]["recommendation"] == "few-shot" and rows[0]["best"] == 1.0


def test_bad_label_stops_with_its_line_and_exit_2(task_dir, fake_model):
    toml = write_task(task_dir)
    data = task_dir / "tickets.jsonl"
    lines = data.read_text().splitlines()
    lines[4] = lines[4].replace('"BUG"', '"BUGS"')
    data.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as info:
        climb(toml)
    assert info.value.line == 5 and "BUGS" in str(info.value)
    result = runner.invoke(app, ["climb", str(toml)])
    assert result.exit_code == 2
    assert "tickets.jsonl:5" in result.stderr and "Traceback" not in result.output
    assert not (task_dir / ".rung" / "runs.db").exists(), "a bad file must stop the run before it starts"


def test_malformed_line_exit_2(task_dir, fake_model):
    toml = write_task(task_dir)
    with (task_dir / "tickets.jsonl").open("a") as fh:
        fh.write('{"messages": [{"role": "user"}]}\n')
    result = runner.invoke(app, ["climb", str(toml), "--json"])
    assert result.exit_code == 2 and "tickets.jsonl:61" in result.stderr


def test_cli_convert_round_trip(task_dir, tmp_path):
    write_task(task_dir)
    out = tmp_path / "t.csv"
    result = runner.invoke(app, ["convert", str(task_dir / "tickets.jsonl"), str(out), "--to", "csv"])
    assert result.exit_code == 0, result.output
    back = tmp_path / "t.jsonl"
    assert runner.invoke(app, ["convert", str(out), str(back), "--to", "sharegpt"]).exit_code == 0
    first = json.loads(back.read_text().splitlines()[0])
    assert first["conversations"][1]["value"] in LABELS and first["customer"].startswith("c")
    bad = runner.invoke(app, ["convert", str(out), str(back), "--to", "yaml"])
    assert bad.exit_code == 2 and "yaml" in bad.stderr


def test_each_rung_is_paired_with_the_best_cheaper_one(task_dir, fake_model):
    fake_model.rule = learns_from_demonstrations
    toml = write_task(task_dir, extra="min_gain = 0.1\n")
    result = climb(toml)
    few_shot = result.summary()["rungs"][1]
    versus = few_shot["versus"]
    n = len(result.split.test)
    wrong_before = sum(e.output != "BILLING" for e in result.split.test)
    assert versus["rung"] == "prompt" and versus["test"] == "mcnemar-exact"
    assert versus["b_only"] == wrong_before and versus["a_only"] == 0
    assert versus["difference"] == pytest.approx(wrong_before / n)
    assert versus["p_value"] == pytest.approx(2 * 0.5 ** wrong_before)
    assert versus["significant"] and versus["meaningful"] and versus["min_gain"] == 0.1
    assert result.summary()["rungs"][0]["versus"] is None


def test_failure_breakdown_separates_format_from_content(fake_model):
    from rung.eval.runner import evaluate
    from rung.pipeline import Pipeline

    examples = [make_example("q1", '{"a": 1}'), make_example("q2", '{"a": 2}'), make_example("q3", '{"a": 3}')]
    fake_model.answers = {"q1": '{"a": 1}', "q2": '{"a": 5}', "q3": "sorry, I cannot"}
    pipeline = Pipeline(rung="prompt", kind="extraction", model="fake", instruction="Extract a.")
    result = evaluate(pipeline, examples, metric="json_match")
    assert result.failures == {"correct": 1, "format": 1, "content": 1}
    assert result.score.value == pytest.approx(1 / 3)


def test_eval_one_rung_lands_in_the_store(task_dir, fake_model):
    fake_model.rule = learns_from_demonstrations
    toml = write_task(task_dir)
    result = runner.invoke(app, ["eval", str(toml), "--rung", "few-shot", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [r["rung"] for r in data["rungs"]] == ["few-shot"] and data["rungs"][0]["score"] == 1.0
    db = sqlite3.connect(task_dir / ".rung" / "runs.db")
    assert db.execute("SELECT rung FROM rung_results").fetchall() == [("few-shot",)]
    bad = runner.invoke(app, ["eval", str(toml), "--rung", "fine-tune"])
    assert bad.exit_code == 2 and "unknown rung 'fine-tune'" in bad.stderr


def test_a_rung_measured_alone_recommends_nothing_and_serve_takes_the_last_climb(task_dir,
                                                                              fake_model):
    """`rung eval --rung few-shot` measures few-shot without the rungs below it; "use
    few-shot" would name a rung the prompt (or a classifier) might match, and `rung serve`
    with no run named would have shipped it. The eval run keeps its rung as `best`."""
    from rung.serve import served_from

    fake_model.rule = learns_from_demonstrations
    toml = write_task(task_dir)
    task = load_task(toml)
    with pytest.raises(ConfigError, match="no finished climb"):
        served_from(task)
    climbed = climb(toml)
    assert climbed.recommendation["rung"] == "few-shot" and "alone" not in climbed.recommendation
    fake_model.rule = lambda prompt: "BUG"  # the eval run's answers are all wrong: it must lose
    alone = climb(toml, only="prompt", use_cache=False)
    rec = alone.recommendation
    assert rec["rung"] is None and rec["best"] == "prompt" and rec["alone"] is True
    assert rec["next_step"] is None
    assert rec["reason"].startswith("prompt, measured alone, scores ")
    assert "no recommendation" in rec["reason"]
    served = served_from(task)  # no run named: the latest climb, not the eval run after it
    assert (served.run_id, served.rung) == (climbed.run_id, "few-shot")
    named = served_from(task, alone.run_id)  # named, the eval run serves what it measured
    assert named.rung == "prompt"
    printed = runner.invoke(app, ["eval", str(toml), "--rung", "prompt"])
    assert printed.exit_code == 0 and "measured alone" in printed.stdout


def test_rag_alone_on_an_empty_corpus_is_refused_before_any_model_call(task_dir, fake_model):
    toml = write_task(task_dir, extra='\n[rag]\nmethods = ["bm25"]\nk = [1]\n')
    (task_dir / "docs").mkdir()
    (task_dir / "docs" / "empty.md").write_text("")
    toml.write_text(toml.read_text().replace('data = "tickets.jsonl"',
                                             'data = "tickets.jsonl"\ncorpus = "docs"'))
    with pytest.raises(ConfigError, match="the corpus index is empty"):
        climb(toml, only="rag")
    assert fake_model.calls == []  # the prompt rung's val requests were not paid for
    # every other rung skipped: the climb builds prompt, finds no text, and says so
    toml.write_text(toml.read_text().replace(
        '[ladder]\nskip = ["classifier"]',
        '[ladder]\nskip = ["classifier", "prompt", "few-shot", "bigger-model", "finetune"]'))
    with pytest.raises(ConfigError, match="no rung could be measured: rag: the corpus index"):
        climb(toml)


def test_labels_outside_the_task_s_are_all_named_at_once_with_a_case_hint(task_dir, fake_model):
    """The climb named the first wrong label's line only, one run per mistake; "billing" for
    BILLING is the most common one and said nothing about letter case."""
    from conftest import ticket_records

    records = ticket_records()
    for k in (3, 8, 20):
        records[k]["messages"][-1]["content"] = "billing"
    toml = write_task(task_dir, records=records)
    with pytest.raises(DataError) as refused:
        climb(toml)
    message = refused.value.message
    assert message.startswith("label 'billing' is not one of the task's labels")
    assert "(it differs from 'BILLING' only in letter case)" in message
    assert "3 lines hold labels outside them: 4, 9, 21" in message
    assert refused.value.line == 4


def test_summary_reports_tokens_in_out_and_per_class(task_dir, fake_model):
    fake_model.rule = learns_from_demonstrations
    prompt = climb(write_task(task_dir)).summary()["rungs"][0]
    assert prompt["tokens_in"] + prompt["tokens_out"] == pytest.approx(prompt["tokens_per_request"], abs=0.2)
    report = prompt["per_class"]
    assert report["labels"] == LABELS
    # the fake answers BILLING to every prompt without demonstrations
    assert [row[0] for row in report["confusion"]["rows"]] == report["support"]
    assert report["recall"] == [1.0, 0.0, 0.0]


def test_loss_is_the_expected_labels_per_token_nll(task_dir, fake_model):
    fake_model.rule = learns_from_demonstrations
    result = climb(write_task(task_dir))
    prompt, few_shot = result.summary()["rungs"]
    # the fake gives its answer log-prob 0 and label i log-prob -10 - i otherwise, 1 token each
    expected = [0.0 if e.output == "BILLING" else 10.0 + LABELS.index(e.output) for e in result.split.test]
    assert prompt["loss"] == pytest.approx(sum(expected) / len(expected), abs=1e-4)
    assert few_shot["loss"] == 0.0
    db = sqlite3.connect(task_dir / ".rung" / "runs.db")
    assert db.execute("SELECT MAX(loss) FROM predictions WHERE rung = 'prompt'").fetchone()[0] == 12.0


def test_bigger_model_runs_the_best_cheaper_pipeline_on_the_large_model(task_dir):
    """Only the model changes: the same demonstrations go to the bigger model, and the paired
    test against the cheaper rungs measures capacity alone."""
    from conftest import FakeModel
    from rung.models.registry import register_model, unregister_model

    small = FakeModel(name="small", rule=learns_from_demonstrations, default="BILLING")
    large = FakeModel(name="large", rule=lambda p: _label_in(p[-1].content))  # knows them all
    register_model("small", small)
    register_model("large", large)
    try:
        toml = write_task(task_dir, model="small", ladder={"skip": ["classifier"], "all": True})
        toml.write_text(toml.read_text().replace('small = "small"', 'small = "small"\nlarge = "large"'))
        result = climb(toml)
    finally:
        unregister_model("small")
        unregister_model("large")
    names = [r.rung for r in result.results]
    assert names == ["prompt", "few-shot", "bigger-model"]
    bigger = result.results[-1]
    few_shot = result.results[1]
    assert bigger.pipeline.model == "large" and bigger.pipeline.details["from"] == "few-shot"
    assert bigger.pipeline.demonstrations == few_shot.pipeline.demonstrations
    assert large.calls and bigger.versus is not None and bigger.versus[0] == "few-shot"


def test_eval_of_the_bigger_model_alone_still_chooses_the_best_cheaper_pipeline_on_val(task_dir):
    """`rung eval --rung bigger-model` measures no cheaper rung on test, but builds them all on
    val so the pipeline that goes up is the one a whole climb would send."""
    from conftest import FakeModel
    from rung.models.registry import register_model, unregister_model

    register_model("small", FakeModel(name="small", rule=learns_from_demonstrations))
    register_model("large", FakeModel(name="large", rule=lambda p: _label_in(p[-1].content)))
    try:
        toml = write_task(task_dir, model="small")
        toml.write_text(toml.read_text().replace('small = "small"', 'small = "small"\nlarge = "large"'))
        result = climb(toml, only="bigger-model")
    finally:
        unregister_model("small")
        unregister_model("large")
    [bigger] = result.results
    assert bigger.rung == "bigger-model" and bigger.pipeline.details["from"] == "few-shot"
    assert len(bigger.pipeline.demonstrations) == 6


def test_the_bigger_model_rung_without_a_bigger_model_says_how_to_set_one(task_dir, fake_model):
    result = runner.invoke(app, ["eval", str(write_task(task_dir)), "--rung", "bigger-model"])
    assert result.exit_code == 2
    assert "needs a bigger model" in result.output and 'large = "gemma3-270m"' in result.output
    assert not fake_model.calls  # refused before any work


def test_a_latency_budget_no_rung_meets_keeps_the_climb_going_and_points_to_a_smaller_tune(
        task_dir, fake_model):
    """few-shot reaches the target on val, but not within a budget no model meets: the climb
    does not stop there, nothing is recommended, and the next step is the seeds' "too slow:
    fine-tune a smaller model". Latency is timed on val inputs, never on test ones."""
    from rung.climb import load_examples, make_split
    from rung.task import load_task

    fake_model.rule = learns_from_demonstrations
    toml = write_task(task_dir, records=ticket_records(50),  # enough for the audit
                      extra="max_latency_ms = 0.000001\n")
    summary = climb(toml).summary()
    rec = summary["recommendation"]
    assert rec["rung"] is None and rec["stopped"] is None
    assert rec["next_step"].startswith("fine-tune a smaller model: few-shot reaches the target")
    assert [r["kind"] for r in rec["reasons"] if r["rung"] == "few-shot"] == ["too-slow"]
    task = load_task(toml)
    split = make_split(task, load_examples(task))
    val, test = {e.input for e in split.val}, {e.input for e in split.test}
    timed = [prompts[0][-1].content for kind, prompts in fake_model.calls if len(prompts) == 1]
    assert timed and all(any(v in text for v in val) for text in timed)
    assert not any(t in text for text in timed for t in test)
    unmeasured = write_task(task_dir / "b")
    unmeasured.write_text(unmeasured.read_text().replace(
        "latency_samples = 2", "latency_samples = 0\nmax_latency_ms = 5"))
    with pytest.raises(ConfigError, match="set latency_samples above 0"):
        load_task(unmeasured)


def test_splits_that_cannot_be_climbed_say_why_before_any_model_call(task_dir, fake_model):
    """Data that is valid line by line but cannot make a climb: one label only, or a
    group_key with too few values for three splits. Each is a DataError naming the data file
    and the real cause, never an internal error from scikit-learn; a negative seed is a
    config error."""
    only_bug = [r for r in ticket_records(40)
                if r["messages"][-1]["content"] == "BUG"]
    with pytest.raises(DataError, match="every train example is labelled BUG") as err:
        climb(write_task(task_dir / "one", records=only_bug))
    assert "BILLING, FEATURE" in err.value.fix
    two_customers = ticket_records(40)
    for i, r in enumerate(two_customers):
        r["customer"] = f"c{i % 2}"
    with pytest.raises(DataError, match="in 2 group\\(s\\) of \\[split\\] group_key 'customer' "
                                        "leave the"):
        climb(write_task(task_dir / "two", records=two_customers))
    assert fake_model.calls == []
    negative = write_task(task_dir / "neg")
    negative.write_text(negative.read_text().replace("seed = 7", "seed = -7"))
    with pytest.raises(ConfigError, match="seed"):
        load_task(negative)


def test_a_climb_with_an_order_key_tests_on_the_newest_tickets(task_dir, fake_model):
    from rung.climb import load_examples, make_split

    records = ticket_records(10)
    for day, record in enumerate(records):
        record["created"] = f"2026-02-{day % 28 + 1:02d}T{day // 28:02d}:00:00"
    toml = write_task(task_dir, records=records)
    toml.write_text(toml.read_text().replace('group_key = "customer"',
                                             'order_key = "created"'))
    task = load_task(toml)
    split = make_split(task, load_examples(task))
    newest = sorted(records, key=lambda r: r["created"])[-len(split.test):]
    assert {e.input for e in split.test} == {r["messages"][0]["content"] for r in newest}
    result = climb(toml)
    assert result.split.hash() == split.hash() and result.results[0].test.score.n == 3


def test_a_teams_own_prompt_is_a_candidate_and_few_shot_builds_on_it(task_dir, fake_model):
    """Only the team's second prompt makes the fake model read the label off the ticket: it
    is chosen on val, sent as written, and the few-shot rung starts from it."""
    mine = "You sort support tickets. Read the ticket and name its kind."

    def rule(prompt):
        if prompt[0].role == "system" and prompt[0].content == mine:
            return next((label for label in LABELS if label.lower() in prompt[-1].content),
                        "BILLING")
        return "BILLING"

    fake_model.rule = rule
    toml = write_task(task_dir, ladder={"skip": ["classifier"], "all": True},
                      extra=f'\n[prompt]\ninstructions = ["Triage it.", {json.dumps(mine)}]\n')
    summary = climb(toml).summary()
    prompt, few_shot = summary["rungs"]
    chosen = [c["label"] for c in prompt["candidates"] if c["chosen"]]
    assert chosen == ['own #2 ("You sort support tickets. Read the…")']
    assert prompt["score"] == 1.0 and len(prompt["candidates"]) == 2 * (4 + 2)  # + calibrated
    assert few_shot["score"] == 1.0  # its demonstrations follow the same system prompt
    sent = [p for kind, prompts in fake_model.calls for p in prompts]
    assert any(p[0].content == mine and len(p) > 2 for p in sent)  # few-shot: mine, then demos
    bad = write_task(task_dir / "bad", extra='\n[prompt]\ninstructions = ["ok", " "]\n')
    with pytest.raises(ConfigError, match="instructions must not hold an empty prompt"):
        load_task(bad)


def test_a_label_with_stray_spaces_is_the_label_it_names(task_dir):
    """A CSV cell's "BILLING " passed the label check but stayed "BILLING " for the
    classifier, the split's strata and the few-shot groups: a fourth class of its own."""
    from rung.climb import load_examples
    from rung.task import load_task

    records = ticket_records()
    for record in records[::4]:
        record["messages"][1]["content"] += " "
    task = load_task(write_task(task_dir, records=records))
    examples = load_examples(task)
    assert {e.output for e in examples} == set(LABELS)
    assert sum(e.output != e.messages[-1].content.strip() for e in examples) == 0


def test_data_of_copies_says_copies_stay_together(task_dir):
    """Forty copies of three tickets: every copy of a ticket goes with it, so val or test is
    empty; raising a fraction cannot help, and the message says so instead."""
    import pytest

    from rung.climb import load_examples, make_split
    from rung.errors import DataError
    from rung.task import load_task

    records = ticket_records(1) * 40
    task = load_task(write_task(task_dir, records=records, group_key=False))
    with pytest.raises(DataError, match="3 of them distinct") as err:
        make_split(task, load_examples(task))
    assert "exact-duplicates" in err.value.fix


def test_the_run_counts_what_every_rung_sent_a_remote_model(task_dir, monkeypatch):
    """`rung eval --rung few-shot` builds the prompt rung on val first; those requests were
    in no rung's `remote` block, so the run's spend read half of what the server was sent.
    The run's `spent` counts everything the climb sent each remote model."""
    from conftest import ticket_records
    from fake_api import FakeVendorAPI

    fake = FakeVendorAPI().start()
    try:
        monkeypatch.setenv("RUNG_TEST_KEY", "sk-test-key-123456789")
        toml = write_task(task_dir, model="openai:gpt-4o-mini", records=ticket_records(8),
                          fractions=(0.7, 0.15, 0.15),
                          extra=f'\n[models.openai]\nbase_url = "{fake.url}/v1"\n'
                                'api_key_env = "RUNG_TEST_KEY"\n')
        result = climb(toml, only="few-shot")
        sent = len(fake.requests)
    finally:
        fake.stop()
    [few_shot] = result.results
    assert 0 < few_shot.remote["requests"] < sent  # the prompt rung's val work is not its own
    spent = result.summary()["spent"]["openai:gpt-4o-mini"]
    assert spent["requests"] == sent and spent["errors"] == 0
    assert spent["dollars"] > few_shot.remote["dollars"]  # the seeds' gpt-4o-mini prices
