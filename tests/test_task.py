from pathlib import Path

import pytest

from conftest import write_task
from rung.errors import ConfigError, ProblemList, RungError
from rung.task import load_task

EXAMPLES = sorted(Path(__file__).resolve().parents[1].glob("examples/*/rung.toml"))


def test_valid_task_loads_with_defaults(task_dir):
    spec = load_task(write_task(task_dir))
    assert spec.task.kind == "classification"
    assert spec.split.group_key == "customer"
    assert (spec.split.train, spec.split.val, spec.split.test) == (0.8, 0.1, 0.1)
    assert spec.data_path == (task_dir / "tickets.jsonl").resolve()
    assert spec.store_dir == task_dir / ".rung"
    # a folder works as well as the file, and the config hash is stable
    assert load_task(task_dir).config_hash() == spec.config_hash()


def _replace(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new))


def test_unknown_key_names_its_line(task_dir):
    toml = write_task(task_dir)
    _replace(toml, 'seed = 7', 'seed = 7\nsede = 8')
    with pytest.raises(ConfigError) as info:
        load_task(toml)
    err = info.value
    assert "unknown key 'task.sede'" in str(err)
    assert err.line == toml.read_text().splitlines().index("sede = 8") + 1
    assert "spelling" in err.fix


def test_metric_must_fit_kind(task_dir):
    toml = write_task(task_dir)
    _replace(toml, 'metric = "accuracy"', 'metric = "exact_match"')
    with pytest.raises(ConfigError) as info:
        load_task(toml)
    assert "does not fit a classification task" in str(info.value)
    assert "accuracy" in str(info.value)
    # a check across the table's keys points at the key it is about, not at [task]
    line = [t.strip() for t in toml.read_text().splitlines()].index('metric = "exact_match"') + 1
    assert info.value.line == line and info.value.fix == "change 'task.metric'"


def test_every_problem_is_reported_at_once(task_dir):
    toml = write_task(task_dir)
    _replace(toml, 'target = 0.9', 'target = 7')
    _replace(toml, 'small = "fake"', 'smal = "fake"')
    with pytest.raises(ProblemList) as info:
        load_task(toml)
    text = str(info.value)
    assert "task.target" in text and "unknown key 'models.smal'" in text
    assert "missing key 'models.small'" in text
    assert len(info.value.problems) == 3
    assert all(p.line for p in info.value.problems)


def test_a_check_across_keys_is_not_held_back_by_a_bad_key_beside_it(task_dir):
    """pydantic runs [task]'s metric-fits-kind check only when every key of [task] passed;
    rung runs it on the keys that did, so both problems come in one round."""
    toml = write_task(task_dir)
    _replace(toml, 'target = 0.9', 'target = 7')
    _replace(toml, 'metric = "accuracy"', 'metric = "rouge_l"')
    _replace(toml, 'group_key = "customer"', 'group_key = 3\ntest = 0.3')
    with pytest.raises(ProblemList) as info:
        load_task(toml)
    text = str(info.value)
    assert len(info.value.problems) == 4, text
    assert "task.target" in text and "metric 'rouge_l' does not fit a classification" in text
    assert "split.group_key" in text and "must add up to 1.0" in text
    metric = next(p for p in info.value.problems if "rouge_l" in p.message)
    assert toml.read_text().splitlines()[metric.line - 1].strip().startswith("metric")
    # a check that needs the failed key is not run on a default in its place: test = 0 is
    # the problem, not a sum of 0.8 + 0.2 + 0.1 nobody wrote
    _replace(toml, 'test = 0.3', 'test = 0')
    _replace(toml, 'group_key = 3', 'train = 0.8\nval = 0.2')
    with pytest.raises(RungError) as info:
        load_task(toml)
    assert "add up to 1.0" not in str(info.value) and "split.test" in str(info.value)


def test_missing_files_come_in_the_same_round_as_bad_keys(task_dir):
    """A new user's first rung.toml: a typo in a key, a data path and a corpus path that are
    not there, and a schema that is a folder. One run lists all four, each with its line."""
    toml = write_task(task_dir)
    _replace(toml, 'target = 0.9', 'target = 7')
    _replace(toml, 'data = "tickets.jsonl"',
             'data = "tickets.json"\ncorpus = "docs"\nschema = "."')
    with pytest.raises(ProblemList) as info:
        load_task(toml)
    text = str(info.value)
    assert len(info.value.problems) == 4, text
    assert "task.target" in text and "data file 'tickets.json' not found" in text
    assert "corpus folder 'docs' not found" in text and "schema file '.' not found" in text
    lines = toml.read_text().splitlines()
    for problem in info.value.problems:
        key = problem.message.split("'")[0].split()[0].removeprefix("task.")
        assert lines[problem.line - 1].strip().startswith(
            {"data": "data", "corpus": "corpus", "schema": "schema"}.get(key, "target")), problem
    # the keys mended, the files are still reported, together, once the tables load
    _replace(toml, 'target = 7', 'target = 0.9')
    with pytest.raises(ProblemList) as info:
        load_task(toml)
    assert len(info.value.problems) == 3


