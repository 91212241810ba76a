"""Read a corpus folder into plain text with its section headings and their positions.

Every reader produces the same thing, a `Document`: the text as a person would read it and
the sections (heading path, start, end) that cover it, so a chunk can carry its headings and
an answer can cite `docs/pricing.md`, section "Plans > Team", characters 1200-1850.

* Markdown: `#` headings, or a line underlined with `===`/`---`. Lines inside a ``` or ~~~
  fence are code, kept as text and never a heading (`# download the package` in a shell
  snippet is a comment). A leading front-matter block (`---` ... `---`, or `+++` for TOML) is
  metadata for a site generator, not what a reader sees: it is left out of the text (its lines
  would otherwise make a chunk of YAML, and its closing `---` underlined the last key into a
  heading over the whole body).
* Plain text: no `#` headings (a line starting with "# " in a text file is a comment or a
  number, not a heading); a line underlined with `===`/`---` still opens a section, the way
  plain-text release notes and manuals mark their headings.
* HTML: BeautifulSoup; scripts, styles, navigation, headers and footers are dropped (the same
  boilerplate on every page would match every query), h1-h6 become headings (read from the
  elements themselves: a table row or a <pre> line that starts with "#" is text), table rows
  become lines with cells separated by " | ", and <pre> keeps its lines.
* PDF: pypdf text extraction, one section per page ("page 3") since PDFs rarely keep headings.

Document.text is not the file: line ends are "\n", heading underlines and front matter are left
out, HTML and PDF are extracted text. For Markdown and text `Document.file_span` maps a span of
the text back to the characters of the file (decoded as UTF-8, a byte-order mark and each
"\r" counted), which is what a citation shows; HTML and PDF have no such map.

A file that cannot be read is reported with the reason, and the rest of the corpus is read.
"""

from __future__ import annotations

import hashlib
import re
from bisect import bisect_right
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
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
_FRONT_MATTER = {"---": ("---", "..."), "+++": ("+++",)}  # opening line: closing lines


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
    # Markdown and text: (text offset, file offset) where a run of characters that are the
    # same in both begins (a line), ending with (len(text), len(file)); None for HTML and PDF,
    # whose text is extracted and has no character-for-character place in the file
    file_map: tuple[tuple[int, int], ...] | None = field(default=None, repr=False)

    def file_span(self, start: int, end: int) -> tuple[int, int] | None:
        """The characters of the file that text[start:end] came from: file[a:b] holds every
        character of the span (with the "\r"s and underlines between them). None where the
        text is extracted (HTML, PDF)."""
        if self.file_map is None:
            return None
        length = self.file_map[-1][1]

        def at(offset: int) -> int:
            k = max(bisect_right(self.file_map, offset, key=lambda pair: pair[0]) - 1, 0)
            text_at, file_at = self.file_map[k]
            return min(file_at + offset - text_at, length)

        first = at(start)
        return (first, first) if end <= start else (first, min(at(end - 1) + 1, length))


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def corpus_files(folder: Path) -> list[Path]:
    """Every file under `folder` that is not hidden, in a stable order, and every link to a
    file that is not there: reading it names it as a problem rather than it going unsaid."""
    return sorted(p for p in folder.rglob("*")
                  if (p.is_file() or (p.is_symlink() and not p.exists()))
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def read_document(path: Path, source: str, data: bytes | None = None) -> Document:
    """Read one file; raises DataError naming the file and the fix when it cannot."""
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"unsupported file type '{path.suffix or '(none)'}'", file=path,
                        fix="convert it to Markdown, text, HTML or PDF, or move it out of the "
                            "corpus folder")
    data = path.read_bytes() if data is None else data
    digest = file_hash(data)
    file_map = None
    if kind == "pdf":
        text, sections = _pdf(path, data)
    else:
        try:
            decoded = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise DataError(f"not UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start})",
                            file=path, fix="re-save the file as UTF-8") from None
        if kind == "html":
            text, sections = _html(decoded)
        else:  # a byte-order mark is a character of the file, before the first of the text
            bom = 1 if data.startswith(b"\xef\xbb\xbf") else 0
            text, sections, file_map = _markdown(decoded, markdown=kind == "markdown",
                                                 base=bom)
    if not text.strip():
        raise DataError("no text in this file", file=path,
                        fix="remove it, or for a scanned PDF add a text layer (OCR) first")
    return Document(source, text, tuple(sections), digest, file_map)


