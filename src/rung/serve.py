"""`rung serve`: a run's stored pipeline behind an OpenAI-compatible HTTP API.

What is served is what was measured: the Pipeline the run stored for the rung (its
instruction, demonstrations or similar-example pool, retriever settings, calibration, model,
tune or classifier), loaded from the store and asked through `Pipeline.predict`, the same call
`rung eval` scored the test split with. A chat request's input is read from its messages by
`conversation_text`, the function that makes every example's input: a lone user message is
that message's text, as before; a conversation (a system or developer message, earlier user
and assistant turns) is the same transcript the climb measured examples with context on. So a
client sends the conversation as the data holds it; the pipeline adds its own instruction,
demonstrations and passages itself. A rag answer carries its sources.

Requests that arrive together share one `predict` call (dynamic batching: up to `max_batch`
inputs, waiting at most `batch_wait_ms` for more); the queue in front of it is bounded, and a
request that finds it full gets 503 with Retry-After instead of joining an unbounded backlog.
Built on FastAPI and uvicorn; metrics by prometheus_client.
"""

from __future__ import annotations

import asyncio
import errno
import json
import secrets
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request  # at module level: FastAPI reads the handlers' annotations

from rung.errors import ConfigError, RungError
from rung.pipeline import Output, Pipeline

if TYPE_CHECKING:
    from rung.task import TaskSpec
    from rung.store import Store


@dataclass(frozen=True)
class Served:
    pipeline: Pipeline
    run_id: str
    rung: str
    task: str

    @property
    def model_id(self) -> str:
        return f"rung:{self.task}:{self.rung}"


def load_served(task_path: str | Path, run_id: str | None = None,
                rung: str | None = None, *, force: bool = False) -> Served:
    """The pipeline a run stored for `rung`: by default the latest finished run, and its
    recommended rung (or its best, when none reached the target). A fine-tune whose base
    model changed since it was trained is refused unless `force` (see served_from)."""
    from rung.task import load_task

    return served_from(load_task(task_path), run_id, rung, force=force)


def served_from(task: "TaskSpec", run_id: str | None = None, rung: str | None = None, *,
                force: bool = False) -> Served:
    """load_served for a task already loaded. A pipeline whose model is a fine-tune (an
    adapter on a base model) is served only on the base weights it was trained on: a changed
    base is refused, as climb --tune and export refuse it, unless `force`."""
    from rung.models.endpoint import prepare
    from rung.store import Store

    prepare(task.models.endpoints())
    store = Store(task.store_dir)
    try:
        if run_id is None:  # the latest finished climb: a rung measured alone decided nothing
            done = [r.id for r in store.runs(limit=1000) if r.status == "done"]
            run_id = next((r for r in done if not _alone(store, r)), None)
            if run_id is None:
                alone = f" (runs {', '.join(done[:3])} each measured one rung alone: name one " \
                    "to serve it)" if done else ""
                raise ConfigError(f"no finished climb of {task.task.name} to serve{alone}",
                                  file=task.path, fix=f"climb it first: rung climb {task.path}")
        run = store.run(run_id)
        if run is None:
            raise ConfigError(f"no run '{run_id}' in {store.root}",
                              fix=f"rung runs {task.path} lists the runs")
        if run["status"] != "done" and rung is None:
            raise ConfigError(f"run {run_id} did not finish (status {run['status']}): it "
                              "recommends nothing", fix="serve a finished run (rung runs lists "
                              "them), or name a rung it measured with --rung")
        rows = {row["rung"]: row for row in store.rung_rows(run_id)}
        if rung is None:
            summary = json.loads(run["summary_json"] or "{}").get("recommendation", {})
            rung = summary.get("rung") or summary.get("best")
        if rung not in rows:
            raise ConfigError(f"run {run_id} measured no rung '{rung}'",
                              fix=f"serve one it measured: {', '.join(rows) or 'none'}")
        pipeline = Pipeline.from_dict(json.loads(rows[rung]["pipeline_json"]),
                                      base_dir=str(task.root),
                                      was_at=Path(run["task_path"]).parent)
    finally:
        store.close()
    _check_tune_base(pipeline, run_id, force=force)
    return Served(pipeline, run_id, rung, task.task.name)


def _check_tune_base(pipeline: Pipeline, run_id: str, *, force: bool) -> None:
    """Refuse a tuned model whose base weights changed since training (checked_base)."""
    from rung.models.registry import ADAPTER_BASE

    artifact = Path(pipeline.model)
    if not artifact.is_absolute() and pipeline.base_dir:  # a model named relative to the task
        artifact = Path(pipeline.base_dir) / artifact
    if pipeline.rung == "classifier" or not (artifact / ADAPTER_BASE).is_file():
        return  # not a tune: an alias, a model folder, a remote model, a classifier
    from rung.finetune.artifacts import RETUNE, checked_base

    checked_base(artifact, run_id=run_id, use="served", force=force,
                 fix=f"{RETUNE}, or pass --force to serve it on the base as it is")


