"""Remote models (issue 15): `openai:MODEL` against a real OpenAI-compatible server on
loopback (llama-cpp-python's server running the packaged SmolLM2 GGUF), and, for what no local
server can show (Anthropic's API, 429s, 500s, timeouts), an HTTP-level FAKE vendor API
(tests/fake_api.py). Nothing in rung or the SDKs is patched: every request is real HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections import deque
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import free_port, ticket_records, wait_until_serving, write_task
from fake_api import FakeVendorAPI
from rung.cli import app
from rung.climb import climb
from rung.data.example import Message, make_example
from rung.costs import ApiPrice
from rung.errors import ConfigError, ModelError
from rung.eval.runner import evaluate
from rung.models.budget import Budget, BudgetReached, set_budget
from rung.models.cache import CachedModel
from rung.models.registry import resolve
from rung.models.labels import Reply, label_logprobs, label_scores, parse_label
from rung.models.endpoint import Endpoint, configure
from rung.models.remote import RemoteModel
from rung.pipeline import Pipeline
from rung.store import Store

runner = CliRunner()
PLANTED = "sk-planted-3f9c1e7d-do-not-write-me-down"



@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    """llama-cpp-python's OpenAI-compatible server on the packaged SmolLM2, on loopback."""
    ref = resolve("smollm2-135m-instruct")
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    process = subprocess.Popen(  # its log goes to a file: a full pipe would stall it
        [sys.executable, "-m", "llama_cpp.server", "--model",
         str(Path(ref.location) / ref.gguf_file), "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", "2048", "--logits_all", "true", "--n_threads", "2", "--verbose", "false",
         "--interrupt_requests", "false"],  # else a stream is cut when another request comes
        stdout=subprocess.DEVNULL, stderr=log.open("w"))
    url = f"http://127.0.0.1:{port}/v1"
    wait_until_serving(f"{url}/models", process, log, timeout_s=180)
    yield url
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture
def fake_api():
    fake = FakeVendorAPI().start()
    yield fake
    fake.stop()


def _remote_task(folder: Path, model: str, table: str, **settings: object) -> Path:
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items())
    return write_task(folder, model=model, records=ticket_records(8),
                      ladder={"skip": ["classifier"], "all": True}, fractions=(0.7, 0.15, 0.15),
                      extra=f"\n[models.{table}]\n{lines}")


# --- a real OpenAI-compatible server ----------------------------------------------------------


def test_a_task_on_an_openai_compatible_server_climbs_prompt_and_few_shot(tmp_path,
                                                                          llama_server):
    toml = _remote_task(tmp_path / "task", "openai:smollm2", "openai", base_url=llama_server)
    with toml.open("a") as fh:  # a price for this model, so dollars can be counted
        fh.write("\n[costs.api.smollm2]\ntrain_per_million = 0.0\n"
                 "input_per_million = 0.5\noutput_per_million = 1.5\n")
    done = runner.invoke(app, ["climb", str(toml), "--json"])
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    assert [r["rung"] for r in summary["rungs"]] == ["prompt", "few-shot"]
    for rung in summary["rungs"]:
        remote = rung["remote"]
        assert remote["backend"] == "openai" and remote["base_url"] == llama_server
        assert remote["scoring"] == "logprobs"  # llama.cpp's server returns them
        assert remote["requests"] > 0 and remote["errors"] == 0 and remote["tokens_in"] > 0
        assert remote["dollars"] == round(remote["tokens_in"] / 1e6 * 0.5
                                          + remote["tokens_out"] / 1e6 * 1.5, 6)
        assert remote["latency"].startswith("remote")
        assert rung["latency_ms"]["p50"] > 0 and rung["n"] == summary["split"]["test"]
        assert 0 <= rung["score"] <= 1
    # the same climb again: every answer (and the latency samples) from the store
    again = runner.invoke(app, ["climb", str(toml), "--json"])
    assert again.exit_code == 0, again.output
    second = json.loads(again.stdout)
    assert [r["remote"]["requests"] for r in second["rungs"]] == [0, 0]
    assert [r["score"] for r in second["rungs"]] == [r["score"] for r in summary["rungs"]]
    assert second["cache"]["misses"] == 0 and second["cache"]["hits"] > 0


