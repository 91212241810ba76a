"""`rung serve` (issue 16): a real server process on a real port, talked to with the official
`openai` client. What it answers equals what `rung climb` stored for the same inputs; a wrong
key gets 401, a full queue 503 with Retry-After; metrics and the redacted request log work.

The server's model is conftest's fake one, registered by the child process before the real
`rung serve` command line runs, with the same rule the climb in this process used."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import openai
import pytest

from conftest import FakeModel, free_port, ticket_records, wait_until_serving, write_task
from rung.climb import climb, load_examples, make_split
from rung.task import load_task
from rung.models.registry import register_model, unregister_model
from rung.store import Store

TESTS = Path(__file__).resolve().parent
KEY = "serve-test-key"

CHILD = """
import os, sys, time
sys.path.insert(0, {tests!r})
from conftest import FakeModel, LABELS
from rung.models.registry import register_model
import test_serve

slow = float(os.environ.get("SLOW", "0"))


class Slow(FakeModel):
    def score_choices(self, prompts, choices):
        time.sleep(slow)
        return super().score_choices(prompts, choices)


if os.environ.get("READER"):  # the rag tests' reader, under the rag task's model name
    import test_rag
    register_model("fake", test_rag.reading_model(Slow(name="fake")))
elif os.environ.get("STREAMER"):  # "cut": its requests fail after two words
    cut = 2 if os.environ["STREAMER"] == "cut" else None
    register_model("streamer", FakeModel(name="streamer", rule=test_serve.spoken, streams=True,
                                         cut_after=cut))
else:
    register_model("served", Slow(name="served", rule=test_serve.rule))
from rung.cli import main
sys.argv = ["rung", *sys.argv[1:]]
main()
"""


def rule(prompt):
    """Zero-shot always says BILLING; shown examples, it reads the label off the ticket."""
    if not any(m.role == "assistant" for m in prompt):
        return "BILLING"
    text = prompt[-1].content.lower()
    return next((label for label in ("BILLING", "BUG", "FEATURE") if label.lower() in text),
                "BILLING")



class Server:
    def __init__(self, tmp_path: Path, args: list[str], **env: str) -> None:
        script = tmp_path / "serve_child.py"
        script.write_text(textwrap.dedent(CHILD.format(tests=str(TESTS))))
        self.port = free_port()
        self.log = (tmp_path / f"server-{self.port}.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, str(script), "serve", *args, "--port", str(self.port)],
            env={**os.environ, **env}, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        try:
            wait_until_serving(self.url + "/health", self.process, Path(self.log.name))
        except RuntimeError:
            self.log.close()
            raise

    def client(self, key: str = KEY, **options) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=key, **options)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


@pytest.fixture
def climbed(tmp_path):
    """A climb of every rung (classifier, prompt, few-shot) with the served model's rule."""
    toml = write_task(tmp_path / "task", model="served", records=ticket_records(10),
                      ladder={"all": True})
    register_model("served", FakeModel(name="served", rule=rule))
    try:
        run_id = climb(toml).run_id
    finally:
        unregister_model("served")
    return toml, run_id


def _stored(toml: Path, run_id: str, rung: str) -> list[tuple[str, str]]:
    store = Store(toml.parent / ".rung")
    try:
        return [(row["input"], row["output"]) for row in store.predictions(run_id, rung)]
    finally:
        store.close()


@pytest.mark.parametrize("rung", ["classifier", "prompt", "few-shot"])
def test_the_server_answers_what_the_climb_measured(tmp_path, climbed, rung):
    toml, run_id = climbed
    server = Server(tmp_path, [run_id, "--task", str(toml), "--rung", rung, "--api-key", KEY])
    try:
        client = server.client()
        [model] = client.models.list().data
        assert model.id == f"rung:tiny-tickets:{rung}"
        stored = _stored(toml, run_id, rung)
        assert stored
        answers = {}

        def ask(text: str) -> None:
            answers[text] = client.chat.completions.create(
                model=model.id, messages=[{"role": "user", "content": text}])

        threads = [threading.Thread(target=ask, args=(text,)) for text, _ in stored]
        for thread in threads:  # all at once: they share forward passes
            thread.start()
        for thread in threads:
            thread.join()
        assert [answers[t].choices[0].message.content for t, _ in stored] == \
            [out for _, out in stored]
        assert answers[stored[0][0]].model_extra["rung"] == {"run": run_id, "rung": rung}
        # streamed, the same answer
        chunks = list(client.chat.completions.create(
            model=model.id, stream=True, messages=[{"role": "user", "content": stored[0][0]}]))
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == stored[0][1]
        metrics = urllib.request.urlopen(server.url + "/metrics").read().decode()
        assert 'rung_requests_total{status="200"}' in metrics and "rung_batch_size" in metrics
    finally:
        server.stop()


