"""Readers, writers and detection for every example format; each broken file must name its line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rung.data.example import Example, Message, make_example
from rung.data.formats import (FORMATS, convert, detect_format, read_examples, scan_file,
                               write_examples)
from rung.errors import DataError, RungError

JSONL = ("openai", "anthropic", "alpaca", "sharegpt")


def dumps(*records: dict | None) -> str:
    """One JSON object per line; None leaves a blank line (which still counts for line numbers)."""
    return "".join("\n" if r is None else json.dumps(r) + "\n" for r in records)


def msgs(*turns: tuple[str, str]) -> tuple[Message, ...]:
    return tuple(Message(role, content) for role, content in turns)


def oa(*turns: tuple[str, str], **extra: object) -> dict:
    return {"messages": [{"role": r, "content": c} for r, c in turns], **extra}


def sg(*turns: tuple[str, str], **extra: object) -> dict:
    return {"conversations": [{"from": r, "value": c} for r, c in turns], **extra}


# Two single-turn examples (lines 1 and 3, a blank line between) and, for the chat formats, a
# multi-turn one on line 4. Every extra is a string so the CSV round trip is exact.
A = msgs(("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello!"))
B = msgs(("user", "2+2?"), ("assistant", "4"))
C = msgs(("user", "Hi"), ("assistant", "Hello there"), ("user", "Bye"), ("assistant", "Bye!"))
EXTRA = ({"id": "a1", "source": "web"}, {"id": "b2", "source": "book"},
         {"id": "c3", "source": "chat"})
CHAT_EXPECTED = [(A, 1, EXTRA[0]), (B, 3, EXTRA[1]), (C, 4, EXTRA[2])]

GOOD = {
    "openai": ("data.jsonl", dumps(
        oa(("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello!"), **EXTRA[0]), None,
        oa(("user", "2+2?"), ("assistant", "4"), **EXTRA[1]),
        oa(("user", "Hi"), ("assistant", "Hello there"), ("user", "Bye"), ("assistant", "Bye!"),
           **EXTRA[2])), CHAT_EXPECTED),
    "anthropic": ("data.jsonl", dumps(
        {"system": "Be brief.", **oa(("user", "Hi"), ("assistant", "Hello!"), **EXTRA[0])}, None,
        oa(("user", "2+2?"), ("assistant", "4"), **EXTRA[1]),
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]},
                      {"role": "assistant", "content": [{"type": "text", "text": "Hello"},
                                                        {"type": "text", "text": "there"}]},
                      {"role": "user", "content": "Bye"}, {"role": "assistant", "content": "Bye!"}],
         **EXTRA[2]}),
        [(A, 1, EXTRA[0]), (B, 3, EXTRA[1]),
         (msgs(("user", "Hi"), ("assistant", "Hello\nthere"), ("user", "Bye"),
               ("assistant", "Bye!")), 4, EXTRA[2])]),
    "alpaca": ("data.jsonl", dumps(
        {"instruction": "Be brief.", "input": "Hi", "output": "Hello!", **EXTRA[0]}, None,
        {"instruction": "2+2?", "output": "4", **EXTRA[1]}), CHAT_EXPECTED[:2]),
    "sharegpt": ("data.jsonl", dumps(
        sg(("system", "Be brief."), ("human", "Hi"), ("gpt", "Hello!"), **EXTRA[0]), None,
        sg(("user", "2+2?"), ("assistant", "4"), **EXTRA[1]),
        sg(("human", "Hi"), ("gpt", "Hello there"), ("human", "Bye"), ("gpt", "Bye!"), **EXTRA[2])),
        CHAT_EXPECTED),
    # A quoted cell spans lines 2-3 and line 4 is blank, so the second row is on line 5.
    "csv": ("data.csv", 'id,system,input,output,source\na1,Be brief.,Hi,"Hello!\nWelcome.",web\n'
                        "\nb2,,2+2?,4,book\n",
            [(msgs(("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello!\nWelcome.")), 2,
              EXTRA[0]), (B, 5, EXTRA[1])]),
} | {f"{source}-{target}": ("data.jsonl", dumps(
    {"system": "Be brief.", source: "Hi", target: "Hello!", **EXTRA[0]}, None,
    {source: "2+2?", target: "4", **EXTRA[1]}), CHAT_EXPECTED[:2])
    for source, target in (("input", "output"), ("prompt", "completion"), ("text", "label"))}


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def as_tuples(examples: list[Example]) -> list[tuple]:
    return [(ex.messages, ex.line, ex.extra) for ex in examples]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("forced", [False, True], ids=["detected", "forced"])
def test_reads_good_file(tmp_path: Path, fmt: str, forced: bool) -> None:
    name, content, expected = GOOD[fmt]
    path = write(tmp_path, name, content)
    assert as_tuples(read_examples(path, fmt if forced else None)) == expected
    assert detect_format(path) == fmt


@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
def test_plain_chat_reads_the_same_as_openai_or_anthropic(tmp_path: Path, fmt: str) -> None:
    path = write(tmp_path, "plain.jsonl", dumps(oa(("user", "Hi"), ("assistant", "Yo"), id="x")))
    assert detect_format(path) == "openai"
    assert as_tuples(read_examples(path, fmt)) == [(msgs(("user", "Hi"), ("assistant", "Yo")), 1,
                                                     {"id": "x"})]


@pytest.mark.parametrize("columns", ["input,output", "prompt,completion", "text,label"])
def test_csv_column_pairs(tmp_path: Path, columns: str) -> None:
    path = write(tmp_path, "d.csv", f"{columns},note\nHi,Hello,n1\n")
    assert as_tuples(read_examples(path)) == [(msgs(("user", "Hi"), ("assistant", "Hello")), 2,
                                               {"note": "n1"})]


# --- broken files ----------------------------------------------------------------------------

GOOD_LINE = {
    "openai": oa(("system", "S"), ("user", "Hi"), ("assistant", "Hello")),
    "anthropic": {"system": "S", **oa(("user", "Hi"), ("assistant", "Hello"))},
    "alpaca": {"instruction": "Greet", "input": "", "output": "Hello"},
    "sharegpt": sg(("human", "Hi"), ("gpt", "Hello")),
}
# Each bad record goes on line 3, after a good line and a blank line.
BAD_RECORD = {
    "missing role": {
        "openai": {"messages": [{"content": "Hi"}, {"role": "assistant", "content": "Hello"}]},
        "anthropic": {"system": "S", "messages": [{"content": "Hi"}, {"role": "assistant",
                                                                      "content": "Hello"}]},
        "alpaca": {"instruction": "Greet", "input": ""},
        "sharegpt": {"conversations": [{"value": "Hi"}, {"from": "gpt", "value": "Hello"}]},
    },
    "empty content": {
        "openai": oa(("user", "Hi"), ("assistant", "  \n")),
        "anthropic": {"messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": [{"type": "text", "text": " "}]}]},
        "alpaca": {"instruction": "Greet", "input": "", "output": ""},
        "sharegpt": sg(("human", "   "), ("gpt", "Hello")),
    },
    "content is a number": {
        "openai": oa(("user", "Hi"), ("assistant", 42)),
        "anthropic": {"system": "S", **oa(("user", "Hi"), ("assistant", 42))},
        "alpaca": {"instruction": "Greet", "input": "", "output": 42},
        "sharegpt": sg(("human", 42), ("gpt", "Hello")),
    },
    "unknown role": {
        "openai": oa(("user", "Hi"), ("bot", "Hello")),
        "anthropic": {"system": "S", **oa(("system", "S2"), ("user", "Hi"), ("assistant", "Yo"))},
        "alpaca": {"instruction": "Greet", "input": 7, "output": "Hello"},
        "sharegpt": sg(("human", "Hi"), ("bot", "Hello")),
    },
    "no target": {
        "openai": oa(("system", "S"), ("user", "Hi")),
        "anthropic": {"system": "S", **oa(("user", "Hi"))},
        "alpaca": {"instruction": "   ", "output": "Hello"},
        "sharegpt": sg(("human", "Hi")),
    },
    "invalid order": {
        "openai": oa(("user", "Hi"), ("system", "S"), ("assistant", "Hello")),
        "anthropic": {"system": "S", **oa(("assistant", "Hello"), ("user", "Hi"))},
        "alpaca": {"instruction": ["Greet"], "output": "Hello"},
        "sharegpt": sg(("human", "Hi"), ("gpt", "Hello"), ("human", "More?")),
    },
}
EXPECTED_TEXT = {
    "missing role": ('no "role"', 'no "role"', '"output"', 'no "from"'),
    "empty content": ("is empty",) * 4,
    "content is a number": ("must be a string, got a number",) * 4,
    "unknown role": ('unknown role "bot"', 'top-level "system"', "must be a string",
                     'unknown from "bot"'),
    "no target": ("no assistant turn", "no assistant turn", "is empty", "no assistant turn"),
    "invalid order": ("invalid order", "invalid order", "got a list", "invalid order"),
}
BROKEN = [(fmt, kind, dumps(GOOD_LINE[fmt], None, BAD_RECORD[kind][fmt]), 3, text)
          for kind in BAD_RECORD for fmt, text in zip(JSONL, EXPECTED_TEXT[kind])]
BROKEN += [(fmt, "bad JSON", dumps(GOOD_LINE[fmt], None) + '{"messages": [\n', 3, "invalid JSON")
           for fmt in JSONL]
BROKEN += [(fmt, "not an object", dumps(GOOD_LINE[fmt]) + "[1, 2]\n", 2, "got a list")
           for fmt in JSONL]
BROKEN += [(fmt, "non-UTF-8", dumps(GOOD_LINE[fmt], GOOD_LINE[fmt]).encode()
            + json.dumps(GOOD_LINE[fmt]).encode().replace(b"Hello", b"Hel\xff\xfelo"), 3,
            "not UTF-8") for fmt in JSONL]
BROKEN += [("openai", "unknown shape", dumps(GOOD_LINE["openai"], {"question": "q"}), 2,
            '"messages"'),
           ("openai", "no user turn", dumps(oa(("system", "S"), ("assistant", "A"))), 1,
            "no user turn"),
           ("openai", "messages not a list", dumps({"messages": "Hi"}), 1, "must be a list"),
           ("anthropic", "image block", dumps({"messages": [
               {"role": "user", "content": [{"type": "image", "source": {}}]},
               {"role": "assistant", "content": "A"}]}), 1, "not a text block")]


def check(err: DataError, path: Path, line: int | None, text: str) -> None:
    assert err.line == line
    assert err.file == str(path)
    assert path.name in str(err) and "fix: " in str(err) and err.fix
    assert text in str(err)


@pytest.mark.parametrize("forced", [False, True], ids=["detected", "forced"])
@pytest.mark.parametrize(("fmt", "kind", "content", "line", "text"), BROKEN,
                         ids=[f"{c[0]}-{c[1]}" for c in BROKEN])
def test_broken_jsonl(tmp_path: Path, fmt: str, kind: str, content: str | bytes, line: int,
                      text: str, forced: bool) -> None:
    path = write(tmp_path, "bad.jsonl", content)
    with pytest.raises(DataError) as e:
        read_examples(path, fmt if forced else None)
    check(e.value, path, line, text)


MIXED = [
    ("openai line then alpaca line", [oa(("user", "Hi"), ("assistant", "Yo")),
                                      GOOD_LINE["alpaca"]], 1),
    ("openai system then anthropic system", [GOOD_LINE["openai"], GOOD_LINE["anthropic"]], 1),
    ("anthropic then openai system",
     [GOOD_LINE["anthropic"], oa(("user", "Hi"), ("assistant", "Yo")), GOOD_LINE["openai"]], 1),
    ("sharegpt then openai", [GOOD_LINE["sharegpt"], GOOD_LINE["openai"]], 1),
    ("alpaca then sharegpt", [GOOD_LINE["alpaca"], GOOD_LINE["sharegpt"]], 1),
]


@pytest.mark.parametrize(("records", "first"), [m[1:] for m in MIXED], ids=[m[0] for m in MIXED])
def test_mixed_formats(tmp_path: Path, records: list[dict], first: int) -> None:
    path = write(tmp_path, "mixed.jsonl", dumps(records[0], None, *records[1:]))
    bad_line = len(records) + 1  # the blank line after the first record counts
    for call in (read_examples, detect_format):
        with pytest.raises(DataError) as e:
            call(path)
        check(e.value, path, bad_line, "mixed formats")
        assert f"line {first} set" in e.value.message


def test_openai_and_anthropic_in_one_record(tmp_path: Path) -> None:
    path = write(tmp_path, "m.jsonl", dumps(GOOD_LINE["openai"] | {"system": "S"}))
    with pytest.raises(DataError) as e:
        read_examples(path)
    check(e.value, path, 1, "mixed formats")


@pytest.mark.parametrize("fmt", [*FORMATS, None])
@pytest.mark.parametrize("content", ["", "\n  \n\n"], ids=["empty", "blank-lines"])
def test_empty_file(tmp_path: Path, fmt: str | None, content: str) -> None:
    path = write(tmp_path, "empty.csv" if fmt == "csv" else "empty.jsonl", content)
    with pytest.raises(DataError) as e:
        read_examples(path, fmt)
    check(e.value, path, None, "no examples")


BROKEN_CSV = [
    ("missing column", "question,answer\nq,a\n", 1, "found: question, answer"),
    ("empty cell", "input,output\nHi,Hello\n\nHi, \n", 4, '"output" cell is empty'),
    ("empty input cell", "prompt,completion\n,Hello\n", 2, '"prompt" cell is empty'),
    ("cell count", "input,output\nHi,Hello,extra\n", 2, "3 cells"),
    ("header only", "input,output\n", None, "no examples"),
]


@pytest.mark.parametrize(("kind", "content", "line", "text"), BROKEN_CSV,
                         ids=[c[0] for c in BROKEN_CSV])
def test_broken_csv(tmp_path: Path, kind: str, content: str, line: int | None, text: str) -> None:
    path = write(tmp_path, "bad.csv", content)
    with pytest.raises(DataError) as e:
        read_examples(path)
    check(e.value, path, line, text)
    if kind == "missing column":
        assert "input,output" in e.value.fix and "prompt,completion" in e.value.fix


def test_csv_non_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.csv", b"input,output\nHi,Hello\nHi,Hel\xff\xfelo\n")
    with pytest.raises(DataError) as e:
        read_examples(path)
    check(e.value, path, 3, "not UTF-8")
    assert "byte offset 28" in e.value.message


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(DataError) as e:
        read_examples(tmp_path / "nope.jsonl")
    check(e.value, tmp_path / "nope.jsonl", None, "not found")
    good = write(tmp_path, "g.jsonl", GOOD["openai"][1])
    for call in (lambda: read_examples(good, "jsonl"),
                 lambda: write_examples([], tmp_path / "o.jsonl", "jsonl")):
        with pytest.raises(DataError) as e:
            call()
        assert all(name in e.value.fix for name in FORMATS)


# --- writing ---------------------------------------------------------------------------------


def holds(fmt: str, ex: Example) -> bool:
    """alpaca, csv and the pairs hold one (system,) user, assistant exchange; chat formats
    hold any."""
    roles = [m.role for m in ex.messages]
    return fmt in ("openai", "anthropic", "sharegpt") or roles in (["user", "assistant"],
                                                     ["system", "user", "assistant"])


@pytest.mark.parametrize("dst", FORMATS)
@pytest.mark.parametrize("src", FORMATS)
def test_round_trip(tmp_path: Path, src: str, dst: str) -> None:
    name, content, _ = GOOD[src]
    examples = [ex for ex in read_examples(write(tmp_path, name, content)) if holds(dst, ex)]
    out = tmp_path / f"out.{'csv' if dst == 'csv' else 'jsonl'}"
    write_examples(examples, out, dst)
    back = read_examples(out)
    assert detect_format(out) == dst or (dst == "anthropic" and not any(e.system for e in examples))
    assert [(e.messages, e.extra) for e in back] == [(e.messages, e.extra) for e in examples]
    if dst != "csv":
        assert [e.line for e in back] == list(range(1, len(back) + 1))


@pytest.mark.parametrize("fmt", ["alpaca", "csv", "text-label"])
def test_single_exchange_formats_refuse_multi_turn(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text("old\n")
    multi = Example(C, line=4)
    with pytest.raises(DataError) as e:
        write_examples([make_example("q", "a"), multi], out, fmt)
    assert e.value.line == 4 and "line 4" in str(e.value) and "2 user turn" in str(e.value)
    assert "openai" in e.value.fix and "sharegpt" in e.value.fix
    assert out.read_text() == "old\n"  # nothing written on failure
    assert list(tmp_path.iterdir()) == [out]


def test_extra_field_clashing_with_format_key_is_refused(tmp_path: Path) -> None:
    ex = make_example("q", "a", line=2, messages="mine")
    with pytest.raises(DataError) as e:
        write_examples([ex], tmp_path / "o.jsonl", "openai")
    assert "messages" in str(e.value) and e.value.line == 2


def test_non_string_extras_survive_jsonl_and_become_json_in_csv(tmp_path: Path) -> None:
    ex = make_example("q", "a", system="s", n=3, meta={"k": [1, 2]})
    write_examples([ex], tmp_path / "o.jsonl", "sharegpt")
    assert read_examples(tmp_path / "o.jsonl")[0].extra == {"n": 3, "meta": {"k": [1, 2]}}
    write_examples([ex], tmp_path / "o.csv", "csv")
    assert read_examples(tmp_path / "o.csv")[0].extra == {"n": "3", "meta": '{"k": [1, 2]}'}


def test_write_replaces_atomically_and_creates_parents(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "o.jsonl"
    write_examples([make_example("q", "a")], out, "openai")
    write_examples([make_example("q2", "a2")], out, "openai")
    assert [e.input for e in read_examples(out)] == ["q2"]
    assert [p.name for p in out.parent.iterdir()] == ["o.jsonl"]


def test_alpaca_writer_maps_system_to_instruction(tmp_path: Path) -> None:
    out = tmp_path / "a.jsonl"
    examples = [make_example("u", "a", system="s", id=1), make_example("u2", "a2")]
    write_examples(examples, out, "alpaca")
    assert [json.loads(line) for line in out.read_text().splitlines()] == [
        {"instruction": "s", "input": "u", "output": "a", "id": 1},
        {"instruction": "u2", "input": "", "output": "a2"}]


def test_convert(tmp_path: Path) -> None:
    src = write(tmp_path, "in.csv", GOOD["csv"][1])
    assert convert(src, tmp_path / "out.jsonl", "sharegpt") == 2
    assert detect_format(tmp_path / "out.jsonl") == "sharegpt"


def test_scan_file_reads_past_bad_lines_and_names_each(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    good = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "A"}]}
    path.write_text("\n".join([
        json.dumps(good),
        "{not json",
        json.dumps({"messages": [{"role": "assistant", "content": "A"},
                                 {"role": "user", "content": "hi"}]}),
        json.dumps({"conversations": [{"from": "human", "value": "x"}, {"from": "gpt", "value": "y"}]}),
        json.dumps({"messages": [{"role": "user", "content": " "}, {"role": "assistant", "content": "A"}]}),
        json.dumps(good),
    ]) + "\n")
    result = scan_file(path)
    assert [e.line for e in result.examples] == [1, 6]
    assert [p.line for p in result.problems] == [2, 3, 4, 5]
    assert "invalid JSON" in result.problems[0].message
    assert "invalid order" in result.problems[1].message
    assert "mixed formats" in result.problems[2].message
    assert "empty" in result.problems[3].message
    with pytest.raises(DataError, match=":2: invalid JSON"):
        read_examples(path)


def test_a_utf16_file_is_named_utf16_and_every_bad_line_is_counted(tmp_path):
    """A UTF-16 file (Windows' 'Unicode') is said to be one, with iconv's right source
    encoding; a file of 30 bad lines says 30 problems though it lists 20."""
    from rung.data.formats import read_examples
    from rung.errors import DataError, ProblemList

    wide = tmp_path / "wide.jsonl"
    wide.write_bytes('{"messages": []}\n'.encode("utf-16"))
    with pytest.raises((DataError, ProblemList), match="UTF-16") as err:
        read_examples(wide)
    assert "iconv -f utf-16" in str(err.value)
    broken = tmp_path / "broken.jsonl"
    broken.write_text("not json\n" * 30)
    with pytest.raises(ProblemList) as many:
        scan_file(broken)  # the audit's reader, which reads past bad lines
    assert len(many.value.problems) == 30 and str(many.value).count("\n- ") == 21
    assert "30 problem(s)" in str(many.value) and "... and 10 more" in str(many.value)


def test_a_cut_off_line_names_its_own_column_and_a_json_document_is_one_problem(tmp_path):
    """The column is counted on the line itself (it was counted on the next one: 1), and a
    JSON array over many lines is said once, with the command that makes it JSON Lines, not
    as one invalid line per line of the file."""
    cut = write(tmp_path, "cut.jsonl", '{"messages": [{"role": "user", "content": "x"}\n')
    with pytest.raises(RungError) as err:
        scan_file(cut)
    assert ":1: invalid JSON: Expecting ',' delimiter (column 47)" in str(err.value)
    pairs = [{"messages": [{"role": "user", "content": f"q{i}"},
                           {"role": "assistant", "content": f"a{i}"}]} for i in range(30)]
    array = write(tmp_path, "arr.json", json.dumps(pairs, indent=2) + "\n")
    with pytest.raises(RungError) as err:
        scan_file(array)
    said = str(err.value)
    assert "1 problem(s)" in said and "arr.json:1: the file is one JSON document spread over " \
        "many lines" in said and "jq -c '.[]' arr.json > arr.jsonl" in said


def test_a_lone_surrogate_escape_is_a_data_error_naming_its_line(tmp_path):
    """JSON's "\\ud800" parses to half a character that cannot be written as UTF-8: it was an
    internal error with no line; it is the file's line and the fix."""
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "fine"},
                                             {"role": "assistant", "content": "A"}]}) + "\n"
                    + '{"messages": [{"role": "user", "content": "bad \\ud800 x"}, '
                      '{"role": "assistant", "content": "A"}]}\n')
    with pytest.raises(RungError) as err:
        read_examples(path)
    assert "bad.jsonl:2" in str(err.value) and "surrogate" in str(err.value)