def test_concurrent_requests_give_the_answers_one_at_a_time_gives(llama_server):
    prompts = [[Message("user", f"Name a colour that starts with the letter {c}.")]
               for c in "BGRWYOPT"]
    one = RemoteModel(Endpoint.of("openai:smollm2", base_url=llama_server, concurrency=1))
    many = RemoteModel(Endpoint.of("openai:smollm2", base_url=llama_server, concurrency=8))
    assert [g.text for g in one.generate(prompts, 12)] == \
        [g.text for g in many.generate(prompts, 12)]
    assert many.usage.requests == 8 and many.usage.errors == 0 and many.usage.tokens_out > 0


def _forget_the_last_prompt(url: str) -> None:
    """llama.cpp reuses the KV cache of the prompt before, and its sums round a little
    differently with what lies in that cache, so a near-tie between two tokens can fall either
    way (seen in CI: 'The colour of blue' against 'The colour blue'). A plain completion whose
    first token is not the chat template's clears the cache, so two runs that start here do
    the same arithmetic; what they are compared on is then only streamed against whole."""
    request = urllib.request.Request(
        f"{url}/completions", headers={"Content-Type": "application/json"},
        data=json.dumps({"prompt": "Reset.", "max_tokens": 1, "temperature": 0}).encode())
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()


def test_a_streamed_answer_from_the_server_grows_into_the_answer_asked_whole(llama_server):
    """What `rung serve` streams from a remote pipeline: each text heard extends the last,
    the last is the answer the same request gets unstreamed, and the usage is counted."""
    prompts = [[Message("user", f"Describe the colour {c} in one sentence.")]
               for c in ("red", "green", "blue")]
    # three streams at once: none is cut or mixed with another, each grows piece by piece
    together = RemoteModel(Endpoint.of("openai:smollm2", base_url=llama_server, concurrency=3))
    assert together.streams
    heard: dict[int, list[str]] = {}
    answers = together.generate(prompts, 16,
                                on_text=lambda i, text: heard.setdefault(i, []).append(text))
    for i, answer in enumerate(answers):
        texts = heard[i]
        assert len(texts) > 3 and texts[-1] == answer.text
        assert all(later.startswith(earlier) for earlier, later in zip(texts, texts[1:]))
        assert answer.tokens_out > 3
    assert together.usage.requests == 3 and together.usage.errors == 0
    # streamed and whole, each from the same server state: the same answers, the same count
    model = RemoteModel(Endpoint.of("openai:smollm2", base_url=llama_server, concurrency=1))
    _forget_the_last_prompt(llama_server)
    streamed = model.generate(prompts, 16, on_text=lambda i, text: None)
    _forget_the_last_prompt(llama_server)
    whole = model.generate(prompts, 16)
    assert [g.text for g in streamed] == [g.text for g in whole]
    # llama-cpp-python sends no usage in a stream: a token a chunk is counted instead
    assert [g.tokens_out for g in streamed] == [g.tokens_out for g in whole]
    assert model.usage.requests == 6 and model.usage.errors == 0


# --- what only a fake vendor API can show ---------------------------------------------------


def _anthropic_answer(body: dict) -> str:
    ticket = body["messages"][-1]["content"].lower()
    if "bug" in ticket:
        return "BUG"
    if "feature" in ticket:
        return "The label is FEATURE."
    return "I would need more context to say."  # no label: a format failure