def test_a_wrong_key_gets_401_and_a_full_queue_503(tmp_path, climbed):
    toml, run_id = climbed
    server = Server(tmp_path, [run_id, "--task", str(toml), "--rung", "prompt", "--api-key",
                               KEY, "--queue", "1", "--max-batch", "1"], SLOW="0.5")
    try:
        with pytest.raises(openai.AuthenticationError) as refused:
            server.client(key="wrong").chat.completions.create(
                model="x", messages=[{"role": "user", "content": "ticket"}])
        assert refused.value.status_code == 401
        client = server.client(max_retries=0)
        outcomes: list[object] = []

        def ask() -> None:
            try:
                outcomes.append(client.chat.completions.create(
                    model="x", messages=[{"role": "user", "content": "a bug ticket"}]))
            except openai.APIStatusError as error:
                outcomes.append(error)

        threads = [threading.Thread(target=ask) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        busy = [o for o in outcomes if isinstance(o, openai.APIStatusError)]
        served = [o for o in outcomes if not isinstance(o, openai.APIStatusError)]
        assert busy and served  # one in the model, one waiting, the rest turned away
        assert all(e.status_code == 503 and e.response.headers["retry-after"] == "1"
                   for e in busy)
    finally:
        server.stop()


def test_the_request_log_keeps_inputs_redacted(tmp_path, climbed):
    toml, run_id = climbed
    server = Server(tmp_path, [run_id, "--task", str(toml), "--rung", "prompt", "--log"])
    try:
        server.client(key="none").chat.completions.create(model="x", messages=[
            {"role": "system", "content": "ignored: rung adds its own instruction"},
            {"role": "user", "content": "billing ticket from jane.doe@example.com"}])
    finally:
        server.stop()
    store = Store(toml.parent / ".rung")
    [row] = store.conn.execute("SELECT run_id, rung, input, output FROM served").fetchall()
    store.close()
    assert row["run_id"] == run_id and row["rung"] == "prompt" and row["output"] == "BILLING"
    assert "jane.doe@example.com" not in row["input"] and "[EMAIL]" in row["input"]
    log = json.dumps([tuple(row)])
    assert "example.com" not in log


def test_requests_that_arrive_together_share_one_predict_call_and_the_queue_is_bounded():
    import asyncio

    from rung.pipeline import Output
    from rung.serve import Batcher, Busy

    calls: list[list[str]] = []

    def predict(texts: list[str]) -> list[Output]:
        calls.append(list(texts))
        time.sleep(0.05)
        return [Output(t.upper(), 1, 1) for t in texts]

    async def scenario() -> tuple[list[str], int]:
        sizes: list[int] = []
        batcher = Batcher(predict, max_batch=4, max_wait_s=0.02, queue_size=6,
                          on_batch=sizes.append)
        worker = asyncio.create_task(batcher.run())
        asks = [asyncio.create_task(batcher.submit(f"t{i}")) for i in range(10)]
        done = await asyncio.gather(*asks, return_exceptions=True)
        worker.cancel()
        busy = sum(isinstance(d, Busy) for d in done)
        return [d.text for d in done if not isinstance(d, Busy)], busy

    answers, busy = asyncio.run(scenario())
    assert busy == 4  # ten at once, six may wait: four turned away, none left hanging
    assert answers == [f"T{i}" for i in range(6)]  # each answer is its own, in order
    assert [len(c) for c in calls] == [4, 2]  # shared forward passes, at most max_batch


# --- rung check -------------------------------------------------------------------------------


def test_check_passes_held_out_inputs_and_flags_another_tasks_inputs(tmp_path, climbed):
    from typer.testing import CliRunner

    from rung.cli import app

    toml, run_id = climbed
    runner = CliRunner()
    # more tickets like the task's own, never seen: expected outputs given
    held_out = tmp_path / "held_out.jsonl"
    records = [r for r in ticket_records(16)][30:]  # tickets 10-15, past the task's 0-9
    held_out.write_text("".join(json.dumps(r) + "\n" for r in records))
    # another task's inputs, no outputs: the product-docs questions
    qa = Path(__file__).resolve().parents[1] / "examples" / "product-docs-qa" / "qa.jsonl"
    questions = [json.loads(line)["messages"][-2]["content"]
                 for line in qa.read_text().splitlines()[:40]]
    drifted = tmp_path / "drifted.txt"
    drifted.write_text("\n".join(questions) + "\n")
    register_model("served", FakeModel(name="served", rule=rule))
    try:
        ok = runner.invoke(app, ["check", run_id, "--task", str(toml), "--rung", "prompt",
                                 "--inputs", str(held_out), "--json", "--strict"])
        bad = runner.invoke(app, ["check", run_id, "--task", str(toml), "--rung", "prompt",
                                  "--inputs", str(drifted), "--json", "--strict"])
    finally:
        unregister_model("served")
    assert ok.exit_code == 0, ok.output
    report = json.loads(ok.stdout)
    assert report["significant"] == [] and report["n"] == len(records)
    assert report["in_train"]["copies"] == report["in_train"]["near_copies"] == 0
    assert report["probes"]["n"] == 9 and report["probes"]["failed"] == []  # edge cases held
    assert report["score"]["test"] == "Fisher's exact test, share correct"
    assert Path(report["review_sample"]).is_file()
    # a reviewer's verdicts in the sheet survive checking the same inputs again
    sheet = Path(report["review_sample"]).with_name("review.csv")
    rows = list(csv.DictReader(io.StringIO(sheet.read_text())))
    rows[0]["verdict"], rows[0]["note"] = "bad", "routed to the wrong team"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    sheet.write_text(buffer.getvalue())
    register_model("served", FakeModel(name="served", rule=rule))
    try:
        again = runner.invoke(app, ["check", run_id, "--task", str(toml), "--rung", "prompt",
                                    "--inputs", str(held_out), "--json"])
    finally:
        unregister_model("served")
    assert json.loads(again.stdout)["review_sample"] == report["review_sample"]
    kept = list(csv.DictReader(io.StringIO(sheet.read_text())))[0]
    assert (kept["verdict"], kept["note"]) == ("bad", "routed to the wrong team")
    assert bad.exit_code == 1, bad.output
    assert json.loads(bad.stdout)["review_sample"] != report["review_sample"]  # its own
    drift = json.loads(bad.stdout)
    assert "distance" in drift["significant"] and drift["score"] is None
    assert drift["drift"]["distance"]["share_far"] > 0.5
    # the task's own tickets (train among them): each one in the run's train is named, with
    # its line, even after the seed changed today's split
    task = load_task(toml)
    trained = {e.input for e in make_split(task, load_examples(task)).train}
    toml.write_text(toml.read_text().replace("seed = 7", "seed = 8"))
    assert trained != {e.input for e in make_split(load_task(toml),
                                                   load_examples(task)).train}
    own = tmp_path / "own.txt"
    texts = [r["messages"][0]["content"] for r in ticket_records(10)]
    own.write_text("".join(f"{t.upper() if i % 2 else t}\n" for i, t in enumerate(texts)))
    register_model("served", FakeModel(name="served", rule=rule))
    try:
        seen = runner.invoke(app, ["check", run_id, "--task", str(toml), "--rung", "prompt",
                                   "--inputs", str(own)])
        report = json.loads(runner.invoke(app, [
            "check", run_id, "--task", str(toml), "--rung", "prompt", "--inputs", str(own),
            "--json"]).stdout)
    finally:
        unregister_model("served")
    lines = [i + 1 for i, t in enumerate(texts) if t in trained]
    assert report["in_train"]["copies"] == len(lines) and report["in_train"]["lines"] == lines
    assert f"{len(lines)} of these inputs are train examples" in " ".join(seen.stderr.split())
    # a label the task does not have is refused with its line, as the climb refuses it
    records[2]["messages"][-1]["content"] = "REFUND"
    held_out.write_text("".join(json.dumps(r) + "\n" for r in records))
    refund = runner.invoke(app, ["check", run_id, "--task", str(toml), "--rung", "prompt",
                                 "--inputs", str(held_out)])
    assert refund.exit_code == 2 and f"{held_out}:3: label 'REFUND'" in refund.stderr


def test_a_served_rag_pipeline_answers_with_its_sources(tmp_path, fake_model):
    from test_rag import reading_model, write_qa_task

    toml = write_qa_task(tmp_path / "qa")
    reading_model(fake_model)
    run_id = climb(toml, only="rag").run_id
    stored = Store(toml.parent / ".rung")
    rows = [(r["input"], r["output"], json.loads(r["sources"])) for r in
            stored.predictions(run_id, "rag")]
    stored.close()
    server = Server(tmp_path, [run_id, "--task", str(toml), "--rung", "rag"], READER="1")
    try:
        client = server.client(key="none")
        for question, answer, sources in rows[:6]:
            reply = client.chat.completions.create(
                model="rung", messages=[{"role": "user", "content": question}])
            assert reply.choices[0].message.content == answer
            assert reply.model_extra["rung"]["sources"] == sources and sources
    finally:
        server.stop()


def test_a_served_tune_answers_what_the_climb_measured(tmp_path, tiny_llama):
    from conftest import finetune_table

    extra = finetune_table(rank=4, alpha=8, target_modules=["q_proj", "v_proj"],
                           learning_rate=0.005, epochs=1, batch_size=8, gradient_accumulation=1)
    toml = write_task(tmp_path / "task", model=str(tiny_llama), records=ticket_records(10),
                      extra=extra)
    run_id = climb(toml, only="finetune", force=True).run_id
    stored = _stored(toml, run_id, "finetune")
    server = Server(tmp_path, [run_id, "--task", str(toml), "--rung", "finetune"])
    try:
        client = server.client(key="none")
        answers = {}

        def ask(text: str) -> None:
            answers[text] = client.chat.completions.create(
                model="rung", messages=[{"role": "user", "content": text}])

        threads = [threading.Thread(target=ask, args=(text,)) for text, _ in stored]
        for thread in threads:  # together: the tuned model scores them in shared batches
            thread.start()
        for thread in threads:
            thread.join()
        assert [answers[t].choices[0].message.content for t, _ in stored] == \
            [out for _, out in stored]
    finally:
        server.stop()


def test_each_streaming_request_hears_only_its_own_answer_grow():
    import asyncio

    from rung.pipeline import Output
    from rung.serve import Batcher

    def predict(texts: list[str], on_text=None) -> list[Output]:  # type: ignore[no-untyped-def]
        for n in range(1, 4):  # the answers grow together, as rows of one batch do
            for i, text in enumerate(texts):
                if on_text is not None:
                    on_text(i, text.upper()[:n])
        return [Output(t.upper(), 1, 3) for t in texts]

    async def scenario() -> tuple[dict[str, list[str]], list[str]]:
        heard: dict[str, list[str]] = {"abc": [], "xyz": []}
        batcher = Batcher(predict, max_batch=4, max_wait_s=0.02, queue_size=8,
                          on_batch=lambda n: None)
        worker = asyncio.create_task(batcher.run())
        pending = [batcher.enqueue("abc", heard["abc"].append), batcher.enqueue("plain"),
                   batcher.enqueue("xyz", heard["xyz"].append)]
        done = await asyncio.gather(*pending)
        worker.cancel()
        return heard, [d.text for d in done]

    heard, answers = asyncio.run(scenario())
    assert answers == ["ABC", "PLAIN", "XYZ"]
    assert heard == {"abc": ["A", "AB", "ABC"], "xyz": ["X", "XY", "XYZ"]}


def spoken(prompt):
    """The streaming stand-in's answers: a sentence, so that it streams word by word."""
    return f"you asked about {prompt[-1].content} and here is the answer"


def _streamed_run(tmp_path: Path) -> tuple[Path, str]:
    """A generation task climbed (prompt rung) with the streaming stand-in: folder, run."""
    records = [{"messages": [{"role": "user", "content": f"question {i} about the product"},
                             {"role": "assistant", "content": f"answer {i}"}]}
               for i in range(18)]
    folder = tmp_path / "qa"
    folder.mkdir()
    (folder / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (folder / "rung.toml").write_text(textwrap.dedent("""\
        [task]
        name = "quiz"
        kind = "generation"
        instruction = "Answer the question."
        data = "qa.jsonl"
        metric = "answer_in_output"
        target = 0.9

        [models]
        small = "streamer"

        [prompt]
        variants = ["instruction"]

        [eval]
        bootstrap = 100
        latency_samples = 0
        """))
    register_model("streamer", FakeModel(name="streamer", rule=spoken, streams=True))
    try:
        return folder, climb(folder / "rung.toml", only="prompt").run_id
    finally:
        unregister_model("streamer")


def test_a_generated_answer_streams_as_the_model_writes_it(tmp_path):
    """A generation pipeline behind `rung serve`, its model one that streams (conftest's
    fake, word by word, as HFModel does token by token: tests/test_models.py): the official
    client gets several chunks, and they join into the answer the climb stored."""
    folder, run_id = _streamed_run(tmp_path)
    [(text, stored), *_] = _stored(folder / "rung.toml", run_id, "prompt")
    server = Server(tmp_path, [run_id, "--task", str(folder), "--rung", "prompt"],
                    STREAMER="1")
    try:
        client = server.client(key="none")
        whole = client.chat.completions.create(
            model="rung", messages=[{"role": "user", "content": text}])
        chunks = list(client.chat.completions.create(
            model="rung", stream=True, messages=[{"role": "user", "content": text}]))
        # what was measured is served: decoding parameters are not applied, and said so
        tuned = client.chat.completions.create(
            model="rung", messages=[{"role": "user", "content": text}], temperature=0.7,
            max_tokens=2, stop=["."])
        with pytest.raises(openai.BadRequestError) as many:
            client.chat.completions.create(
                model="rung", messages=[{"role": "user", "content": text}], n=2)
    finally:
        server.stop()
    assert tuned.choices[0].message.content == stored
    assert tuned.model_extra["rung"]["ignored"] == ["temperature", "max_tokens", "stop"]
    assert "ignored" not in whole.model_extra["rung"]
    assert '"n" is 2' in str(many.value)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert "".join(pieces) == whole.choices[0].message.content == stored
    assert pieces[:3] == ["you", " asked", " about"]  # word by word, as the model said them
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["rung"]["rung"] == "prompt"


def test_a_failed_answer_is_a_502_and_a_cut_stream_ends_in_an_error_not_a_stop(tmp_path):
    """The model's request failed (a remote stream cut off, say) after two words were heard:
    unstreamed, a 502; streamed, the words already sent are followed by an error event,
    never by a finish chunk that would make them pass for the answer."""
    folder, run_id = _streamed_run(tmp_path)
    [(text, _), *_] = _stored(folder / "rung.toml", run_id, "prompt")
    server = Server(tmp_path, [run_id, "--task", str(folder), "--rung", "prompt"],
                    STREAMER="cut")
    try:
        client = server.client(key="none", max_retries=0)
        with pytest.raises(openai.APIStatusError) as failed:
            client.chat.completions.create(
                model="rung", messages=[{"role": "user", "content": text}])
        assert failed.value.status_code == 502
        pieces = []
        with pytest.raises(openai.APIError, match="failed to answer"):
            for chunk in client.chat.completions.create(
                    model="rung", stream=True, messages=[{"role": "user", "content": text}]):
                pieces.append(chunk.choices[0].delta.content or "")
                assert chunk.choices[0].finish_reason is None
        metrics = urllib.request.urlopen(server.url + "/metrics").read().decode()
    finally:
        server.stop()
    assert "".join(pieces) == "you asked"  # heard before the request failed
    assert 'rung_requests_total{status="502"} 2.0' in metrics



def test_check_inputs_that_cannot_be_read_name_their_file_and_line(tmp_path):
    """rung check's --inputs: an empty file, a byte that is not UTF-8 and a broken JSON line
    are each a DataError naming the file and the line, never an internal error."""
    from rung.check import read_inputs
    from rung.errors import DataError

    cases = {"empty.txt": (b"", None, "no inputs in the file"),
             "blank.txt": (b"\n\n  \n", None, "no inputs in the file"),
             "latin.txt": (b"fine\ncaf\xe9\n", 2, "not UTF-8: byte 0xe9"),
             "binary.jsonl": (b"\x00\xff\xfe garbage", 1, "not UTF-8"),
             "broken.jsonl": (b'{"input": "hi"}\n{"input": \n', 2, "invalid JSON"),
             "keyless.jsonl": (b'{"input": "hi"}\n{"body": "x"}\n', 2, "no input")}
    for name, (data, line, words) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(DataError, match=words) as err:
            read_inputs(path)
        assert err.value.file == str(path) and err.value.line == line, name
    good = tmp_path / "good.txt"
    good.write_text("first question\n\nsecond question\n")
    examples, labelled = read_inputs(good)
    assert [(e.input, e.line) for e in examples] == [("first question", 1),
                                                     ("second question", 3)] and not labelled


def test_a_port_in_use_or_a_bad_host_is_said_before_the_model_loads(tmp_path):
    """Exit 2 with the address and the fix, no uvicorn traceback, and no "serving on" line
    that is not true; the check comes before anything is loaded (there is no run here)."""
    import socket

    from typer.testing import CliRunner

    from rung.cli import app

    runner = CliRunner()
    task = write_task(tmp_path / "task")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        busy = runner.invoke(app, ["serve", "--task", str(task), "--port", str(port)])
    finally:
        taken.close()
    assert busy.exit_code == 2 and f"cannot listen on 127.0.0.1:{port}" in busy.stderr
    assert "pass another --port" in busy.stderr and "http://" not in busy.stderr
    host = runner.invoke(app, ["serve", "--task", str(task), "--host", "no.such.host.invalid"])
    assert host.exit_code == 2 and "--host no.such.host.invalid is not an address" in host.stderr
    assert runner.invoke(app, ["serve", "--task", str(task), "--port", "99999"]).exit_code == 2


def test_check_inputs_in_a_csv_keep_the_csv_readers_word(tmp_path):
    """A file that is not JSON lines at all is not blamed for invalid JSON on line 1: the
    format's own reader says what is wrong."""
    from rung.check import read_inputs
    from rung.errors import DataError

    inputs = tmp_path / "in.csv"
    inputs.write_text("input\nfirst question\n")
    with pytest.raises(DataError) as err:
        read_inputs(inputs)
    assert "invalid JSON" not in str(err.value)


def test_check_inputs_in_json_lines_with_expected_outputs_are_labelled(tmp_path):
    """{"input", "output"} (or prompt/completion, text/label) lines carry their expected
    outputs; the output was dropped unsaid, so no score was computed. A file that gives some
    lines an output and not others is refused at the line that breaks the pattern."""
    from rung.check import read_inputs
    from rung.errors import DataError

    for keys in (("input", "output"), ("prompt", "completion"), ("text", "label")):
        path = tmp_path / f"{keys[0]}.jsonl"
        path.write_text("".join(json.dumps({keys[0]: q, keys[1]: a}) + "\n"
                                for q, a in (("my card was charged twice", "BILLING"),
                                             ("the app crashes", "BUG"))))
        examples, labelled = read_inputs(path)
        assert labelled and [(e.input, e.output) for e in examples] == [
            ("my card was charged twice", "BILLING"), ("the app crashes", "BUG")]
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text('{"input": "a", "output": "BUG"}\n{"input": "b"}\n')
    with pytest.raises(DataError, match="no expected output") as err:
        read_inputs(mixed)
    assert err.value.line == 2


# --- one pipeline served in this process, on a loopback port --------------------------------


class _Refusing(FakeModel):
    """A model that refuses every batch, as a remote one does a wrong key (a RungError)."""

    def generate(self, prompts, max_new_tokens=64, on_text=None):  # type: ignore[no-untyped-def]
        from rung.errors import ModelError

        raise ModelError("the server refused the key", fix="check the key")


class _Broken(FakeModel):
    """A model that fails as no RungError: a bug, CUDA out of memory."""

    def generate(self, prompts, max_new_tokens=64, on_text=None):  # type: ignore[no-untyped-def]
        raise RuntimeError("CUDA out of memory")


def _echo(prompt):
    """An extraction stand-in: it says back the last message it was sent."""
    return f"you wrote: {prompt[-1].content}"


@pytest.fixture
def serving():
    """serving(model, **create_app options) -> the base URL of a real uvicorn server, in this
    process on a loopback port, serving a generation pipeline of `model` (a FakeModel)."""
    import uvicorn

    from rung.pipeline import Pipeline
    from rung.serve import Served, create_app

    servers, names = [], []

    def start(model: FakeModel, **options) -> tuple[str, Pipeline]:
        register_model(model.name, model)
        names.append(model.name)
        pipeline = Pipeline(rung="prompt", kind="generation", model=model.name,
                            instruction="Answer the customer.")
        app = create_app(Served(pipeline, "run1", "prompt", "t"), **options)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(),
                                               log_level="critical"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        return f"http://127.0.0.1:{server.config.port}", pipeline

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)
    for name in names:
        unregister_model(name)


def _counts(url: str) -> dict[str, float]:
    """rung_requests_total by status, from /metrics."""
    text = urllib.request.urlopen(url + "/metrics").read().decode()
    return {line.split('"')[1]: float(line.split()[-1]) for line in text.splitlines()
            if line.startswith("rung_requests_total{")}


def test_the_request_log_redacts_what_the_answer_repeats(tmp_path, serving):
    url, _ = serving(FakeModel(name="echoing", rule=_echo), log_to=tmp_path / ".rung")
    client = openai.OpenAI(base_url=url + "/v1", api_key="none")
    said = client.chat.completions.create(model="x", messages=[
        {"role": "user", "content": "write to jane.doe@example.com, card 4111 1111 1111 1111"}])
    assert "jane.doe@example.com" in said.choices[0].message.content  # the client gets it all
    store = Store(tmp_path / ".rung")
    [row] = store.conn.execute("SELECT input, output FROM served").fetchall()
    store.close()
    assert "[EMAIL]" in row["output"] and "[CARD]" in row["output"]
    assert "example.com" not in json.dumps(tuple(row)) and "4111" not in json.dumps(tuple(row))


def test_content_in_parts_is_the_input_the_data_reader_makes(tmp_path, serving):
    """A conversation sent as text parts is asked as the same conversation in a data file
    (anthropic content blocks) was measured: the parts joined with a newline. A part that is
    not text is refused, as the reader refuses it, rather than dropped unsaid."""
    from rung.data.formats import read_examples

    parts = [{"type": "text", "text": "Order 12 arrived broken."},
             {"type": "text", "text": "I want a refund."}]
    data = tmp_path / "anthropic.jsonl"
    data.write_text(json.dumps({"messages": [{"role": "user", "content": parts},
                                             {"role": "assistant", "content": "BILLING"}]}) + "\n")
    [example] = read_examples(data)
    url, pipeline = serving(FakeModel(name="echoing", rule=_echo))
    client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0)
    said = client.chat.completions.create(model="x", messages=[{"role": "user",
                                                                 "content": parts}])
    [measured] = pipeline.predict([example.input])
    assert said.choices[0].message.content == measured.text
    assert "broken.\nI want" in measured.text
    with pytest.raises(openai.BadRequestError, match="not a text part"):
        client.chat.completions.create(model="x", messages=[{"role": "user", "content": [
            *parts, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]}])


