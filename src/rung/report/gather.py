"""Everything a report shows, read from the run's store and nothing else: the report of a run
is the same tomorrow, whatever the task folder holds by then."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from rung.errors import ConfigError
from rung.store import Store


@dataclass(frozen=True)
class ExampleRow:
    """One test example as every rung answered it: the side-by-side page's row."""

    example_id: str
    line: int
    input: str
    expected: str
    outputs: dict[str, tuple[str, bool]]  # rung -> (output, correct)

    @property
    def disagree(self) -> bool:
        """The rungs gave different answers, or some got it right and some wrong."""
        answers = {o.strip() for o, _ in self.outputs.values()}
        return len(answers) > 1 or len({c for _, c in self.outputs.values()}) > 1


@dataclass
class ReportData:
    run: dict[str, Any]  # id, created, task, metric, target, hashes
    summary: dict[str, Any]  # the run's `rung climb --json` summary
    examples: list[ExampleRow]
    curves: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # tuned rungs
    audit: dict[str, Any] | None = None  # the audit the run used, with its checks
    human: list[dict[str, Any]] = field(default_factory=list)  # test-set review votes, per pair

    @property
    def rungs(self) -> list[dict[str, Any]]:
        return self.summary["rungs"]


def gather(store: Store, run_id: str) -> ReportData:
    row = store.run(run_id)
    if row is None:
        known = ", ".join(r.id for r in store.runs(5)) or "none yet"
        raise ConfigError(f"no run '{run_id}' in {store.db_path}",
                          fix=f"name one that `rung runs` lists (latest: {known})")
    if row["summary_json"] is None:
        raise ConfigError(f"run {run_id} has not finished (status {row['status']})",
                          fix="report a finished run; `rung runs` lists them")
    summary = json.loads(row["summary_json"])
    names = [r["rung"] for r in summary["rungs"]]
    predictions = {name: list(store.predictions(run_id, name)) for name in names}
    data = ReportData(run={k: row[k] for k in row.keys() if k != "summary_json"},
                      summary=summary, examples=_side_by_side(predictions))
    for name in names:
        curve = [dict(c) for c in store.curves(run_id, name)]
        if curve:
            data.curves[name] = curve
    from rung.review import results, verdict_text

    for pair in store.conn.execute("SELECT DISTINCT rung_a, rung_b FROM votes WHERE run_id = ?",
                                   (run_id,)).fetchall():
        # the test examples' votes only: the run's scores are on those, and votes on new
        # inputs (rung review --inputs) judge other questions
        human = results(store, run_id, pair["rung_a"], pair["rung_b"])
        human.pop("inputs", None)
        if human["items"]:
            data.human.append({**human, "verdict": verdict_text(human)})
    audit = _run_audit(store, row, summary)
    if audit is not None:
        data.audit = {**json.loads(audit["summary_json"]),
                      "checks": [dict(c) for c in store.audit_checks(audit["id"])]}
    return data


def _run_audit(store: Store, row: Any, summary: dict[str, Any]) -> Any:
    """The audit the run climbed on, by the id its summary keeps: the data may have been
    audited again since (with other checks, or after a fix), and the report must show what
    the run's decision read. A summary without one (older runs) gets the newest audit of the
    same bytes made no later than the run."""
    audit_id = (summary.get("audit") or {}).get("audit_id")
    found = store.audit(audit_id) if audit_id else None
    return found if found is not None else store.latest_audit(row["data_hash"],
                                                               until=row["created"])


def _side_by_side(predictions: dict[str, list[Any]]) -> list[ExampleRow]:
    """One row per test example, in test-split order, with each rung's answer. Rows are
    keyed by id and line: the id is a hash of the content, and a data file may hold the same
    example twice, each in the test split and scored."""
    rows: dict[tuple[str, int], ExampleRow] = {}
    for name, preds in predictions.items():
        for p in preds:
            row = rows.setdefault((p["example_id"], p["line"]), ExampleRow(
                p["example_id"], p["line"], p["input"], p["expected"], {}))
            row.outputs[name] = (p["output"], bool(p["correct"]))
    return list(rows.values())
