"""An example's input carries what its answer depends on: its system prompt and earlier turns.

Single-turn examples without a system prompt read exactly as before (the user's text, the same
id); anything more is the transcript `conversation_text` makes, which every rung is asked with
and which `rung serve` derives from a chat request the same way.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import LABELS, free_port, ticket_records, wait_until_serving, write_task
from rung.climb import climb
from rung.data.example import Example, Message, conversation_text, make_example
from rung.data.formats import read_examples
from rung.store import Store

TESTS = Path(__file__).resolve().parent

# The first user turn says what the ticket is about; the last one says the same for every label.
OPENINGS = {
    "BILLING": ["I was charged twice on my invoice", "my card payment was billed wrong",
                "please refund the extra charge on my invoice"],
    "BUG": ["the app crashes when I open settings", "an error page appears on login",
            "the export button is broken and crashes"],
    "FEATURE": ["please add a dark mode option", "I would like an export to calendar feature",
                "could you add support for a second language"],
}
SYSTEM = "You are the support desk's triage bot."


def conversation_records(n: int = 60) -> list[dict]:
    """Multi-turn chats whose label only the first user turn reveals; the order number in the
    last turn is the example's own, so it says nothing about the label either."""
    records = []
    for i in range(n):
        label = LABELS[i % 3]
        opening = OPENINGS[label][(i // 3) % 3] + f" (account {i * 13 % 97})"
        records.append({"messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": opening},
            {"role": "assistant", "content": "Could you tell me more?"},
            {"role": "user", "content": f"Yes, please help, order {1000 + i}"},
            {"role": "assistant", "content": label}],
            "customer": f"c{i % 17}"})
    return records


def test_the_transcript_format():
    turns = [Message("system", "Be brief."), Message("user", "hi\nthere"),
             Message("assistant", "Hello."), Message("user", "bye"), Message("assistant", "X")]
    assert conversation_text(turns) == \
        "System: Be brief.\n\nUser: hi\nthere\n\nAssistant: Hello.\n\nUser: bye"
    assert conversation_text(turns[1:2]) == "hi\nthere"  # one user turn: its text as it is
    assert conversation_text(turns[:2]) == "System: Be brief.\n\nUser: hi\nthere"
    assert conversation_text([]) == "" and conversation_text([Message("system", "s")]) == ""


def test_single_turn_examples_are_unchanged(tmp_path):
    """Same input (byte for byte) and the same id as before conversations were read whole: so
    splits, caches and stored runs keep working."""
    ex = make_example("  ticket about billing\n", "BILLING")
    assert ex.input == "  ticket about billing\n" and not ex.has_context
    # the id as rung has always computed it (a hash of the messages, not of the input)
    assert ex.id == "3c854c202edc0d3e"
    path = tmp_path / "t.jsonl"
    records = ticket_records(2)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    for ex, record in zip(read_examples(path), records):
        assert ex.input == record["messages"][0]["content"] and ex.said == ex.input
    csv = tmp_path / "t.csv"
    csv.write_text("input,output\nmy card was charged twice,BILLING\n")
    [row] = read_examples(csv)
    assert row.input == "my card was charged twice"
    # an Alpaca record without an input: the instruction is the user turn, read as before
    alpaca = tmp_path / "a.jsonl"
    alpaca.write_text(json.dumps({"instruction": "Name a colour.", "input": "",
                                  "output": "red"}) + "\n")
    [one] = read_examples(alpaca)
    assert one.input == "Name a colour." and not one.has_context


def test_system_prompts_and_earlier_turns_are_part_of_the_input(tmp_path):
    records = conversation_records(3)
    # prompts that differ from one example to another are each example's own
    records[2]["messages"][0]["content"] = "You are the billing desk's triage bot."
    path = tmp_path / "mt.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    ex = read_examples(path)[0]
    assert ex.has_context and ex.said.endswith("\nYes, please help, order 1000")
    assert ex.input == (f"System: {SYSTEM}\n\nUser: {OPENINGS['BILLING'][0]} (account 0)\n\n"
                        "Assistant: Could you tell me more?\n\nUser: Yes, please help, order 1000")
    assert ex.output == "BILLING"
    csv = tmp_path / "g.csv"
    csv.write_text("system,input,output\nYou are terse.,happy big,big happy\n")
    assert read_examples(csv)[0].input == "System: You are terse.\n\nUser: happy big"