def test_bad_toml_and_missing_data(task_dir, tmp_path):
    toml = write_task(task_dir)
    toml.write_text(toml.read_text().replace('name = "tiny-tickets"', 'name = "tiny'))
    with pytest.raises(ConfigError) as info:
        load_task(toml)
    assert "not valid TOML" in str(info.value) and info.value.line == 2

    toml = write_task(tmp_path / "other")
    (tmp_path / "other" / "tickets.jsonl").unlink()
    with pytest.raises(ConfigError) as info:
        load_task(toml)
    assert "tickets.jsonl" in str(info.value) and info.value.line == 6

    with pytest.raises(RungError, match="no task file"):
        load_task(tmp_path / "nowhere")


def test_classification_needs_labels(task_dir):
    toml = write_task(task_dir)
    _replace(toml, 'labels = ["BILLING", "BUG", "FEATURE"]', 'labels = ["BILLING"]')
    with pytest.raises(ConfigError, match="at least two labels"):
        load_task(toml)


def test_split_fractions_must_add_up(task_dir):
    toml = write_task(task_dir)
    _replace(toml, '[split]\n', '[split]\ntrain = 0.9\n')
    with pytest.raises(ConfigError, match=r"add up to 1.0, not 1.1 \(0.9 \+ 0.1 \+ 0.1\)"):
        load_task(toml)


def test_a_misspelt_model_is_refused_before_any_work_with_its_line(task_dir, fake_model):
    from rung.climb import climb
    from rung.dry_run import dry_run

    toml = write_task(task_dir)
    _replace(toml, 'small = "fake"', 'small = "smollm2-135m-instrct"\nlarge = "org/name"')
    for run in (climb, dry_run):
        with pytest.raises(ProblemList) as info:
            run(toml)
        first, second = info.value.problems
        assert "did you mean 'smollm2-135m-instruct'" in first.message and first.line
        assert "no such model folder 'org/name'" in second.message and 'hf:org/name' in second.fix
    assert fake_model.calls == [] and not (task_dir / ".rung" / "runs.db").exists()


def test_a_past_tune_that_is_not_there_is_refused_before_any_rung(task_dir, fake_model):
    from rung.climb import climb

    with pytest.raises(ConfigError, match="no run 'NOPE'"):
        climb(write_task(task_dir), tune_from="NOPE")
    assert fake_model.calls == []


@pytest.mark.parametrize("toml", EXAMPLES, ids=lambda p: p.parent.name)
def test_every_shipped_example_is_valid(toml):
    from rung.climb import load_examples, make_split

    spec = load_task(toml)
    examples = load_examples(spec)
    split = make_split(spec, examples)
    assert len(split.test) >= 50, "a shipped example needs a test split big enough to measure"


def test_examples_exist():
    assert EXAMPLES, "examples/*/rung.toml must exist"


def test_generation_metrics_and_custom_metric_references(task_dir, tmp_path):
    toml = write_task(task_dir)
    _replace(toml, 'kind = "classification"', 'kind = "generation"')
    _replace(toml, 'metric = "accuracy"', 'metric = "rouge_l"')
    assert load_task(toml).task.metric == "rouge_l"
    (task_dir / "m.py").write_text("def score(e, p):\n    return 1.0\n")
    _replace(toml, 'metric = "rouge_l"', 'metric = "m.py:score"')
    assert load_task(toml).task.metric == f"{task_dir.resolve() / 'm.py'}:score"
    _replace(toml, 'metric = "m.py:score"', 'metric = "m.py:nothing"')
    with pytest.raises(ConfigError) as info:
        load_task(toml)
    assert "nothing" in str(info.value) and info.value.line == 7


def test_a_custom_metric_file_is_found_from_any_working_directory(task_dir, tmp_path, monkeypatch):
    from rung.eval.metrics import score_predictions

    toml = write_task(task_dir)
    (task_dir / "m.py").write_text("def half(e, p):\n    return 0.5\n")
    _replace(toml, 'metric = "accuracy"', 'metric = "m.py:half"')
    monkeypatch.chdir(tmp_path)
    spec = load_task(toml)
    assert score_predictions(spec.task.metric, ["a", "b"], ["a", "c"]).value == 0.5


def test_a_custom_metric_under_the_home_folder_is_found_when_scoring(task_dir, tmp_path,
                                                                     monkeypatch):
    """~ was expanded when the metric was checked but not when it was anchored: the task
    loaded, and evaluation looked for <task>/~/m.py."""
    from rung.eval.metrics import score_predictions

    home = tmp_path / "home"
    home.mkdir()
    (home / "m.py").write_text("def half(e, p):\n    return 0.5\n")
    monkeypatch.setenv("HOME", str(home))
    toml = write_task(task_dir)
    _replace(toml, 'metric = "accuracy"', 'metric = "~/m.py:half"')
    monkeypatch.chdir(tmp_path)
    spec = load_task(toml)
    assert score_predictions(spec.task.metric, ["a", "b"], ["a", "c"]).value == 0.5
    assert spec.task.metric == f"{home / 'm.py'}:half"  # HOME may differ where it is served