def _markdown(raw: str, *, markdown: bool = True, base: int = 0
              ) -> tuple[str, list[Section], tuple[tuple[int, int], ...]]:
    """Headings stay in the text (they are content too) and open a new section. With
    markdown=False (a .txt file) only underlined lines are headings: no `#` headings, fences
    or front matter. Also returns the map from text offsets to file offsets (see Document)."""
    lines = raw.split("\n")
    where: list[int] = []  # each line's offset in the file
    at = base
    for number, line in enumerate(lines):
        where.append(at)
        at += len(line) + 1
        if number + 1 < len(lines) and line.endswith("\r"):
            lines[number] = line[:-1]  # CRLF: the "\r" is in the file, not in the text
    text_parts: list[str] = []
    file_map: list[tuple[int, int]] = []
    marks: list[tuple[int, int, str]] = []  # (offset, level, title)
    offset = 0

    def keep(number: int) -> None:
        nonlocal offset
        file_map.append((offset, where[number]))
        text_parts.append(lines[number] + "\n")
        offset += len(lines[number]) + 1

    i = _front_matter(lines) if markdown else 0
    fence: tuple[str, int] | None = None  # the open fence's character and length
    while i < len(lines):
        line = lines[i]
        if fence is not None:  # code: kept as it is, never a heading
            closing = _FENCE.match(line)
            if closing and closing.group(1)[0] == fence[0] and len(closing.group(1)) >= \
                    fence[1] and not line[closing.end():].strip():
                fence = None
            keep(i)
            i += 1
            continue
        opening = _FENCE.match(line) if markdown else None
        if opening:
            fence = (opening.group(1)[0], len(opening.group(1)))
            keep(i)
            i += 1
            continue
        match = _HEADING.match(line) if markdown else None
        underline = i + 1 < len(lines) and line.strip() and _UNDERLINE.match(lines[i + 1])
        if match:
            marks.append((offset, len(match.group(1)), match.group(2)))
        elif underline:
            marks.append((offset, 1 if lines[i + 1].lstrip().startswith("=") else 2,
                          line.strip()))
            keep(i)
            i += 2  # the underline itself is not text
            continue
        keep(i)
        i += 1
    file_map.append((offset, at - 1))  # the end of the text is the end of the file
    return "".join(text_parts), _sections(marks, offset), tuple(file_map)


def _front_matter(lines: list[str]) -> int:
    """How many lines a leading front-matter block takes (0 when there is none): an opening
    `---` (or `+++`) on the first line and its closing line."""
    closers = _FRONT_MATTER.get(lines[0].rstrip()) if lines else None
    if closers is None:
        return 0
    for number in range(1, len(lines)):
        if lines[number].rstrip() in closers:
            return number + 1
    return 0  # never closed: an ordinary line, not front matter


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
    """Flatten to Markdown-like text (a heading as a '#' line after a blank one) with the
    sections taken from the h1-h6 elements themselves, never from the text: a table whose
    first header cell is "#" or a shell comment in <pre> is text. Text outside the block tags
    (straight in a div, a section, a table cell) is kept too, one line per enclosing block, in
    page order."""
    from bs4 import BeautifulSoup, Comment, NavigableString, Tag

    soup = BeautifulSoup(raw, "html.parser")
    for tag in soup(_DROP_TAGS):
        tag.decompose()
    for tag in soup(_PAGE_CHROME):
        if tag.find_parent(["article", "main", "section"]) is None:
            tag.decompose()
    body = soup.body or soup
    lines: list[tuple[int, str]] = []  # (heading level, 0 for text; the line)
    loose: list[str] = []
    holder: Tag | None = None  # the block the loose text so far sits in

    def flush() -> None:
        if loose:
            lines.append((0, " ".join(" ".join(loose).split())))
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
    while lines and not lines[0][1]:
        lines.pop(0)
    while lines and not lines[-1][1]:
        lines.pop()
    text_parts: list[str] = []
    marks: list[tuple[int, int, str]] = []
    offset = 0
    for level, line in lines:
        if level:
            marks.append((offset, level, line))
            line = "#" * level + " " + line
        text_parts.append(line + "\n")
        offset += len(line) + 1
    text_parts.append("\n")
    return "".join(text_parts), _sections(marks, offset + 1)


def _block_lines(element: Any) -> list[tuple[int, str]]:
    if element.name == "pre":  # code keeps its lines
        code = [line.rstrip() for line in element.get_text().split("\n")]
        return [(0, line) for line in "\n".join(code).strip("\n").split("\n")] \
            if any(code) else []
    if element.name == "tr":
        cells = [c.get_text(" ", strip=True) for c in element.find_all(["th", "td"])]
        line = " | ".join(cells)
    else:
        line = " ".join(element.get_text(" ", strip=True).split())
    if not line:
        return []
    if element.name.startswith("h") and len(element.name) == 2:
        return [(0, ""), (int(element.name[1]), line)]
    return [(0, "- " + line)] if element.name == "li" else [(0, line)]


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
