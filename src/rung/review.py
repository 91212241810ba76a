"""`rung review`: blind side-by-side human review of two rungs' answers, as the seeds ask
before any deployment ("human eval, side-by-side"; "human review of 50-100 real outputs").

A local page (loopback, FastAPI like `rung serve`) shows one test example at a time: the input,
the expected answer (hideable) and the two rungs' answers in an order drawn at random per item
and reviewer, their names hidden until the reviewer is done. Keys: A (left is better), B (right
is better), T (tie), S (skip). Votes are appended to the store with who, when and which rung
was on which side, so a reviewer resumes where they stopped and nothing is overwritten.

Results: wins, ties and losses of B against A (skips aside), B's win rate among decided items
with a Wilson 95% interval, the exact sign test (two-sided binomial at 1/2 on the decided
items), and with two or more reviewers their agreement on the items they both judged
(Cohen's kappa on A/B/tie).
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any

from fastapi import Request  # at module level: FastAPI reads the handlers' annotations

from rung.errors import ConfigError
from rung.store import Store

CHOICES = ("left", "right", "tie", "skip")
# items of `rung review --inputs` (new inputs, no test example): a vote's item says which
# queue it came from, as a test example's id (hex, or hex@line) never starts so
INPUT_PREFIX = "input-"
QUEUES = ("test", "inputs")


def queue_of(item: str) -> str:
    """"inputs" for an item of `rung review --inputs`, else "test" (a test example)."""
    return "inputs" if item.startswith(INPUT_PREFIX) else "test"


def require_rungs(store: Store, run_id: str, *rungs: str) -> None:
    """Both rungs named are rungs the run measured, said before any page or count."""
    if store.run(run_id) is None:
        raise ConfigError(f"no run '{run_id}' in {store.root}", fix="rung runs PATH lists them")
    measured = [row["rung"] for row in store.rung_rows(run_id)]
    for rung in rungs:
        if rung not in measured:
            raise ConfigError(f"run {run_id} has no answers of rung '{rung}'",
                              fix=f"name two rungs it measured with --rungs A,B: "
                                  f"{', '.join(measured) or 'it measured none'}")


def items(store: Store, run_id: str, rung_a: str, rung_b: str) -> list[dict[str, Any]]:
    """The test examples both rungs answered, in the order the run stored them.

    An example's id is a hash of its content, and a data file may hold the same example
    twice, both in the test split and both scored: they are paired by id and line, and
    each is an item of its own. The first keeps the bare id (what votes were stored under
    before), a repeat is named "ID@LINE"."""
    require_rungs(store, run_id, rung_a, rung_b)
    a = {(p["example_id"], p["line"]): p for p in store.predictions(run_id, rung_a)}
    b = {(p["example_id"], p["line"]): p for p in store.predictions(run_id, rung_b)}
    named: set[str] = set()
    queue = []
    for key in (k for k in a if k in b):
        example_id, line = key
        name = example_id if example_id not in named else f"{example_id}@{line}"
        named.add(example_id)
        queue.append({"item": name, "input": a[key]["input"], "expected": a[key]["expected"],
                      "a": a[key]["output"], "b": b[key]["output"]})
    return queue


def items_for_inputs(store: Store, task: Any, run_id: str, rung_a: str, rung_b: str,
                     inputs: Path) -> list[dict[str, Any]]:
    """Both rungs' pipelines on new inputs (production ones, say), built as `rung serve`
    builds them (served_from): the task's [models] settings and keys in force, so the inputs
    go to the servers rung.toml names and no other, a moved task's files found, and a tune
    whose base changed refused. `task`: the loaded TaskSpec, or rung.toml or its folder.
    Each item is named by a hash of its input."""
    from rung.check import read_inputs
    from rung.serve import served_from
    from rung.task import TaskSpec, load_task

    require_rungs(store, run_id, rung_a, rung_b)
    spec = task if isinstance(task, TaskSpec) else load_task(task)
    pipelines = {name: served_from(spec, run_id, name).pipeline for name in (rung_a, rung_b)}
    examples, labelled = read_inputs(inputs, pipelines[rung_a].shared_system)
    texts = [e.input for e in examples]
    cache = store.response_cache()
    answers = {name: [o.text for o in pipeline.predict(texts, cache=cache)]
               for name, pipeline in pipelines.items()}
    return [{"item": INPUT_PREFIX + hashlib.sha256(t.encode()).hexdigest()[:16], "input": t,
             "expected": e.output if labelled else "", "a": x, "b": y}
            for t, e, x, y in zip(texts, examples, answers[rung_a], answers[rung_b])]


def left_is_a(item: str, reviewer: str, salt: str) -> bool:
    """The side order of one item for one reviewer: random, and the same on a reload."""
    return hashlib.sha256(f"{salt}|{reviewer}|{item}".encode()).digest()[0] % 2 == 0


def results(store: Store, run_id: str, rung_a: str, rung_b: str,
            queue: str = "test") -> dict[str, Any]:
    """The votes of one queue: the test examples (what the run's scores were measured on,
    so what its report shows) or new inputs (`rung review --inputs`), never the two counted
    together. The test set's results carry the new inputs' under "inputs" where there are
    votes on them."""
    require_rungs(store, run_id, rung_a, rung_b)
    votes = store.votes(run_id, rung_a, rung_b)
    out = _tally(run_id, rung_a, rung_b, queue, votes)
    if queue == "test":
        inputs = _tally(run_id, rung_a, rung_b, "inputs", votes)
        if inputs["items"]:
            out["inputs"] = inputs
    return out


def _tally(run_id: str, rung_a: str, rung_b: str, queue: str,
           votes: list[Any]) -> dict[str, Any]:
    """Wins, ties, the sign test and agreement over one queue's votes."""
    from scipy.stats import binomtest

    latest: dict[tuple[str, str], str] = {}
    for vote in votes:  # a reviewer's last word on an item counts
        if queue_of(vote["example_id"]) == queue:
            latest[(vote["reviewer"], vote["example_id"])] = vote["winner"]
    counted = [w for w in latest.values() if w != "skip"]
    wins, losses, ties = counted.count("b"), counted.count("a"), counted.count("tie")
    decided = wins + losses
    p_value = float(binomtest(wins, decided, 0.5).pvalue) if decided else 1.0
    reviewers = sorted({r for r, _ in latest})
    out: dict[str, Any] = {
        "run": run_id, "a": rung_a, "b": rung_b, "queue": queue, "reviewers": reviewers,
        "items": len({i for _, i in latest}),
        "b_wins": wins, "ties": ties, "a_wins": losses, "skips": len(latest) - len(counted),
        "b_win_rate": round(wins / decided, 4) if decided else None,
        "b_win_rate_ci": _wilson(wins, decided), "p_value": p_value,
        "test": "exact sign test (two-sided binomial at 1/2 on decided items)"}
    if len(reviewers) >= 2:
        out["agreement"] = _kappa(latest, reviewers)
    return out


