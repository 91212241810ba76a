"""Personal data and secrets in a text: find them, and redact them.

Why: the seeds' data-quality checklist has "PII removed -- privacy compliance -- run PII
scanner". A fine-tune memorises what it is trained on, and a model that saw a customer's card
number, email address or an API key can repeat it to anyone who asks the right question. Data
protection law (GDPR and friends) also covers training sets, so personal data that the task does
not need should not be in them.

What is found, in every message of every example (system, user and assistant turns alike):

- ``email``: practical RFC-ish addresses (``name@domain.tld``).
- ``phone``: international numbers (``+44 20 7946 0958``, ``+1 (555) 123-4567``) and common
  national formats with separators (``(555) 123-4567``, ``555-123-4567``, trunk-prefixed
  ``020 7946 0958`` / ``07700 900123``), 9 to 15 digits. Years, dates, amounts, invoice numbers
  and version numbers do not have these shapes and are not matched.
- ``card``: 13-19 digits (contiguous, or in groups of 4, or Amex 4-6-5) starting with 2-6 (the
  major networks' ranges), and only if the Luhn check passes (:func:`luhn_valid`).
- ``iban``: country code, 2 check digits and the BBAN, compact or in groups of 4, with the length
  registered for that country, and only if the ISO 13616 mod-97 check passes
  (:func:`iban_valid`).
- ``national_id``: exactly two formats, US Social Security numbers (``AAA-GG-SSSS``, without area
  000, 666 or 9xx, group 00 or serial 0000) and UK National Insurance numbers (two letters with
  the official exclusions, six digits, a final letter A-D). Other countries' identifiers are not
  detected.
- ``ip``: IPv4 with 4 octets of 0-255 (not version strings, not inside longer dotted numbers) and
  IPv6, both validated with :mod:`ipaddress`; loopback and unspecified addresses identify no
  one and are skipped.
- ``secret``: well-known key formats (AWS access key ids, GitHub tokens, Slack tokens,
  OpenAI-style ``sk-`` keys, Stripe secret/restricted keys, Google API keys, PEM private key
  blocks); ``password=`` / ``api_key:`` / ``token=`` style assignments (only the value is a
  hit); and, for the generic case, tokens of 24+ base64/hex-ish characters that mix letters and
  digits with a Shannon entropy of at least 4.0 bits per character (paths, slugs and inline
  ``data:`` URIs excepted). Pure hex has at most 4 bits per character, so hex secrets are found
  through their assignment or key format, not by entropy alone.

Where hits overlap, one is kept: exact formats with a checksum or a fixed shape (cards, IBANs,
national ids, key formats, emails, IPs) win over generic secrets, which win over phones; within
a tier the longest wins.

This module knows nothing of audits: the "pii" check (pii.py) reports what it finds in a data
set, and the same finder redacts the server's log, the gate's and check's outputs, and the
data that `rung audit --redact` writes back. The checksums live in pii_checksums.py.

Limits: regexes find formats, not meaning. Names, postal addresses, dates of birth, health
details and free-text descriptions of a person are NOT detected, nor are identifiers in formats
not listed above, nor fields outside the messages (``Example.extra``). A pass here is not proof
that the data is clean: a person should still read a random sample before training.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import replace
from typing import Literal

from rung.data.audit.pii_checksums import IBAN_LENGTHS, iban_valid, luhn_valid, shannon_entropy
from rung.data.example import Example, Message

Kind = Literal["email", "phone", "card", "iban", "national_id", "ip", "secret"]

KINDS: tuple[str, ...] = ("email", "phone", "card", "iban", "national_id", "ip", "secret")
PLACEHOLDERS = {kind: f"[{kind.upper()}]" for kind in KINDS}


# --- patterns ----------------------------------------------------------------------------

# The guards say what may not touch a match: an ASCII letter, an underscore or a digit of any
# script ([A-Za-z_\d]), not \w, which counts CJK and other letters as part of the number or
# address, so PII written straight after 请发邮件到 or 電話は went unseen. Digits stay Unicode:
# a phone written in Arabic-Indic or full-width digits is still a phone.
_EMAIL = re.compile(
    r"(?<![A-Za-z_\d.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}"
    r"(?![A-Za-z_\d-])"
)

# Phones. The trailing guard stops a match inside a longer number or dotted/dashed run.
_PHONE_END = r"(?!\d|[.-]\d)"
_PHONE_PATTERNS = [
    # international: +CC, optional (area), digit groups (atomic: linear time on long runs)
    re.compile(r"(?<![A-Za-z_\d+])\+(?>\d{1,3}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]?\d+)*)"
               + _PHONE_END),
    # North American: (555) 123-4567, 1-800-555-1234, 555-123-4567 (same separator twice)
    re.compile(r"(?<![A-Za-z_\d)])(?:1[ .-]?)?\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}" + _PHONE_END),
    re.compile(r"(?<![A-Za-z_\d.+#/-])(?:1([ .-]))?[2-9]\d{2}([ .-])\d{3}\2\d{4}" + _PHONE_END),
    # trunk-prefixed national numbers: 020 7946 0958, 07700 900123, (0)30 1234 5678, 0044 ...
    re.compile(r"(?<![A-Za-z_\d.+#/-])\(?0(?:0[1-9]\d{0,2}|[1-9]\d{0,3})\)?"
               r"(?:[ .-]?\d{2,4}){2,4}" + _PHONE_END),
]

_TRAILING_DIGIT = re.compile(r"\d{2}[ .-]\d$")

_CARD_PATTERNS = [
    re.compile(r"(?<!\d)(?<!\d[ -])[2-6]\d{12,18}(?!\d|[ -]\d)"),
    re.compile(r"(?<!\d)(?<!\d[ -])[2-6]\d{3}([ -])\d{4}\1\d{4}\1\d{1,4}(?:\1\d{1,3})?"
               r"(?!\d|[ -]\d)"),
    re.compile(r"(?<!\d)(?<!\d[ -])3\d{3}([ -])\d{6}\1\d{4,5}(?!\d|[ -]\d)"),  # Amex, Diners
]

_IBAN_START = re.compile(r"(?<![A-Za-z0-9])([A-Z]{2})\d{2}")

_SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-]|\.\d)")
# UK NINO: first letter not D F I Q U V; second not D F I O Q U V; some prefixes never issued.
_NINO = re.compile(
    r"(?<![A-Za-z0-9])(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r"(?:\d{6}|( )\d{2}\1\d{2}\1\d{2}\1?)[A-D](?![A-Za-z0-9])"
)

_IPV4 = re.compile(r"(?<![A-Za-z_\d.])(?:\d{1,3}\.){3}\d{1,3}(?![A-Za-z_\d]|\.\d)")
_IPV6 = re.compile(
    r"(?<![A-Za-z_\d:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{0,4})"
    r"(?![A-Za-z_\d:.]*[A-Za-z_\d])",
)
_VERSION_BEFORE = re.compile(r"\b(?:version|ver|build|release|v)\.?\s*$", re.IGNORECASE)

_SECRET_FORMATS = [
    re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Za-z0-9])"),  # AWS access key id
    re.compile(r"(?<!\w)gh[pousr]_[A-Za-z0-9]{30,251}(?!\w)"),  # GitHub classic tokens
    re.compile(r"(?<!\w)github_pat_[A-Za-z0-9_]{22,255}(?!\w)"),  # GitHub fine-grained
    re.compile(r"(?<![\w-])xox[abposr]-[A-Za-z0-9-]{10,}(?![\w-])"),  # Slack
    re.compile(r"(?<![\w-])sk-(?=[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[A-Za-z])"
               r"[A-Za-z0-9_-]{20,}(?![\w-])"),  # OpenAI-style
    re.compile(r"(?<!\w)(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{10,}(?!\w)"),  # Stripe
    re.compile(r"(?<![\w-])AIza[0-9A-Za-z_-]{35}(?![\w-])"),  # Google API key
    re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----"
               r"(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?:\1)?-----|[A-Za-z0-9+/=\s:,-]*)"),
]

_ASSIGNMENT = re.compile(
    r"(?<![A-Za-z0-9_-])(?:[A-Za-z0-9]+[_-])*"
    r"(?:password|passwd|passphrase|pwd|secret|api[_-]?key|access[_-]?key|secret[_-]?key|"
    r"private[_-]?key|auth[_-]?token|access[_-]?token|refresh[_-]?token|bearer[_-]?token|token|"
    r"client[_-]?secret)"
    r"[\"']?[ \t]*(?P<op>[:=])[ \t]*[\"']?(?P<value>[^\s\"'`,;]{8,})",
    re.IGNORECASE,
)
_PLACEHOLDER_VALUE = re.compile(
    r"^(?:[<$\[{%(*]|x{4,}|\*{4,}|\.{3})|^(?:your|my|example|redacted|changeme|none|null)",
    re.IGNORECASE,
)

_CLOSERS = {")": "(", "]": "[", "}": "{", ">": "<"}

_TOKEN = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{24,}={0,2}(?![A-Za-z0-9+/=_@-])")
ENTROPY_BITS = 4.0
ENTROPY_MIN_LEN = 24


# --- finders -----------------------------------------------------------------------------

Span = tuple[str, int, int]


def _emails(text: str) -> list[Span]:
    return [("email", m.start(), m.end()) for m in _EMAIL.finditer(text)]


def _phones(text: str) -> list[Span]:
    found = []
    for pattern in _PHONE_PATTERNS:
        for m in pattern.finditer(text):
            end = m.end()
            if _TRAILING_DIGIT.search(m.group()):  # "+44 20 7946 0958 2 days": not the " 2"
                end -= 2
            n = sum(ch.isdigit() for ch in text[m.start():end])
            if 9 <= n <= 15:
                found.append(("phone", m.start(), end))
    return found


def _cards(text: str) -> list[Span]:
    found = []
    for pattern in _CARD_PATTERNS:
        for m in pattern.finditer(text):
            digits = re.sub(r"\D", "", m.group())
            if 13 <= len(digits) <= 19 and luhn_valid(digits):
                found.append(("card", m.start(), m.end()))
    return found


def _ibans(text: str) -> list[Span]:
    found = []
    for m in _IBAN_START.finditer(text):
        length = IBAN_LENGTHS.get(m.group(1))
        if length is None:
            continue
        # walk forward over the registered number of characters; a single space is allowed
        # only between groups of 4 (the print format)
        i, count = m.start(), 0
        while count < length and i < len(text):
            ch = text[i]
            if ch.isascii() and (ch.isdigit() or ch.isupper()):
                count += 1
                i += 1
            elif ch == " " and count % 4 == 0 and count > 0 and i + 1 < len(text) \
                    and text[i + 1] != " ":
                i += 1
            else:
                break
        if count != length or (i < len(text) and text[i].isalnum()):
            continue
        if iban_valid(text[m.start():i]):
            found.append(("iban", m.start(), i))
    return found


def _national_ids(text: str) -> list[Span]:
    found = [("national_id", m.start(), m.end()) for m in _SSN.finditer(text)]
    found += [("national_id", m.start(), m.end()) for m in _NINO.finditer(text)]
    return found


def _ip_ok(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return not (address.is_loopback or address.is_unspecified)


def _ips(text: str) -> list[Span]:
    found = []
    for m in _IPV4.finditer(text):
        if _VERSION_BEFORE.search(text[max(0, m.start() - 12):m.start()]):
            continue
        try:
            address = ipaddress.IPv4Address(m.group())
        except ValueError:
            continue
        if _ip_ok(address):
            found.append(("ip", m.start(), m.end()))
    for m in _IPV6.finditer(text):
        candidate = m.group()
        if sum(ch in "0123456789abcdefABCDEF" for ch in candidate) < 3:
            continue
        try:
            address = ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        if _ip_ok(address):
            found.append(("ip", m.start(), m.end()))
    return found


def _known_secrets(text: str) -> list[Span]:
    return [("secret", m.start(), m.end()) for p in _SECRET_FORMATS for m in p.finditer(text)]


def _generic_secrets(text: str) -> list[Span]:
    found = []
    for m in _ASSIGNMENT.finditer(text):
        value, end = m.group("value"), m.end("value")
        while value and value[-1] in _CLOSERS and _CLOSERS[value[-1]] not in value:
            value, end = value[:-1], end - 1  # the `}` closing the dict the value sits in
        if len(value) < 8 or _PLACEHOLDER_VALUE.search(value) or len(set(value)) < 3:
            continue
        # "password: whatever" in prose: after a colon, a plain word is not a value
        if m.group("op") == ":" and value.isalpha():
            continue
        found.append(("secret", m.start("value"), end))
    for m in _TOKEN.finditer(text):
        token = m.group()
        if len(token) < ENTROPY_MIN_LEN or not _mixes_letters_and_digits(token):
            continue
        if _is_slug(token) or text[max(0, m.start() - 7):m.start()] == "base64,":
            continue  # a path or slug, or an inline data: URI (an image, not a key)
        if shannon_entropy(token) >= ENTROPY_BITS:
            found.append(("secret", m.start(), m.end()))
    return found


def _mixes_letters_and_digits(token: str) -> bool:
    return any(ch.isdigit() for ch in token) and any(ch.isalpha() for ch in token)


def _is_slug(token: str) -> bool:
    """A path or slug (`getting-started/setup-2024`): parts are words or numbers, never both."""
    parts = [p for p in re.split(r"[/_+-]", token.rstrip("=")) if p]
    if len(parts) < 2:
        return False
    return all(p.isalpha() or p.isdigit() for p in parts)


# Overlap resolution: lower tier wins, then the longer span.
_TIER = {"card": 0, "iban": 0, "national_id": 0, "email": 0, "ip": 0, "secret": 0, "phone": 2}


def find_pii(text: str) -> list[tuple[str, int, int]]:
    """All hits in `text` as (kind, start, end), sorted by start, never overlapping."""
    candidates: list[tuple[int, Span]] = []
    for span in _known_secrets(text) + _cards(text) + _ibans(text) + _national_ids(text) \
            + _emails(text) + _ips(text):
        candidates.append((_TIER[span[0]], span))
    candidates += [(1, span) for span in _generic_secrets(text)]
    candidates += [(2, span) for span in _phones(text)]
    candidates.sort(key=lambda c: (c[0], -(c[1][2] - c[1][1]), c[1][1], KINDS.index(c[1][0])))
    kept: list[Span] = []
    for _, (kind, start, end) in candidates:
        if start >= end:
            continue
        if all(end <= s or start >= e for _, s, e in kept):
            kept.append((kind, start, end))
    return sorted(kept, key=lambda s: s[1])


def redact(text: str) -> str:
    """Replace every hit with its typed placeholder: [EMAIL], [PHONE], [CARD], [IBAN], ..."""
    out, pos = [], 0
    for kind, start, end in find_pii(text):
        out.append(text[pos:start])
        out.append(PLACEHOLDERS[kind])
        pos = end
    out.append(text[pos:])
    return "".join(out)


def redact_example(example: Example, keep: Iterable[str] = ()) -> Example:
    """A new Example with every message and every text field of `extra` redacted, but the
    fields named in `keep`: the split's group_key and order_key, whose values must stay
    distinct (one customer's e-mail redacted to [EMAIL] would merge every customer)."""
    messages = tuple(Message(m.role, redact(m.content)) for m in example.messages)
    kept = set(keep)
    extra = {key: redact(value) if isinstance(value, str) and key not in kept else value
             for key, value in example.extra.items()}
    return replace(example, messages=messages, extra=extra)
