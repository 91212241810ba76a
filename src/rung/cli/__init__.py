"""The `rung` command: parse, call the library, print. No logic lives here."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Optional

import typer
from rich.text import Text

from rung.cli.shared import check_choice, err, fail, out, progress, store_dir, task_store, \
    user_errors
from rung.terminal import climb_table, dry_run_table, plan_table, print_audit, print_check, \
    print_estimate, runs_table

app = typer.Typer(help="Climb the adaptation ladder on your own data before you fine-tune.",
                  no_args_is_help=True, add_completion=False)


@app.command()
def climb(
    path: Path = typer.Argument(..., help="rung.toml, or the folder that holds it"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
    no_cache: bool = typer.Option(False, "--no-cache", help="ask the model again even for prompts it has answered"),
    force: bool = typer.Option(False, "--force", help="fine-tune even on data the audit "
                                                      "calls not ready"),
    tune: Optional[str] = typer.Option(None, "--tune", help="measure the fine-tune of this "
                                       "past run again instead of training one"),
    climb_all: bool = typer.Option(False, "--all", help="measure every rung instead of "
                                   "stopping at the first whose choice reaches the target on val"),
    dry_run: bool = typer.Option(False, "--dry-run", help="count and price what every rung "
                                 "would send to its models, without sending anything"),
    budget: Optional[float] = typer.Option(None, "--budget", min=0, help="stop before the "
                                           "dollars spent at remote models would pass this"),
) -> None:
    """Build and measure each rung on the same test split, cheapest first; stop at the first
    that reaches the target (on val) and recommend the first that reaches it on test."""
    if dry_run:
        from rung.dry_run import dry_run as count_requests

        with user_errors():
            given = [flag for flag, value in (("--tune", tune), ("--budget", budget))
                     if value is not None]
            if given:  # a dry run counts a first climb of every rung and spends nothing
                from rung.errors import ConfigError

                raise ConfigError(f"--dry-run counts what a first climb of every rung would "
                                  f"send; {' and '.join(given)} would change nothing there",
                                  fix=f"drop {' and '.join(given)}, or --dry-run")
            estimate = count_requests(path)
        if as_json:
            print(json.dumps(estimate, indent=2))
        else:
            out.print(plan_table(estimate["work"]))
            out.print(dry_run_table(estimate))
            out.print(f"[dim]{estimate['estimate']}[/]", highlight=False)
        return
    _climb(path, as_json=as_json, no_cache=no_cache, only=None, force=force, tune_from=tune,
           climb_all=climb_all, budget=budget)


@app.command("eval")
def eval_rung(
    path: Path = typer.Argument(..., help="rung.toml, or the folder that holds it"),
    rung: str = typer.Option(..., "--rung", help="classifier, prompt, few-shot, rag, "
                             "bigger-model or finetune"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
    no_cache: bool = typer.Option(False, "--no-cache", help="ask the model again"),
    force: bool = typer.Option(False, "--force", help="fine-tune even on data the audit "
                                                      "calls not ready"),
) -> None:
    """Measure one rung on the test split; the run is stored like a climb's."""
    _climb(path, as_json=as_json, no_cache=no_cache, only=rung, force=force)


