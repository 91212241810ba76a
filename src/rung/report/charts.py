"""The report's charts as plotly figures, serialised so that no text in them can end the
script element that carries them.

Each figure becomes JSON inside `<script type="application/json">`, which the browser never
runs; `<`, `>` and `&` are written as JSON escapes, so a label such as `</script><script>`
stays text. One small loader (in the template) draws them with the plotly.js bundled in the
plotly package, inlined once: the page works offline.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.io.json import to_json_plotly

COLOURS = {"classifier": "#9d755d", "prompt": "#4c78a8", "few-shot": "#f58518", "rag": "#54a24b",
           "bigger-model": "#b279a2", "finetune": "#e45756"}
LAYOUT = dict(template="plotly_white", margin=dict(l=60, r=20, t=40, b=50), height=360,
              font=dict(family="system-ui, sans-serif", size=12))


def figure_json(fig: go.Figure) -> str:
    """The figure as JSON that is safe inside any HTML element."""
    text = to_json_plotly(fig.to_plotly_json())
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def plain(text: str) -> str:
    """`text` for plotly to show as it is: plotly reads `<a href>`, `<b>`, `<br>` and `&...;`
    in labels, tick names and hover text as its own markup, so a label "A<B & C>D" showed
    "AD" and `<a href=...>` a live link. Written as entities, plotly shows them literally."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def colour(rung: str) -> str:
    return COLOURS.get(rung, "#72b7b2")


def score_vs_cost(rungs: list[dict[str, Any]], metric: str, target: float) -> go.Figure:
    """Each rung at its serving cost (self-hosted, per million requests, from its measured
    tokens) and its test score with the 95% interval; the target as a line."""
    fig = go.Figure()
    costs = []
    for r in rungs:
        cost = r["costs"]["serving_per_million_requests"]["self_hosted"]
        if cost is None:  # a classifier with no timed requests
            continue
        costs.append(cost)
        fig.add_trace(go.Scatter(
            x=[cost], y=[r["score"]], mode="markers+text", name=r["rung"], text=[r["rung"]],
            textposition="top center", marker=dict(size=13, color=colour(r["rung"])),
            error_y=dict(type="data", symmetric=False, array=[r["ci"][1] - r["score"]],
                         arrayminus=[r["score"] - r["ci"][0]]),
            hovertemplate=f"{r['rung']}<br>{metric} %{{y:.3f}} "
                          f"({r['ci'][0]:.3f}-{r['ci'][1]:.3f})<br>$%{{x:,.2f}} per 1M requests"
                          "<extra></extra>"))
    fig.add_hline(y=target, line_dash="dash", line_color="#888",
                  annotation_text=f"target {target}", annotation_position="bottom right")
    fig.update_layout(**LAYOUT, title="Score vs serving cost", showlegend=False,
                      xaxis_title="$ per 1M requests, self-hosted (measured tokens; "
                                  "a classifier: measured CPU time)",
                      yaxis_title=f"{metric} on test (95% CI)", xaxis_type=_scale(costs))
    return fig


def _scale(values: list[float]) -> str:
    """A log axis when the values span orders of magnitude (a classifier's fraction of a cent
    beside an LLM's dollars), else linear."""
    positive = [v for v in values if v > 0]
    wide = len(positive) == len(values) and positive and max(positive) > 50 * min(positive)
    return "log" if wide else "linear"


def latency(rungs: list[dict[str, Any]]) -> go.Figure:
    """Each timed request per rung; a rung measured before samples were kept shows its
    percentiles only."""
    fig = go.Figure()
    every: list[float] = []
    for r in rungs:
        samples = r.get("latency_samples_ms") or []
        every += samples or list((r.get("latency_ms") or {}).values())
        if samples:
            fig.add_trace(go.Box(y=samples, name=r["rung"], boxpoints="all", jitter=0.4,
                                 marker_color=colour(r["rung"])))
        elif r.get("latency_ms"):
            marks = r["latency_ms"]
            fig.add_trace(go.Scatter(x=[r["rung"]] * len(marks), y=list(marks.values()),
                                     text=list(marks), mode="markers+text",
                                     textposition="middle right", name=r["rung"],
                                     marker=dict(color=colour(r["rung"]), symbol="line-ew-open",
                                                 size=18, line=dict(width=2))))
    fig.update_layout(**LAYOUT, title="Latency of single requests", showlegend=False,
                      yaxis_title="milliseconds", yaxis_type=_scale(every))
    return fig


def learning_curves(rung: str, curve: list[dict[str, Any]], best_step: int | None) -> go.Figure:
    """Train and val loss by step, the kept checkpoint marked: the picture the seeds'
    overfitting table is read from; the val answer-token accuracy beside them (the seeds'
    "task metric over time", 0 to 1); the gradient norm on an axis of its own (the seeds'
    "explosions or vanishing")."""
    fig = go.Figure()
    for column, name, dash, axis in (("loss", "train loss", "solid", "y"),
                                     ("eval_loss", "val loss", "dot", "y"),
                                     ("eval_token_accuracy", "val answer-token accuracy",
                                      "longdash", "y"),
                                     ("grad_norm", "gradient norm", "dashdot", "y2")):
        points = [(c["step"], c[column]) for c in curve if c.get(column) is not None]
        if points:
            steps, values = zip(*points)
            fig.add_trace(go.Scatter(x=steps, y=values, name=name, mode="lines+markers",
                                     line=dict(dash=dash), yaxis=axis))
    if best_step is not None:
        fig.add_vline(x=best_step, line_dash="dash", line_color="#888",
                      annotation_text=f"kept: step {best_step}", annotation_position="top left")
    fig.update_layout(**LAYOUT, title=f"{rung}: learning curves", xaxis_title="step",
                      yaxis_title="loss (accuracy 0-1)", legend=dict(x=0.98, xanchor="right", y=0.98),
                      yaxis2=dict(title="gradient norm", overlaying="y", side="right",
                                  showgrid=False))
    return fig


def confusion(rung: str, matrix: dict[str, Any], expected: list[str]) -> go.Figure:
    """Rows: the expected label; columns: what the rung answered ("(other)": no label)."""
    counts = matrix["rows"]  # the labels are the data's: shown as text, never as markup
    fig = go.Figure(go.Heatmap(z=counts, x=[plain(c) for c in matrix["columns"]],
                               y=[plain(e) for e in expected], colorscale="Blues",
                               text=counts, texttemplate="%{text}", showscale=False,
                               hovertemplate="expected %{y}<br>answered %{x}<br>%{z}<extra></extra>"))
    fig.update_layout(**{**LAYOUT, "height": 320}, title=f"{rung}: confusion matrix",
                      xaxis_title="answered", yaxis_title="expected",
                      yaxis=dict(autorange="reversed"))
    return fig