# an app's system prompt as teams log it on every line: longer than MiniLM's 256-token window
LONG_SYSTEM = " ".join(["You triage tickets for a scheduling and invoicing app: read the ticket, "
                        "weigh the customer's main request over greetings and backstory, and "
                        "answer with exactly one label."] * 12)


def test_a_system_prompt_on_every_line_is_the_tasks_not_the_inputs(tmp_path, fake_model):
    """The seeds' chat format repeats the app's system prompt on every line. It tells no
    ticket from another, so it is not part of any input: in the inputs it filled MiniLM's
    window, and the embedding classifier scored every ticket the same. With it on every line
    the ladder asks and learns exactly what it does without it."""
    plain = ticket_records(12)
    prompted = [{**r, "messages": [{"role": "system", "content": LONG_SYSTEM}, *r["messages"]]}
                for r in plain]
    examples = read_examples(write_task(tmp_path / "p", records=prompted).parent
                             / "tickets.jsonl")
    assert all(ex.shared_system == LONG_SYSTEM and not ex.has_context for ex in examples)
    assert [ex.input for ex in examples] == [r["messages"][0]["content"] for r in plain]
    assert examples[0].system == LONG_SYSTEM  # kept in the messages: convert loses nothing
    # a copy with its label stripped (the climb's reading) or its PII redacted keeps it out
    from rung.data.audit.pii_find import redact_example
    from rung.data.example import stripped_labels

    padded = replace(examples[0], messages=(*examples[0].messages[:-1],
                                            Message("assistant", "BILLING ")))
    for copy in (*stripped_labels([padded]), redact_example(examples[0])):
        assert copy.input == examples[0].input and copy.shared_system == LONG_SYSTEM
    runs = {}
    for name, records in (("plain", plain), ("prompted", prompted)):
        toml = write_task(tmp_path / name, records=records, ladder={"skip": ["prompt"]})
        toml.write_text(toml.read_text().replace("k = [3, 6]",
                                                 'k = [2]\nselection = ["similar"]'))
        fake_model.calls.clear()
        result = climb(toml, climb_all=True)
        runs[name] = ({r.rung: [(c.label, c.val_score) for c in r.candidates]
                       for r in result.results},
                      [[(m.role, m.content) for m in p] for _, batch in fake_model.calls
                       for p in batch],
                      result.results[-1].pipeline.shared_system)
    assert {"classifier", "few-shot"} <= set(runs["plain"][0])
    # the same val scores and the same prompts sent (their order aside: ids hash the lines)
    assert runs["prompted"][0] == runs["plain"][0]
    assert sorted(runs["prompted"][1]) == sorted(runs["plain"][1])
    assert runs["plain"][2] is None and runs["prompted"][2] == LONG_SYSTEM  # for serving


def test_a_multi_turn_classification_task_is_learned_from_its_first_turn(task_dir, fake_model):
    """Only the first user turn tells the labels apart; read as the last user turn alone,
    every example looked the same and the classifier guessed."""
    toml = write_task(task_dir, records=conversation_records(),
                      ladder={"skip": ["prompt", "few-shot"]})
    result = climb(toml)
    [classifier] = result.results
    assert classifier.rung == "classifier"
    assert classifier.test.score.value >= 0.9
    # what was measured was asked with the transcript
    store = Store(task_dir / ".rung")
    try:
        inputs = [row["input"] for row in store.predictions(result.run_id, "classifier")]
    finally:
        store.close()
    # (SYSTEM is on every line: the data's prompt, not part of the transcript)
    assert inputs and all(i.startswith("User: ") and SYSTEM not in i for i in inputs)


