"""Property-based fuzzing of the data readers (issue 14, finding 7): whatever bytes a data
file holds (the five formats, broken, truncated, huge, binary, adversarial), reading it ends
in examples or in errors naming the file and line, never in a crash, and no line that holds
something is dropped without a word.

The oracle is counted from the bytes alone: every physical line that is not blank is either
an example or a listed problem (JSONL); every non-blank CSV row after the header likewise.
Bounded for `make test`; RUNG_FUZZ_EXAMPLES=5000 runs a long random search.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import fuzz_settings
from rung.data.formats import read_examples, scan_file
from rung.errors import DataError, ProblemList, RungError

# hypothesis warns when a failing case (a 1 MB line) is long to print; that is the point
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
json_scalar = st.none() | st.booleans() | st.integers() | st.floats() | text
json_value = st.recursive(json_scalar, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(text, inner, max_size=4), max_leaves=12)
role = st.sampled_from(["user", "assistant", "system", "developer", "human", "gpt", "tool", "",
                        "USER"])


def _turn(key_role: str, key_text: str):
    return st.fixed_dictionaries({key_role: role, key_text: text | json_value})


valid_records = st.one_of(
    st.builds(lambda u, a: {"messages": [{"role": "user", "content": u},
                                         {"role": "assistant", "content": a}]}, text, text),
    st.builds(lambda s, u, a: {"system": s, "messages": [{"role": "user", "content": u},
                                                         {"role": "assistant", "content": a}]},
              text, text, text),
    st.builds(lambda i, x, o: {"instruction": i, "input": x, "output": o}, text, text, text),
    st.builds(lambda u, a: {"conversations": [{"from": "human", "value": u},
                                              {"from": "gpt", "value": a}]}, text, text),
    st.builds(lambda keys, u, a: {keys[0]: u, keys[1]: a}, st.sampled_from(
        [("input", "output"), ("prompt", "completion"), ("text", "label")]), text, text),
)
# records with the right keys and the wrong insides
odd_records = st.one_of(
    st.fixed_dictionaries({"messages": st.lists(_turn("role", "content"), max_size=4)
                           | json_value}),
    st.fixed_dictionaries({"conversations": st.lists(_turn("from", "value"), max_size=4)
                           | json_value}),
    st.fixed_dictionaries({"instruction": json_value, "output": json_value},
                          optional={"input": json_value, "system": json_value}),
    st.fixed_dictionaries({"text": json_value}, optional={"label": json_value,
                                                          "system": json_value}),
    st.dictionaries(text, json_value, max_size=5),
)


def _encode(record: object) -> bytes:
    return json.dumps(record, ensure_ascii=False).encode("utf-8")


@st.composite
def jsonl_line(draw) -> bytes:
    kind = draw(st.sampled_from(["valid", "valid", "valid", "odd", "value", "truncated",
                                 "binary", "huge", "nested", "blank", "nan", "bom"]))
    if kind == "valid":
        return _encode(draw(valid_records))
    if kind == "odd":
        return _encode(draw(odd_records))
    if kind == "value":
        return _encode(draw(json_value))
    if kind == "truncated":
        line = _encode(draw(valid_records))
        return line[: draw(st.integers(0, max(len(line) - 1, 0)))]
    if kind == "binary":
        return draw(st.binary(min_size=1, max_size=60)).replace(b"\n", b"").replace(b"\r", b"")
    if kind == "huge":  # one long answer: 100k-1M characters
        size = draw(st.integers(100_000, 1_000_000))
        return _encode({"messages": [{"role": "user", "content": "q"},
                                     {"role": "assistant", "content": "x" * size}]})
    if kind == "nested":  # deeper than any JSON parser's recursion limit
        depth = draw(st.integers(1_000, 100_000))
        return b"[" * depth + b"]" * draw(st.sampled_from([0, depth]))
    if kind == "nan":
        return b'{"instruction": NaN, "output": Infinity}'
    if kind == "bom":
        return b"\xef\xbb\xbf" + _encode(draw(valid_records))
    return draw(st.sampled_from([b"", b"   ", b"\t", "\u00a0".encode()]))


def _content_lines(data: bytes) -> int:
    """Physical lines that hold something: each must become an example or a problem."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    count = 0
    for raw in data.splitlines():
        try:
            count += bool(raw.decode("utf-8").strip())
        except UnicodeDecodeError:
            count += 1
    return count


