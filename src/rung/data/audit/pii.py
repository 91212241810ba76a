"""The "pii" audit check: personal data and secrets in the examples, reported per kind.

Why: the seeds' data-quality checklist has "PII removed -- privacy compliance -- run PII
scanner". A fine-tune memorises what it is trained on, and a model that saw a customer's card
number, email address or an API key can repeat it to anyone who asks the right question. Data
protection law (GDPR and friends) also covers training sets, so personal data that the task does
not need should not be in them.

Every message of every example (system, user and assistant turns alike) and every text field of
the record is scanned with `find_pii` (pii_find.py, which says what is found and what is not).
Cards, IBANs, national ids and secrets fail the check; e-mails, phones and IPs alone only warn.
The fix it names, `rung audit --redact`, is `redact_example` in the same module.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from rung.data.audit.base import CheckResult
from rung.data.audit.pii_find import KINDS, find_pii
from rung.data.example import Example

# A hit of any of these fails the check; the others only warn.
SEVERE_KINDS = frozenset({"card", "iban", "national_id", "secret"})


@dataclass(frozen=True)
class PiiHit:
    kind: str  # one of KINDS
    line: int  # the example's 1-based line
    role: str  # role of the message the hit is in, or "field NAME" for a record's field
    start: int  # offsets in that message's content
    end: int
    text: str
    message: int = 0  # index of the message in example.messages (several may share a role)


def _fields(example: Example) -> list[tuple[str, str]]:
    """(name, text) of the record's text fields beyond the conversation: a customer_email
    column is personal data however the messages read."""
    return [(key, value) for key, value in example.extra.items() if isinstance(value, str)]


def scan_examples(examples: Iterable[Example]) -> list[PiiHit]:
    """Every hit in every message (and text field, as role "field NAME") of every example,
    in input order.

    Each distinct text is scanned once: a system prompt repeated on every example would
    otherwise cost as much as all the answers."""
    hits = []
    seen: dict[str, list[tuple[str, int, int]]] = {}
    for example in examples:
        for index, message in enumerate(example.messages):
            found = seen.get(message.content)
            if found is None:
                found = seen[message.content] = find_pii(message.content)
            for kind, start, end in found:
                hits.append(PiiHit(kind, example.line, message.role, start, end,
                                   message.content[start:end], index))
        for key, value in _fields(example):
            for kind, start, end in find_pii(value):
                hits.append(PiiHit(kind, example.line, f"field {key}", start, end,
                                   value[start:end], -1))
    return hits


def pii_check(examples: Iterable[Example]) -> CheckResult:
    """The "pii" audit check: fail on cards, IBANs, national ids or secrets; warn on emails,
    phones or IPs alone; pass when nothing is found. Hit texts are not copied into the result,
    so a report does not spread what it found."""
    examples = list(examples)
    hits = scan_examples(examples)
    if not hits:
        return CheckResult("pii", "pass", f"no personal data or secrets found in "
                           f"{len(examples)} examples (formats only; names and addresses are "
                           f"not detected)", details={"examples": len(examples), "hits": 0})
    by_kind = Counter(h.kind for h in hits)
    by_role = Counter(h.role for h in hits)
    lines_by_kind: dict[str, set[int]] = {}
    for h in hits:
        lines_by_kind.setdefault(h.kind, set()).add(h.line)
    examples_by_kind = {k: len(v) for k, v in lines_by_kind.items()}
    rows = sorted({h.line for h in hits})
    order = sorted(examples_by_kind, key=lambda k: (-examples_by_kind[k], KINDS.index(k)))
    severe = any(k in SEVERE_KINDS for k in by_kind)
    what = "personal data or secrets" if "secret" in by_kind else "personal data"
    subject = f"{len(rows)} examples contain" if len(rows) != 1 else "1 example contains"
    finding = f"{subject} {what}: " + ", ".join(f"{examples_by_kind[k]} {k}" for k in order)
    fields = sorted({h.role[len("field "):] for h in hits if h.role.startswith("field ")})
    if fields:  # not part of the conversation, so not trained on, but shipped with the file
        finding += f" (also in the field{'s' if len(fields) > 1 else ''} {', '.join(fields)})"
    if severe:
        fix = ("remove or redact these rows before training: `rung audit --redact` replaces each "
               "hit with a typed placeholder ([CARD], [SECRET], ...); rotate any real key that "
               "leaked")
    else:
        fix = ("check whether the task needs them; `rung audit --redact` replaces each hit with "
               "a typed placeholder ([EMAIL], [PHONE], [IP])")
    details = {
        "examples": len(examples),
        "examples_with_hits": len(rows),
        "hits": len(hits),
        "by_kind": {k: by_kind[k] for k in KINDS if k in by_kind},
        "examples_by_kind": {k: examples_by_kind[k] for k in KINDS if k in examples_by_kind},
        "by_role": dict(sorted(by_role.items())),
    }
    return CheckResult("pii", "fail" if severe else "warn", finding, fix, rows, details)
