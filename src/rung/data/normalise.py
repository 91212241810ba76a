"""The normalised form of a text and of a conversation: what makes two examples copies.

Copies made by hand or by scraping differ in case, spacing, full-width characters or a
trailing full stop. The audit's duplicate checks hash this form, and the split keeps the
examples it calls copies together, so the two never disagree about what a copy is.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata

from rung.data.example import Example


class _PunctuationTable(dict[int, int | None]):
    """str.translate table deleting Unicode punctuation (categories P*), filled lazily."""

    def __missing__(self, code: int) -> int | None:
        value = None if unicodedata.category(chr(code)).startswith("P") else code
        self[code] = value
        return value


_PUNCTUATION = _PunctuationTable()


# punctuation that changes what a text says: a minus sign, a decimal point or thousands
# separator, a percent sign, C# and C++; dropped, "-5" would be a copy of "5", "$10.50" of
# "$1,050" and "learn C#" of "learn C"
_MEANINGFUL = re.compile(r"(?<!\w)-(?=\d)|(?<=\d)[.,](?=\d)|(?<=\d)%|(?<=\w)[#+]+")


def normalise_text(text: str) -> str:
    """Lowercase, NFKC, drop punctuation (but the kinds that carry meaning, _MEANINGFUL) and
    collapse whitespace.

    Copies made by hand or by scraping differ in case, spacing, full-width characters or a
    trailing full stop; hashing this form catches them as the same text.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    parts, last = [], 0
    for kept in _MEANINGFUL.finditer(text):
        parts += [text[last:kept.start()].translate(_PUNCTUATION), kept.group()]
        last = kept.end()
    parts.append(text[last:].translate(_PUNCTUATION))
    return " ".join("".join(parts).split())


def copy_key(example: Example) -> str:
    """The conversation's normalised hash: equal for two examples the audit calls copies."""
    payload = [[m.role, normalise_text(m.content)] for m in example.messages]
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode("utf-8")).hexdigest()
