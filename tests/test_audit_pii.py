import re
from pathlib import Path

import pytest

from rung.data.audit.pii import PiiHit, pii_check, scan_examples
from rung.data.audit.pii_checksums import iban_valid, luhn_valid, shannon_entropy
from rung.data.audit.pii_find import find_pii, redact, redact_example
from rung.data.example import Example, Message, make_example
from rung.data.formats import read_examples

TICKETS = Path(__file__).resolve().parents[1] / "examples" / "support-tickets" / "tickets.jsonl"

# Fake credentials, assembled so that no scanner mistakes this file for a leak.
GITHUB = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
GITHUB_PAT = "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"
SLACK = "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
OPENAI = "sk-" + "proj-Ab3dEf6hIj9kLm2nOp5qRs8t"
STRIPE = "sk_" + "live_4eC39HqLyjWDarjtT1zdp7dc"
GOOGLE = "AIza" + "SyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe"
AWS = "AKIA" + "IOSFODNN7EXAMPLE"
PEM = ("-----BEGIN RSA " + "PRIVATE KEY-----\nMIIEowIBAAKCAQEAx9Qm2Lr7Tv4Kp8Wn3Hs6\n"
       "-----END RSA " + "PRIVATE KEY-----")
RANDOM_TOKEN = "Zx9Qm2Lr7Tv4Kp8Wn3Hs6Bd1Fg5Jc0Ya"


def at(text: str, kind: str, sub: str, nth: int = 0) -> tuple[str, int, int]:
    """(kind, start, end) of the nth occurrence of `sub` in `text`."""
    start = -1
    for _ in range(nth + 1):
        start = text.index(sub, start + 1)
    return (kind, start, start + len(sub))


def kinds(text: str) -> list[str]:
    return [k for k, _, _ in find_pii(text)]


# --- checksums ---------------------------------------------------------------------------

def test_luhn():
    assert luhn_valid("4111111111111111")
    assert luhn_valid("4111 1111 1111 1111")
    assert luhn_valid("378282246310005")
    assert not luhn_valid("4111111111111112")
    assert not luhn_valid("")
    assert not luhn_valid("4111x111")


def test_iban_valid():
    assert iban_valid("GB82 WEST 1234 5698 7654 32")
    assert iban_valid("DE89370400440532013000")
    assert not iban_valid("GB83 WEST 1234 5698 7654 32")  # check digit off by one
    assert not iban_valid("DE8937040044053201300")  # one short for Germany
    assert not iban_valid("QQ89370400440532013000")  # no such country


def test_entropy():
    assert shannon_entropy("") == 0
    assert shannon_entropy("aaaa") == 0
    assert shannon_entropy("abcd") == pytest.approx(2.0)
    assert shannon_entropy(RANDOM_TOKEN) >= 4.0


# --- cards -------------------------------------------------------------------------------

def test_valid_test_cards_found_with_exact_offsets():
    text = ("Visa 4111 1111 1111 1111, MC 5500-0000-0000-0004, "
            "Amex 378282246310005 or 3782 822463 10005.")
    assert find_pii(text) == [
        at(text, "card", "4111 1111 1111 1111"),
        at(text, "card", "5500-0000-0000-0004"),
        at(text, "card", "378282246310005"),
        at(text, "card", "3782 822463 10005"),
    ]
    assert find_pii("4111 1111 1111 1111") == [("card", 0, 19)]


@pytest.mark.parametrize("number",
                         ["4111 1111 1111 1112", "5500-0000-0000-0005", "378282246310006"])
def test_one_digit_changed_is_not_a_card(number):
    assert "card" not in kinds(f"card number {number} please")


def test_cards_not_inside_longer_numbers_or_mixed_separators():
    assert "card" not in kinds("ref 94111111111111111 done")  # 17 digits, starts with 9
    assert "card" not in kinds("4111 1111-1111 1111")  # inconsistent separators
    assert "card" not in kinds("epoch 1700000000000123")  # does not start with 2-6


# --- IBAN --------------------------------------------------------------------------------