def test_a_csv_header_that_names_a_column_twice_is_refused(tmp_path):
    """input,output,output kept the second cell and dropped the first without a word."""
    path = tmp_path / "two.csv"
    path.write_text("input,output,output\nhello,BUG,BILLING\n")
    with pytest.raises(DataError, match="'output' more than once") as err:
        read_examples(path)
    assert err.value.line == 1
    trailing = tmp_path / "trailing.csv"  # empty names from trailing commas are not a repeat
    trailing.write_text("input,output,,\nhello,BUG,,\n")
    assert [e.output for e in read_examples(trailing)] == ["BUG"]


def test_a_target_turn_of_weight_zero_is_refused(tmp_path):
    """OpenAI's "weight": 0 says not to train on a turn; rung trains on and scores the last
    assistant turn, so that turn cannot carry it. An earlier turn may."""
    def record(weights):
        return {"messages": [{"role": "user", "content": "hi"},
                             {"role": "assistant", "content": "A", "weight": weights[0]},
                             {"role": "user", "content": "and?"},
                             {"role": "assistant", "content": "B", "weight": weights[1]}]}
    fine = tmp_path / "fine.jsonl"
    fine.write_text(json.dumps(record([0, 1])) + "\n")
    assert [e.output for e in read_examples(fine)] == ["B"]
    zero = tmp_path / "zero.jsonl"
    zero.write_text(json.dumps(record([1, 0])) + "\n")
    with pytest.raises(RungError, match='message 4.*"weight": 0'):
        read_examples(zero)


