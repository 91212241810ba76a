"""Split documents into overlapping windows of tokens that never cross a section boundary.

Windows are counted in the embedding model's own tokens, and what is embedded is the heading
path, a line break and the window, between the encoder's [CLS] and [SEP]: each window is sized
so that all of it fits the encoder's limit (all-MiniLM-L6-v2 reads at most 256 tokens), so a
chunk is never cut off when it is embedded. `size` is the most body tokens a window takes; a
long heading leaves less room, and the window shrinks rather than the text being cut.
A chunk stays inside one section and carries that section's heading path: "Plans > Team"
travels with a window from the middle of the Team section, where the words "Team plan" may
not appear, so both BM25 and the embedding see what the text is about. Consecutive windows
of a section overlap by `overlap` tokens (less where a long heading shrinks the window, in
proportion) and together cover every token of it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import PurePosixPath
from typing import Any

from rung.rag.documents import Document

CHUNK_TOKENS = 160
OVERLAP_TOKENS = 32
ENCODER_LIMIT = 256  # all-MiniLM-L6-v2's max_seq_length, when the encoder cannot say
# Changes when the same corpus and settings make different chunks or spans: an index made
# before is rebuilt. 2: spans are file characters, windows fit the encoder, fences,
# front matter and .txt headings read as they are.
CHUNKING_VERSION = 2
FILE_SPANS = (".md", ".markdown", ".txt")  # where start/end are characters of the file


@dataclass(frozen=True)
class Chunk:
    """One window of a section. `start`/`end` locate it for a citation:

    * Markdown and text: characters of the file (decoded as UTF-8; "\r", a byte-order mark,
      heading underlines and front matter counted), so file_text[start:end] holds every
      character of `text`, with any underline or "\r" between them.
    * HTML and PDF: characters of the extracted text (Document.text), which is not the file:
      tags, entities and the PDF's layout are gone, so no span of the file matches. A
      citation there should name the section (a heading path, a PDF's "page 3"), not
      characters; `span_in_file` tells which kind a chunk has.
    """

    source: str
    position: int  # order within its document
    start: int
    end: int
    heading: str  # "Plans > Team"; "" before the first heading
    text: str  # Document.text of the span: "\n" line ends, no underline lines

    @property
    def span_in_file(self) -> bool:
        """Whether start/end are characters of the source file (Markdown, text), not of the
        text extracted from it (HTML, PDF)."""
        return PurePosixPath(self.source).suffix.lower() in FILE_SPANS

    @property
    def indexed_text(self) -> str:
        """What BM25 and the embedding see: the heading path, then the span."""
        return f"{self.heading}\n{self.text}" if self.heading else self.text

    @property
    def key(self) -> str:
        """Names the chunk in stored predictions: source and position."""
        return f"{self.source}#{self.position}"

    @property
    def citation(self) -> str:
        where = f" ({self.heading})" if self.heading else ""
        return f"{self.source}{where}"


@lru_cache(maxsize=1)
def embedding_tokenizer() -> Any:
    from transformers import AutoTokenizer

    from rung.eval.semantic import embedding_model_folder

    return AutoTokenizer.from_pretrained(str(embedding_model_folder()))


def encoder_limit() -> int:
    """The most tokens the embedding encoder reads, [CLS] and [SEP] included: its
    configuration's max_seq_length (the one SentenceTransformer reads when it loads), else
    256. Read from the file, so chunking does not depend on whether the encoder is loaded."""
    return _configured_limit()


@lru_cache(maxsize=1)
def _configured_limit() -> int:
    from rung.errors import RungError
    from rung.eval.semantic import embedding_model_folder

    try:
        config = embedding_model_folder() / "sentence_bert_config.json"
        return int(json.loads(config.read_text())["max_seq_length"])
    except (RungError, OSError, ValueError, KeyError, TypeError):
        return ENCODER_LIMIT


def chunk_document(
    doc: Document, *, size: int = CHUNK_TOKENS, overlap: int = OVERLAP_TOKENS,
    tokenizer: Any = None, limit: int | None = None,
) -> list[Chunk]:
    """`limit`: the encoder's, counted with its special tokens (read from it by default)."""
    if not 0 <= overlap < size:
        raise ValueError(f"overlap ({overlap}) must be smaller than the chunk size ({size})")
    tokenizer = tokenizer or embedding_tokenizer()
    limit = limit or encoder_limit()
    special = _special_tokens(tokenizer)

    def embedded_tokens(heading: str, text: str) -> int:
        indexed = f"{heading}\n{text}" if heading else text
        return len(tokenizer(indexed, verbose=False)["input_ids"])

    chunks: list[Chunk] = []
    for at, section in enumerate(doc.sections):
        body = doc.text[section.start:section.end]
        following = doc.sections[at + 1] if at + 1 < len(doc.sections) else None
        if not body.strip() or _only_parent_heading(body, section.headings, following):
            continue
        # verbose=False: a whole section is longer than the model reads, and it is only
        # counted here, never embedded; transformers' warning that it is would be misleading
        offsets = tokenizer(body, add_special_tokens=False, return_offsets_mapping=True,
                            verbose=False)["offset_mapping"]
        heading, heading_tokens = _fit_heading(section.headings, tokenizer, limit - special)
        room = max(limit - special - heading_tokens, 1)
        window = min(size, room)
        step_back = overlap if window == size else overlap * window // size
        first = 0
        while first < len(offsets):
            last = min(first + window, len(offsets))  # tokens first..last-1
            while True:
                start = section.start + offsets[first][0]
                end = section.start + (len(body.rstrip()) if last == len(offsets)
                                       else offsets[last - 1][1])  # the last runs to the end
                excess = embedded_tokens(heading, doc.text[start:end]) - limit
                if excess <= 0 or last - first <= 1:
                    break
                # a window that starts inside a word is split differently on its own
                last = max(first + 1, last - excess)
            span = doc.file_span(start, end) or (start, end)
            chunks.append(Chunk(doc.source, len(chunks), span[0], span[1], heading,
                                doc.text[start:end]))
            if last >= len(offsets):
                break
            first = max(last - step_back, first + 1)
    return chunks


def _special_tokens(tokenizer: Any) -> int:
    try:
        return int(tokenizer.num_special_tokens_to_add(pair=False))
    except (AttributeError, TypeError):
        return 2  # [CLS] and [SEP]


def _fit_heading(headings: tuple[str, ...], tokenizer: Any, room: int) -> tuple[str, int]:
    """The heading path and its tokens (with the line break after it), in at most half the
    encoder's room: the outer headings go first, then the inner one is cut, so a heading
    that is a paragraph (an HTML page's whole title line) leaves the text room to be read."""
    def count(text: str) -> list[tuple[int, int]]:
        return tokenizer(text + "\n", add_special_tokens=False, return_offsets_mapping=True,
                         verbose=False)["offset_mapping"]

    parts = list(headings)
    while parts:
        heading = " > ".join(parts)
        tokens = count(heading)
        if len(tokens) <= room // 2:
            return heading, len(tokens)
        if len(parts) == 1:
            heading = heading[:tokens[room // 2 - 1][1]].rstrip() if room >= 2 else ""
            return heading, len(count(heading)) if heading else 0
        parts.pop(0)
    return "", 0


def _only_parent_heading(body: str, headings: tuple[str, ...], following: Any) -> bool:
    """A section that is nothing but its heading line, followed by a child section, which
    carries that heading in its own: it adds nothing. A leaf heading ("## Shipping takes 5
    days") is content, and a line that merely contains the heading (a PDF page that says
    "page 14" under "page 1") is not the heading."""
    lines = [line for line in body.strip().splitlines() if line.strip()]
    if len(lines) != 1 or not headings or lines[0].lstrip("#").strip() != headings[-1].strip():
        return False
    return following is not None and tuple(following.headings[:len(headings)]) == headings \
        and len(following.headings) > len(headings)