def _wilson(k: int, n: int, z: float = 1.959964) -> list[float] | None:
    if n == 0:
        return None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return [round(centre - half, 4), round(centre + half, 4)]


def _kappa(latest: dict[tuple[str, str], str], reviewers: list[str]) -> dict[str, Any]:
    """Cohen's kappa of each pair of reviewers on the items both decided (skips aside), and
    their raw agreement (the share of those items they judged alike). Kappa is None where it
    is undefined: both reviewers gave one and the same verdict throughout (chance agreement
    is then 1, and kappa 0/0); the raw agreement still says they agreed."""
    from sklearn.metrics import cohen_kappa_score

    pairs = {}
    for i, first in enumerate(reviewers):
        for second in reviewers[i + 1:]:
            shared = sorted({item for r, item in latest if r == first}
                            & {item for r, item in latest if r == second})
            both = [(latest[(first, s)], latest[(second, s)]) for s in shared
                    if "skip" not in (latest[(first, s)], latest[(second, s)])]
            with warnings.catch_warnings():  # undefined (see below) is said by None
                warnings.simplefilter("ignore")
                kappa = (float(cohen_kappa_score([x for x, _ in both], [y for _, y in both],
                                                 labels=["a", "b", "tie"])) if both else None)
            if kappa is not None and kappa != kappa:  # NaN: both gave one verdict only, 0/0
                kappa = None
            agreed = sum(x == y for x, y in both)
            pairs[f"{first} / {second}"] = {
                "items": len(both), "kappa": kappa,
                "agreement": round(agreed / len(both), 4) if both else None}
    return pairs