def _climb(path: Path, *, as_json: bool, no_cache: bool, only: str | None,
           force: bool = False, tune_from: str | None = None, climb_all: bool = False,
           budget: float | None = None) -> None:
    from rung.climb import climb as run_climb

    # progress goes to stderr: --json keeps stdout for the JSON, and a long climb still shows
    with user_errors(), progress(True) as reporter:
        result = run_climb(path, reporter=reporter, use_cache=not no_cache, only=only,
                           force=force, tune_from=tune_from, climb_all=climb_all,
                           budget=budget, on_plan=reporter.planned)
    summary = result.summary()
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    out.print(climb_table(summary))
    rec = summary["recommendation"]
    colour = "green" if rec["rung"] else "yellow"
    out.print(Text.assemble(("recommendation: ", f"bold {colour}"), rec["reason"]),
              highlight=False)
    for reason in rec["reasons"]:
        out.print(f"  - {reason['text']}", highlight=False, markup=False)
    if only is None:
        for name, why in summary["not_measured"].items():
            out.print(f"not measured: {name}: {why}", style="dim", highlight=False,
                      markup=False)
    if (cache := summary["cache"]) and cache["hits"]:
        out.print(f"[dim]{cache['hits']:,} model answers came from the store, "
                  f"{cache['misses']:,} were asked[/]")
    for model, used in (summary.get("spent") or {}).items():  # every rung, built ones too
        price = "unpriced" if used["dollars"] is None else f"${used['dollars']:,.4f}"
        out.print(f"remote {model}: {used['requests']:,} requests, {used['tokens_in']:,} "
                  f"tokens in, {used['tokens_out']:,} out, {price} for the whole run",
                  style="dim", highlight=False, markup=False)
    out.print(f"[dim]run {summary['run_id']} stored in {result.task.store_dir}[/]")
    if result.report is not None:
        out.print(f"report: {result.report}", highlight=False, soft_wrap=True)


@app.command()
def runs(
    path: Path = typer.Argument(Path("."), help="rung.toml or its folder"),
    limit: int = typer.Option(20, help="how many runs to list"),
    as_json: bool = typer.Option(False, "--json"),
    pin: Optional[str] = typer.Option(None, "--pin", help="make this run the baseline "
                                      "rung gate compares with"),
) -> None:
    """List past runs of a task, newest first: how each ended, and why when it failed."""
    from rung.task import load_task

    with user_errors():
        task = load_task(path)
        if not (task.store_dir / "runs.db").exists():
            err.print("no runs yet: try 'rung climb' first")
            raise typer.Exit(0)
        with task_store(path) as store:
            if pin is not None:
                store.pin(pin)
                err.print(f"run {pin} is the baseline of rung gate")
            rows = store.runs(limit)
    if as_json:
        print(json.dumps([{"run_id": r.id, **r.__dict__} for r in rows], indent=2))
        return
    out.print(runs_table(task.task.name, rows))


@app.command()
def audit(
    path: Path = typer.Argument(..., help="a data file, or rung.toml / its folder"),
    as_json: bool = typer.Option(False, "--json", help="print verdict and checks as JSON"),
    strict: bool = typer.Option(False, "--strict", help="exit 1 when the verdict is not ready"),
    fix: Optional[Path] = typer.Option(None, "--fix", metavar="OUT",
                                       help="write a cleaned copy (deduplicated, redacted; "
                                            "contradictions set aside) to OUT"),
    redact: bool = typer.Option(False, "--redact", help="write NAME.redacted.EXT beside the input"),
    kind: Optional[str] = typer.Option(None, help="classification, extraction or generation "
                                                  "(a data file's is inferred)"),
    model: Optional[str] = typer.Option(None, help="model whose tokenizer and context to check"),
    skip: list[str] = typer.Option([], "--skip", help="a check not to run (repeatable)"),
    force: bool = typer.Option(False, "--force", help="replace files --fix or --redact would "
                               "write that exist already (never the input)"),
) -> None:
    """Check a dataset against the seeds' data-quality checklist before anyone trains on it."""
    from rung.data.audit.fix import companion, fixed_paths, write_fixed, write_redacted
    from rung.data.audit.report import CHECKS, audit_dataset, data_file
    from rung.files import claim

    with user_errors():
        check_choice("--kind", kind, ("classification", "extraction", "generation"))
        for name in skip:
            check_choice("--skip", name, CHECKS)
        source = data_file(path)
        targets = (list(fixed_paths(fix)) if fix is not None else []) + (
            [companion(source, "redacted")] if redact else [])
        claim(targets, inputs=[source], force=force)  # before the audit's work, not after
        with progress(not as_json) as reporter:
            report, examples = audit_dataset(path, kind=kind, model=model, skip=tuple(skip),
                                             reporter=reporter)
        summary = report.to_dict()
        if fix is not None:
            summary["fix"] = write_fixed(report, examples, fix, force=force)
        if redact:
            target = companion(source, "redacted")
            summary["redacted"] = {"output": str(target), "changed": write_redacted(
                report, examples, target, force=force)}
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        print_audit(out, summary)
    if strict and summary["verdict"] == "not ready":
        raise typer.Exit(1)


