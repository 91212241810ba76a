"""Two runs of one task, side by side, and the CI gate built on that comparison.

Two runs measured on the same test split answer the same examples, so they are compared
pair by pair: per rung both measured, and overall (each run's shipped rung: its
recommendation, or its best when none reached the target), the difference with a paired
bootstrap interval, McNemar's exact test on the examples that changed, and the list of those
examples, right to wrong and wrong to right, with both answers. Runs on different splits are
refused: their scores are not paired and a difference between them mixes the pipeline with
the examples.

`gate` is that comparison for a pull request: a candidate run (or a climb made now) against
a baseline run (named, or pinned with `rung runs --pin`); it fails when the candidate is
significantly worse by more than the tolerance.
"""

from __future__ import annotations

import json
from pathlib import Path
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ValidationError

from rung.errors import ConfigError
from rung.eval.metrics import corpus_statistic, metric_spec, paired_test, per_example_values
from rung.rungs import LADDER
from rung.store import Store
from rung.task import TaskSpec


def shipped(store: Store, run_id: str) -> str:
    """The rung a run would ship: its recommendation, else its best."""
    run = finished_run(store, run_id)
    recommendation = json.loads(run["summary_json"] or "{}").get("recommendation", {})
    rung = recommendation.get("rung") or recommendation.get("best")
    if rung is None:
        raise ConfigError(f"run {run_id} recommends no rung", fix="compare finished runs")
    return rung


def finished_run(store: Store, run_id: str) -> Any:
    run = store.run(run_id)
    if run is None:
        raise ConfigError(f"no run '{run_id}' in {store.root}", fix="rung runs PATH lists them")
    if run["status"] != "done":
        raise ConfigError(f"run {run_id} did not finish ({run['status']})",
                          fix="compare finished runs (rung runs PATH shows how each ended)")
    return run


def _by_example(rows: Iterable[Any]) -> dict[tuple[str, int], Any]:
    """Predictions keyed by example id and which copy of it they are (by line): a ticket
    the data holds twice is two test examples, and keyed by id alone one of them vanished
    from the comparison. Not by line itself: a reordered file keeps its split but not its
    line numbers."""
    rows = sorted(rows, key=lambda p: (p["example_id"], p["line"]))
    copies: dict[str, int] = {}
    keyed = {}
    for p in rows:
        copies[p["example_id"]] = copies.get(p["example_id"], -1) + 1
        keyed[(p["example_id"], copies[p["example_id"]])] = p
    return keyed