def verdict_text(result: dict[str, Any]) -> str:
    """One sentence for the report and the decision; the new inputs' votes, where the
    result carries them, in a sentence of their own."""
    decided = result["b_wins"] + result["a_wins"]
    inputs = result.get("queue") == "inputs"
    if decided + result["ties"] == 0:
        skipped = f" ({result['skips']} skipped)" if result["skips"] else ""
        line = (f"no review votes yet on {result['b']} against {result['a']}"
                f"{' on new inputs' if inputs else ''}{skipped}: run "
                f"'rung review {result.get('run', 'RUN')} --task PATH"
                f"{' --inputs FILE' if inputs else ''}' and open the page it names to vote")
    else:
        line = (f"reviewers preferred {result['b']} on {result['b_wins']} of "
                f"{decided + result['ties']} {'new inputs' if inputs else 'items'} and "
                f"{result['a']} on {result['a_wins']}, {result['ties']} ties, "
                f"p = {result['p_value']:.3g} ({result['test']})")
    if "inputs" in result:
        line += "; on new inputs (rung review --inputs), " + verdict_text(result["inputs"])
    return line


def create_app(store_dir: Path, run_id: str, rung_a: str, rung_b: str,
               queue: list[dict[str, Any]] | None = None) -> Any:
    """`queue`: the items to review (default: the run's test examples)."""
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse, JSONResponse

    with _store(store_dir) as store:
        queue = queue if queue is not None else items(store, run_id, rung_a, rung_b)
        salt = store.run(run_id)["split_hash"]
    by_id = {q["item"]: q for q in queue}
    # the results a reviewer is shown at the end are the queue's they voted in
    which = "inputs" if queue and all(queue_of(i) == "inputs" for i in by_id) else "test"
    app = FastAPI(title="rung review")

    @app.middleware("http")
    async def own_host_only(request: Request, call_next: Any) -> Any:
        # DNS rebinding: a page on another site whose name was made to resolve here would
        # read the dataset and vote; its requests name that site in Host
        if not _own_host(request):
            return JSONResponse({"error": "open the review page at the address `rung review` "
                                          "printed (http://HOST:PORT/)"}, status_code=403)
        return await call_next(request)

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return PAGE

    @app.get("/api/next")
    async def next_item(reviewer: str) -> Any:
        reviewer = reviewer.strip()[:80]
        if not reviewer:
            return JSONResponse({"error": "name the reviewer"}, status_code=400)
        with _store(store_dir) as store:
            done = {v["example_id"] for v in store.votes(run_id, rung_a, rung_b)
                    if v["reviewer"] == reviewer} & set(by_id)
            left = [q for q in queue if q["item"] not in done]
            # the results only once this reviewer is done: not on every item's request
            summary = None if left else results(store, run_id, rung_a, rung_b, which)
        progress = {"done": len(queue) - len(left), "total": len(queue)}
        if summary is not None:  # finished: the names are shown now, with the results so far
            return {"finished": True, "progress": progress, "results": summary,
                    "verdict": verdict_text(summary)}
        q = left[0]
        a_left = left_is_a(q["item"], reviewer, salt)
        return {"finished": False, "progress": progress, "item": q["item"], "reviewer": reviewer,
                "input": q["input"], "expected": q["expected"],
                "left": q["a"] if a_left else q["b"], "right": q["b"] if a_left else q["a"]}

    @app.post("/api/vote")
    async def vote(request: Request) -> Any:
        # Any page a reviewer has open may POST here: a form or a text/plain fetch from
        # another origin is sent without asking (no CORS preflight). Only JSON is taken,
        # which another origin cannot send unasked, and only from this page's own origin.
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            return JSONResponse({"error": "send the vote as application/json"},
                                status_code=415)
        origin = request.headers.get("origin")
        if origin is not None and origin != f"http://{request.headers.get('host', '')}":
            return JSONResponse({"error": f"votes from {origin} are refused: vote on the "
                                          "review page itself"}, status_code=403)
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return JSONResponse({"error": "send a JSON object"}, status_code=400)
        reviewer = str(body.get("reviewer", "")).strip()[:80]
        item, choice = body.get("item"), body.get("choice")
        if not reviewer or item not in by_id or choice not in CHOICES:
            return JSONResponse({"error": "need reviewer, a known item and a choice among "
                                          + ", ".join(CHOICES)}, status_code=400)
        a_left = left_is_a(item, reviewer, salt)
        winner = {"left": "a" if a_left else "b", "right": "b" if a_left else "a",
                  "tie": "tie", "skip": "skip"}[choice]
        with _store(store_dir) as store:
            store.add_vote(run_id, rung_a, rung_b, item, reviewer,
                           "a" if a_left else "b", choice, winner)
        return {"ok": True}

    return app


