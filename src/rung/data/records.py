"""Files to records: decode lines, parse JSON objects or CSV rows, each tagged with its line.

A record that cannot be read is yielded as a `DataError` in its place instead of being raised,
so a strict reader can stop at the first one while the audit reads past it and reports every
bad line at once. Problems that spoil the whole file (a CSV with no usable header, a CSV the
parser gives up on) are raised: there is nothing to read past.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rung.errors import DataError

SEE = 'see README "Data formats"'
CSV_PAIRS = (("input", "output"), ("prompt", "completion"), ("text", "label"))

Record = dict[str, Any] | DataError


def error(path: Path, line: int, message: str, fix: str) -> DataError:
    return DataError(message, file=path, line=line, fix=fix)


def json_kind(value: Any) -> str:
    """JSON's names for types, since that is what the user sees in the file."""
    if isinstance(value, bool):
        return "a boolean"
    names = {str: "a string", int: "a number", float: "a number", list: "a list",
             dict: "an object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def lines(path: Path) -> Iterator[tuple[int, str | DataError]]:
    """Decode line by line so a bad byte is blamed on its own line, not on the whole file."""
    for line, text, problem in _decoded(path):
        yield line, text if problem is None else problem


def _decoded(path: Path) -> Iterator[tuple[int, str, DataError | None]]:
    """Each physical line with its problem, if it is not UTF-8. The text of such a line has
    U+FFFD for each bad sequence: a bad sequence never takes an ASCII byte with it, so the
    line's commas, quotes and line ends are all still there for a CSV parser."""
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # a BOM says which: no guessing
        yield 1, "", error(path, 1, "the file is UTF-16 (it starts with a UTF-16 byte-order "
                           "mark)", "re-save it as UTF-8, e.g. iconv -f utf-16 -t utf-8 in > out")
        return
    offset = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    for line, raw in enumerate(data[offset:].splitlines(keepends=True), 1):
        problem = None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            text = raw.decode("utf-8", errors="replace")
            problem = error(path, line, f"not UTF-8: byte 0x{raw[e.start]:02x} at byte offset "
                            f"{offset + e.start} (byte {e.start + 1} of the line)", "re-save the "
                            "file as UTF-8, e.g. iconv -f latin1 -t utf-8 in > out")
        offset += len(raw)
        yield line, text, problem


def json_records(path: Path) -> Iterator[tuple[int, Record]]:
    first, asked = True, False  # whether the file was read whole once, as one document
    for line, text in lines(path):
        if isinstance(text, DataError):
            yield line, text
            continue
        if not text.strip():
            continue
        try:
            record = json.loads(text.rstrip("\r\n"))  # else a cut-off line's column is
        except json.JSONDecodeError as e:            # counted on the line after it
            if first and not asked and _one_document(path):
                yield line, error(path, line, "the file is one JSON document spread over many "
                                  "lines; rung reads JSON Lines, one example object per line",
                                  f"write one object per line, e.g. jq -c '.[]' {path.name} > "
                                  f"{path.stem}.jsonl (for an array of examples)")
                return
            asked = True
            hint = "" if not first else "; a CSV file needs a .csv suffix" if \
                path.suffix.lower() != ".csv" else "; this .csv was read as JSON Lines (--from)"
            yield line, error(path, line, f"invalid JSON: {e.msg} (column {e.colno})",
                              "make the line one complete JSON object; check quotes, commas and "
                              f"brackets near column {e.colno}{hint}")
            continue
        except RecursionError:  # the parser recurses once per nested bracket
            yield line, error(path, line, "JSON nested too deeply to read",
                              "an example needs a few levels of objects and lists; check the "
                              "line for runaway brackets")
            continue
        first = False
        if not isinstance(record, dict):
            yield line, error(path, line, f"expected a JSON object, got {json_kind(record)}",
                              'each line must be one object such as {"messages": [...]}; ' + SEE)
            continue
        yield line, record


def _one_document(path: Path) -> bool:
    """Whether the whole file is one JSON value over several lines (an array, a
    pretty-printed object): the one problem to say, not one per line."""
    try:
        return isinstance(json.loads(path.read_bytes().decode("utf-8-sig")), (list, dict))
    except (ValueError, RecursionError):
        return False


def csv_records(path: Path) -> Iterator[tuple[int, Record]]:
    """CSV rows as dicts keyed by the header, its input/output, prompt/completion, text/label
    and system columns named in lower case whatever case the file uses. Comma-separated, or
    semicolon- or tab-separated where only that reading of the header names a column pair (a
    spreadsheet in many locales saves CSV with semicolons).

    A row with a line that is not UTF-8 is yielded as that line's problem and the rows after
    it are read: the parser sees the line with its bad bytes replaced, which keeps every
    comma, quote and line end, so each row starts and ends where it would in the file saved
    as UTF-8. Only a bad line in the header stops the file."""
    csv.field_size_limit(FIELD_LIMIT)
    decoded = list(_decoded(path))
    bad = {line: problem for line, _, problem in decoded if problem is not None}
    first = next((text for _, text, _ in decoded if text.strip()), "")
    delimiter = _delimiter(first)
    reader = csv.reader((text for _, text, _ in decoded), delimiter=delimiter)
    try:
        header = next((cells for cells in reader if not _blank(cells)), None)
        if bad and min(bad) <= reader.line_num:  # no header to read the rows by
            raise bad[min(bad)]
        if header is None:
            return
        pair = _pair(header)
        if pair is None:
            widest = max((next(csv.reader([first], delimiter=d), []) for d in DELIMITERS),
                         key=len)
            raise error(path, reader.line_num, "no usable columns; found: "
                        + (", ".join(widest) or "none"), "name the columns input,output or "
                        "prompt,completion or text,label (any letter case; plus an optional "
                        "system column), separated by commas, semicolons or tabs")
        keys = [cell.strip().lower() if cell.strip().lower() in (*pair, "system") else cell
                for cell in header]
        repeated = sorted({k for k in keys if k.strip() and keys.count(k) > 1})
        if repeated:  # dict(zip()) would keep the last such cell and drop the others unsaid
            raise error(path, reader.line_num, "the header names " + ", ".join(
                f"'{k}'" + _spelled(k, keys, header) for k in repeated) + " more than once",
                "give every column its own name")
        last = reader.line_num
        for cells in reader:
            line, last = last + 1, reader.line_num  # a quoted cell may span physical lines
            broken = [n for n in range(line, last + 1) if n in bad]
            if broken:
                problem = bad[broken[0]]
                if len(broken) > 1 or broken[0] != line:
                    problem = error(path, broken[0], problem.message + " (in the row of lines "
                                    f"{line}-{last})", problem.fix or "")
                yield broken[0], problem
                continue
            if _blank(cells):
                continue
            if len(cells) != len(header):
                yield line, error(path, line, f"row has {len(cells)} cells, the header has "
                                  f"{len(header)}", "quote cells that contain "
                                  f"{_NAMES[delimiter]}, and give every row one cell per column")
                continue
            yield line, dict(zip(keys, cells))
    except csv.Error as e:
        raise error(path, reader.line_num, f"unreadable CSV: {e}",
                    "save the file as plain comma-separated CSV with a header row") from None


DELIMITERS = (",", ";", "\t")
_NAMES = {",": "commas", ";": "semicolons", "\t": "tabs"}
# csv refuses a cell over 131,072 characters by default; the audit's token-length check is
# what says a row is too long. The limit is a C long, which this fits on every platform.
FIELD_LIMIT = 2**31 - 1


def _pair(header: list[str]) -> tuple[str, str] | None:
    """The column pair a header names, letter case and spaces around a name aside."""
    names = {cell.strip().lower() for cell in header}
    return next((pair for pair in CSV_PAIRS if set(pair) <= names), None)


def _delimiter(first: str) -> str:
    """The first of comma, semicolon, tab whose reading of the header line names a column
    pair; a comma where none does (the error then lists the columns)."""
    for delimiter in DELIMITERS:
        if _pair(next(csv.reader([first], delimiter=delimiter), [])):
            return delimiter
    return ","


def _spelled(key: str, keys: list[str], header: list[str]) -> str:
    """How the header spells a repeated column, where the spellings differ ('Input', 'input')."""
    spellings = [cell for cell, k in zip(header, keys) if k == key]
    return "" if len(set(spellings)) == 1 else " (as " + ", ".join(
        f"'{cell}'" for cell in spellings) + ")"


def _blank(cells: list[str]) -> bool:
    """A blank or whitespace-only line, skipped as in JSONL; ',,' is a row of empty cells."""
    return len(cells) <= 1 and not "".join(cells).strip()