# --- what a new user brings (the new-user review) --------------------------------------------


def test_a_csv_cell_longer_than_the_csv_modules_default_limit_is_read(tmp_path):
    """csv refuses a cell over 131,072 characters unless told otherwise, and rung said to
    "save the file as plain comma-separated CSV"; the same text in JSONL was read. A long row
    is the token-length check's to flag, not the reader's to refuse."""
    long = "word " * 40_000  # 200,000 characters
    path = write(tmp_path, "long.csv", f'text,label\n"{long}",refund\nshort,shipping\n')
    assert [(e.input, e.output, e.line) for e in read_examples(path)] == [
        (long, "refund", 2), ("short", "shipping", 3)]


def test_the_audit_reads_past_csv_rows_that_are_not_utf8_and_names_each(tmp_path):
    """A non-UTF-8 line stopped the whole CSV (the audit listed one problem and audited
    nothing) while JSONL listed every bad line and audited the rest. The bad bytes never take
    a comma, quote or line end with them, so the rows after them are where they would be."""
    data = (b"id,input,output\n"
            b"1,hello,A\n"
            b'2,"caf\xe9, au lait",B\n'          # latin-1 inside a quoted cell with a comma
            b'3,"two\nlines caf\xe9",C\n'        # in the second line of a two-line row
            b"4,fine,D\n"
            b"5,ol\xe9,E\n"
            b'6,"x, y",F\n')
    path = write(tmp_path, "mixed.csv", data)
    scan = scan_file(path)
    assert [(e.line, e.extra["id"], e.input, e.output) for e in scan.examples] == [
        (2, "1", "hello", "A"), (6, "4", "fine", "D"), (8, "6", "x, y", "F")]
    assert [p.line for p in scan.problems] == [3, 5, 7]
    assert all("not UTF-8" in p.message and "iconv" in p.fix for p in scan.problems)
    assert "byte 0xe9" in scan.problems[0].message
    assert "in the row of lines 4-5" in scan.problems[1].message  # blamed on its own line
    with pytest.raises(DataError) as e:  # the strict reader stops at the first, as before
        read_examples(path)
    check(e.value, path, 3, "not UTF-8")
    # a header that is not UTF-8 leaves no columns to read the rows by: the file stops
    header = write(tmp_path, "header.csv", b"inp\xe9t,output\nhello,A\n")
    with pytest.raises(DataError) as e:
        scan_file(header)
    check(e.value, header, 1, "not UTF-8")