def test_ibans_found():
    text = "Pay GB82 WEST 1234 5698 7654 32 or DE89370400440532013000."
    assert find_pii(text) == [
        at(text, "iban", "GB82 WEST 1234 5698 7654 32"),
        at(text, "iban", "DE89370400440532013000"),
    ]


def test_iban_with_wrong_check_digits_not_found():
    assert find_pii("Pay GB83 WEST 1234 5698 7654 32 today") == []
    assert "iban" not in kinds("Pay DE88370400440532013000 today")
    assert find_pii("our VAT number GB968702404") == []


# --- national ids ------------------------------------------------------------------------

def test_ssn():
    text = "SSN 123-45-6789 on file"
    assert find_pii(text) == [at(text, "national_id", "123-45-6789")]
    for bad in ("000-12-3456", "666-12-3456", "900-12-3456", "123-00-6789", "123-45-0000"):
        assert find_pii(f"SSN {bad} on file") == [], bad


def test_uk_national_insurance_number():
    text = "NI AB123456C and AB 12 34 56 C"
    assert find_pii(text) == [
        at(text, "national_id", "AB123456C"),
        at(text, "national_id", "AB 12 34 56 C"),
    ]
    # QQ (Q never first or second), D first, O second, BG/GB/... prefixes, suffix E
    for bad in ("QQ123456C", "DA123456C", "AO123456C", "GB123456A", "ZZ123456A", "AB123456E"):
        assert find_pii(f"NI {bad} ok") == [], bad


# --- IP ----------------------------------------------------------------------------------

def test_ipv4():
    text = "server 192.168.1.20 is down"
    assert find_pii(text) == [at(text, "ip", "192.168.1.20")]
    for not_ip in ("version 1.2.3", "version 1.2.3.4", "v1.2.3.4", "999.1.1.1", "1.2.3.4.5",
                   "10.0.19045.1234", "01.02.03.04", "localhost 127.0.0.1"):
        assert find_pii(f"see {not_ip} now") == [], not_ip


def test_ipv6():
    text = "from 2001:db8::1 and fe80::1ff:fe23:4567:890a."
    assert find_pii(text) == [
        at(text, "ip", "2001:db8::1"),
        at(text, "ip", "fe80::1ff:fe23:4567:890a"),
    ]
    assert find_pii("at 10:30:00 use std::vector, MAC 00:1A:2B:3C:4D:5E, ::1") == []


# --- email and phone ---------------------------------------------------------------------

def test_emails():
    text = "Mail sinead@lakesidecleaning.com or first.last+tag@sub.example.co.uk."
    assert find_pii(text) == [
        at(text, "email", "sinead@lakesidecleaning.com"),
        at(text, "email", "first.last+tag@sub.example.co.uk"),
    ]
    assert find_pii("anything @valley-ltd.co.uk and user@localhost") == []


def test_phones_found():
    text = ("Call +44 20 7946 0958 or (555) 123-4567, +1 (555) 123-4567, 555.123.4567, "
            "020 7946 0958, 07700 900123 or +33 1 23 45 67 89.")
    assert find_pii(text) == [
        at(text, "phone", "+44 20 7946 0958"),
        at(text, "phone", "(555) 123-4567"),
        at(text, "phone", "+1 (555) 123-4567"),
        at(text, "phone", "555.123.4567"),
        at(text, "phone", "020 7946 0958"),
        at(text, "phone", "07700 900123"),
        at(text, "phone", "+33 1 23 45 67 89"),
    ]


def test_phone_does_not_swallow_a_following_small_number():
    text = "ring +44 20 7946 0958 2 times"
    assert find_pii(text) == [at(text, "phone", "+44 20 7946 0958")]


@pytest.mark.parametrize("text", [
    "INV 15639", "INV-15639", "#48213", "PO-20231", "2026-11-23", "23/11/2026", "€1,234.56",
    "$12,400", "£1 234 567", "version 10.4.12", "the years 2019 2020 2021", "v2.3.1-beta",
    "up 12.5% to 1,204 seats", "+15% on 2024-03-01", "call ending 0958",
])
def test_not_phones(text):
    assert find_pii(text) == []


# --- secrets -----------------------------------------------------------------------------