def _check_scan(path: Path, expected: int, *, whole_file_errors: bool = False) -> None:
    """scan_file accounts for every line; read_examples agrees with it. Only a CSV has
    problems that spoil the whole file (no usable header)."""
    try:
        scan = scan_file(path)
    except ProblemList as err:  # nothing readable: every line is listed (up to 20)
        if path.read_bytes().startswith((b"\xff\xfe", b"\xfe\xff")):  # said once, for the file
            assert [p.line for p in err.problems] == [1] and "UTF-16" in err.problems[0].message
            return
        assert expected > 0 and len(err.problems) == min(expected, 20)
        assert all(Path(p.file) == path and p.line for p in err.problems)
        return
    except DataError as err:
        assert Path(err.file) == path, err
        if "no examples" in err.message:
            assert expected == 0
        else:
            assert whole_file_errors, err
        return
    assert len(scan.examples) + len(scan.problems) == expected
    assert all(Path(p.file) == path and p.line for p in scan.problems)
    lines = [ex.line for ex in scan.examples]
    assert lines == sorted(set(lines))
    assert not {p.line for p in scan.problems} & set(lines)
    try:
        examples = read_examples(path)
    except RungError as err:
        assert scan.problems, f"read_examples refused a file scan_file read whole: {err}"
        assert err.line == scan.problems[0].line and Path(err.file) == path
    else:
        assert not scan.problems and len(examples) == len(scan.examples)


@fuzz_settings(300)
@given(lines=st.lists(jsonl_line(), max_size=12),
       separator=st.sampled_from([b"\n", b"\r\n", b"\r"]), suffix=st.sampled_from(
           [".jsonl", ".json", ".txt", ""]))
def test_any_jsonl_file_ends_in_examples_or_named_errors_and_loses_no_line(lines, separator,
                                                                          suffix):
    data = separator.join(lines) + separator * (len(lines) % 2)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"data{suffix}"
        path.write_bytes(data)
        _check_scan(path, _content_lines(data))


csv_cell = text | st.sampled_from(['"', '""', ",", ";", "\t", "\n", "\r\n", "a,b", "a;b",
                                   '"quoted"', " "])


@st.composite
def csv_file(draw) -> bytes:
    header = draw(st.sampled_from([["input", "output"], ["prompt", "completion"],
                                   ["text", "label"], ["system", "input", "output"],
                                   ["question", "answer"], []]))
    header = header + draw(st.lists(st.sampled_from(["id", "customer", "input", ""]),
                                    max_size=2))
    case = draw(st.sampled_from([str, str, str.title, str.upper]))  # names match in any case
    header = [case(name) for name in header]
    # a spreadsheet in many locales separates with semicolons; tab-separated files exist too
    delimiter = draw(st.sampled_from([",", ",", ";", "\t"]))
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow(header)
    for _ in range(draw(st.integers(0, 8))):
        width = len(header) + draw(st.sampled_from([0, 0, 0, -1, 1]))
        writer.writerow(draw(st.lists(csv_cell, min_size=max(width, 0),
                                      max_size=max(width, 0))))
    data = buffer.getvalue().encode("utf-8")
    damage = draw(st.sampled_from(["none", "none", "truncate", "binary", "quote", "nul"]))
    if damage == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif damage == "binary":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    elif damage == "quote":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + b'"' + data[at:]
    elif damage == "nul":
        data = data.replace(b",", b"\x00", 1)
    # rung splits on a semicolon or tab only where that names a column pair, else on commas
    names = {name.lower() for name in header}
    pairs = (("input", "output"), ("prompt", "completion"), ("text", "label"))
    return data, delimiter if any(set(pair) <= names for pair in pairs) else ","


def _csv_rows(data: bytes, delimiter: str = ",") -> int | None:
    """Non-blank rows after the header, as the csv module parses them; None where it cannot
    (a parser error): then rung must refuse the file with a named error. A row with bytes
    that are not UTF-8 is one of them, counted as a problem: the bytes are replaced, which
    keeps the rows where they are (a bad header refuses the file, as a whole-file error)."""
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig", errors="replace"),
                                           newline=""), delimiter=delimiter))
    except csv.Error:
        return None
    rows = [r for r in rows if not (len(r) <= 1 and not "".join(r).strip())]
    return max(len(rows) - 1, 0)


@fuzz_settings(300)
@given(file=csv_file())
def test_any_csv_file_ends_in_examples_or_named_errors_and_loses_no_row(file):
    data, delimiter = file
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.csv"
        path.write_bytes(data)
        expected = _csv_rows(data, delimiter)
        if expected is None:
            with pytest.raises(DataError) as err:
                scan_file(path)
            assert Path(err.value.file) == path
            return
        _check_scan(path, expected, whole_file_errors=True)