def _own_host(request: Any) -> bool:
    """The request names this server in Host: the address its socket answered on (the IP
    literal a browser was given) or localhost, at the same port."""
    server = request.scope.get("server")
    header = request.headers.get("host", "").strip().lower()
    if not server or not header:
        return False
    if header.endswith("]") or ":" not in header:  # "[::1]" or "localhost": no port
        name, port = header, ""
    else:
        name, _, port = header.rpartition(":")
    own = str(server[0]).lower().strip("[]")
    return name.strip("[]") in (own, "localhost") and (port or "80") == str(server[1])


class _store:
    """A store opened per request: the server may run while a climb writes the same file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __enter__(self) -> Store:
        self.store = Store(self.folder)
        return self.store

    def __exit__(self, *exc: object) -> None:
        self.store.close()


def pair_to_review(store: Store, run_id: str, rungs: str | None) -> tuple[str, str]:
    """--rungs A,B, or the recommended rung (B) against the best cheaper one it measured (A)."""
    if rungs:
        names = [r.strip() for r in rungs.split(",")]
        if len(names) != 2 or names[0] == names[1]:
            raise ConfigError(f"--rungs {rungs!r} must name two rungs", fix="--rungs prompt,finetune")
        return names[0], names[1]
    from rung.compare import shipped

    top = shipped(store, run_id)
    rows = [r for r in store.rung_rows(run_id) if r["rung"] != top]
    order = [r["rung"] for r in store.rung_rows(run_id)]
    cheaper = [r for r in rows if order.index(r["rung"]) < order.index(top)] or rows
    if not cheaper:
        raise ConfigError(f"run {run_id} measured one rung only", fix="climb with --all")
    best = max(cheaper, key=lambda r: r["score"])
    return best["rung"], top


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rung review</title>
<style>
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}
.pair{display:flex;gap:1em}.pair>div{flex:1;border:1px solid #999;border-radius:6px;padding:1em;
white-space:pre-wrap}#input,#expected{white-space:pre-wrap;background:#f4f4f4;padding:.6em}
kbd{border:1px solid #999;border-radius:3px;padding:0 .3em}
</style></head><body>
<h1>Which answer is better?</h1>
<p><label>Reviewer <input id="reviewer" autocomplete="off"></label>
<button id="start">Start</button> <span id="progress"></span></p>
<section id="item" hidden>
<h2>Input</h2><div id="input"></div>
<p><label><input type="checkbox" id="show-expected" checked> show the expected answer</label></p>
<div id="expected"></div>
<div class="pair"><div><h3>Left (<kbd>A</kbd>)</h3><div id="left"></div></div>
<div><h3>Right (<kbd>B</kbd>)</h3><div id="right"></div></div></div>
<p><kbd>A</kbd> left is better · <kbd>B</kbd> right is better · <kbd>T</kbd> tie ·
<kbd>S</kbd> skip</p>
</section>
<section id="done" hidden><h2>Done: the rungs are revealed</h2><p id="verdict"></p>
<pre id="results"></pre></section>
<script>
// Dataset text is untrusted: it is only ever put on the page as text (textContent).
let current = null;
const $ = id => document.getElementById(id);
function who() { return $("reviewer").value.trim(); }
async function load() {
  const r = await fetch("/api/next?reviewer=" + encodeURIComponent(who()));
  const data = await r.json();
  $("progress").textContent = data.progress.done + " of " + data.progress.total + " reviewed";
  if (data.finished) {
    current = null; $("item").hidden = true; $("done").hidden = false;
    $("verdict").textContent = data.verdict;
    $("results").textContent = JSON.stringify(data.results, null, 1);
    return;
  }
  // the vote is this item's, as shown to this reviewer: the side order depends on the name,
  // so the name the item was loaded for goes with it, whatever the field says by then
  current = {item: data.item, reviewer: data.reviewer};
  $("done").hidden = true; $("item").hidden = false;
  $("input").textContent = data.input; $("expected").textContent = data.expected;
  $("left").textContent = data.left; $("right").textContent = data.right;
}
async function vote(choice) {
  if (!current) return;
  const shown = current; current = null;
  await fetch("/api/vote", {method: "POST", headers: {"content-type": "application/json"},
    body: JSON.stringify({reviewer: shown.reviewer, item: shown.item, choice: choice})});
  await load();
}
$("start").addEventListener("click", () => { if (who()) load(); });
$("show-expected").addEventListener("change", e => { $("expected").hidden = !e.target.checked; });
document.addEventListener("keydown", e => {
  if (e.target === $("reviewer")) { if (e.key === "Enter" && who()) load(); return; }
  const choice = {a: "left", b: "right", t: "tie", s: "skip"}[e.key.toLowerCase()];
  if (choice) vote(choice);
});
</script></body></html>
"""
