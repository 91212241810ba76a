"""The benchmarks measure what they say (issue 14, finding 6): run on a few examples, each
prints a measured ratio (none extrapolated) and proves both sides did identical work. Times
are not asserted; what each side processed is."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _benchmark(name: str):
    """A benchmark script imported as a module (its own folder on the path for its helpers)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCHMARKS))


def _last_json(script: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], capture_output=True,
                          text=True, timeout=900, env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_train_throughput_counts_the_tokens_each_side_really_trained():
    result = _last_json("train_throughput.py", "--examples", "4", "--val", "2", "--batch", "2")
    # counted from the batches each trainer's model saw: the same rows, each record once
    assert result["rows"] == 4
    assert result["tokens_rung"] == result["tokens_baseline"] > 0
    assert result["steps"] == {"rung": 2, "baseline": 2}
    # the baseline groups by length as rung does: the option is set, not only named
    assert result["baseline"].startswith("hf-trainer-group-by-length")
    assert result["same_batches"]
    # the LM head runs on every position, padding included, for the baseline; on the answers
    # only for rung
    head, padded = result["lm_head_rows"], result["padded_positions"]
    assert head["baseline"] == padded["baseline"] >= result["tokens_baseline"]
    assert 0 < head["rung"] < head["baseline"]
    assert 0 < result["mfu"] <= result["hfu"] < 1 and 0 < result["baseline_mfu"] < 1
    assert result["model_flops"]["rung"] < result["model_flops"]["baseline"]


@pytest.mark.slow
def test_audit_speed_measures_its_ratio_on_the_same_examples():
    result = _last_json("audit_speed.py", "--n", "400", "--big", "0")
    assert not [key for key in result if key.endswith("_est")]  # measured, not extrapolated
    assert result["n"] == 400 and result["baseline"] == "sparse-all-pairs"
    seconds = result["similarity_seconds"]
    assert seconds["baseline"] > 0 and seconds["rung"] > 0
    for name, count in result["counts"].items():
        # planted, so each check is compared for real, both ways
        assert count["exact"] > 0 and count["rung"] > 0, name
        assert result["recall"][name] == pytest.approx(count["both"] / count["exact"], abs=1e-3)
        assert result["precision"][name] == pytest.approx(count["both"] / count["rung"],
                                                          abs=1e-3)
        assert result["recall"][name] >= 0.9 and result["precision"][name] >= 0.9, name


def test_audit_speed_baseline_is_exact_jaccard_of_every_pair():
    """The vectorised baseline finds exactly the pairs, and Jaccard values, of a loop over
    every pair, across row blocks."""
    audit_speed = _benchmark("audit_speed")
    chat_records = _benchmark("audit_data").chat_records
    from rung.data.audit.duplicates import _user_text
    from rung.data.audit.similarity import _shingles
    from rung.data.example import Example, Message

    examples = [Example(tuple(Message(m["role"], m["content"]) for m in r["messages"]),
                        line=i + 1) for i, r in enumerate(chat_records(300, seed=3))]
    sets = [_shingles(_user_text(ex), 3) for ex in examples]
    expected = [(i, j, len(a & b) / len(a | b)) for i, a in enumerate(sets)
                for j, b in enumerate(sets) if j > i and len(a & b) / len(a | b) >= 0.8]
    assert len(expected) >= 3  # the planted copies and near-copies
    old = audit_speed.BLOCK
    audit_speed.BLOCK = 7  # many blocks, one cut through the middle of the pairs
    try:
        found = sorted(audit_speed.all_pairs(examples, 0.8))
    finally:
        audit_speed.BLOCK = old
    assert [(i, j) for i, j, _ in found] == [(i, j) for i, j, _ in expected]
    assert [s for _, _, s in found] == pytest.approx([s for _, _, s in expected])


@pytest.mark.slow
def test_generation_throughput_feeds_the_shared_prefix_once_for_the_same_answers():
    result = _last_json("generation_throughput.py", "--n", "6", "--k", "2")
    assert result["identical"] and result["n"] == 6
    shared = result["shared_prefix_tokens"]
    assert shared > 50  # instruction + two demonstrations
    # every prompt but the one that fills the cache skips the prefix
    fed = result["tokens_fed"]
    assert fed["baseline"] - fed["rung"] == (6 - 1) * shared
    assert result["baseline"].startswith("hf-generate-left-padded")


def test_cheap_end_finds_the_tune_for_this_split_not_any_tune(task_dir, fake_model):
    """A finished tune of another split or other settings is not picked up as this one; the
    folder looked in is the one the fine-tune rung names for the prompt the climb keeps."""
    from conftest import write_task
    from rung.climb import climb, load_examples, make_split
    from rung.finetune.folder import tune_folder
    from rung.models.registry import fingerprint
    from rung.rungs.finetune import FineTuneRung
    from rung.task import load_task

    cheap_end = _benchmark("cheap_end")
    toml = write_task(task_dir)
    folder, finished = cheap_end.tune_for_split(toml)
    assert folder.parent == task_dir / ".rung" / "tunes" and not finished
    other = folder.parent / "0123456789abcdef" / "artifact"  # another key's finished tune
    other.mkdir(parents=True)
    (other / "tune.json").write_text("{}")
    assert cheap_end.tune_for_split(toml) == (folder, False)

    task = load_task(toml)
    split = make_split(task, load_examples(task))
    prompt = next(r for r in climb(toml).results if r.rung == "prompt")
    rung = FineTuneRung(prompt.pipeline, task.store_dir / "tunes")
    base = rung.tuning_base(task)
    assert folder == tune_folder(rung.tunes, task, base, split.train, split.val,
                                 fingerprint(base.model, base_dir=task.root))


@pytest.mark.slow
def test_eval_throughput_scores_the_same_tokens_for_the_same_answers():
    result = _last_json("eval_throughput.py", "--n", "3", "--k", "2")
    assert result["identical"] and result["similar_identical"]
    assert result["n"] == 3 and result["prompt_tokens"] > 3 * 400  # instruction + 2 demos each
    # each of the five labels scored with the end-of-turn token after it
    assert len(result["label_tokens"]) == 5 and min(result["label_tokens"]) >= 2
    # the baseline computed the same log-likelihoods as rung, not only the same argmax
    assert result["max_logprob_gap"] < 1e-3
    assert result["baseline"].startswith("per-example-prompt-cache")
