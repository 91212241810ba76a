"""Examples per second through a remote model, `[models] concurrency = 8` against one request
at a time, on the same OpenAI-compatible server and the same examples.

The server is llama-cpp-python's (`python -m llama_cpp.server`, installed by `make install`)
on loopback, running the packaged SmolLM2-135M GGUF with 2 threads; started here and stopped
at the end. Both sides classify the same `--n` support tickets (the task's instruction
prompt, labels scored from the first answer token's log-probabilities) with no response
cache, so every example is a real request; the predicted labels must be identical
(asserted). Baseline (named "sequential"): the same RemoteModel with concurrency 1, which is
what a loop over the OpenAI SDK does.

    python benchmarks/remote_throughput.py [--n 40] [--concurrency 8]

Last line: JSON with ratio, identical, examples_per_s (both), requests, server, ...
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rung.climb import load_examples, make_split
from rung.models.registry import resolve
from rung.models.endpoint import Endpoint, configure
from rung.models.remote import remote_model
from rung.pipeline import Pipeline
from rung.task import load_task

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving import wait_until_serving  # noqa: E402

TASK = Path(__file__).resolve().parents[1] / "examples" / "support-tickets"


def start_server(threads: int) -> tuple[subprocess.Popen, str]:
    ref = resolve("smollm2-135m-instruct")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(Path(tempfile.mkdtemp()) / "server.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model",
         str(Path(ref.location) / ref.gguf_file), "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", "4096", "--logits_all", "true", "--n_threads", str(threads),
         "--verbose", "false"], stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}/v1"
    wait_until_serving(f"{url}/models", process, log.name, timeout_s=180)
    return process, url


def run(pipeline: Pipeline, texts: list[str]) -> tuple[list[str], float]:
    started = time.perf_counter()
    outputs = pipeline.predict(texts)  # no cache: every example is a request
    return [o.text for o in outputs], time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="the server's threads")
    args = parser.parse_args()
    task = load_task(TASK)
    texts = [ex.input for ex in make_split(task, load_examples(task)).test[: args.n]]
    process, url = start_server(args.threads)
    try:
        sides = {}
        for name, concurrency in (("sequential", 1), ("concurrent", args.concurrency)):
            endpoint = Endpoint.of("openai:smollm2", base_url=url, concurrency=concurrency,
                                   api_key_env="")
            configure([endpoint])
            model = remote_model("openai:smollm2")  # the instance the pipeline will ask
            pipeline = Pipeline(rung="prompt", kind="classification", model="openai:smollm2",
                                instruction=task.task.instruction, variant="instruction",
                                labels=list(task.task.labels), base_dir=str(task.root))
            run(pipeline, texts[:2])  # warm-up: the server's first requests are slow
            before = model.usage.requests
            labels, seconds = run(pipeline, texts)
            sides[name] = {"labels": labels, "seconds": seconds,
                           "requests": model.usage.requests - before,
                           "errors": model.usage.errors, "scoring": model.usage.scoring}
    finally:
        process.terminate()
        process.wait(timeout=30)
    a, b = sides["sequential"], sides["concurrent"]
    identical = a["labels"] == b["labels"]
    assert identical, "concurrency changed the answers"
    assert a["requests"] == b["requests"] == len(texts) and not a["errors"] and not b["errors"]
    ratio = a["seconds"] / b["seconds"]
    print(f"sequential: {len(texts) / a['seconds']:.2f} examples/s ({a['seconds']:.1f} s)")
    print(f"concurrency {args.concurrency}: {len(texts) / b['seconds']:.2f} examples/s "
          f"({b['seconds']:.1f} s)")
    print(f"ratio {ratio:.2f}x, identical labels: {identical}")
    from importlib.metadata import version

    print(json.dumps({
        "ratio": round(ratio, 3), "identical": identical, "examples": len(texts),
        "examples_per_s": {"sequential": round(len(texts) / a["seconds"], 3),
                           "concurrent": round(len(texts) / b["seconds"], 3)},
        "requests": {"sequential": a["requests"], "concurrent": b["requests"]},
        "scoring": b["scoring"], "concurrency": args.concurrency, "baseline": "sequential",
        "server": f"llama-cpp-python {version('llama-cpp-python')} server, SmolLM2-135M "
                  f"Q4_1, {args.threads} threads, loopback",
        "cores": os.cpu_count()}))


if __name__ == "__main__":
    main()
