"""An extraction task end to end: JSON answers, a JSON Schema in rung.toml, format failures."""

import json
import textwrap

import pytest

from rung.climb import climb
from rung.errors import ConfigError
from rung.task import load_task

SCHEMA = {"type": "object", "properties": {"amount": {"type": "number"}}, "required": ["amount"]}


def _task(folder, *, metric="json_schema", schema="schema.json"):
    folder.mkdir(parents=True, exist_ok=True)
    records = [
        {"messages": [{"role": "user", "content": f"I paid {i} euros"},
                      {"role": "assistant", "content": json.dumps({"amount": i})}]}
        for i in range(60)
    ]
    (folder / "data.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    (folder / "schema.json").write_text(json.dumps(SCHEMA))
    schema_line = f'schema = "{schema}"\n' if schema else ""
    (folder / "rung.toml").write_text(textwrap.dedent(f"""\
        [task]
        name = "amounts"
        kind = "extraction"
        instruction = "Extract the amount as JSON."
        data = "data.jsonl"
        {schema_line}metric = "{metric}"
        target = 0.9

        [models]
        small = "fake"

        [few_shot]
        k = [2]

        [eval]
        latency_samples = 0
        bootstrap = 200
        """))
    return folder / "rung.toml"


def test_schema_metric_and_format_failures(tmp_path, fake_model):
    # without demonstrations the fake answers prose; with them, schema-valid JSON (wrong amount)
    fake_model.rule = lambda p: '{"amount": 1}' if len(p) > 3 else "The amount is one."
    summary = climb(_task(tmp_path / "t")).summary()
    prompt, few_shot = summary["rungs"]
    assert prompt["score"] == 0.0 and prompt["failures"]["format"] == prompt["n"]
    assert few_shot["score"] == 1.0 and few_shot["failures"]["format"] == 0
    assert set(few_shot["other_scores"]) == {"exact_match", "rouge_l", "semantic_similarity", "json_valid", "json_match"}
    assert few_shot["other_scores"]["json_valid"]["score"] == 1.0
    assert few_shot["versus"]["significant"]


def test_schema_problems_are_config_errors_with_the_line(tmp_path):
    with pytest.raises(ConfigError, match="needs 'schema"):
        load_task(_task(tmp_path / "a", schema=None))
    toml = _task(tmp_path / "b", schema="missing.json")
    with pytest.raises(ConfigError, match="not found") as info:
        load_task(toml)
    assert info.value.line == 6
    toml = _task(tmp_path / "c")
    (tmp_path / "c" / "schema.json").write_text('{"type": 12}')
    with pytest.raises(ConfigError) as info:
        load_task(toml)
    assert info.value.line == 6


def test_exact_match_extraction_without_json_extras(tmp_path, fake_model):
    fake_model.default = '{"amount": 3}'
    summary = climb(_task(tmp_path / "t", metric="exact_match", schema=None)).summary()
    assert set(summary["rungs"][0]["other_scores"]) == {"rouge_l", "semantic_similarity"}


def test_graded_metric_uses_the_sign_flip_test(tmp_path, fake_model):
    # prose without demonstrations, the exact JSON with them: ROUGE-L is graded, not 0/1
    fake_model.rule = lambda p: p[-1].content.replace("I paid ", '{"amount": ').replace(" euros", "}") \
        if len(p) > 3 else "no idea"
    summary = climb(_task(tmp_path / "t", metric="rouge_l", schema=None)).summary()
    versus = summary["rungs"][1]["versus"]
    assert versus["test"] == "permutation" and versus["difference"] > 0.5
    assert versus["significant"] and versus["ci"][0] > 0


def test_the_audit_fails_reference_outputs_that_are_not_json_or_break_the_schema(tmp_path,
                                                                                  fake_model):
    from rung.data.audit.report import audit_dataset, audit_for

    toml = _task(tmp_path / "t")
    data = tmp_path / "t" / "data.jsonl"
    lines = data.read_text().splitlines()
    bad = {4: "the amount is 3 euros", 9: '{"amount": "nine"}', 20: '```json\n{"amount": 19}\n```'}
    for number, answer in bad.items():  # 1-based lines
        record = json.loads(lines[number - 1])
        record["messages"][1]["content"] = answer
        lines[number - 1] = json.dumps(record)
    data.write_text("\n".join(lines) + "\n")
    report, _ = audit_dataset(toml, skip=("diversity",))
    check = report.check("json-outputs")
    assert check.status == "fail" and check.rows == [4, 9]  # a fenced block is JSON
    assert check.finding == ("1 outputs are not JSON (line 4); 1 do not meet the schema (line 9: "
                             "$.amount: 'nine' is not of type 'number')")
    assert "meets [task] schema" in check.fix and report.verdict == "not ready"
    # without a schema only JSON-ness is asked; a classification task skips the check
    (tmp_path / "t" / "rung.toml").write_text(toml.read_text().replace('schema = "schema.json"\n',
                                                                      "").replace(
        'metric = "json_schema"', 'metric = "json_match"'))
    assert audit_dataset(toml, skip=("diversity",))[0].check("json-outputs").rows == [4]
    # a stored audit made for another schema is not reused
    assert audit_for(load_task(toml))["checks"]
    first = audit_for(load_task(toml))
    (tmp_path / "t" / "rung.toml").write_text(toml.read_text().replace(
        'kind = "extraction"', 'kind = "extraction"\nschema = "schema.json"').replace(
        'metric = "json_match"', 'metric = "json_schema"'))
    again = audit_for(load_task(toml))
    assert again["audit_id"] != first["audit_id"] and again["schema"] is not None
    assert audit_for(load_task(toml))["audit_id"] == again["audit_id"]  # then it is
