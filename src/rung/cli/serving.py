"""The two commands that start a web server on a stored run: `rung serve` (its pipeline as
an OpenAI-compatible API) and `rung review` (blind side-by-side votes in a browser)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from rung.cli.shared import err, out, store_dir, task_store, user_errors


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
