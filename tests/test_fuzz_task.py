"""Property-based fuzzing of rung.toml (issue 14, finding 7): a task file with any value in
any key, unknown keys, broken TOML, cut-off text or bytes that are not text loads, or ends in
a ConfigError naming the file (and the line, where there is one) with a fix. Never a
traceback. Bounded for `make test`; RUNG_FUZZ_EXAMPLES=5000 runs a long random search.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import fuzz_settings, ticket_records
from rung.errors import RungError
from rung.task import TaskSpec, load_task

# hypothesis warns when a failing case (a 1 MB line) is long to print; that is the point
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")

TASK = {
    "task": {"name": "fuzz", "kind": "classification", "instruction": "Classify it.",
             "labels": ["BILLING", "BUG", "FEATURE"], "data": "tickets.jsonl",
             "metric": "accuracy", "target": 0.9, "seed": 7},
    "split": {"group_key": "customer"},
    "models": {"small": "smollm2-135m-instruct"},
    "few_shot": {"k": [3, 6]},
    "eval": {"bootstrap": 200, "latency_samples": 2},
    "finetune": {"rank": 4, "epochs": 1},
}
KEYS = {"task": ["name", "kind", "instruction", "labels", "data", "metric", "target", "seed",
                 "corpus", "schema", "output"],
        "split": ["group_key", "train", "val", "test"],
        "models": ["small", "large", "concurrency"],
        "few_shot": ["k", "selection"], "eval": ["bootstrap", "latency_samples", "val_limit",
                                                  "decide_on", "max_new_tokens"],
        "finetune": ["rank", "alpha", "epochs", "method", "learning_rate", "batch_size",
                     "target_modules", "max_seq_length"],
        "ladder": ["skip", "all"], "rag": ["k", "retriever", "shots"],
        "classifier": ["features", "models", "C"], "costs": ["cpu_hour"],
        "audit": ["max_seq_length"], "nonsense": ["x"]}

words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
scalar = (st.booleans() | st.integers(-2**70, 2**70) | st.floats() | words
          | st.sampled_from(["classification", "generation", "extraction", "lora", "qlora",
                             "full", "../..", "/etc/passwd", "hf:org/name", "a/b", "similar",
                             "tfidf", "lower-bound", "rouge_l", "x.py:f", ""]))
value = st.recursive(scalar, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(words, inner, max_size=3), max_leaves=8)


def toml_value(v: object) -> str:
    """TOML for a value: strings through JSON escapes (TOML basic strings share them), inline
    arrays and tables; NaN and infinities as TOML writes them."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    assert isinstance(v, dict)
    return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)} = {toml_value(x)}"
                           for k, x in v.items()) + "}"


def toml_text(doc: dict[str, dict[str, object]]) -> str:
    return "".join(f"[{table}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in body.items())
                   + "\n" for table, body in doc.items())


@st.composite
def task_file(draw) -> bytes:
    doc = {table: dict(body) for table, body in TASK.items()}
    for _ in range(draw(st.integers(0, 4))):
        table = draw(st.sampled_from(sorted(KEYS)))
        key = draw(st.sampled_from(KEYS[table]))
        action = draw(st.sampled_from(["set", "set", "drop", "drop-table"]))
        if action == "set":
            doc.setdefault(table, {})[key] = draw(value)
        elif action == "drop":
            doc.get(table, {}).pop(key, None)
        else:
            doc.pop(table, None)
    data = toml_text(doc).encode("utf-8")
    damage = draw(st.sampled_from(["none", "none", "none", "truncate", "insert", "binary",
                                   "duplicate"]))
    if damage == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif damage == "insert":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"[", b"]", b'"', b"=", b"\n[task]\n",
                                                 b"\x00", b"'''", b"#"])) + data[at:]
    elif damage == "binary":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    elif damage == "duplicate":
        data = data + b"\n[task]\nname = \"again\"\n"
    return data


@fuzz_settings(150)
@given(data=task_file())
def test_any_task_file_loads_or_ends_in_a_named_config_error(data):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "tickets.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in ticket_records(2)))
        path = root / "rung.toml"
        path.write_bytes(data)
        try:
            task = load_task(path)
        except RungError as err:  # every refusal names the file and says what to do
            assert err.file is not None and Path(err.file).name in {"rung.toml",
                                                                    "tickets.jsonl"}, err
            assert err.fix or getattr(err, "problems", None), err
            if err.line is not None:
                assert 1 <= err.line <= data.count(b"\n") + 1, err
            return
        assert isinstance(task, TaskSpec) and task.path == path.resolve()