@pytest.mark.parametrize("secret", [AWS, GITHUB, GITHUB_PAT, SLACK, OPENAI, STRIPE, GOOGLE, PEM])
def test_secret_formats(secret):
    text = f"key: {secret} (rotate it)"
    assert find_pii(text) == [at(text, "secret", secret)]


def test_generic_assignment_redacts_the_value_only():
    text = "password=hunter2hunter2"
    assert find_pii(text) == [("secret", 9, 23)]
    text = 'config: {"api_key": "abcd1234efgh", DB_PASSWORD = s3cr3t-pass}'
    assert find_pii(text) == [at(text, "secret", "abcd1234efgh"), at(text, "secret", "s3cr3t-pass")]


def test_generic_assignment_ignores_prose_and_placeholders():
    for text in ("my password: forgotten again", "token: invalidated", "password=short",
                 "api_key=<your-key-here>", "token=${API_TOKEN}", "password=********",
                 "password=[SECRET]"):
        assert find_pii(text) == [], text


def test_entropy_token():
    text = f"use {RANDOM_TOKEN} as the header"
    assert find_pii(text) == [at(text, "secret", RANDOM_TOKEN)]
    for low in ("getting-started/setup-guide-2024-edition", "123e4567-e89b-12d3-a456-426614174000",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaa1", "QuickBooksIntegrationSettingsPage",
                "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4"):
        assert find_pii(f"see {low} now") == [], low


# --- overlaps and redaction --------------------------------------------------------------

def test_overlaps_keep_the_specific_hit():
    # a card and an IBAN are never reported as phones too
    assert kinds("4111 1111 1111 1111") == ["card"]
    assert kinds("GB82 WEST 1234 5698 7654 32") == ["iban"]
    # an email containing a long token is one email, a known key format is not also "generic"
    assert kinds(f"token={GITHUB}") == ["secret"]
    assert find_pii(f"token={GITHUB}") == [("secret", 6, 6 + len(GITHUB))]


def test_redact_exact():
    text = ("Hi, I'm sinead@lakesidecleaning.com, call +44 20 7946 0958. Card 4111 1111 1111 1111, "
            "IBAN GB82 WEST 1234 5698 7654 32, SSN 123-45-6789, host 192.168.1.20, "
            f"password=hunter2hunter2, key {AWS}.")
    assert redact(text) == ("Hi, I'm [EMAIL], call [PHONE]. Card [CARD], IBAN [IBAN], "
                            "SSN [NATIONAL_ID], host [IP], password=[SECRET], key [SECRET].")
    assert redact(redact(text)) == redact(text)
    assert redact("nothing to see, INV 15639") == "nothing to see, INV 15639"


def test_redact_example_keeps_line_and_extra():
    example = Example(
        (Message("system", "You are support."),
         Message("user", "I'm at jo@example.com, +44 20 7946 0958"),
         Message("assistant", "Thanks, we will mail jo@example.com")),
        line=7, extra={"customer": "acme"})
    out = redact_example(example)
    assert out is not example
    assert out.line == 7 and out.extra == {"customer": "acme"}
    assert [m.role for m in out.messages] == ["system", "user", "assistant"]
    assert out.messages[0].content == "You are support."
    assert out.said == "I'm at [EMAIL], [PHONE]"
    assert out.output == "Thanks, we will mail [EMAIL]"
    assert example.said == "I'm at jo@example.com, +44 20 7946 0958"  # original untouched


# --- scan and check ----------------------------------------------------------------------

def test_scan_examples_hits():
    examples = [
        make_example("mail me: jo@example.com", "OK", line=3),
        make_example("nothing here", "OK", line=4),
        make_example("card 4111 1111 1111 1111", "we never store jo@example.com",
                     system="s", line=9),
    ]
    assert scan_examples(examples) == [
        PiiHit("email", 3, "user", 9, 23, "jo@example.com", 0),
        PiiHit("card", 9, "user", 5, 24, "4111 1111 1111 1111", 1),
        PiiHit("email", 9, "assistant", 15, 29, "jo@example.com", 2),
    ]


def test_pii_check_pass():
    result = pii_check([make_example("hello", "BUG", line=1), make_example("hi", "BUG", line=2)])
    assert (result.check, result.status, result.rows, result.fix) == ("pii", "pass", [], "")