@app.command()
def index(
    path: Path = typer.Argument(Path("."), help="rung.toml or its folder (with [task] corpus)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Build or refresh the corpus index: only added, changed or deleted documents are touched."""
    from rung.rag.service import index_task

    with user_errors(), progress(not as_json) as reporter:
        report = index_task(path, reporter)
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
        return
    out.print(f"indexed: {len(report.added)} added, {len(report.changed)} changed, "
              f"{len(report.removed)} removed, {report.unchanged} unchanged; {report.chunks} chunks "
              f"({report.chunks_embedded} embedded now)", highlight=False)
    for problem in report.problems:
        err.print(f"[yellow]skipped[/] {problem}", highlight=False)
    if report.chunks == 0:
        err.print("[yellow]warning:[/] the index is empty: the corpus folder has no document "
                  "with text (.md, .txt, .html, .pdf), so retrieval has nothing to find",
                  highlight=False)


@app.command()
def ask(
    path: Path = typer.Argument(..., help="rung.toml or its folder (with [task] corpus)"),
    question: str = typer.Argument(..., help="the question to answer"),
    method: Optional[str] = typer.Option(None, help="bm25, dense or hybrid (default: the "
                                                    "last climb's choice, else hybrid)"),
    k: Optional[int] = typer.Option(None, min=1, help="chunks to retrieve (default: as "
                                    "chosen)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Answer one question through the rag pipeline and show the sources it used."""
    from rung.rag.service import ask as ask_question

    with user_errors():
        if method is not None:
            check_choice("--method", method, ("bm25", "dense", "hybrid"))
        answer = ask_question(path, question, method=method, k=k)
    if as_json:
        print(json.dumps(answer, indent=2))
        return
    out.print(answer["answer"], highlight=False, markup=False)
    out.print(f"[dim]{answer['method']}, k={answer['k']}, {answer['pipeline']}[/]")
    for number, source in enumerate(answer["sources"], 1):
        # characters of the file for Markdown and text; HTML and PDF are cited by section
        span = (f"  chars {source['start']}-{source['end']}"
                if source.get("span_in_file", True) else "")
        out.print(f"  [{number}] {source['citation']}{span}",
                  highlight=False, markup=False)


@app.command()
def tune(
    path: Path = typer.Argument(..., help="rung.toml, or the folder that holds it"),
    force: bool = typer.Option(False, "--force", help="tune even on data the audit calls not ready"),
    as_json: bool = typer.Option(False, "--json", help="print the tune's record as JSON"),
) -> None:
    """Train the fine-tune only (under `accelerate launch` for several processes); the next
    `rung climb` measures it without training again."""
    from rung.climb import tune_task

    with user_errors(), progress(not as_json) as reporter:
        result = tune_task(path, reporter=reporter, force=force)
    if os.environ.get("RANK", "0") != "0":  # under accelerate, the first process speaks
        return
    if as_json:
        print(json.dumps(result.summary(), indent=2, default=str))
    else:
        out.print(f"{result.method}: {result.steps} steps, best val loss "
                  f"{result.best_val_loss:.4f} at step {result.best_step}; {result.artifact}")
        for signal in result.signals:  # the seeds' overfitting signals, each with its fix
            out.print(f"  - {signal.name}: {signal.evidence} (fix: {signal.fix})",
                      style="yellow", highlight=False, markup=False)
        for setting in result.unusual:
            out.print(f"  - outside the seeds' ranges: {setting}", style="yellow",
                      highlight=False, markup=False)


def _check_export_options(rung: str, fmt: Optional[str], merge: bool) -> None:
    """Options that contradict each other are refused, never one of them silently dropped."""
    from rung.errors import ConfigError

    if rung == "classifier" and fmt in ("hf", "vllm"):
        raise ConfigError(f"--format {fmt} exports a fine-tuned LLM, and --rung classifier "
                          "names a scikit-learn model", fix="drop --format (or use --format "
                          "classifier) to export the classifier")
    if fmt == "classifier" and rung == "finetune" and merge:
        raise ConfigError("--merge folds a LoRA adapter into its base; a classifier has none",
                          fix="drop --merge")
    if merge and fmt == "vllm":
        raise ConfigError("--merge folds the adapter in, and --format vllm serves base + adapter",
                          fix="--format hf writes merged weights; or drop --merge")


@app.command()
def export(
    run: str = typer.Argument(..., help="the run id (rung runs PATH lists them)"),
    to: Path = typer.Option(..., "--out", help="a new folder for the exported model"),
    merge: bool = typer.Option(False, "--merge", help="fold a LoRA adapter into the base "
                                                      "weights: one plain transformers model"),
    path: Path = typer.Option(Path("."), "--task", help="rung.toml or its folder"),
    rung: str = typer.Option("finetune", "--rung", help="finetune (the tuned model) or "
                             "classifier (the scikit-learn model)"),
    fmt: Optional[str] = typer.Option(None, "--format", help="hf (merged weights) or vllm "
                                      "(base + adapter), each with a chat template that "
                                      "carries the pipeline's prompt and a manifest; "
                                      "classifier (as --rung classifier)"),
    force: bool = typer.Option(False, "--force", help="export a tune whose base model changed "
                               "since it trained, on the base as it is now"),
) -> None:
    """Write a run's fine-tuned model (adapter, or merged weights) or its classifier, with
    its provenance."""
    from rung.finetune.artifacts import export_tune
    from rung.rungs.classifier import export_classifier

    with user_errors(), task_store(path) as store:
        check_choice("--rung", rung, ("finetune", "classifier"))
        check_choice("--format", fmt, ("hf", "vllm", "classifier"))
        _check_export_options(rung, fmt, merge)
        if fmt in ("hf", "vllm"):
            from rung.export import export_pipeline

            manifest = export_pipeline(store, run, to, fmt, force=force)
            err.print(f"wrote the {fmt} export of run {run} to {to}; start it with:\n  "
                      f"{manifest['serve']}")
            return
        if rung == "classifier" or fmt == "classifier":
            export_classifier(store, run, to)
            err.print(f"wrote the classifier of run {run} to {to}")
            return
        record = export_tune(store, run, to, merge=merge, force=force)
    what = "merged model" if record["merged"] else f"{record['method']} artifact"
    err.print(f"wrote the {what} of run {run} to {to}")


@app.command()
def serve(
    run: Optional[str] = typer.Argument(None, help="the run to serve (default: the latest "
                                        "finished climb)"),
    path: Path = typer.Option(Path("."), "--task", help="rung.toml or its folder"),
    rung: Optional[str] = typer.Option(None, "--rung", help="the rung to serve (default: the "
                                       "run's recommendation, or its best)"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to bind; 127.0.0.1 keeps "
                             "it on this machine"),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="0: any free port"),
    api_key: Optional[str] = typer.Option(None, "--api-key", envvar="RUNG_SERVE_API_KEY",
                                          help="require 'Authorization: Bearer KEY' (or set "
                                               "RUNG_SERVE_API_KEY)"),
    max_batch: int = typer.Option(8, "--max-batch", min=1, help="inputs per forward pass"),
    batch_wait_ms: float = typer.Option(5.0, "--batch-wait-ms", min=0,
                                        help="how long a batch waits for more requests"),
    queue: int = typer.Option(64, "--queue", min=1, help="requests that may wait; more get "
                              "503 with Retry-After"),
    log: bool = typer.Option(False, "--log", help="record each request in the store, inputs "
                             "redacted (PII), to audit and check later"),
    force: bool = typer.Option(False, "--force", help="serve a tune whose base model changed "
                               "since it trained, on the base as it is now"),
) -> None:
    """Serve a run's pipeline as an OpenAI-compatible API (POST /v1/chat/completions,
    GET /v1/models, /health, /metrics): exactly what was measured."""
    import uvicorn

    from rung.serve import bound_socket, create_app, load_served

    with user_errors():
        sock = bound_socket(host, port)  # before the model loads: a taken port is said now
        try:
            served = load_served(path, run, rung, force=force)
            served.pipeline.predict([""] if served.pipeline.kind == "classification" else ["hi"])
            app_ = create_app(served, api_key=api_key, max_batch=max_batch,
                              batch_wait_ms=batch_wait_ms, queue_size=queue,
                              log_to=store_dir(path) if log else None)
        except BaseException:
            sock.close()
            raise
    port = sock.getsockname()[1]
    err.print(f"serving {served.rung} of run {served.run_id} as {served.model_id} on "
              f"http://{host}:{port}/v1" + (" (key required)" if api_key else ""))
    uvicorn.Server(uvicorn.Config(app_, log_level="warning")).run(sockets=[sock])


@app.command()
def check(
    run: Optional[str] = typer.Argument(None, help="the run whose pipeline to check (default: "
                                        "the latest finished one)"),
    inputs: Path = typer.Option(..., "--inputs", help="production inputs: any data format "
                                "(with expected outputs), JSON lines with an input key, or a "
                                ".txt file of one input per line"),
    path: Path = typer.Option(Path("."), "--task", help="rung.toml or its folder"),
    rung: Optional[str] = typer.Option(None, "--rung", help="default: the run's recommendation"),
    as_json: bool = typer.Option(False, "--json"),
    strict: bool = typer.Option(False, "--strict", help="exit 1 on significant drift, a "
                                "significantly lower score or a failed edge-case probe"),
) -> None:
    """Validate before you deploy: the shipped pipeline on production inputs, its score
    against the test score, drift of the inputs from the training data, and edge cases."""
    from rung.check import check as run_check

    with user_errors():
        report = run_check(path, inputs, run_id=run, rung=rung)
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        print_check(out, err, report)
    if strict and report["significant"]:
        raise typer.Exit(1)


@app.command()
def compare(
    run_a: str = typer.Argument(..., help="the first run (the reference)"),
    run_b: str = typer.Argument(..., help="the second run"),
    path: Path = typer.Option(Path("."), "--task", help="rung.toml or its folder"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Two runs on the same test split: what changed between them, then per rung and overall
    the paired difference by the task's metric (McNemar's exact test for a 0/1 metric, the
    sign-flip permutation test for a graded one) and the examples that got worse and
    better."""
    from rung.compare import compare_runs, describe_changes, moves
    from rung.task import load_task

    with user_errors(), task_store(path) as store:
        report = compare_runs(store, run_a, run_b, load_task(path))
    if as_json:
        print(json.dumps(report, indent=2))
        return
    out.print(f"changed: {describe_changes(report)}", highlight=False, markup=False)
    for name, row in [*report["rungs"].items(), ("overall", report["overall"])]:
        out.print(f"{name}: {row['metric']} {row['a']['score']:.3f} -> {row['b']['score']:.3f} "
                  f"({row['difference']:+.3f}, 95% CI {row['ci'][0]:+.3f} "
                  f"to {row['ci'][1]:+.3f}, p = {row['p_value']:.3g}); {moves(row)}",
                  highlight=False, markup=False)
        for flip in row["right_to_wrong"][:5]:
            out.print(f"  line {flip['line']}: {flip['a']!r} -> {flip['b']!r} "
                      f"(expected {flip['expected']!r})", highlight=False, markup=False)


@app.command()
def gate(
    path: Path = typer.Argument(Path("."), help="rung.toml or its folder"),
    baseline: Optional[str] = typer.Option(None, "--baseline", help="default: the run pinned "
                                           "with rung runs --pin"),
    candidate: Optional[str] = typer.Option(None, "--candidate", help="default: climb the "
                                            "task now"),
    tolerance: float = typer.Option(0.0, "--tolerance", min=0, help="a drop this small is "
                                    "accepted even when significant"),
    markdown_to: Optional[Path] = typer.Option(None, "--markdown", help="write a summary for a "
                                               "pull-request comment here"),
    force: bool = typer.Option(False, "--force", help="replace an existing --markdown file "
                               "that is not an earlier gate summary"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """For CI: exit 1 when the candidate is significantly worse than the baseline (by more
    than --tolerance), 0 when not, 2 on an error."""
    from rung.climb import climb as run_climb
    from rung.compare import GATE_MARK, finished_run, gate as run_gate, is_gate_summary, \
        markdown
    from rung.files import atomic_write, claim
    from rung.task import load_task

    with user_errors():
        if markdown_to is not None:  # refused before a climb, not after
            claim([markdown_to], force=force, ours=is_gate_summary, option="--force")
        with task_store(path) as store:
            baseline = baseline or store.pinned()
            if baseline is not None:  # a baseline that is not there is said before a climb
                finished_run(store, baseline)
        if baseline is None:
            from rung.errors import ConfigError

            raise ConfigError("no baseline run", fix="pass --baseline RUN, or pin one: rung runs "
                              f"{path} --pin RUN")
        if candidate is None:
            with progress(not as_json) as reporter:
                candidate = run_climb(path, reporter=reporter).run_id
        with task_store(path) as store:
            verdict = run_gate(store, baseline, candidate, load_task(path), tolerance=tolerance)
        if markdown_to is not None:
            atomic_write(markdown_to, markdown(verdict) + f"\n{GATE_MARK}\n")
    if as_json:
        print(json.dumps(verdict, indent=2))
    else:
        out.print(markdown(verdict), highlight=False, markup=False)
    if verdict["fails"]:
        raise typer.Exit(1)


@app.command()
def review(
    run: str = typer.Argument(..., help="the run whose answers to review"),
    path: Path = typer.Option(Path("."), "--task", help="rung.toml or its folder"),
    rungs: Optional[str] = typer.Option(None, "--rungs", help="A,B (default: the best cheaper "
                                        "rung, then the recommended one)"),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8001, "--port"),
    show: bool = typer.Option(False, "--results", help="print the results so far and exit"),
    as_json: bool = typer.Option(False, "--json"),
    inputs: Optional[Path] = typer.Option(None, "--inputs", help="review answers to these "
                                          "inputs (any data format, JSON lines with an input "
                                          "key, or .txt) instead of the test examples"),
) -> None:
    """Blind side-by-side review of two rungs' answers in the browser; votes go to the store,
    results with the exact sign test (--results)."""
    from rung.review import create_app, items_for_inputs, pair_to_review, results, \
        verdict_text
    from rung.task import load_task

    with user_errors():
        queue = None
        with task_store(path) as store:
            rung_a, rung_b = pair_to_review(store, run, rungs)
            summary = results(store, run, rung_a, rung_b)
            if inputs is not None and not show:
                queue = items_for_inputs(store, load_task(path), run, rung_a, rung_b,
                                         inputs)
        if not show:
            app_ = create_app(store_dir(path), run, rung_a, rung_b, queue)
    if show:
        print(json.dumps(summary, indent=2)) if as_json else out.print(
            verdict_text(summary), highlight=False)
        return
    import uvicorn

    # a wildcard bind is no address to open (a browser that tries sends Host 0.0.0.0, which
    # the page's own-host rule refuses): this machine's loopback, and its IP for others
    wildcard = host in ("0.0.0.0", "::", "[::]")
    err.print(f"review {rung_a} against {rung_b} of run {run}: open http://"
              f"{'127.0.0.1' if wildcard else host}:{port}/"
              + (" here, or this machine's IP address at that port elsewhere" if wildcard
                 else ""), soft_wrap=True)  # a URL cut in two cannot be copied
    uvicorn.run(app_, host=host, port=port, log_level="warning")


@app.command()
def report(
    run: str = typer.Argument(..., help="the run id (rung runs PATH lists them)"),
    path: Path = typer.Option(Path("."), "--task", help="rung.toml or its folder"),
    to: Optional[Path] = typer.Option(None, "--out", help="where to write the HTML file "
                                      "(default: the run's artifacts folder)"),
    force: bool = typer.Option(False, "--force", help="replace an existing --out file that is "
                               "not an earlier rung report"),
) -> None:
    """Write a run's report: one self-contained HTML page, the decision first."""
    from rung.report import write_report

    with user_errors(), task_store(path) as store:
        written = write_report(store, run, to, force=force)
    print(written)


@app.command()
def estimate(
    models: list[str] = typer.Argument(..., help="aliases, model folders, config.json files "
                                       "or sizes like 7B"),
    seq_len: int = typer.Option(512, "--seq-len", min=1, help="tokens per example"),
    batch: int = typer.Option(4, "--batch", min=1, help="examples per device step"),
    rank: int = typer.Option(16, "--rank", min=1, help="LoRA rank"),
    dtype: str = typer.Option("bf16", "--dtype", help="bf16, fp16 or fp32 training"),
    checkpointing: bool = typer.Option(False, "--gradient-checkpointing",
                                       help="recompute activations in backward"),
    breakdown: bool = typer.Option(True, "--breakdown/--no-breakdown",
                                   help="weights, gradients, optimizer, activations per method"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Training memory for full fine-tuning, LoRA and QLoRA, in the seeds' table shape."""
    from rung.finetune.memory import seeds_table

    with user_errors():
        check_choice("--dtype", dtype, ("bf16", "fp16", "fp32"))
        rows = seeds_table(models, seq_len=seq_len, batch_size=batch, lora_rank=rank,
                           dtype=dtype, gradient_checkpointing=checkpointing or None)
    if as_json:
        print(json.dumps([r.to_dict() for r in rows], indent=2))
        return
    print_estimate(out, rows, title=f"training memory: seq {seq_len} x batch {batch}, {dtype}, "
                   "AdamW", lora_rank=rank, breakdown=breakdown)


@app.command()
def convert(
    src: Path = typer.Argument(..., help="input data file (format auto-detected)"),
    dst: Path = typer.Argument(..., help="output file"),
    to: str = typer.Option(..., "--to", help="openai, anthropic, alpaca, sharegpt, csv, "
                           "input-output, prompt-completion or text-label"),
    source_format: Optional[str] = typer.Option(None, "--from", help="skip auto-detection"),
    force: bool = typer.Option(False, "--force", help="replace DST if it exists (never SRC)"),
) -> None:
    """Convert examples between formats; the input is never modified."""
    from rung.data.formats import FORMATS, read_examples, write_examples
    from rung.files import claim

    with user_errors():
        check_choice("--to", to, FORMATS)
        check_choice("--from", source_format, FORMATS)
        claim([dst], inputs=[src], force=force)
        examples = read_examples(src, source_format)
        write_examples(examples, dst, to)
    err.print(f"wrote {len(examples)} example{'' if len(examples) == 1 else 's'} to {dst} "
              f"({to})")


def main() -> None:
    # Deprecation and version notices from the libraries underneath (transformers, peft, trl,
    # torch) are for rung's developers, not for its users: nothing a user types changes them.
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(transformers|peft|trl|torch|"
                            r"accelerate|sentence_transformers|sklearn)\b")
    try:
        app()
    except Exception as e:  # noqa: BLE001 - printing the result failed, past the handler
        try:
            fail(e)
        except typer.Exit as code:
            raise SystemExit(code.exit_code) from None

