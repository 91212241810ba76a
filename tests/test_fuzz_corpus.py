"""Property-based fuzzing of the corpus readers (issue 14, finding 7): any Markdown, text,
HTML or PDF file, whole, damaged or not a document at all, is read into a Document whose
sections cover its text exactly, or refused with a DataError naming the file; never a crash.
For Markdown and text no line is lost: every line but a heading's underline (or a Markdown
file's front matter) is in the text, and each line's file span is that line of the file.
Bounded for `make test`; RUNG_FUZZ_EXAMPLES=5000 runs a long random search.
"""

from __future__ import annotations

import re
import tempfile
import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import fuzz_settings
from rung.errors import DataError
from rung.rag.documents import Document, read_document

# hypothesis warns when a failing case (a 1 MB line) is long to print; that is the point
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")

words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
UNDERLINE = re.compile(r"^(=+|-+)\s*$")


def _check(document: Document) -> None:
    """Sections are in order, contiguous and cover the whole text: chunks depend on it."""
    assert document.text.strip()
    position = 0
    for section in document.sections:
        assert section.start == position < section.end
        assert all(isinstance(h, str) for h in section.headings)
        position = section.end
    assert position == len(document.text)


def _read(data: bytes, suffix: str) -> Document | None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"page{suffix}"
        path.write_bytes(data)
        try:
            document = read_document(path, path.name)
        except DataError as err:
            assert Path(err.file) == path and err.fix, err
            return None
    _check(document)
    return document


markdown_line = st.one_of(words, st.builds(lambda n, t: "#" * n + " " + t, st.integers(1, 8),
                                           words),
                          st.sampled_from(["===", "---", "- item", "```", "", "   ", "\r",
                                           "~~~~", "+++", "...", "\ufeff",
                                           "| a | b |", "<b>html</b>", "\u2028", "\x00"]))


@fuzz_settings(150)
@given(lines=st.lists(markdown_line, max_size=15), suffix=st.sampled_from([".md", ".txt"]),
       newline=st.sampled_from(["\n", "\r\n"]), bom=st.booleans(),
       junk=st.none() | st.binary(min_size=1, max_size=6))
def test_any_markdown_or_text_file_is_read_whole_or_refused_by_name(lines, suffix, newline,
                                                                    bom, junk):
    data = ("\ufeff" if bom else "").encode() + newline.join(lines).encode("utf-8")
    if junk is not None:
        data += junk
    document = _read(data, suffix)
    if document is None:
        return
    kept = document.text.split("\n")
    source = data.decode("utf-8-sig").replace("\r\n", "\n").split("\n")
    front = _front_matter_lines(source) if suffix == ".md" else 0
    for i, line in enumerate(source):  # every line is there but an underline, front matter
        underline = i > 0 and source[i - 1].strip() and UNDERLINE.match(line)
        assert underline or i < front or line in kept, line
    # each line of the text is the same characters of the file, where its span says
    file_text = data.decode("utf-8")
    at = 0
    for line in kept[:-1]:
        start, end = document.file_span(at, at + len(line))
        assert file_text[start:end] == line
        assert file_text[end:end + 1] in ("\n", "\r", "")
        at += len(line) + 1


def _front_matter_lines(lines: list[str]) -> int:
    closers = {"---": ("---", "..."), "+++": ("+++",)}.get(lines[0].rstrip())
    if closers is None:
        return 0
    return next((i + 1 for i in range(1, len(lines)) if lines[i].rstrip() in closers), 0)


html_piece = st.recursive(
    words.map(lambda t: t.replace("<", "&lt;")),
    lambda inner: st.builds(
        lambda tag, body, close: f"<{tag}>{''.join(body)}" + (f"</{tag}>" if close else ""),
        st.sampled_from(["p", "h1", "h3", "li", "ul", "table", "tr", "td", "th", "pre", "div",
                         "script", "style", "nav", "footer", "body", "html", "dd", "dl",
                         "blockquote", "span", "svg", "template", "h7", "!--", "?xml"]),
        st.lists(inner, max_size=3), st.booleans()),
    max_leaves=12)


@fuzz_settings(150)
@given(pieces=st.lists(html_piece, max_size=6),
       junk=st.none() | st.binary(min_size=1, max_size=6)
       | st.sampled_from([b"<", b"</", b"&#xffffffff;", b"<![CDATA[", b"<p" * 50]))
def test_any_html_file_is_read_or_refused_by_name(pieces, junk):
    data = "".join(pieces).encode("utf-8") + (junk or b"")
    document = _read(data, ".html")
    if document is not None:
        assert "<script" not in document.text.lower() or "script" in data.decode(
            "utf-8", "replace").lower()