@pytest.mark.parametrize("model, status, kind", [
    (_Refusing(name="refusing"), 502, "upstream_error"),
    (_Broken(name="broken"), 500, "server_error")])
def test_a_failed_request_is_typed_and_counted_alike_streamed_or_not(serving, model, status,
                                                                   kind):
    """A model that refuses (a RungError) is a 502 upstream_error, one that breaks a 500
    server_error: the same type in a stream's error event, each request counted once."""
    url, _ = serving(model)
    client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0)
    ask = {"model": "x", "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(openai.APIStatusError) as plain:
        client.chat.completions.create(**ask)
    assert plain.value.status_code == status and plain.value.body["type"] == kind
    with pytest.raises(openai.APIError) as streamed:
        list(client.chat.completions.create(stream=True, **ask))
    assert streamed.value.body["type"] == kind and streamed.value.body["code"] == status
    assert _counts(url) == {str(status): 2.0}


def test_an_answer_the_log_could_not_keep_is_counted_a_500_not_a_200(tmp_path, serving):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where --log's store folder would be")
    url, _ = serving(FakeModel(name="echoing", rule=_echo), log_to=blocked)
    client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0)
    with pytest.raises(openai.InternalServerError, match="could not be logged"):
        client.chat.completions.create(model="x", messages=[{"role": "user", "content": "hi"}])
    assert _counts(url) == {"500": 1.0}