def _alone(store: "Store", run_id: str) -> bool:
    """Whether the run measured one rung alone (rung eval), recommending nothing."""
    run = store.run(run_id)
    return bool(json.loads(run["summary_json"] or "{}").get("recommendation", {}).get("alone"))


class Busy(Exception):
    """The queue is full: the client should come back later."""


class Failed(Exception):
    """A request that got no answer: the status, message and error type its client is told
    (502 upstream_error: the model failed or refused; 500 server_error: rung itself)."""

    def __init__(self, status: int, message: str, kind: str) -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


def _server_error(what: str, error: Exception) -> Failed:
    """A 500 for an exception rung did not expect: its traceback goes to the server's log,
    its kind to the client."""
    import logging

    logging.getLogger("rung.serve").error("%s", what, exc_info=error)
    return Failed(500, f"{what} ({type(error).__name__}); the server's log has the details",
                  "server_error")


class Batcher:
    """Inputs that arrive together go to one predict call, at most `max_batch` at a time.
    A streaming request brings `on_text`, which hears its answer grow (on the event loop)."""

    def __init__(self, predict: Callable[..., list[Output]], *, max_batch: int,
                 max_wait_s: float, queue_size: int, on_batch: Callable[[int], None]) -> None:
        self.predict, self.max_batch, self.max_wait_s = predict, max_batch, max_wait_s
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=queue_size)
        self.on_batch = on_batch

    def enqueue(self, text: str, on_text: Callable[[str], None] | None = None
                ) -> "asyncio.Future[Output]":
        """The future answer; Busy when the queue is full."""
        future = asyncio.get_running_loop().create_future()
        try:
            self.queue.put_nowait((text, future, on_text))
        except asyncio.QueueFull:
            raise Busy from None
        return future

    async def submit(self, text: str) -> Output:
        return await self.enqueue(text)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            deadline = loop.time() + self.max_wait_s
            while len(batch) < self.max_batch:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self.queue.get(), left))
                except asyncio.TimeoutError:
                    break
            self.on_batch(len(batch))
            listeners = [on_text for _, _, on_text in batch]

            def heard(i: int, text: str) -> None:  # on the predict thread: hand to the loop
                if (listener := listeners[i]) is not None:
                    loop.call_soon_threadsafe(listener, text)

            streaming = {"on_text": heard} if any(listeners) else {}
            try:
                outputs = await asyncio.to_thread(self.predict, [text for text, _, _ in batch],
                                                  **streaming)
            except Exception as error:  # noqa: BLE001 - each waiting request gets the error
                for _, future, _ in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future, _), output in zip(batch, outputs):
                if not future.done():
                    future.set_result(output)


class BadRequest(Exception):
    """A chat request rung cannot read an input from; the message says why (a 400)."""


# Request parameters that would change how an answer is made. What is served is what was
# measured: the pipeline's own decoding (greedy, or a label picked from scores, up to
# [eval] max_new_tokens), so these are not applied, and the answer's `rung.ignored` names
# the ones a request sent. More than one choice cannot be given at all (`n`: a 400).
NOT_APPLIED = ("temperature", "top_p", "max_tokens", "max_completion_tokens", "stop",
               "frequency_penalty", "presence_penalty", "seed", "logit_bias", "logprobs",
               "top_logprobs", "response_format", "tools", "tool_choice", "reasoning_effort")


def not_applied(body: dict[str, Any]) -> list[str]:
    """The decoding parameters a request sent that rung does not apply (see NOT_APPLIED)."""
    if body.get("n") not in (None, 1):
        raise BadRequest(f'"n" is {json.dumps(body["n"])}: rung serves the one answer the '
                         "measured pipeline gives; send n = 1 or leave it out")
    return [key for key in NOT_APPLIED if body.get(key) is not None]




