"""Split documents into overlapping windows of tokens that never cross a section boundary.

Windows are counted in the embedding model's own tokens (all-MiniLM-L6-v2 reads at most 256),
so a chunk is never cut off when it is embedded. A chunk stays inside one section and carries
that section's heading path: "Plans > Team" travels with a window from the middle of the Team
section, where the words "Team plan" may not appear, so both BM25 and the embedding see
what the text is about. `start`/`end` are character offsets into the document text, so a
citation points at the exact span.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from rung.rag.documents import Document

CHUNK_TOKENS = 160
OVERLAP_TOKENS = 32


@dataclass(frozen=True)
class Chunk:
    source: str
    position: int  # order within its document
    start: int  # character offsets into the document text
    end: int
    heading: str  # "Plans > Team"; "" before the first heading
    text: str  # document text[start:end]

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


def chunk_document(
    doc: Document, *, size: int = CHUNK_TOKENS, overlap: int = OVERLAP_TOKENS,
    tokenizer: Any = None,
) -> list[Chunk]:
    if not 0 <= overlap < size:
        raise ValueError(f"overlap ({overlap}) must be smaller than the chunk size ({size})")
    tokenizer = tokenizer or embedding_tokenizer()
    chunks: list[Chunk] = []
    for at, section in enumerate(doc.sections):
        body = doc.text[section.start:section.end]
        following = doc.sections[at + 1] if at + 1 < len(doc.sections) else None
        if not body.strip() or _only_parent_heading(body, section.headings, following):
            continue
        offsets = tokenizer(body, add_special_tokens=False,
                            return_offsets_mapping=True)["offset_mapping"]
        heading = " > ".join(section.headings)
        step = size - overlap
        for first in range(0, max(len(offsets) - overlap, 1), step):
            window = offsets[first:first + size]
            if not window:
                break
            start = section.start + window[0][0]
            end = section.start + window[-1][1]
            if first + size >= len(offsets):  # the last window runs to the section's end
                end = section.start + len(body.rstrip())
            chunks.append(Chunk(doc.source, len(chunks), start, end, heading,
                                doc.text[start:end]))
    return chunks


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