def tiny_pdf(pages: list[str]) -> bytes:
    """A valid PDF with one text line per page, built by hand (no PDF writer is packaged)."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", ""]
    kids = []
    for text in pages:
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = zlib.compress(f"BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET".encode("latin-1"))
        objects.append(f"<< /Length {len(stream)} /Filter /FlateDecode >>\nstream\n"
                       + stream.decode("latin-1") + "\nendstream")
        content = len(objects)
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents "
                       f"{content} 0 R /Resources << /Font << /F1 FONT 0 R >> >> >>")
        kids.append(len(objects))
    objects.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    font = len(objects)
    objects = [o.replace("FONT", str(font)) for o in objects]
    objects[1] = (f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] "
                  f"/Count {len(kids)} >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
            .encode())
    return bytes(out)


def test_the_hand_built_pdf_is_read_page_by_page():
    document = _read(tiny_pdf(["Plans and pricing", "Team plan is $12"]), ".pdf")
    assert document is not None and "Team plan is $12" in document.text
    assert [s.headings for s in document.sections] == [("page 1",), ("page 2",)]


# printable ASCII but ' and `: Helvetica's standard encoding shows those as curly quotes
pdf_text = st.text(st.characters(min_codepoint=32, max_codepoint=126, exclude_characters="'`"),
                   min_size=1, max_size=40)


@fuzz_settings(150)
@given(pages=st.lists(pdf_text, min_size=1, max_size=3),
       damage=st.sampled_from(["none", "truncate", "flip", "insert", "drop-xref", "random"]),
       where=st.floats(0, 1), junk=st.binary(min_size=1, max_size=16))
def test_any_pdf_is_read_or_refused_by_name(pages, damage, where, junk):
    data = tiny_pdf(pages)
    at = int(where * len(data))
    if damage == "truncate":
        data = data[:at]
    elif damage == "flip":
        data = data[:at] + bytes([data[min(at, len(data) - 1)] ^ 0xFF]) + data[at + 1:]
    elif damage == "insert":
        data = data[:at] + junk + data[at:]
    elif damage == "drop-xref":
        data = data[: data.rindex(b"xref")]
    elif damage == "random":
        data = b"%PDF-1.7\n" + junk * 20
    document = _read(data, ".pdf")
    if damage == "none" and any(text.strip() for text in pages):  # blank pages: "no text"
        assert document is not None
        for text in pages:
            assert text.strip() in document.text  # no page lost


@pytest.mark.parametrize("suffix", [".md", ".txt", ".html", ".pdf"])
def test_empty_files_are_refused_and_binary_ones_read_or_refused_by_name(suffix):
    assert _read(b"", suffix) is None
    assert _read(b" \n\n\t", suffix) is None
    for data in (b"\xff\xfe\x00\x01" * 10, b"\x00" * 100, bytes(range(256))):
        _read(data, suffix)


prose = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")) | st.just(" "),
                min_size=1, max_size=400)


@fuzz_settings(40)
@given(heading=st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
                       min_size=1, max_size=60).map(lambda t: t * 8),
       paragraphs=st.lists(prose, min_size=1, max_size=6), size=st.integers(16, 256),
       overlap=st.integers(0, 255), newline=st.sampled_from(["\n", "\r\n"]))
def test_any_chunk_fits_the_encoder_and_its_span_covers_it(heading, paragraphs, size,
                                                           overlap, newline):
    """Whatever the heading (a paragraph of it, any script) and the text, the embedded chunk
    (heading, line break, window, [CLS], [SEP]) fits the encoder, the file span holds it,
    and the windows cover every character the tokenizer reads."""
    from rung.rag.chunking import chunk_document, embedding_tokenizer

    overlap = min(overlap, size - 1)
    heading = " ".join(heading.split()) or "h"
    body = newline.join(["# " + heading, "", *paragraphs, "## " + heading, "", *paragraphs])
    document = _read(body.encode("utf-8"), ".md")
    if document is None:
        return
    tokenizer = embedding_tokenizer()
    chunks = chunk_document(document, size=size, overlap=overlap)
    covered = set()
    for chunk in chunks:
        assert len(tokenizer(" ".join(chunk.indexed_text.split()))["input_ids"]) <= 256
        start, end = chunk.start, chunk.end
        assert body[start:end].replace("\r\n", "\n").startswith(chunk.text.split("\n")[0])
        assert body[start:end].replace("\r\n", "\n").endswith(chunk.text.split("\n")[-1])
        covered.update(range(start, end))
    for section in document.sections:
        text = document.text[section.start:section.end]
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) <= 1:
            continue  # a heading alone: left out on purpose
        read = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True,
                         verbose=False)["offset_mapping"]
        for a, b in read:
            first, _ = document.file_span(section.start + a, section.start + b)
            assert first in covered