def _input(messages: Any, shared_system: str | None = None) -> str:
    """The input for a chat request's messages: `conversation_text` of them, as every example's
    input is made, so the same conversation is asked the same way here as in the climb (the
    system prompt the data carried on every line, `shared_system`, left out as there). A
    message's content is a string or a list of text parts, joined with a newline as the data
    reader joins content blocks (a part of another kind is refused); an assistant
    turn without content (one that only called tools) is empty."""
    from rung.data.example import Message, conversation_text
    from rung.data.formats import ROLES, text_of_blocks

    roles = ROLES["openai"]  # a request is an OpenAI chat: "developer" is its system prompt

    if not isinstance(messages, list):
        raise BadRequest('"messages" must be a list of {"role", "content"} objects')
    turns = []
    for n, message in enumerate(messages, 1):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in roles:
            raise BadRequest(f"message {n} has role {json.dumps(role)}: rung reads system (or "
                             "developer), user and assistant messages, the turns its data holds")
        content = message.get("content")
        if isinstance(content, list):  # text parts, read as the data reader reads them
            content = text_of_blocks(content)
            if content is None:
                raise BadRequest(f"message {n} has a part that is not a text part: rung's "
                                 'pipelines read text, given as {"type": "text", "text": ...} '
                                 "parts or a string")
        elif content is None and role == "assistant":
            content = ""
        if not isinstance(content, str):
            raise BadRequest(f"message {n} has no text content: give a string or a list of "
                             '{"type": "text", "text": ...} parts')
        turns.append(Message(roles[role], content))
    if not any(m.role == "user" for m in turns):
        raise BadRequest("no user message: rung answers the conversation up to its last user "
                         "message")
    return conversation_text(turns, shared_system)


def _error(status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> Any:
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": {"message": message, "type": kind, "code": status}},
                        status_code=status, headers=headers)