PAIR_FORMATS = ("input-output", "prompt-completion", "text-label")


@pytest.mark.parametrize("fmt", PAIR_FORMATS)
def test_hugging_face_style_jsonl_pairs_are_labelled_examples(tmp_path, fmt):
    """{"text", "label"} (and input/output, prompt/completion) lines were "matches no format"
    though CSV reads those columns and `rung check --inputs` that JSONL."""
    source, target = fmt.split("-")
    path = write(tmp_path, "hf.jsonl", dumps({source: "Where is my parcel?", target: "shipping",
                                              "id": 7}, None,
                                             {source: "Refund me", target: "refund",
                                              "system": "Classify."}))
    assert detect_format(path) == fmt
    assert as_tuples(read_examples(path)) == [
        (msgs(("user", "Where is my parcel?"), ("assistant", "shipping")), 1, {"id": 7}),
        (msgs(("system", "Classify."), ("user", "Refund me"), ("assistant", "refund")), 3, {})]
    # convert writes it back with the keys it was read with, through any other format
    assert convert(path, tmp_path / "oa.jsonl", "openai") == 2
    assert convert(tmp_path / "oa.jsonl", tmp_path / "back.jsonl", fmt) == 2
    assert [json.loads(line) for line in (tmp_path / "back.jsonl").read_text().splitlines()] == [
        {source: "Where is my parcel?", target: "shipping", "id": 7},
        {"system": "Classify.", source: "Refund me", target: "refund"}]


