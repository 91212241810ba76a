"""Read a corpus folder into plain text with its section headings and their positions.

Every reader produces the same thing, a `Document`: the text as a person would read it and
the sections (heading path, start, end) that cover it, so a chunk can carry its headings and
an answer can cite `docs/pricing.md`, section "Plans > Team", characters 1200-1850.

* Markdown and plain text: `#` headings, or a line underlined with `===`/`---`.
* HTML: BeautifulSoup; scripts, styles, navigation, headers and footers are dropped (the same
  boilerplate on every page would match every query), h1-h6 become headings, table rows
  become lines with cells separated by " | ".
* PDF: pypdf text extraction, one section per page ("page 3") since PDFs rarely keep headings.

A file that cannot be read is reported with the reason, and the rest of the corpus is read.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any
from pathlib import Path

from rung.errors import DataError

SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".html": "html",
            ".htm": "html", ".pdf": "pdf"}
_DROP_TAGS = ("script", "style", "nav", "noscript", "template", "svg")
_PAGE_CHROME = ("header", "footer")  # dropped where they frame the page, kept in an article
_BLOCKS = ("h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "tr", "pre", "dt", "dd",
           "blockquote")
_INLINE = {"a", "abbr", "b", "bdi", "cite", "code", "em", "i", "kbd", "label", "mark", "q",
           "s", "samp", "small", "span", "strong", "sub", "sup", "time", "u", "var", "br"}
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_UNDERLINE = re.compile(r"^(=+|-+)\s*$")


@dataclass(frozen=True)
class Section:
    headings: tuple[str, ...]  # from the top level down, e.g. ("Pricing", "Team plan")
    start: int  # character offsets into Document.text
    end: int


@dataclass(frozen=True)
class Document:
    source: str  # path relative to the corpus folder, with forward slashes
    text: str
    sections: tuple[Section, ...]
    hash: str = field(default="")  # sha256 of the file's bytes


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def corpus_files(folder: Path) -> list[Path]:
    """Every file under `folder` that is not hidden, in a stable order."""
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in
                                             p.relative_to(folder).parts))


def read_document(path: Path, source: str, data: bytes | None = None) -> Document:
    """Read one file; raises DataError naming the file and the fix when it cannot."""
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"unsupported file type '{path.suffix or '(none)'}'", file=path,
                        fix="convert it to Markdown, text, HTML or PDF, or move it out of the "
                            "corpus folder")
    data = path.read_bytes() if data is None else data
    digest = file_hash(data)
    if kind == "pdf":
        text, sections = _pdf(path, data)
    else:
        try:
            decoded = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise DataError(f"not UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start})",
                            file=path, fix="re-save the file as UTF-8") from None
        text, sections = _html(decoded) if kind == "html" else _markdown(decoded)
    if not text.strip():
        raise DataError("no text in this file", file=path,
                        fix="remove it, or for a scanned PDF add a text layer (OCR) first")
    return Document(source, text, tuple(sections), digest)


def _markdown(raw: str) -> tuple[str, list[Section]]:
    """Headings stay in the text (they are content too) and open a new section."""
    lines = raw.replace("\r\n", "\n").split("\n")
    text_parts: list[str] = []
    marks: list[tuple[int, int, str]] = []  # (offset, level, title)
    offset = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        match = _HEADING.match(line)
        underline = i + 1 < len(lines) and line.strip() and _UNDERLINE.match(lines[i + 1])
        if match:
            marks.append((offset, len(match.group(1)), match.group(2)))
        elif underline:
            marks.append((offset, 1 if lines[i + 1].lstrip().startswith("=") else 2,
                          line.strip()))
            text_parts.append(line + "\n")
            offset += len(line) + 1
            i += 2  # the underline itself is not text
            continue
        text_parts.append(line + "\n")
        offset += len(line) + 1
        i += 1
    return "".join(text_parts), _sections(marks, offset)


def _sections(marks: list[tuple[int, int, str]], length: int) -> list[Section]:
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    start, path = 0, ()
    for offset, level, title in marks:
        if offset > start:
            sections.append(Section(path, start, offset))
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        start, path = offset, tuple(t for _, t in stack)
    if length > start:
        sections.append(Section(path, start, length))
    return sections


def _html(raw: str) -> tuple[str, list[Section]]:
    """Flatten to Markdown-like text (headings as '#' lines) and reuse the Markdown reader.
    Text outside the block tags (straight in a div, a section, a table cell) is kept too,
    one line per enclosing block, in page order."""
    from bs4 import BeautifulSoup, Comment, NavigableString, Tag

    soup = BeautifulSoup(raw, "html.parser")
    for tag in soup(_DROP_TAGS):
        tag.decompose()
    for tag in soup(_PAGE_CHROME):
        if tag.find_parent(["article", "main", "section"]) is None:
            tag.decompose()
    body = soup.body or soup
    lines: list[str] = []
    loose: list[str] = []
    holder: Tag | None = None  # the block the loose text so far sits in

    def flush() -> None:
        if loose:
            lines.append(" ".join(" ".join(loose).split()))
            loose.clear()

    for node in body.descendants:
        if isinstance(node, Tag) and node.name in _BLOCKS:
            if node.find_parent(["li", "tr", "pre", "blockquote", "dd"]) is not None:
                continue  # its text is part of the enclosing block
            flush()
            lines += _block_lines(node)
        elif isinstance(node, NavigableString) and not isinstance(node, Comment):
            if not node.strip() or node.find_parent(_BLOCKS) is not None:
                continue
            block = next(p for p in node.parents if p.name not in _INLINE)
            if block is not holder:
                flush()
                holder = block
            loose.append(node.strip())
    flush()
    return _markdown("\n".join(lines).strip("\n") + "\n")


def _block_lines(element: Any) -> list[str]:
    if element.name == "tr":
        cells = [c.get_text(" ", strip=True) for c in element.find_all(["th", "td"])]
        line = " | ".join(cells)
    else:
        line = " ".join(element.get_text(" ", strip=True).split())
    if not line:
        return []
    if element.name.startswith("h") and len(element.name) == 2:
        return ["", "#" * int(element.name[1]) + " " + line]
    return ["- " + line] if element.name == "li" else [line]


def _pdf(path: Path, data: bytes) -> tuple[str, list[Section]]:
    import io
    import logging

    from pypdf import PdfReader

    quiet = logging.getLogger("pypdf")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # its repair notes would go to stderr; the error says it
    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except MemoryError:
        raise
    except Exception as err:  # noqa: BLE001 - a damaged PDF makes pypdf raise almost anything
        # (fuzzing found AttributeError, TypeError, IndexError, RecursionError, zlib errors)
        raise DataError(f"unreadable PDF: {type(err).__name__}: {err}"[:300], file=path,
                        fix="re-export the PDF, or convert it to text or Markdown") from None
    finally:
        quiet.setLevel(level)
    text_parts: list[str] = []
    sections: list[Section] = []
    offset = 0
    for number, page in enumerate(pages, 1):
        page_text = page.strip() + "\n\n"
        text_parts.append(page_text)
        sections.append(Section((f"page {number}",), offset, offset + len(page_text)))
        offset += len(page_text)
    return "".join(text_parts), sections