def create_app(served: Served, *, api_key: str | None = None, max_batch: int = 8,
               batch_wait_ms: float = 5.0, queue_size: int = 64,
               log_to: Path | None = None) -> Any:
    """The FastAPI app; `log_to` (a task's store folder) records each answered request with
    its input redacted."""
    from fastapi import FastAPI
    from fastapi.responses import Response, StreamingResponse
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, \
        Histogram, generate_latest

    registry = CollectorRegistry()
    requests = Counter("rung_requests", "Chat completion requests by outcome", ["status"],
                       registry=registry)
    latency = Histogram("rung_request_seconds", "Time from arrival to answer",
                        registry=registry)
    batches = Histogram("rung_batch_size", "Inputs per predict call",
                        buckets=(1, 2, 4, 8, 16, 32, 64), registry=registry)
    from rung.models.endpoint import is_remote
    from rung.models.remote import remote_model

    pipeline = served.pipeline
    if is_remote(pipeline.model):  # each failed request gets its 502; serving goes on
        remote_model(pipeline.model).stop_on_errors = False
    batcher = Batcher(pipeline.predict, max_batch=max_batch,
                      max_wait_s=batch_wait_ms / 1000, queue_size=queue_size,
                      on_batch=batches.observe)
    Gauge("rung_queue_depth", "Requests waiting for a batch", registry=registry).set_function(
        batcher.queue.qsize)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = asyncio.create_task(batcher.run())
        yield
        worker.cancel()

    app = FastAPI(title="rung serve", lifespan=lifespan)

    def authorised(request: Request) -> bool:
        if api_key is None:
            return True
        given = request.headers.get("authorization", "")
        return secrets.compare_digest(given.encode(), f"Bearer {api_key}".encode())

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "run": served.run_id, "rung": served.rung,
                "model": pipeline.model, "queue": batcher.queue.qsize()}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def models(request: Request) -> Any:
        if not authorised(request):
            return _error(401, "invalid API key", "invalid_request_error")
        return {"object": "list", "data": [{"id": served.model_id, "object": "model",
                                            "created": 0, "owned_by": "rung"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        started = time.perf_counter()
        if not authorised(request):
            requests.labels("401").inc()
            return _error(401, "invalid API key", "invalid_request_error")
        try:
            body = await request.json()
        except ValueError:
            requests.labels("400").inc()
            return _error(400, "the body is not JSON", "invalid_request_error")
        try:
            if not isinstance(body, dict):
                raise BadRequest("the body must be a JSON object with \"messages\"")
            text = _input(body.get("messages") or [], pipeline.shared_system)
            ignored = not_applied(body)
        except BadRequest as bad:
            requests.labels("400").inc()
            return _error(400, str(bad), "invalid_request_error")
        heard: asyncio.Queue[str] | None = asyncio.Queue() if body.get("stream") else None
        try:
            pending = batcher.enqueue(text, heard.put_nowait if heard is not None else None)
        except Busy:
            requests.labels("503").inc()
            return _error(503, "the queue is full; retry shortly", "overloaded",
                          headers={"Retry-After": "1"})

        async def answered() -> dict[str, Any]:
            """The completion, once the answer came (and was logged), counted by outcome:
            200, or Failed with the status and type the client is told."""
            try:
                try:
                    output = await pending
                except RungError as error:  # the model refused the whole batch (a wrong key)
                    raise Failed(502, error.message, "upstream_error") from error
                except Exception as error:  # noqa: BLE001 - a bug, CUDA out of memory, ...
                    raise _server_error("the pipeline failed on this request", error) from error
                if output.error:  # a remote model's request failed (or its stream was cut)
                    raise Failed(502, "the model behind this pipeline failed to answer; try "
                                 "again (rung's remote usage counts the errors)", "upstream_error")
                if log_to is not None:  # off the event loop: it writes to SQLite
                    seconds = time.perf_counter() - started
                    try:
                        await asyncio.to_thread(_log, log_to, served, text, output.text,
                                                seconds * 1000)
                    except Exception as error:  # noqa: BLE001 - --log asked for every answer
                        raise _server_error("the answer could not be logged (--log)",
                                            error) from error
            except Failed as failed:
                requests.labels(str(failed.status)).inc()
                raise
            latency.observe(time.perf_counter() - started)
            requests.labels("200").inc()
            return _completion(served, output, ignored)

        if heard is not None:
            return StreamingResponse(_stream(served, pending, heard, answered),
                                     media_type="text/event-stream")
        try:
            return await answered()
        except Failed as failed:
            return _error(failed.status, failed.message, failed.kind)

    return app


def _completion(served: Served, output: Output,
                ignored: Sequence[str] = ()) -> dict[str, Any]:
    extra: dict[str, Any] = {"run": served.run_id, "rung": served.rung}
    if ignored:
        extra["ignored"] = list(ignored)
    if output.sources:
        extra["sources"] = list(output.sources)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion",
        "created": int(time.time()), "model": served.model_id,
        "choices": [{"index": 0, "finish_reason": _finish_reason(served.pipeline, output),
                     "message": {"role": "assistant", "content": output.text}}],
        "usage": {"prompt_tokens": output.tokens_in, "completion_tokens": output.tokens_out,
                  "total_tokens": output.tokens_in + output.tokens_out},
        "rung": extra,
    }


def _finish_reason(pipeline: Pipeline, output: Output) -> str:
    """OpenAI's "length" for a generated answer that used every token the pipeline allows
    (max_new_tokens, as measured): the client is told the answer may be cut, not complete. A
    label is scored, never cut."""
    cut = pipeline.kind != "classification" and output.tokens_out >= pipeline.max_new_tokens
    return "length" if cut else "stop"


async def _stream(served: Served, pending: "asyncio.Future[Output]",
                  heard: "asyncio.Queue[str]",
                  answered: Callable[[], Awaitable[dict[str, Any]]]) -> AsyncIterator[str]:
    """Server-sent chunks in OpenAI's shape: the answer's new text as the model makes it
    (each text heard extends the last), then what the finished answer adds, then the
    finish chunk with rung's fields. A label is picked from scores, not written token by
    token, so a classification answer (like any answer from a model that cannot stream)
    comes in one chunk."""
    base = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": served.model_id}

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra}
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    sent = ""
    waiting: asyncio.Future[str] | None = None
    try:
        while not pending.done() or not heard.empty():
            waiting = asyncio.ensure_future(heard.get())
            await asyncio.wait({waiting, pending}, return_when=asyncio.FIRST_COMPLETED)
            if not waiting.done():  # the answer is done: what is still queued comes next
                waiting.cancel()
                continue
            text = waiting.result()
            if text.startswith(sent) and text != sent:
                yield chunk({"content": text[len(sent):]})
                sent = text
    finally:  # the answer came, or the client left: stop listening either way
        if waiting is not None and not waiting.done():
            waiting.cancel()
    try:
        answer = await answered()
    except Failed as failed:  # the 200 went out with the first chunk: an error event ends it
        error = {"message": failed.message, "type": failed.kind, "code": failed.status}
        yield f"data: {json.dumps({'error': error})}\n\n"
        return
    text = answer["choices"][0]["message"]["content"]
    if text.startswith(sent) and text != sent:
        yield chunk({"content": text[len(sent):]})
    yield chunk({}, answer["choices"][0]["finish_reason"], usage=answer["usage"],
                rung=answer["rung"])
    yield "data: [DONE]\n\n"


def _log(store_dir: Path, served: Served, text: str, answer: str, latency_ms: float) -> None:
    from rung.data.audit.pii_find import redact
    from rung.store import Store

    store = Store(store_dir)
    try:
        store.log_served([(served.run_id, served.rung, redact(text), redact(answer),
                           latency_ms)])
    finally:
        store.close()


def bound_socket(host: str, port: int) -> socket.socket:
    """The server's socket, bound before the model loads: a port in use or a host that is no
    address of this machine is said at once, and "serving on" is printed only once it is true.
    It listens only once the server starts (asyncio does), so no client is accepted into a
    queue that nothing answers while the model loads."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as err:
        raise ConfigError(f"--host {host} is not an address: {err.strerror}",
                          fix="pass --host 127.0.0.1 (this machine only) or 0.0.0.0 (every "
                              "interface)") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as err:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {err.strerror}",
                          fix="pass another --port, or stop what is serving there"
                              if err.errno == errno.EADDRINUSE else
                              "pass an --host this machine has (127.0.0.1, 0.0.0.0) and a "
                              "--port it may use") from None
    return sock