def test_anthropic_classification_is_parsed_and_no_key_is_written_anywhere(tmp_path, fake_api,
                                                                           monkeypatch):
    fake_api.answer = _anthropic_answer
    monkeypatch.setenv("ANTHROPIC_API_KEY", PLANTED)
    toml = _remote_task(tmp_path / "task", "anthropic:claude-fake", "anthropic",
                        base_url=fake_api.url)
    with toml.open("a") as fh:
        fh.write("\n[finetune]\nrank = 4\n")
    done = runner.invoke(app, ["climb", str(toml), "--json"])
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    prompt = summary["rungs"][0]
    assert prompt["remote"]["backend"] == "anthropic" and prompt["remote"]["scoring"] == "parsed"
    assert prompt["failures"]["format"] > 0  # the billing tickets got no label
    assert "remote model (anthropic:claude-fake)" in summary["not_measured"]["finetune"]
    # the Messages API as Anthropic defines it: top-level system, user first, max_tokens
    request = fake_api.requests[0]
    assert request.path == "/v1/messages" and "temperature" not in request.body
    assert PLANTED in (request.headers.get("x-api-key"), request.headers.get(
        "authorization", "").removeprefix("Bearer "))
    assert isinstance(request.body["system"], str) and "exactly one of these labels" in \
        request.body["system"]
    assert request.body["messages"][0]["role"] == "user" and request.body["max_tokens"] > 0
    assert all(m["role"] != "system" for m in request.body["messages"])
    # the key is nowhere rung wrote: store, artifacts, report, review sample, output
    written = [p for p in (tmp_path / "task").rglob("*") if p.is_file()]
    assert any(p.suffix == ".html" for p in written) and any(p.name == "runs.db" for p in written)
    leaked = [str(p) for p in written if PLANTED.encode() in p.read_bytes()]
    assert leaked == [] and PLANTED not in done.output