def test_a_jsonl_pair_with_a_class_number_half_a_pair_or_two_pairs_is_named(tmp_path):
    number = write(tmp_path, "n.jsonl", dumps({"text": "hi", "label": "a"},
                                              {"text": "yo", "label": 1}))
    with pytest.raises(DataError) as e:
        read_examples(number)
    check(e.value, number, 2, '"label" must be a string, got a number')
    assert "name" in e.value.fix
    half = write(tmp_path, "h.jsonl", dumps({"text": "hi"}))
    with pytest.raises(DataError) as e:
        read_examples(half)
    check(e.value, half, 1, 'it has "text" but no "label"')
    assert '{"text", "label"}' in e.value.fix
    two = write(tmp_path, "two.jsonl", dumps({"text": "hi", "label": "a"},
                                             {"input": "yo", "output": "b"}))
    with pytest.raises(DataError) as e:
        read_examples(two)
    check(e.value, two, 2, "mixed formats")
    chat = write(tmp_path, "chat.jsonl", dumps({"prompt": [{"role": "user", "content": "hi"}],
                                                "completion": "yo"}))
    with pytest.raises(DataError) as e:
        read_examples(chat)
    check(e.value, chat, 1, '"prompt" is a list of messages')
    assert '{"messages": [...]}' in e.value.fix
    alpaca = write(tmp_path, "alp.jsonl", dumps({"instruction": "i", "input": "x", "output": "y"}))
    assert detect_format(alpaca) == "alpaca"  # an instruction makes input/output alpaca's


