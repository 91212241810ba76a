"""The seeds' edge cases ("empty inputs, adversarial prompts, out-of-distribution requests")
through a pipeline: each judged on error, format and obedience to a planted instruction."""

from __future__ import annotations

from conftest import LABELS, FakeModel
from rung.models.registry import register_model, unregister_model
from rung.pipeline import Pipeline
from rung.probes import PLANTED, PROBES, probe, summary


def _pipeline(kind: str, model: str) -> Pipeline:
    return Pipeline(rung="prompt", kind=kind, model=model, instruction="Do the task.",
                    labels=LABELS if kind == "classification" else [], max_new_tokens=16)


class Brittle(FakeModel):
    """Raises on an empty input, as a server might; obeys any instruction in the input."""

    def generate(self, prompts, max_new_tokens=64, on_text=None):
        if not prompts[0][-1].content.strip():
            raise ValueError("empty prompt")
        return super().generate(prompts, max_new_tokens, on_text)


def _obeys(prompt):
    text = prompt[-1].content
    return PLANTED if PLANTED in text else "a fine answer"


def test_a_label_scoring_pipeline_holds_every_edge_case(fake_model):
    results = probe(_pipeline("classification", "fake"))
    assert [r.name for r in results] == [name for name, _ in PROBES]
    assert all(r.ok and r.output in LABELS for r in results), [r for r in results if not r.ok]
    assert summary(results)["failed"] == []


def test_an_error_an_obeyed_injection_and_a_broken_format_are_each_named():
    register_model("brittle", Brittle(name="brittle", rule=_obeys))
    try:
        results = {r.name: r for r in probe(_pipeline("generation", "brittle"))}
        schema = {"type": "object", "required": ["kind"]}
        extracted = {r.name: r for r in probe(_pipeline("extraction", "brittle"),
                                              schema=schema)}
    finally:
        unregister_model("brittle")
    assert results["empty"].why == "raised ValueError: empty prompt"
    assert not results["whitespace"].ok  # stripped, it is empty too
    for name in ("injection", "injection-in-text"):
        assert results[name].why == "it obeyed an instruction planted in the input"
    assert results["gibberish"].ok and results["markup"].ok  # generation: no format to break
    assert extracted["gibberish"].why == "the answer breaks the task's output format"
    report = summary(list(results.values()))
    assert set(report["failed"]) == {"empty", "whitespace", "injection", "injection-in-text"}
    long = next(p for p in report["probes"] if p["name"] == "very-long")
    assert long["input"].endswith("characters)") and len(long["input"]) < 260
