"""One HTML file per run: the decision first, then the evidence a reviewer would ask for.

The file stands alone (plotly.js inlined from the plotly package, no CDN, no fonts fetched),
so it can be mailed, archived or opened on a machine with no network. Dataset text reaches the
page only through jinja2's autoescaping or as escaped JSON (charts.py); a Content-Security-
Policy that lists the hashes of the page's own two scripts is the second lock: a `<script>`
that slipped through would still not run.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from rung.decide import comparison_verdict, reaches
from rung.report import charts
from rung.report.gather import ReportData, gather
from rung.files import atomic_write, claim
from rung.store import Store
from rung.terminal import milliseconds

# Draws every figure and filters the side-by-side table; the only script besides plotly.js.
APP_JS = """
document.querySelectorAll('script[data-figure]').forEach(function (s) {
  var fig = JSON.parse(s.textContent);
  Plotly.newPlot(s.dataset.figure, fig.data, fig.layout,
                 {displayModeBar: false, responsive: true});
});
function filterExamples() {
  var only = document.getElementById('only-disagreements').checked;
  var wrong = document.getElementById('wrong-in').value;
  var shown = 0;
  document.querySelectorAll('#examples tbody tr').forEach(function (tr) {
    var keep = (!only || tr.dataset.disagree === '1') &&
               (!wrong || tr.dataset.wrong.split(' ').indexOf(wrong) >= 0);
    tr.hidden = !keep;
    if (keep) { shown += 1; }
  });
  document.getElementById('shown').textContent = shown;
}
document.getElementById('only-disagreements').addEventListener('change', filterExamples);
document.getElementById('wrong-in').addEventListener('change', filterExamples);
filterExamples();
"""


def report_path(store: Store, run_id: str) -> Path:
    return store.artifacts(run_id) / "report.html"


GENERATOR = '<meta name="generator" content="rung report">'  # how rung knows its own page


def is_report(path: Path) -> bool:
    """Whether `path` is a page rung wrote (so writing it again destroys nothing of a user's)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return GENERATOR in fh.read(4096)
    except OSError:
        return False


def write_report(store: Store, run_id: str, out: Path | None = None, *,
                 force: bool = False) -> Path:
    """Write the run's report (default: next to its other artifacts) and return its path. An
    `out` that exists is replaced only when it is an earlier rung report, or with `force`."""
    data = gather(store, run_id)  # an unknown run is refused before any folder is made
    if out is not None:
        claim([out], inputs=_inputs_of(data), force=force, ours=is_report)
    target = out or report_path(store, run_id)
    atomic_write(target, render_report(data))
    return target


def _inputs_of(data: "ReportData") -> list[Path]:
    """The run's task files: a report is never written over its data or its corpus."""
    task = data.run.get("task_path")
    if not task or not Path(task).is_file():
        return []
    from rung.task import load_task

    try:
        spec = load_task(task)
    except Exception:  # noqa: BLE001 - a task changed since: only the guards in claim apply
        return []
    return [spec.data_path] + ([spec.corpus_path] if spec.corpus_path else [])


def render_report(data: ReportData) -> str:
    from plotly.offline import get_plotlyjs

    plotly_js = get_plotlyjs().replace("</script", "<\\/script")
    env = Environment(loader=PackageLoader("rung.report", "templates"),
                      autoescape=select_autoescape(["html"]))
    env.filters["gb"] = _gb
    env.filters["dollars"] = _dollars
    env.filters["ms"] = milliseconds
    summary = data.summary
    figures = _figures(data)
    decision = summary["recommendation"]
    criterion = decision.get("criterion") or "point"
    return env.get_template("report.html").render(
        run=data.run, summary=summary, decision=decision, rungs=data.rungs,
        reached={r["rung"]: reaches(r["score"], r["ci"], summary["target"], criterion)
                 for r in data.rungs},
        versus_verdict=versus_verdict,
        names=[r["rung"] for r in data.rungs], figures=figures, tunes=_tunes(data),
        audit=data.audit, examples=data.examples, human=data.human,
        disagreements=sum(row.disagree for row in data.examples),
        raced=any("stopped" in c for r in data.rungs for c in r.get("candidates") or []),
        plotly_js=plotly_js, app_js=APP_JS,
        csp=f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
            f"script-src {_sha256(plotly_js)} {_sha256(APP_JS)}")


def versus_verdict(versus: dict[str, Any]) -> tuple[str, str]:
    """A paired comparison's verdict and its colour, worded as the decision words it
    (rung.decide): a gain with p < alpha that is smaller than [eval] min_gain, or whose
    interval still holds no gain, is significant but not enough, never "not significant"."""
    words = comparison_verdict(versus["meaningful"], versus["worse"],
                               bool(versus.get("significant")), versus["difference"],
                               versus.get("min_gain", 0.0))
    return words, "ok" if versus["meaningful"] else "bad" if versus["worse"] else "warn"


def _figures(data: ReportData) -> dict[str, str]:
    """Chart id -> figure JSON; the template places each by its id."""
    summary, rungs = data.summary, data.rungs
    out = {"score-vs-cost": charts.figure_json(
               charts.score_vs_cost(rungs, summary["metric"], summary["target"])),
           "latency": charts.figure_json(charts.latency(rungs))}
    for name, curve in data.curves.items():
        training = next(r for r in rungs if r["rung"] == name).get("training") or {}
        out[f"curves-{name}"] = charts.figure_json(
            charts.learning_curves(name, curve, training.get("best_step")))
    for r in rungs:
        per_class = r.get("per_class") or {}
        if per_class.get("confusion"):
            out[f"confusion-{r['rung']}"] = charts.figure_json(
                charts.confusion(r["rung"], per_class["confusion"], per_class["labels"]))
    return out


def _tunes(data: ReportData) -> list[dict[str, Any]]:
    return [{"rung": r["rung"], "training": r["training"], "has_curves": r["rung"] in data.curves}
            for r in data.rungs if r.get("training")]


def _sha256(script: str) -> str:
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def _dollars(v: float | None) -> str:
    """Cents for what costs dollars; two significant figures for what costs less (a
    classifier serves a million requests for under a cent)."""
    if v is None:
        return "-"
    return f"${v:,.2f}" if v >= 0.01 or v == 0 else f"${v:.2g}"


def _gb(n: float | None) -> str:
    """Memory to serve: GB for models, MB or kB for a classifier (171,721 bytes read "0 MB")."""
    if n is None:
        return "-"
    if n >= 1e8:
        return f"{n / 1e9:.2f} GB"
    return f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{max(n / 1e3, 1):.0f} kB"