# --- rung check's tests, each against the null it claims ---------------------------------------


def test_the_distance_test_holds_its_false_alarm_rate_and_still_finds_a_shift():
    """Inputs like the test split's (the same distribution of nearest-train similarity) set
    the distance finding off about alpha of the time or less, whatever the sizes, though
    its threshold is estimated from m test inputs; inputs that did move are found."""
    from rung.check import distance_drift

    rng = np.random.default_rng(0)
    alpha, reps = 0.05, 800
    for m, n in ((20, 200), (60, 1000)):
        alarms = sum(distance_drift(rng.beta(8, 3, m), rng.beta(8, 3, n))["p_value"] < alpha
                     for _ in range(reps))
        # at most alpha, give or take three standard errors (the binomial at 5% it replaced
        # fired on a third of these)
        assert alarms / reps < alpha + 3 * (alpha * (1 - alpha) / reps) ** 0.5, (m, n)
    def moved() -> np.ndarray:  # a fifth of the inputs about what train does not hold
        return np.concatenate([rng.beta(8, 3, 240), rng.beta(2, 5, 60)])

    found = sum(distance_drift(rng.beta(8, 3, 60), moved())["p_value"] < 0.01
                for _ in range(100))
    assert found >= 90


def _orders_task(folder: Path) -> Path:
    """A generation task scored by ROUGE-L: when an order ships."""
    folder.mkdir()
    records = [{"messages": [{"role": "user", "content": f"When does order {i} ship?"},
                             {"role": "assistant", "content": f"Order {i} ships on "
                              f"{DAYS[i % 5]} from the warehouse"}]} for i in range(30)]
    (folder / "orders.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (folder / "rung.toml").write_text(textwrap.dedent("""\
        [task]
        name = "orders"
        kind = "generation"
        instruction = "Say when the order ships."
        data = "orders.jsonl"
        metric = "rouge_l"
        target = 0.99

        [models]
        small = "orders"

        [prompt]
        variants = ["instruction"]

        [eval]
        bootstrap = 100
        latency_samples = 0
        """))
    return folder / "rung.toml"


DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]


def _paraphrase(prompt):
    """Close to the expected answer (ROUGE-L about 0.8, never an exact match), unless the
    input is marked URGENT: then an answer that shares nothing with it."""
    import re

    text = prompt[-1].content
    if "URGENT" in text:
        return "Sorry, I cannot help with that"
    i = int((re.findall(r"order (\d+)", text) or ["0"])[-1])
    return f"Order {i} ships {DAYS[i % 5]} from our warehouse"


def test_check_finds_a_graded_score_drop(tmp_path):
    """A graded metric's right/wrong is exact match, 0 of n on both sides here: the score
    test compares the per-example ROUGE-L values, so a fall from 0.8 to 0 is found."""
    from rung.check import check

    toml = _orders_task(tmp_path / "orders")
    register_model("orders", FakeModel(name="orders", rule=_paraphrase))
    try:
        run_id = climb(toml, only="prompt").run_id
        inputs = tmp_path / "prod.jsonl"
        inputs.write_text("".join(json.dumps({
            "input": f"URGENT: when does order {i} ship?",
            "output": f"Order {i} ships on {DAYS[i % 5]} from the warehouse"}) + "\n"
            for i in range(100, 130)))
        report = check(toml, inputs, run_id=run_id, rung="prompt")
    finally:
        unregister_model("orders")
    score = report["score"]
    assert score["significantly_worse"] and "score" in report["significant"]
    assert score["test"] == "Mann-Whitney U test (one-sided) on per-example rouge_l"
    assert (score["test_mean"], score["mean"]) == (pytest.approx(0.8, abs=0.05), 0.0)


class _Unsure(FakeModel):
    """A model whose words name no label (a remote one without log-probabilities)."""

    def score_choices(self, prompts, choices):  # type: ignore[no-untyped-def]
        from rung.models.base import ChoiceScores

        return [ChoiceScores([0.0] * len(choices), 3, [1] * len(choices),
                             answer="I cannot tell") for _ in prompts]


def test_check_says_so_when_no_answer_is_a_label(tmp_path):
    from rung.check import check

    toml = write_task(tmp_path / "task", model="served", records=ticket_records(8))
    register_model("served", FakeModel(name="served", rule=rule))
    try:
        run_id = climb(toml, only="few-shot").run_id  # its test answers: every label
    finally:
        unregister_model("served")
    inputs = tmp_path / "prod.txt"
    inputs.write_text("the export is a bug\nplease add dark mode\nI was charged twice\n")
    register_model("served", _Unsure(name="served"))
    try:
        report = check(toml, inputs, run_id=run_id, rung="few-shot")
    finally:
        unregister_model("served")
    assert len([n for n in report["drift"]["labels"]["test"].values() if n]) > 1
    labels = report["drift"]["labels"]
    assert labels["significant"] and labels["p_value"] is None
    assert labels["note"] == "no answer is a label" and "labels" in report["significant"]


def test_an_answer_that_used_every_allowed_token_finishes_with_length():
    """OpenAI's finish_reason tells a client whether the answer may be cut: a generated answer
    that used all of the pipeline's max_new_tokens says "length", not "stop"."""
    from rung.pipeline import Output, Pipeline
    from rung.serve import Served, _completion

    def finish(kind: str, tokens_out: int) -> str:
        pipeline = Pipeline(rung="prompt", kind=kind, model="fake", instruction="Answer.",
                            labels=["A", "B"] if kind == "classification" else [],
                            max_new_tokens=4)
        answer = _completion(Served(pipeline, "run", "prompt", "quiz"),
                             Output("one two three four", 12, tokens_out))
        return answer["choices"][0]["finish_reason"]

    assert finish("generation", 4) == "length" and finish("generation", 3) == "stop"
    assert finish("classification", 4) == "stop"  # a label is scored, never cut


def test_check_tests_a_macro_f1_task_on_macro_f1():
    """A minority label that production answers always get wrong: the share right even rose
    (0.800 to 0.889), so Fisher's test on it saw nothing, while macro-F1 fell from 0.80 to
    0.63. A macro-F1 task's score is tested as macro-F1."""
    from rung.check import score_shift
    from rung.eval.metrics import macro_f1, metric_spec

    labels = ["A", "B", "C"]
    test_expected = [label for label in labels for _ in range(30)]
    # the test set: 24 of each label's 30 right, the rest called the next label
    test_outputs = [label if i % 30 < 24 else labels[(labels.index(label) + 1) % 3]
                    for i, label in enumerate(test_expected)]
    expected = ["A"] * 40 + ["B"] * 40 + ["C"] * 10
    outputs = ["A"] * 40 + ["B"] * 40 + ["A"] * 10  # every C called A
    assert macro_f1(expected, outputs, labels) < macro_f1(test_expected, test_outputs, labels) - 0.15
    by_f1 = score_shift(metric_spec("macro_f1"), expected, outputs, test_expected, test_outputs,
                        labels, seed=3)
    assert by_f1["worse"] and by_f1["p_value"] < 0.01
    assert by_f1["test"] == "permutation test (one-sided) of macro_f1"
    by_share = score_shift(metric_spec("accuracy"), expected, outputs, test_expected,
                           test_outputs, labels)
    assert not by_share["worse"]  # what a macro-F1 task used to be checked on
    same = score_shift(metric_spec("macro_f1"), test_expected, test_outputs, test_expected,
                       test_outputs, labels, seed=3)
    assert not same["worse"] and same["p_value"] > 0.4