ALPACA_WORDS = ["rocket tiger lemon", "apple forest cloud", "river stone maple",
                "candle paper orbit", "violet anchor bread", "silver meadow fox",
                "copper lantern pine", "harbor quartz olive", "ember willow tide",
                "granite pepper moon", "cedar falcon rain", "marble thistle wave",
                "amber cobalt hill", "frost saddle plum", "velvet cinder bay"]


def _do(prompt: list[Message]) -> str | None:
    """Does what the record's own instruction says, if the prompt shows it; else gives up."""
    found = re.search(r"System: (.+?)\n\nUser: (.+)$", prompt[-1].content)
    if not found:
        return "?"
    instruction, text = found.groups()
    if instruction == "Uppercase the text.":
        return text.upper()
    if instruction == "Reverse the word order.":
        return " ".join(reversed(text.split()))
    return "?"


def test_an_alpaca_records_own_instruction_reaches_the_prompt(tmp_path, fake_model):
    """The same input under two instructions wants two answers: the model must be shown the
    record's instruction, in the prompt and in every demonstration."""
    records = []
    for words in ALPACA_WORDS:
        records.append({"instruction": "Uppercase the text.", "input": words,
                        "output": words.upper()})
        records.append({"instruction": "Reverse the word order.", "input": words,
                        "output": " ".join(reversed(words.split()))})
    folder = tmp_path / "alp"
    folder.mkdir()
    (folder / "multi.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (folder / "rung.toml").write_text(textwrap.dedent("""\
        [task]
        name = "multi"
        kind = "generation"
        instruction = "Follow the instruction."
        data = "multi.jsonl"
        metric = "exact_match"
        target = 0.9
        seed = 2

        [models]
        small = "fake"

        [ladder]
        all = true

        [prompt]
        variants = ["instruction"]

        [few_shot]
        k = [2]

        [eval]
        bootstrap = 100
        latency_samples = 0
        """))
    fake_model.rule = _do
    result = climb(folder / "rung.toml")
    scores = {r.rung: r.test.score.value for r in result.results}
    assert scores["prompt"] == 1.0 and scores["few-shot"] == 1.0
    prompts = [p for _, batch in fake_model.calls for p in batch]
    assert prompts
    pattern = re.compile(r"^System: (Uppercase the text\.|Reverse the word order\.)\n\nUser: "
                         r"[a-z ]+$")
    demonstrated = 0
    for prompt in prompts:
        users = [m for m in prompt if m.role == "user"]
        assert all(pattern.match(m.content) for m in users), users
        demonstrated += len(users) - 1
    assert demonstrated  # the few-shot demonstrations carry their own instructions too


CHILD = """
import sys
sys.path.insert(0, {tests!r})
from conftest import FakeModel
from rung.models.registry import register_model
register_model("fake", FakeModel())
from rung.cli import main
sys.argv = ["rung", *sys.argv[1:]]
main()
"""


def test_serve_reads_a_conversation_as_the_climb_did(tmp_path, fake_model):
    """A client sending an example's conversation gets the answer the climb measured for it,
    and the server logs the very input the climb stored; a lone user message is its text."""
    import openai

    from rung.serve import _input

    records = conversation_records()
    toml = write_task(tmp_path / "task", records=records,
                      ladder={"skip": ["prompt", "few-shot"]})
    run_id = climb(toml).run_id
    store = Store(toml.parent / ".rung")
    try:
        stored = [(row["input"], row["output"])
                  for row in store.predictions(run_id, "classifier")]
    finally:
        store.close()
    by_input = {}
    for record in records:  # each test example's conversation, the target left off
        turns = record["messages"][:-1]
        # every line carries SYSTEM: the data's prompt, left out of the input
        by_input[conversation_text([Message(m["role"], m["content"]) for m in turns],
                                   SYSTEM)] = turns
    assert stored and all(text in by_input for text, _ in stored)
    assert all(text.startswith("User: ") for text, _ in stored)
    # the same function: what the server reads from a request is what the climb stored
    for text, _ in stored:
        assert _input(by_input[text], SYSTEM) == text
        assert _input(by_input[text]) == f"System: {SYSTEM}\n\n{text}"  # another task's
    assert _input([{"role": "user", "content": "just this"}]) == "just this"
    assert _input([{"role": "user", "content": [{"type": "text", "text": "just this"}]}]) \
        == "just this"

    script = tmp_path / "serve_child.py"
    script.write_text(CHILD.format(tests=str(TESTS)))
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, str(script), "serve", run_id, "--task", str(toml), "--rung",
             "classifier", "--port", str(port), "--log"], stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_until_serving(f"http://127.0.0.1:{port}/health", process, log)
            client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none")
            for text, output in stored:
                answer = client.chat.completions.create(model="rung", messages=by_input[text])
                assert answer.choices[0].message.content == output
            with pytest.raises(openai.BadRequestError) as refused:
                client.chat.completions.create(model="rung", messages=[
                    {"role": "tool", "content": "x", "tool_call_id": "1"},
                    {"role": "user", "content": "hi"}])
            assert "role" in str(refused.value)
        finally:
            process.terminate()
            process.wait(timeout=30)
    store = Store(toml.parent / ".rung")
    try:
        logged = [row["input"] for row in store.conn.execute(
            "SELECT input FROM served ORDER BY rowid").fetchall()]
    finally:
        store.close()
    assert logged == [text for text, _ in stored]


def test_the_audit_says_how_many_examples_carry_context(tmp_path):
    from rung.data.audit.format import format_check

    path = tmp_path / "mt.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in conversation_records(6)))
    result = format_check("openai", read_examples(path), [])
    assert result.status == "pass" and result.details["with_context"] == 6
    assert "6 of 6 examples carry context" in result.finding and "transcript" in result.finding
    plain = [make_example(f"ticket {i}", "BUG") for i in range(4)]
    result = format_check("openai", plain, [])
    assert result.details["with_context"] == 0 and "context" not in result.finding
    mixed = plain + [Example((Message("system", "Be brief."), Message("user", "x"),
                              Message("assistant", "BUG")), line=5)]
    result = format_check("openai", mixed, [])
    assert result.status == "warn" and "1 of 5 examples carry context (1 with a system " \
        "prompt)" in result.finding


def test_inputs_for_a_run_leave_out_its_shared_prompt_as_serve_does(tmp_path):
    """rung check and rung review --inputs read production conversations as rung serve reads
    a request: the run's shared system prompt is left out, any other is the transcript's."""
    from rung.check import read_inputs

    path = tmp_path / "production.jsonl"
    records = ticket_records(2)
    records[0]["messages"].insert(0, {"role": "system", "content": "You are another bot."})
    for r in records[1:]:
        r["messages"].insert(0, {"role": "system", "content": LONG_SYSTEM})
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    examples, labelled = read_inputs(path, LONG_SYSTEM)
    assert labelled and examples[0].input.startswith("System: You are another bot.\n\nUser: ")
    assert [ex.input for ex in examples[1:]] == [r["messages"][1]["content"]
                                                for r in records[1:]]
    unshared, _ = read_inputs(path, None)  # a run whose data had no shared prompt
    assert all(ex.input.startswith("System: ") for ex in unshared)


def test_the_audit_says_a_shared_system_prompt_is_the_tasks(tmp_path):
    from rung.data.audit.format import format_check

    path = tmp_path / "shared.jsonl"
    records = ticket_records(2)
    for r in records:
        r["messages"].insert(0, {"role": "system", "content": SYSTEM})
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = format_check("openai", read_examples(path), [])
    assert result.status == "pass" and result.details["shared_system"]
    assert result.details["with_context"] == 0
    assert "read as the task's and left out of the inputs" in result.finding
    assert "[prompt] instructions" in result.finding