def compare_rung(store: Store, run_a: str, rung_a: str, run_b: str, rung_b: str,
                 task: TaskSpec, *, n_resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """`rung_b` of `run_b` against `rung_a` of `run_a`, on their shared test examples, by the
    task's metric, by the test climb pairs rungs with (metrics.paired_test): a 0/1 metric by
    McNemar's exact test on the examples that changed, a graded one (ROUGE-L, BLEU, chrF, a
    custom score) by the sign-flip permutation test on the per-example values (exact up to
    16 examples, 10,000 random signs beyond), whose right/wrong column holds exact match and
    would hide a drop; a corpus-level one (macro-F1), which is no mean over examples, by the
    permutation test that swaps the two runs' answers per example."""
    a, b = (_by_example(store.predictions(run, rung)) for run, rung in ((run_a, rung_a),
                                                                         (run_b, rung_b)))
    ids = sorted(a)
    if set(ids) != set(b):
        raise ConfigError(f"{rung_a} of {run_a} and {rung_b} of {run_b} answered different "
                          "examples", fix="compare runs of the same test split")
    spec = metric_spec(task.task.metric, task.json_schema)
    expected = [a[i]["expected"] for i in ids]
    outputs = [[side[i]["output"] for i in ids] for side in (a, b)]
    # once: they are both the test's input and the moves listed below (a judge answers once)
    x, y = (per_example_values(spec, expected, said) for said in outputs)
    result = paired_test(spec, expected, *outputs, task.task.labels, n_bootstrap=n_resamples,
                         seed=seed, values=(x, y))
    # described from the test that ran, so the words cannot name another one
    test = {"mcnemar-exact": "McNemar's exact test on the examples that changed",
            "permutation": f"sign-flip permutation test on per-example {spec.name}",
            }.get(result.test) or (f"permutation test on {corpus_statistic(spec).title}, "
                                   "the two runs' answers swapped per example")
    scores = [result.a_score, result.b_score]

    def moved(down: bool) -> list[dict[str, Any]]:
        """Examples whose value fell (right to wrong, for a 0/1 metric) or rose, the
        largest moves first."""
        order = sorted(range(len(ids)), key=lambda k: (y[k] - x[k]) * (1 if down else -1))
        return [{"example_id": ids[k][0], "line": a[ids[k]]["line"],
                 "input": a[ids[k]]["input"], "expected": expected[k],
                 "a": a[ids[k]]["output"], "b": b[ids[k]]["output"],
                 **({} if spec.binary else {"values": [round(float(x[k]), 4),
                                                       round(float(y[k]), 4)]})}
                for k in order if (y[k] < x[k] if down else y[k] > x[k])]

    return {"a": {"run": run_a, "rung": rung_a, "score": round(scores[0], 4)},
            "b": {"run": run_b, "rung": rung_b, "score": round(scores[1], 4)},
            "metric": task.task.metric, "binary": spec.binary,
            "n": result.n, "difference": round(result.difference, 4),
            "ci": [round(end, 4) for end in result.ci], "p_value": result.p_value, "test": test,
            "right_to_wrong": moved(True), "wrong_to_right": moved(False)}


def compare_runs(store: Store, run_a: str, run_b: str, task: TaskSpec,
                 **options: Any) -> dict[str, Any]:
    first, second = finished_run(store, run_a), finished_run(store, run_b)
    if first["split_hash"] != second["split_hash"]:
        raise ConfigError(
            f"runs {run_a} and {run_b} were measured on different test splits",
            fix="compare runs of the same data and [split] settings (their split hashes "
                "must match); climb again to measure both on one split")
    rungs_a = {r["rung"] for r in store.rung_rows(run_a)}
    rungs_b = {r["rung"] for r in store.rung_rows(run_b)}
    both = [name for name in LADDER if name in rungs_a and name in rungs_b]
    return {
        "a": run_a, "b": run_b, "split_hash": first["split_hash"],
        **changes(first, second, default_settings(task)),
        "rungs": {name: compare_rung(store, run_a, name, run_b, name, task, **options)
                  for name in both},
        "overall": compare_rung(store, run_a, shipped(store, run_a), run_b,
                                shipped(store, run_b), task, **options),
    }


def changes(first: Any, second: Any, defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """What differs between two runs besides their answers: the settings, key by key, the
    data and the rung that climbed. A key only one run has, at its default (`defaults`: the
    flat default settings), came with a newer rung and was set by no one: it is listed apart
    and is no change; one that is not at its default (a [costs.api.MODEL] table added, a new
    key set) is a change. Runs stored before settings were kept (migration 11) can only say
    whether the hash differs: `settings` is then None."""
    found: dict[str, Any] = {"data_changed": first["data_hash"] != second["data_hash"],
                             "rung_versions": [first["rung_version"], second["rung_version"]]}
    if first["settings_json"] is None or second["settings_json"] is None:
        return {**found, "config_changed": first["config_hash"] != second["config_hash"],
                "settings": None, "settings_one_side": None}
    a = _flat(json.loads(first["settings_json"]))
    b = _flat(json.loads(second["settings_json"]))
    defaults = defaults or {}
    changed, one_side = [], []
    for key in [*a, *(k for k in b if k not in a)]:
        if key in a and key in b:
            if a[key] != b[key]:
                changed.append({"key": key, "a": a[key], "b": b[key]})
        elif key in defaults and (a.get(key, defaults[key]) == b.get(key, defaults[key])):
            one_side.append(key)
        else:
            changed.append({"key": key, "a": a.get(key), "b": b.get(key)})
    return {**found, "config_changed": bool(changed), "settings": changed,
            "settings_one_side": sorted(one_side)}


def default_settings(task: TaskSpec) -> dict[str, Any]:
    """Every setting at rung's default, flat, for the tables that have one for each key
    (not [task] or [models], whose keys a task must give)."""
    found: dict[str, Any] = {}
    for section, value in task:
        if isinstance(value, BaseModel):
            try:
                found[section] = type(value)().model_dump(mode="json")
            except ValidationError:
                continue
    return _flat(found)


def _flat(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"rag": {"k": [1, 3]}} -> {"[rag] k": [1, 3]}: keys named as rung.toml writes them."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            flat.update(_flat(value, name))
        else:
            section, _, rest = name.partition(".")
            flat[f"[{section}] {rest}" if rest else name] = value
    return flat


def describe_changes(found: dict[str, Any]) -> str:
    """One line for the terminal and the pull-request comment."""
    parts = []
    if found["settings"] is None:
        if found["config_changed"]:
            parts.append("settings changed (a run predates the settings record: which keys "
                         "is not known)")
    else:
        parts += [f"{c['key']}: {_value(c['a'])} -> {_value(c['b'])}" for c in found["settings"]]
    if found["data_changed"]:
        parts.append("the data file changed")
    versions = found["rung_versions"]
    if None not in versions and versions[0] != versions[1]:
        parts.append(f"rung {versions[0]} -> {versions[1]}")
    return "; ".join(parts) if parts else "same settings, data and rung"


def _value(value: Any) -> str:
    return _short(json.dumps(value, ensure_ascii=False), 40)


def gate(store: Store, baseline: str, candidate: str, task: TaskSpec, *,
         tolerance: float = 0.0,
         alpha: float = 0.05) -> dict[str, Any]:
    """Fail when the candidate's rung is significantly worse than the baseline's by more than
    `tolerance`: the baseline's shipped rung against the same rung of the candidate (or the
    candidate's shipped rung, when the candidate did not measure it). Where the candidate
    would ship another rung (a lowered target lets a cheaper one reach it), that rung is
    compared too, under `shipped`, and the gate fails if either comparison does: the same
    rung held while what ships after the change got worse."""
    if finished_run(store, baseline)["split_hash"] != finished_run(store, candidate)["split_hash"]:
        raise ConfigError(f"the candidate {candidate} and the baseline {baseline} were "
                          "measured on different test splits",
                          fix="keep the data and [split] settings, or pin a new baseline "
                              "(rung runs PATH --pin RUN) once the change is accepted")
    rung, ships = shipped(store, baseline), shipped(store, candidate)
    measured = {r["rung"] for r in store.rung_rows(candidate)}
    candidate_rung = rung if rung in measured else ships
    result = compare_rung(store, baseline, rung, candidate, candidate_rung, task)

    def worse(comparison: dict[str, Any]) -> bool:
        return comparison["difference"] < -tolerance and comparison["p_value"] < alpha

    other = None if ships == candidate_rung else compare_rung(store, baseline, rung, candidate,
                                                               ships, task)
    fails = worse(result) or (other is not None and worse(other))
    return {**result, "tolerance": tolerance, "alpha": alpha, "fails": bool(fails),
            "shipped": other,
            "changes": changes(finished_run(store, baseline), finished_run(store, candidate),
                               default_settings(task))}


def markdown(verdict: dict[str, Any]) -> str:
    """A short pull-request comment."""
    a, b = verdict["a"], verdict["b"]
    word = "FAILS" if verdict["fails"] else "passes"
    lines = [
        f"**rung gate {word}**: {b['rung']} of `{b['run']}` scores {b['score']:.3f} "
        f"({verdict['metric']}) against {a['score']:.3f} for {a['rung']} of the baseline "
        f"`{a['run']}` on the same {verdict['n']} test examples.",
        "",
        f"- difference {verdict['difference']:+.3f} (95% CI "
        f"{verdict['ci'][0]:+.3f} to {verdict['ci'][1]:+.3f}), p = {verdict['p_value']:.3g} "
        f"({verdict['test']}); the gate fails on {_fails_on(verdict['tolerance'])} at p < "
        f"{verdict['alpha']:g}",
        f"- {moves(verdict)}",
        f"- changed since the baseline: {describe_changes(verdict['changes'])}",
    ]
    if (other := verdict.get("shipped")) is not None:  # the candidate ships another rung
        lines.insert(3, f"- the candidate would ship {other['b']['rung']}: "
                        f"{other['b']['score']:.3f} against {other['a']['score']:.3f}, "
                        f"difference {other['difference']:+.3f}, p = {other['p_value']:.3g}")
    for flip in verdict["right_to_wrong"][:10]:
        lines.append(f"  - line {flip['line']}: expected `{_short(flip['expected'])}`, "
                     f"now `{_short(flip['b'])}` (was `{_short(flip['a'])}`)" + _values(flip))
    return "\n".join(lines) + "\n"


def _fails_on(tolerance: float) -> str:
    return f"a drop of more than {tolerance:g}" if tolerance else "any drop"


def moves(row: dict[str, Any]) -> str:
    worse, better = len(row["right_to_wrong"]), len(row["wrong_to_right"])
    if row["binary"]:
        return f"right to wrong: {worse}, wrong to right: {better}"
    return f"worse on {worse} examples, better on {better}"


def _values(flip: dict[str, Any]) -> str:
    return f", {flip['values'][0]:.3f} -> {flip['values'][1]:.3f}" if "values" in flip else ""


GATE_MARK = "<!-- written by rung gate -->"  # how rung knows a summary it wrote before


def is_gate_summary(path: Path) -> bool:
    """Whether `path` is a summary `rung gate --markdown` wrote (so writing it again, as CI
    does on every push, destroys nothing of a user's)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    # one written before the mark existed is known by how it opens
    return GATE_MARK in text[-200:] or text.startswith(("**rung gate passes**",
                                                        "**rung gate FAILS**"))


def _short(text: str, width: int = 60) -> str:
    """A value for the pull-request comment: personal data redacted (the comment is posted
    where the test set is not, as rung serve's log is redacted), one line, cut to `width`."""
    from rung.data.audit.pii_find import redact

    text = " ".join(redact(str(text)).split()).replace("`", "'")
    return text if len(text) <= width else text[: width - 1] + "…"