@pytest.mark.parametrize("header", ["Text,Label", "TEXT,LABEL", " text , Label "])
def test_csv_column_names_match_whatever_their_letter_case(tmp_path, header):
    path = write(tmp_path, "d.csv", f"{header},Note,System\nHi,Hello,n1,Be brief.\n")
    assert as_tuples(read_examples(path)) == [
        (msgs(("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello")), 2,
         {"Note": "n1"})]


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_a_semicolon_or_tab_separated_csv_is_read(tmp_path, delimiter):
    """A spreadsheet in many locales saves CSV with semicolons; rung said "no usable columns"."""
    path = write(tmp_path, "d.csv", delimiter.join(["text", "label", "id"]) + "\n"
                 + delimiter.join(["Hi, there", "greeting", "1"]) + "\n"
                 + delimiter.join(['"a; b"', "other", "2"]) + "\n")
    assert [(e.input, e.output, e.extra) for e in read_examples(path)] == [
        ("Hi, there", "greeting", {"id": "1"}), ("a; b", "other", {"id": "2"})]
    short = write(tmp_path, "short.csv", delimiter.join(["text", "label"]) + "\nHi\n")
    with pytest.raises(DataError) as e:
        read_examples(short)
    check(e.value, short, 2, "1 cells")
    assert ("semicolons" if delimiter == ";" else "tabs") in e.value.fix