def test_a_large_model_no_rung_will_use_is_not_asked_for(task_dir, fake_model):
    """rung eval --rung prompt, or a ladder that skips the bigger model, does not need
    [models] large to resolve; a climb that may run it does."""
    from rung.climb import check_models, left_out

    toml = write_task(task_dir)
    _replace(toml, 'small = "fake"', 'small = "fake"\nlarge = "not-downloaded-yet"')
    task = load_task(toml)
    check_models(task, left_out(task, "prompt", None))  # nothing raised
    with pytest.raises(ConfigError, match="models.large: unknown model"):
        check_models(task, left_out(task, None, None))


def test_the_fine_tune_defaults_are_the_seeds():
    """LoRA r=16 with alpha twice the rank, dropout 0.05, on the attention and MLP
    projections; 3 epochs at batch 4 x accumulation 4, warmup 5%, cosine, decay 0.01."""
    from rung.task import FineTuneTable

    table = FineTuneTable()
    assert (table.method, table.rank, table.alpha, table.dropout) == ("lora", 16, 32, 0.05)
    assert {"q_proj", "v_proj"} <= set(table.target_modules)
    assert (table.epochs, table.batch_size, table.gradient_accumulation) == (3.0, 4, 4)
    assert (table.warmup_ratio, table.scheduler, table.weight_decay) == (0.05, "cosine", 0.01)
    assert FineTuneTable(rank=8).alpha == 16 and FineTuneTable(rank=64).alpha == 128
    assert FineTuneTable(rank=8, alpha=8).alpha == 8  # set, it is kept


def test_a_byte_order_mark_an_empty_file_and_a_check_across_keys_each_read_right(task_dir):
    """Notepad saves rung.toml with a BOM (the data readers took one already); an empty file
    names the tables it lacks; a check across a table's keys points at the key it is about
    (C, not features on the line above it)."""
    toml = write_task(task_dir)
    text = toml.read_text()
    toml.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert load_task(toml).task.name == "tiny-tickets"
    toml.write_text("")
    with pytest.raises(ProblemList) as err:
        load_task(toml)
    assert [p.message for p in err.value.problems] == ["missing table [task]",
                                                       "missing table [models]"]
    toml.write_text(text + '\n[classifier]\nfeatures = ["tfidf"]\nC = [1.0, -2]\n')
    with pytest.raises(ConfigError) as err:
        load_task(toml)
    c_line = toml.read_text().splitlines().index("C = [1.0, -2]") + 1
    assert err.value.line == c_line and "C must be a non-empty list of positive" in str(err.value)


def test_a_data_file_handed_to_climb_is_named_as_such(tmp_path):
    """`rung climb data.csv` said "not valid TOML: Expected '='", which sends a new user to
    fix quotes in their CSV."""
    data = tmp_path / "tickets.csv"
    data.write_text("text,label\nmy card was charged twice,BILLING\n")
    with pytest.raises(ConfigError) as refused:
        load_task(data)
    assert "this is not a task file" in refused.value.message
    assert 'data = "tickets.csv"' in refused.value.fix and f"rung audit {data}" in refused.value.fix
    broken = tmp_path / "rung.toml"
    broken.write_text("[task\n")
    with pytest.raises(ConfigError, match="not valid TOML"):  # a task file keeps its message
        load_task(broken)


def test_small_mistakes_in_rung_toml_get_a_fix_that_names_the_right_thing(task_dir):
    """A new user's slips: numbers as labels (said twice as "Input should be a valid string"),
    a misspelt key or metric (the metric went unreported while the labels were wrong), a
    label with a stray space (it matched no example)."""
    toml = write_task(task_dir)
    text = toml.read_text()
    toml.write_text(text.replace('labels = ["BILLING", "BUG", "FEATURE"]', "labels = [0, 1]")
                    .replace('metric = "accuracy"', 'metric = "acuracy"')
                    .replace("[split]\n", "[split]\ntrian = 0.8\n"))
    with pytest.raises(ProblemList) as found:
        load_task(toml)
    said = [(p.message, p.fix) for p in found.value.problems]
    assert ("task.labels: holds numbers where text is wanted",
            'quote each one: labels = ["0", "1"]') in said
    assert [m for m, _ in said].count("task.labels: holds numbers where text is wanted") == 1
    assert any(m == "unknown key 'split.trian' (did you mean 'train'?)" for m, _ in said)
    assert any(m.startswith("task.metric: unknown metric 'acuracy' (did you mean 'accuracy'?)")
               for m, _ in said)
    toml.write_text(text.replace('"BILLING", "BUG"', '"BILLING ", "BUG"')
                    .replace('metric = "accuracy"', 'metric = "rouge_l"'))
    with pytest.raises(ConfigError, match="metric 'rouge_l' does not fit a classification task"):
        load_task(toml)
    toml.write_text(text.replace('"BILLING", "BUG"', '"BILLING ", "BUG"'))
    assert load_task(toml).task.labels == ["BILLING", "BUG", "FEATURE"]