def test_pii_check_warn_on_contact_details_only():
    examples = [
        make_example("mail a@example.com or b@example.com", "OK", line=5),
        make_example("call (555) 123-4567", "OK", line=2),
        make_example("fine", "OK", line=3),
        make_example("mail c@example.com", "OK", line=2),
    ]
    result = pii_check(examples)
    assert result.status == "warn"
    assert result.rows == [2, 5]
    assert result.finding == "2 examples contain personal data: 2 email, 1 phone"
    assert "rung audit --redact" in result.fix
    assert result.details["by_kind"] == {"email": 3, "phone": 1}
    assert result.details["by_role"] == {"user": 4}
    # the report does not repeat what it found
    assert "example.com" not in str(result.to_dict())


def test_pii_check_fail_on_card_or_secret():
    examples = [
        make_example("mail a@example.com", "OK", line=1),
        make_example("card 4111 1111 1111 1111", "OK", line=4),
        make_example("ok", f"use {AWS}", line=8),
    ]
    result = pii_check(examples)
    assert result.status == "fail"
    assert result.rows == [1, 4, 8]
    assert result.finding.startswith("3 examples contain personal data or secrets: ")
    assert "rung audit --redact" in result.fix
    assert result.details["by_role"] == {"assistant": 1, "user": 2}
    assert pii_check([make_example("SSN 123-45-6789", "OK", line=1)]).status == "fail"


# --- the bundled tickets -----------------------------------------------------------------

def test_bundled_tickets_hold_only_planted_emails():
    examples = read_examples(TICKETS)
    assert scan_examples(examples[:30]) == []  # realistic ticket text: no false positives
    hits = scan_examples(examples)
    assert {h.kind for h in hits} == {"email"}
    # every address the generator planted is found, whole
    planted = sorted(m.group().rstrip(".")
                     for e in examples for m in re.finditer(r"[\w.+-]+@[\w.-]+", e.input))
    assert sorted(h.text for h in hits) == planted
    assert pii_check(examples).status == "warn"


def test_personal_data_right_after_cjk_text_is_found():
    """The guards around an address or a number count only ASCII letters and digits: CJK
    text written straight against an email, a phone or an IP is not part of it."""
    cases = {"请发邮件到john@example.com谢谢": ("email", "john@example.com"),
             "我的手机是+86 138 0013 8000": ("phone", "+86 138 0013 8000"),
             "IP地址192.168.1.20。": ("ip", "192.168.1.20"),
             "電話は090-1234-5678です": ("phone", "090-1234-5678"),
             # digits of any script are still digits
             "call +٩٧١ ٥٠ ١٢٣ ٤٥٦٧ now": ("phone", "+٩٧١ ٥٠ ١٢٣ ٤٥٦٧"),
             "call +８１ ９０ １２３４ ５６７８ now": ("phone", "+８１ ９０ １２３４ ５６７８")}
    for text, (kind, found) in cases.items():
        assert [(k, text[s:e]) for k, s, e in find_pii(text)] == [(kind, found)], text


def test_personal_data_in_a_records_own_fields_is_found_and_redacted():
    """A customer_email column beside the conversation passed the check and survived
    --redact; it is found, named, and replaced, but for the fields the split reads (a
    group_key of e-mails redacted to one [EMAIL] would merge every customer)."""
    examples = [make_example("my invoice is wrong", "BILLING", line=i + 1,
                             customer_email="jane.doe@example.com", notes="call +44 20 7946 0958",
                             account=f"a{i}") for i in range(3)]
    result = pii_check(examples)
    assert result.status == "warn" and result.rows == [1, 2, 3]
    assert "customer_email" in result.finding and "notes" in result.finding
    assert result.details["by_role"] == {"field customer_email": 3, "field notes": 3}
    clean = redact_example(examples[0], keep=("customer_email",))
    assert clean.extra == {"customer_email": "jane.doe@example.com", "notes": "call [PHONE]",
                           "account": "a0"}
    assert redact_example(examples[0]).extra["customer_email"] == "[EMAIL]"