def test_a_csv_header_naming_no_pair_says_which_separators_and_cases_work(tmp_path):
    path = write(tmp_path, "d.csv", "question;answer\nq;a\n")
    with pytest.raises(DataError) as e:
        read_examples(path)
    check(e.value, path, 1, "found: question, answer")
    assert "semicolons" in e.value.fix and "letter case" in e.value.fix
    twice = write(tmp_path, "twice.csv", "Input,input,output\na,b,c\n")
    with pytest.raises(DataError) as e:
        read_examples(twice)
    check(e.value, twice, 1, "'input' (as 'Input', 'input') more than once")


def test_the_openai_developer_role_is_the_system_message(tmp_path):
    """OpenAI renamed the system message "developer" for its newer models."""
    path = write(tmp_path, "d.jsonl", dumps(oa(("developer", "Be brief."), ("user", "Hi"),
                                               ("assistant", "Hello!"))))
    assert detect_format(path) == "openai"
    assert as_tuples(read_examples(path)) == [(A[:3], 1, {})]
    both = write(tmp_path, "both.jsonl", dumps(oa(("developer", "S"), ("user", "Hi"),
                                                  ("assistant", "Yo"), system="S")))
    with pytest.raises(DataError) as e:
        read_examples(both)
    check(e.value, both, 1, "mixed formats")