def test_a_missing_key_stops_before_any_work_and_names_its_variable(tmp_path, fake_api,
                                                                    monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    toml = _remote_task(tmp_path / "task", "anthropic:claude-fake", "anthropic",
                        base_url="https://api.anthropic.example")
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY") as err:
        climb(toml)
    assert "export ANTHROPIC_API_KEY" in err.value.fix
    assert not (tmp_path / "task" / ".rung").exists()  # nothing was started


def _openai_at(fake: FakeVendorAPI, monkeypatch, **settings) -> RemoteModel:
    monkeypatch.setenv("RUNG_TEST_KEY", PLANTED)
    return RemoteModel(Endpoint.of("openai:gpt-fake", base_url=fake.url + "/v1",
                                   api_key_env="RUNG_TEST_KEY", **settings))


def test_a_429_is_retried_after_the_time_its_retry_after_header_asks(fake_api, monkeypatch):
    fake_api.script = deque([(429, {"retry-after": "1"}, 0.0)])
    model = _openai_at(fake_api, monkeypatch)
    [answer] = model.generate([[Message("user", "hello")]], 8)
    assert answer.text == "BILLING" and not answer.error
    first, second = fake_api.requests
    assert second.at - first.at >= 0.9  # it waited as told, then succeeded
    assert first.headers["authorization"] == f"Bearer {PLANTED}"


def test_server_errors_are_retried_with_backoff(fake_api, monkeypatch):
    fake_api.script = deque([(500, {}, 0.0), (503, {}, 0.0)])
    model = _openai_at(fake_api, monkeypatch, max_retries=3)
    [answer] = model.generate([[Message("user", "hello")]], 8)
    assert answer.text == "BILLING" and len(fake_api.requests) == 3
    assert model.usage.errors == 0 and model.usage.requests == 1


def test_timeouts_are_errors_never_cached_and_too_many_stop_the_climb(tmp_path, fake_api,
                                                                      monkeypatch):
    fake_api.script = deque([(200, {}, 1.5)] * 12)
    model = _openai_at(fake_api, monkeypatch, timeout_s=0.3, max_retries=0, concurrency=4)
    configure([model.endpoint])
    store = Store(tmp_path / ".rung")
    cached = CachedModel("openai:gpt-fake", store.response_cache())  # loads that endpoint
    prompts = [[Message("user", f"ticket {i}")] for i in range(4)]
    with pytest.raises(ModelError, match=r"failed 4 of 4 requests") as err:
        cached.generate(prompts, 8)
    assert fake_api.url + "/v1" in err.value.message and "concurrency" in err.value.fix
    rows = store.conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    store.close()
    assert rows == 0  # a failed request is not an answer: the next run asks again


def test_a_budget_reached_partway_through_a_batch_keeps_every_answer_it_paid_for(
        tmp_path, fake_api, monkeypatch):
    fake_api.script = deque([(200, {}, 0.05)] * 8)  # slow enough that four are in flight
    model = _openai_at(fake_api, monkeypatch, concurrency=4)
    configure([model.endpoint])
    store = Store(tmp_path / ".rung")
    cached = CachedModel("openai:gpt-fake", store.response_cache())
    prompts = [[Message("user", f"ticket {i}")] for i in range(8)]
    # $1 per million tokens: each request reserves 16 + 8 tokens (its bytes and a message's
    # template, every token out) and costs 11 + 2 (the fake's usage), so about four fit in 80
    # millionths of a dollar, fewer than the batch's eight
    set_budget(Budget(80e-6, {"gpt-fake": ApiPrice(train_per_million=0, input_per_million=1,
                                                   output_per_million=1)}))
    try:
        with pytest.raises(BudgetReached):
            cached.generate(prompts, 8)
    finally:
        set_budget(None)
    paid = len(fake_api.requests)
    kept = store.conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    assert 0 < paid < 8 and kept == paid  # every answer paid for is in the cache
    again = cached.generate(prompts, 8)  # no budget now: only the rest are asked
    store.close()
    assert len(fake_api.requests) == 8 and all(a.text == "BILLING" for a in again)


@pytest.mark.parametrize("backend", ["openai", "anthropic"])
def test_a_stream_cut_off_before_its_finish_is_an_error_never_a_short_answer(fake_api,
                                                                          monkeypatch, backend):
    fake_api.answer = lambda body: "the export button crashes on large files"
    monkeypatch.setenv("RUNG_TEST_KEY", PLANTED)
    model = RemoteModel(Endpoint.of(
        f"{backend}:model-fake", api_key_env="RUNG_TEST_KEY", max_retries=0,
        base_url=fake_api.url + ("/v1" if backend == "openai" else "")))
    assert model.streams
    heard: list[str] = []
    [whole] = model.generate([[Message("system", "be brief"), Message("user", "ticket")]], 16,
                             on_text=lambda i, text: heard.append(text))
    assert whole.text == "the export button crashes on large files" and not whole.error
    assert heard[:3] == ["the", "the export", "the export button"] and heard[-1] == whole.text
    assert (whole.tokens_in, whole.tokens_out) == (11, 2)  # the usage the server sent
    request = fake_api.requests[-1]
    assert request.body["stream"] is True
    assert request.path == ("/v1/chat/completions" if backend == "openai" else "/v1/messages")
    fake_api.cut_streams = True  # as llama-cpp-python's server interrupts a stream
    [cut] = model.generate([[Message("user", "ticket")]], 16, on_text=lambda i, text: None)
    assert cut.error and cut.text == ""  # not "the export": an error, asked again next run
    assert ("interrupt_requests" if backend == "openai" else "message_stop") in \
        model.usage.last_error


def test_parse_label_reads_a_label_out_of_an_answer():
    labels = ["BILLING", "BUG", "FEATURE"]
    assert parse_label("  **bug**. ", labels) == 1
    assert parse_label("The label is FEATURE.", labels) == 2
    assert parse_label("BUG or FEATURE", labels) is None  # two labels: no answer
    assert parse_label("debugging", labels) is None  # not as a word
    assert parse_label("", labels) is None
    # a hyphen joins words; a label inside a longer label is that label's; punctuation at a
    # label's edges is set aside on both sides; a label's own brackets are kept in text
    assert parse_label("The comment is non-toxic.", ["toxic", "safe"]) is None
    assert parse_label("Category: e-sports", ["sports", "e-sports"]) == 1
    assert parse_label("The review is not positive", ["positive", "not positive"]) == 1
    assert parse_label("It is positive", ["positive", "not positive"]) == 0
    assert parse_label("(A)", ["(A)", "(B)"]) == 0 and parse_label("Yes.", ["yes.", "no."]) == 0
    assert parse_label("I think it's a bug", ["(A)", "(B)"]) is None
    assert parse_label("The answer is (B).", ["(A)", "(B)"]) == 1


def test_a_first_token_that_runs_into_punctuation_still_begins_its_label():
    reply = Reply("BUG.", 1, 1, [("BUG.", -0.01), ("BILLING", -5.0), ("FE", -6.0)])
    scores = label_logprobs(reply, ["BUG", "BILLING", "FEATURE"])
    assert max(range(3), key=scores.__getitem__) == 0 and scores[0] == -0.01


def test_a_preamble_before_the_label_is_read_from_the_answer_not_its_first_tokens_rivals():
    """'Label: BUG' starts with no label: "HOW" outranking "B" among the first token's
    rivals says nothing about the answer, which names BUG."""
    labels = ["BUG", "HOWTO", "BILLING"]
    reply = Reply("Label: BUG", 1, 3, [("Label", -0.01), ("**", -4.0), ("HOW", -5.0),
                                       ("B", -6.0)])
    scores = label_scores(reply, labels).logprobs
    assert max(range(3), key=scores.__getitem__) == 0
    # markup alone begins no label either: the answer's words decide
    reply = Reply("**HOWTO**", 1, 3, [("**", -0.01), ("B", -3.0), ("HOW", -4.0)])
    scores = label_scores(reply, labels).logprobs
    assert max(range(3), key=scores.__getitem__) == 1


def test_labels_read_from_a_models_words_give_no_loss(fake_api, monkeypatch):
    """A parsed label scores 0 or FLOOR, no probability: read as one, a single wrong answer
    made the rung's mean loss 5e8."""
    monkeypatch.setenv("RUNG_TEST_KEY", PLANTED)
    configure([Endpoint.of("anthropic:claude-fake", base_url=fake_api.url,
                           api_key_env="RUNG_TEST_KEY")])
    fake_api.answer = lambda body: "BUG"
    pipeline = Pipeline("prompt", "classification", "anthropic:claude-fake",
                        "Label the support ticket.", labels=["BILLING", "BUG", "FEATURE"])
    examples = [make_example("The app crashes on start", "BUG", line=1),
                make_example("I was charged twice", "BILLING", line=2)]
    result = evaluate(pipeline, examples, metric="accuracy", n_resamples=10)
    assert [p.output for p in result.predictions] == ["BUG", "BUG"]  # both asked and read
    assert [p.loss for p in result.predictions] == [None, None] and result.loss is None


def test_a_refused_key_stops_the_batch_at_once_and_is_never_repeated(fake_api, monkeypatch):
    """A 401 is no passing trouble: the requests after it are not sent, and a server that
    echoes the key it refused does not get it into rung's message or records."""
    fake_api.script = deque([(401, {}, 0.05, f"Incorrect API key provided: {PLANTED}")] * 8)
    model = _openai_at(fake_api, monkeypatch, concurrency=2, max_retries=0)
    with pytest.raises(ModelError, match="refused the request") as err:
        model.generate([[Message("user", f"ticket {i}")] for i in range(8)], 8)
    assert len(fake_api.requests) <= 2  # the two in flight; none after them
    said = str(err.value) + model.usage.last_error
    assert PLANTED not in said and PLANTED[:16] not in said and "***" in said
    assert "api_key_env" in err.value.fix


def test_failures_count_per_batch_and_serving_goes_on_after_them(fake_api, monkeypatch):
    """Three failed requests stop a climb's batch; the next batch, all answered, is not failed
    for them. Under `rung serve` (stop_on_errors off) a failed request is its own error."""
    model = _openai_at(fake_api, monkeypatch, max_retries=0, concurrency=1)
    fake_api.script = deque([(500, {}, 0.0)] * 3)
    with pytest.raises(ModelError, match="failed 3 of 4 requests"):
        model.generate([[Message("user", f"ticket {i}")] for i in range(4)], 8)
    answers = model.generate([[Message("user", f"ticket {i}")] for i in range(4)], 8)
    assert [a.error for a in answers] == [False] * 4
    model.stop_on_errors = False
    fake_api.script = deque([(500, {}, 0.0)] * 3)
    answers = model.generate([[Message("user", f"ticket {i}")] for i in range(4)], 8)
    assert [a.error for a in answers] == [True, True, True, False]


def test_a_request_that_timed_out_is_counted_at_its_worst_case(fake_api, monkeypatch):
    """The server may have generated (and billed) an answer the client stopped waiting for;
    an answer with an error status billed nothing."""
    price = {"gpt-fake": ApiPrice(train_per_million=0, input_per_million=1,
                                  output_per_million=1)}
    model = _openai_at(fake_api, monkeypatch, timeout_s=0.2, max_retries=0)
    prompt = [Message("user", "ticket 1")]
    fake_api.script = deque([(200, {}, 1.0)])
    budget = Budget(1.0, price)
    set_budget(budget)
    try:
        [late] = model.generate([prompt], 8)
        assert late.error and budget.spent == pytest.approx((16 + 8) / 1e6)
        fake_api.script = deque([(500, {}, 0.0)])
        [failed] = model.generate([prompt], 8)
        assert failed.error and budget.spent == pytest.approx((16 + 8) / 1e6)
    finally:
        set_budget(None)


def test_every_attempt_of_a_retried_request_is_counted_in_the_budget(fake_api, monkeypatch):
    """rung retries, not the SDK, so each attempt reserves and settles: a timed-out one at
    its worst case, one answered 500 at nothing, the answer at its usage; and a retry that
    could pass the budget is not sent."""
    price = {"gpt-fake": ApiPrice(train_per_million=0, input_per_million=1,
                                  output_per_million=1)}
    model = _openai_at(fake_api, monkeypatch, timeout_s=0.2, max_retries=2)
    prompt = [Message("user", "ticket 1")]  # worst case 16 + 8 tokens; the fake bills 11 + 2
    fake_api.script = deque([(200, {}, 0.6)] * 3)  # every attempt times out
    budget = Budget(1.0, price)
    set_budget(budget)
    try:
        [late] = model.generate([prompt], 8)
        assert late.error and len(fake_api.requests) == 3
        assert budget.spent == pytest.approx(3 * (16 + 8) / 1e6)  # each may have been billed
        first, second, third = fake_api.requests
        assert second.at - first.at >= 0.5  # the timeout, then a backoff before asking again
        fake_api.requests.clear()
        fake_api.script = deque([(200, {}, 0.6), (500, {}, 0.0)])  # then the answer
        budget = Budget(1.0, price)
        set_budget(budget)
        [answer] = model.generate([prompt], 8)
        assert answer.text == "BILLING" and len(fake_api.requests) == 3
        assert budget.spent == pytest.approx(((16 + 8) + 0 + (11 + 2)) / 1e6)
        assert model.usage.requests == 2 and model.usage.errors == 1  # an example each
        fake_api.requests.clear()
        fake_api.script = deque([(200, {}, 0.6)] * 3)
        set_budget(Budget(30e-6, price))  # room for one worst case, not two
        with pytest.raises(BudgetReached):
            model.generate([prompt], 8)
        assert len(fake_api.requests) == 1  # the retry was not sent
    finally:
        set_budget(None)


@pytest.mark.parametrize("concurrency", [1, 2])
def test_a_refusal_partway_through_a_batch_keeps_every_answer_it_paid_for(
        tmp_path, fake_api, monkeypatch, concurrency):
    """A 403 after two answers stops the batch; the two paid for are cached, so the next run
    asks only for the rest."""
    fake_api.script = deque([(200, {}, 0.0)] * 2 + [(403, {}, 0.0, "no access")] * 6)
    model = _openai_at(fake_api, monkeypatch, concurrency=concurrency, max_retries=0)
    configure([model.endpoint])
    store = Store(tmp_path / ".rung")
    cached = CachedModel("openai:gpt-fake", store.response_cache())
    prompts = [[Message("user", f"ticket {i}")] for i in range(6)]
    with pytest.raises(ModelError, match="refused the request"):
        cached.generate(prompts, 8)
    kept = store.conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    asked = len(fake_api.requests)
    assert kept == 2
    fake_api.script.clear()  # access granted: only the four not answered are asked
    again = cached.generate(prompts, 8)
    store.close()
    assert len(fake_api.requests) - asked == 4 and all(a.text == "BILLING" for a in again)


def test_a_server_that_sends_no_usage_is_counted_from_the_text(fake_api, monkeypatch):
    """Without usage fields, tokens out are estimated from the answer's text (at most what
    the request allowed), never 0, so the budget does not take answers for free."""
    from rung.models.usage import estimate_tokens

    fake_api.send_usage = False
    fake_api.answer = lambda body: "the export button crashes on large files"  # 40 characters
    model = _openai_at(fake_api, monkeypatch)
    prompt = [Message("user", "ticket 1")]
    budget = Budget(1.0, {"gpt-fake": ApiPrice(train_per_million=0, input_per_million=1,
                                               output_per_million=1)})
    set_budget(budget)
    try:
        [answer] = model.generate([prompt], 64)
        [capped] = model.generate([prompt], 8)
    finally:
        set_budget(None)
    said = estimate_tokens([Message("assistant", fake_api.answer({}))])
    assert answer.tokens_in == estimate_tokens(prompt) and answer.tokens_out == said == 14
    assert capped.tokens_out == 8  # the server could write no more than it was allowed
    assert budget.spent == pytest.approx((2 * estimate_tokens(prompt) + said + 8) / 1e6)
    assert model.usage.tokens_out == said + 8


# --- money before and after --------------------------------------------------------------------


def _priced_task(folder: Path, fake: FakeVendorAPI) -> Path:
    """openai:gpt-4o-mini, which [costs] prices by default (the seeds' $0.60 / $2.40 per 1M)."""
    return _remote_task(folder, "openai:gpt-4o-mini", "openai", base_url=fake.url + "/v1",
                        api_key_env="RUNG_TEST_KEY")


def test_a_dry_run_counts_and_prices_every_rung_and_sends_nothing(tmp_path, fake_api,
                                                                 monkeypatch):
    monkeypatch.delenv("RUNG_TEST_KEY", raising=False)  # no key needed to estimate
    done = runner.invoke(app, ["climb", str(_priced_task(tmp_path / "task", fake_api)),
                               "--dry-run", "--json"])
    assert done.exit_code == 0, done.output
    estimate = json.loads(done.stdout)
    assert fake_api.requests == []  # the server saw nothing
    assert [r["rung"] for r in estimate["rungs"]] == ["prompt", "few-shot"]
    for row in estimate["rungs"]:
        assert row["model"] == "openai:gpt-4o-mini" and row["requests"] > 0
        assert row["dollars"] == round(row["tokens_in"] / 1e6 * 0.60
                                       + row["tokens_out"] / 1e6 * 2.40, 4)
    # the real climb sends what the dry run counted (it climbs both rungs here too)
    monkeypatch.setenv("RUNG_TEST_KEY", PLANTED)
    real = runner.invoke(app, ["climb", str(tmp_path / "task"), "--json"])
    assert real.exit_code == 0, real.output
    sent = {r["rung"]: r["remote"]["requests"] for r in json.loads(real.stdout)["rungs"]}
    assert sent == {r["rung"]: r["requests"] for r in estimate["rungs"]}
    assert len(fake_api.requests) == sum(sent.values())


def test_a_budget_stops_the_climb_before_it_is_passed_and_says_how_far_it_got(
        tmp_path, fake_api, monkeypatch):
    monkeypatch.setenv("RUNG_TEST_KEY", PLANTED)
    toml = _priced_task(tmp_path / "task", fake_api)
    done = runner.invoke(app, ["climb", str(toml), "--budget", "0.0002"])
    assert done.exit_code == 2, done.output
    assert "budget of $0.0002 is reached" in done.output
    assert "measured before it: no rung yet" in done.output and "--budget" in done.output
    # what the fake server was asked (11 tokens in, 2 out each) stayed within the budget
    spent = len(fake_api.requests) * (11 * 0.60 + 2 * 2.40) / 1e6
    assert 0 < spent <= 0.0002
    store = Store(tmp_path / "task" / ".rung")
    [run] = store.runs()
    store.close()
    assert run.status == "failed" and "budget" in run.error
    asked = len(fake_api.requests)
    again = runner.invoke(app, ["climb", str(toml), "--budget", "5", "--json"])
    assert again.exit_code == 0, again.output  # enough: it goes on, from the cache
    assert json.loads(again.stdout)["cache"]["hits"] > 0 and asked > 0


def test_budget_needs_a_price_for_every_remote_model(tmp_path, fake_api, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", PLANTED)
    toml = _remote_task(tmp_path / "task", "anthropic:claude-fake", "anthropic",
                        base_url=fake_api.url)
    with pytest.raises(ConfigError, match="--budget needs a price for anthropic:claude-fake"):
        climb(toml, budget=1.0)
    assert fake_api.requests == []


def test_a_local_small_model_and_a_remote_large_one_climb_together(tmp_path, fake_api,
                                                                   fake_model, monkeypatch):
    """The bigger-model rung runs the best cheaper pipeline on the provider's larger model."""
    monkeypatch.setenv("RUNG_TEST_KEY", PLANTED)
    fake_api.answer = lambda body: _anthropic_answer(body).split()[-1].strip(".")
    toml = write_task(tmp_path / "task", model="fake", records=ticket_records(8),
                      ladder={"skip": ["classifier"], "all": True}, extra=(
                          f'\n[models.openai]\nbase_url = "{fake_api.url}/v1"\n'
                          'api_key_env = "RUNG_TEST_KEY"\n'))
    text = toml.read_text().replace('small = "fake"', 'small = "fake"\nlarge = "openai:gpt-4o"')
    toml.write_text(text)
    summary = climb(toml).summary()
    rungs = {r["rung"]: r for r in summary["rungs"]}
    assert list(rungs) == ["prompt", "few-shot", "bigger-model"]
    assert rungs["prompt"]["remote"] is None  # the local one spent nothing remote
    bigger = rungs["bigger-model"]
    assert bigger["model"] == "openai:gpt-4o" and bigger["remote"]["backend"] == "openai"
    assert bigger["remote"]["requests"] == len(fake_api.requests) > 0
    assert bigger["remote"]["dollars"] == round(bigger["remote"]["tokens_in"] / 1e6 * 3.75
                                                + bigger["remote"]["tokens_out"] / 1e6 * 15.0, 6)


def test_the_dry_run_counts_the_label_rule_a_parsed_model_is_sent():
    """A served model whose labels are parsed gets the prompt with the label rule added; the
    dry run counts that longer prompt, so its figure stays an upper bound."""
    from rung.dry_run import CountingModel
    from rung.models.labels import with_label_rule
    from rung.models.usage import estimate_tokens

    prompt = [Message("user", "the export button crashes")]
    labels = ["BILLING", "BUG", "FEATURE"]
    served, local = CountingModel("anthropic:claude-fake"), CountingModel("smollm2-135m-instruct")
    for model in (served, local):
        model.score_choices([prompt], labels)
    assert served.counts["setup"]["tokens_in"] == estimate_tokens(with_label_rule(prompt, labels))
    assert local.counts["setup"]["tokens_in"] == estimate_tokens(prompt)
    assert served.counts["setup"]["tokens_in"] > local.counts["setup"]["tokens_in"]


def test_a_reply_with_logprobs_that_names_no_label_is_a_format_failure(fake_api, monkeypatch):
    """A server that sends log-probabilities, answering a sentence that starts with no label
    and names none: every label had the floor and the first (BILLING) won, a content error;
    it is the format failure it is, with the model's words as the prediction."""
    monkeypatch.setenv("RUNG_TEST_KEY", PLANTED)
    configure([Endpoint.of("openai:gpt-fake", base_url=fake_api.url + "/v1",
                           api_key_env="RUNG_TEST_KEY")])
    said = {"The app crashes on start": "BUG",
            "I was charged twice": "I think this is about a payment problem."}
    fake_api.answer = lambda body: said[body["messages"][-1]["content"].splitlines()[-1]]
    pipeline = Pipeline("prompt", "classification", "openai:gpt-fake",
                        "Label the support ticket.", labels=["BILLING", "BUG", "FEATURE"])
    examples = [make_example(text, label, line=i + 1) for i, (text, label) in
                enumerate((("The app crashes on start", "BUG"), ("I was charged twice", "BILLING")))]
    result = evaluate(pipeline, examples, metric="accuracy", n_resamples=10)
    assert fake_api.requests[-1].body.get("logprobs")  # scored by log-probabilities
    assert [p.output for p in result.predictions] == [
        "BUG", "I think this is about a payment problem."]
