"""`rung compare` and `rung gate` (issue 17): two runs paired on one test split, McNemar's
exact test on the examples that changed, and a CI gate that fails a worse candidate."""

from __future__ import annotations

import json
import re
import textwrap
from math import comb
from pathlib import Path

from typer.testing import CliRunner

from conftest import LABELS, write_task
from rung import __version__
from rung.cli import app
from rung.compare import changes, describe_changes

runner = CliRunner()
BROKEN = "Answer BILLING whatever the ticket says."


def _rule(prompt):
    """Reads the label off the ticket, unless the instruction is the broken one."""
    if BROKEN in prompt[0].content:
        return "BILLING"
    text = prompt[-1].content.lower()
    return next((label for label in LABELS if label.lower() in text), "BILLING")


def _climb(toml) -> str:
    done = runner.invoke(app, ["climb", str(toml), "--json"])
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)["run_id"]


def _exact_mcnemar(b_only: int, a_only: int) -> float:
    """The closed form: two-sided binomial tail of the discordant pairs at 1/2."""
    n, k = b_only + a_only, min(b_only, a_only)
    return min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2 ** n)


def test_compare_lists_the_flips_and_mcnemars_exact_p_value(task_dir, fake_model):
    fake_model.rule = _rule
    toml = write_task(task_dir)
    good = _climb(toml)
    toml.write_text(toml.read_text().replace(
        'instruction = "Classify the ticket as BILLING, BUG or FEATURE."',
        f'instruction = "{BROKEN}"'))
    broken = _climb(toml)
    done = runner.invoke(app, ["compare", good, broken, "--task", str(toml), "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["config_changed"] and not report["data_changed"]
    assert report["settings"] == [{"key": "[task] instruction",
                                   "a": "Classify the ticket as BILLING, BUG or FEATURE.",
                                   "b": BROKEN}]
    assert report["settings_one_side"] == [] and report["rung_versions"] == [__version__] * 2
    said = runner.invoke(app, ["compare", good, broken, "--task", str(toml)])
    assert said.exit_code == 0 and said.stdout.startswith("changed: [task] instruction: ")
    prompt = report["rungs"]["prompt"]
    worse, better = prompt["right_to_wrong"], prompt["wrong_to_right"]
    assert len(worse) > 0 and all(f["b"] == "BILLING" and f["a"] == f["expected"] for f in worse)
    assert prompt["p_value"] == _exact_mcnemar(len(better), len(worse))
    assert prompt["difference"] == round((len(better) - len(worse)) / prompt["n"], 4)
    assert report["overall"]["a"]["rung"] == "prompt"

    runs = json.loads(runner.invoke(app, ["runs", str(toml), "--json"]).stdout)
    assert {(r["run_id"], r["status"]) for r in runs} == {(good, "done"), (broken, "done")}

    toml.write_text(toml.read_text().replace("seed = 7", "seed = 8"))  # another split
    reshuffled = _climb(toml)
    refused = runner.invoke(app, ["compare", good, reshuffled, "--task", str(toml)])
    assert refused.exit_code == 2 and "different test splits" in refused.stderr


def test_the_gate_fails_a_broken_prompt_and_passes_a_rerun_of_the_baseline(task_dir,
                                                                          fake_model, tmp_path):
    fake_model.rule = _rule
    toml = write_task(task_dir)
    baseline = _climb(toml)
    pinned = runner.invoke(app, ["runs", str(toml), "--pin", baseline, "--json"])
    assert pinned.exit_code == 0 and json.loads(pinned.stdout)[0]["pinned"]
    original = toml.read_text()
    toml.write_text(original.replace(
        'instruction = "Classify the ticket as BILLING, BUG or FEATURE."',
        f'instruction = "{BROKEN}"'))
    comment = tmp_path / "comment.md"
    failed = runner.invoke(app, ["gate", str(toml), "--markdown", str(comment)])
    assert failed.exit_code == 1, failed.output
    assert comment.read_text().startswith("**rung gate FAILS**")
    assert "right to wrong:" in comment.read_text()
    assert "the gate fails on any drop at p < 0.05" in comment.read_text()  # not "below -0"
    assert "- changed since the baseline: [task] instruction: " in comment.read_text()
    toml.write_text(original)
    passed = runner.invoke(app, ["gate", str(toml), "--json"])  # the baseline, climbed again
    assert passed.exit_code == 0, passed.output
    verdict = json.loads(passed.stdout)
    assert verdict["difference"] == 0 and not verdict["fails"]
    assert verdict["changes"]["settings"] == [] and not verdict["changes"]["config_changed"]
    assert verdict["a"]["run"] == baseline and verdict["b"]["run"] != baseline
    # a tolerance lets a small significant drop through; none here is small
    named = runner.invoke(app, ["gate", str(toml), "--baseline", baseline, "--candidate",
                                verdict["b"]["run"], "--tolerance", "0.05", "--json"])
    assert named.exit_code == 0, named.output


def test_the_gate_without_a_baseline_says_how_to_name_one(task_dir, fake_model):
    toml = write_task(task_dir)
    _climb(toml)
    done = runner.invoke(app, ["gate", str(toml)])
    assert done.exit_code == 2 and "--pin" in done.stderr


def _row(settings, *, config="c1", data="d1", version="0.1.0"):
    return {"settings_json": None if settings is None else json.dumps(settings),
            "config_hash": config, "data_hash": data, "rung_version": version}


def test_changes_name_each_key_and_keep_a_new_rungs_defaults_apart():
    old = {"rag": {"k": [1, 3], "methods": ["bm25"]}, "models": {"openai": {"base_url": None}}}
    new = {"rag": {"k": [1, 3, 5], "methods": ["bm25"], "shots": [0]},
           "models": {"openai": {"base_url": "http://127.0.0.1:8000/v1"}}}
    defaults = {"[rag] shots": [0], "[split] order_key": None}
    found = changes(_row(old), _row(new, config="c2", data="d2", version="0.2.0"), defaults)
    assert found["settings"] == [
        {"key": "[rag] k", "a": [1, 3], "b": [1, 3, 5]},
        {"key": "[models] openai.base_url", "a": None, "b": "http://127.0.0.1:8000/v1"}]
    assert found["settings_one_side"] == ["[rag] shots"] and found["config_changed"]
    assert describe_changes(found) == ('[rag] k: [1, 3] -> [1, 3, 5]; [models] openai.base_url: '
                                       'null -> "http://127.0.0.1:8000/v1"; the data file '
                                       'changed; rung 0.1.0 -> 0.2.0')
    # a key only a newer rung knows is not a change anyone made
    only_new = changes(_row(old), _row({**old, "split": {"order_key": None}}, config="c2"),
                       defaults)
    assert not only_new["config_changed"] and only_new["settings_one_side"] == ["[split] order_key"]
    assert describe_changes(only_new) == "same settings, data and rung"
    # but one set away from its default, or one with no default (a model's prices), is
    set_now = changes(_row(old), _row({**old, "split": {"order_key": "created"},
                                       "costs": {"api": {"mine": {"input_per_million": 1}}}}),
                      defaults)
    assert set_now["config_changed"] and set_now["settings_one_side"] == []
    assert [c["key"] for c in set_now["settings"]] == ["[split] order_key",
                                                       "[costs] api.mine.input_per_million"]


def test_runs_stored_before_settings_were_kept_compare_by_hash():
    found = changes(_row(None), _row({"rag": {"k": [1]}}, config="c2"))
    assert found["settings"] is None and found["config_changed"]
    assert "which keys is not known" in describe_changes(found)
    assert not changes(_row(None), _row(None))["config_changed"]


def _graded_task(folder) -> Path:
    """A generation task scored by ROUGE-L: the answers are long enough that a near-miss
    keeps most of its score while exact match calls it wrong."""
    folder.mkdir(parents=True, exist_ok=True)
    records = [{"messages": [{"role": "user", "content": f"Where is order {i}?"},
                             {"role": "assistant",
                              "content": f"order {i} left the warehouse on day {i % 7} by van"}]}
               for i in range(80)]
    (folder / "data.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    (folder / "rung.toml").write_text(textwrap.dedent("""\
        [task]
        name = "orders"
        kind = "generation"
        instruction = "Say where the order is."
        data = "data.jsonl"
        metric = "rouge_l"
        target = 0.99

        [models]
        small = "fake"

        [ladder]
        skip = ["few-shot"]

        [eval]
        latency_samples = 0
        bootstrap = 200
        """))
    return folder / "rung.toml"


def test_the_gate_fails_a_drop_in_a_graded_metric_that_exact_match_cannot_see(tmp_path,
                                                                             fake_model):
    """Both runs are wrong by exact match on every example, so a gate on right/wrong would
    pass anything; on ROUGE-L per example the collapse is plain."""
    def near_miss(prompt):
        number = int(re.search(r"order (\d+)", prompt[-1].content).group(1))
        return f"order {number} left the warehouse on day {number % 7} by lorry"

    fake_model.rule = near_miss
    toml = _graded_task(tmp_path / "t")
    baseline = _climb(toml)
    toml.write_text(toml.read_text().replace("Say where the order is.", "Refuse."))
    fake_model.rule = lambda prompt: ("I cannot help" if "Refuse." in prompt[0].content
                                      else near_miss(prompt))
    candidate = _climb(toml)
    done = runner.invoke(app, ["gate", str(toml), "--baseline", baseline, "--candidate",
                               candidate, "--json"])
    assert done.exit_code == 1, done.output
    verdict = json.loads(done.stdout)
    assert verdict["metric"] == "rouge_l" and not verdict["binary"]
    assert verdict["test"] == "sign-flip permutation test on per-example rouge_l"
    assert verdict["a"]["score"] > 0.8 and verdict["b"]["score"] < 0.1
    # every example worse: of the 2**n sign patterns only all-minus and all-plus are as extreme
    assert verdict["difference"] < -0.7 and verdict["p_value"] == 2 * 0.5 ** verdict["n"]
    assert len(verdict["right_to_wrong"]) == verdict["n"] and verdict["wrong_to_right"] == []
    assert verdict["right_to_wrong"][0]["values"][1] < 0.1
    said = runner.invoke(app, ["gate", str(toml), "--baseline", baseline, "--candidate",
                               candidate])
    assert "(rouge_l)" in said.stdout and f"worse on {verdict['n']} examples" in said.stdout


def test_compare_reports_and_tests_macro_f1_as_itself(task_dir, fake_model):
    fake_model.rule = _rule
    toml = write_task(task_dir)
    toml.write_text(toml.read_text().replace('metric = "accuracy"', 'metric = "macro_f1"'))
    good = _climb(toml)
    toml.write_text(toml.read_text().replace(
        'instruction = "Classify the ticket as BILLING, BUG or FEATURE."',
        f'instruction = "{BROKEN}"'))
    broken = _climb(toml)
    report = json.loads(runner.invoke(app, ["compare", good, broken, "--task", str(toml),
                                            "--json"]).stdout)
    prompt = report["rungs"]["prompt"]
    # all BILLING: F1 of BILLING only, a third of it at most, where accuracy is BILLING's share
    assert prompt["metric"] == "macro_f1" and prompt["b"]["score"] < 1 / 3
    accuracy_b = 1 - (len(prompt["right_to_wrong"]) - len(prompt["wrong_to_right"])) / prompt["n"]
    assert prompt["b"]["score"] != round(accuracy_b, 4)
    # the difference and its test are about macro-F1, not the label accuracy behind it
    assert prompt["difference"] == round(prompt["b"]["score"] - prompt["a"]["score"], 4)
    assert prompt["test"].startswith("permutation test on macro-F1")
    said = runner.invoke(app, ["compare", good, broken, "--task", str(toml)])
    assert f"{prompt['difference']:+.3f}, 95% CI" in said.stdout


def test_a_ticket_held_twice_is_compared_twice(task_dir, fake_model):
    """Every ticket twice in the data: copies land in one split together, both answered and
    scored; keyed by id alone, the comparison held half the test examples the runs scored."""
    from conftest import ticket_records

    fake_model.rule = _rule
    records = ticket_records()
    toml = write_task(task_dir, records=records + [json.loads(json.dumps(r)) for r in records])
    good = _climb(toml)
    toml.write_text(toml.read_text().replace(
        'instruction = "Classify the ticket as BILLING, BUG or FEATURE."',
        f'instruction = "{BROKEN}"'))
    broken = _climb(toml)
    report = json.loads(runner.invoke(
        app, ["compare", good, broken, "--task", str(toml), "--json"]).stdout)
    prompt = report["rungs"]["prompt"]
    scored = json.loads(runner.invoke(app, ["runs", str(toml), "--json"]).stdout)
    assert prompt["n"] % 2 == 0 and prompt["n"] >= 8
    worse = prompt["right_to_wrong"]
    assert len({f["example_id"] for f in worse}) * 2 == len(worse)  # each copy, once
    assert {r["run_id"] for r in scored} == {good, broken}


def test_the_gate_fails_when_what_the_candidate_would_ship_got_worse(task_dir, fake_model):
    """A change that lowers the target lets the cheap, worse prompt be the recommendation.
    With the whole ladder climbed the candidate still measured few-shot, so the gate compared
    few-shot with few-shot and passed while what would ship fell from 1.0 to a third."""
    def rule(prompt):  # right only with demonstrations; the plain prompt says BILLING
        shown = any(m.role == "assistant" for m in prompt)
        text = prompt[-1].content.lower()
        return next((l for l in LABELS if l.lower() in text), "BILLING") if shown else "BILLING"

    fake_model.rule = rule
    toml = write_task(task_dir, ladder={"skip": ["classifier"], "all": True})
    baseline = _climb(toml)
    toml.write_text(toml.read_text().replace("target = 0.9", "target = 0.05"))
    candidate = _climb(toml)
    said = runner.invoke(app, ["gate", str(toml), "--baseline", baseline, "--candidate",
                               candidate, "--json"])
    assert said.exit_code == 1, said.output
    verdict = json.loads(said.stdout)
    assert verdict["b"]["rung"] == "few-shot" and verdict["difference"] == 0  # the same rung
    shipped = verdict["shipped"]
    assert shipped["b"]["rung"] == "prompt" and shipped["difference"] < -0.3
    assert verdict["fails"]
    text = runner.invoke(app, ["gate", str(toml), "--baseline", baseline, "--candidate",
                               candidate])
    assert "the candidate would ship prompt:" in text.stdout


def test_the_gate_comment_redacts_what_the_answers_hold():
    """The pull-request comment quotes test examples and answers; it is posted where the test
    set is not, so personal data in them is redacted, as rung serve's log is."""
    from rung.compare import markdown

    flip = {"line": 7, "expected": "mail jane.doe@example.com a refund",
            "a": "mail jane.doe@example.com a refund", "b": "call +44 20 7946 0958 now"}
    verdict = {"a": {"rung": "prompt", "run": "r1", "score": 0.9},
               "b": {"rung": "prompt", "run": "r2", "score": 0.8}, "fails": True,
               "metric": "exact_match", "n": 10, "difference": -0.1, "ci": [-0.2, 0.0],
               "p_value": 0.03, "test": "McNemar", "tolerance": 0.0, "alpha": 0.05,
               "right_to_wrong": [flip], "wrong_to_right": [], "binary": True,
               "changes": {"settings": [], "config_changed": False, "data_changed": False,
                           "rung_versions": ["1", "1"]}}
    comment = markdown(verdict)
    assert "jane.doe" not in comment and "7946" not in comment
    assert "[EMAIL]" in comment and "[PHONE]" in comment and "line 7" in comment
