import random
from pathlib import Path

import pytest

from rung.data.audit.duplicates import (
    contradictions,
    exact_duplicates,
    leakage,
    near_duplicates,
    normalise_text,
)
from rung.data.example import Example, make_example
from rung.data.formats import read_examples
from rung.data.splits import Split

TICKETS = Path(__file__).resolve().parents[1] / "examples" / "support-tickets" / "tickets.jsonl"
VOCAB = ("invoice account login password export timesheet client project report payment card "
         "refund upgrade plan team member schedule holiday overtime approval dashboard mobile app "
         "sync calendar reminder error screen button download upload file email notification "
         "setting permission admin manager weekly monthly hours rate currency tax receipt").split()
LABELS = ["BUG", "BILLING", "HOWTO", "FEATURE"]


def _text(rng: random.Random, words: int = 30) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(words))


def _unrelated(n: int, *, seed: int = 0, start: int = 1) -> list[Example]:
    """n examples with independent random 30-word inputs, lines start, start+1, ..."""
    rng = random.Random(seed)
    return [make_example(_text(rng), LABELS[i % 4], line=start + i) for i in range(n)]


def _with(examples: list[Example], *planted: Example) -> list[Example]:
    return sorted([*examples, *planted], key=lambda e: e.line)


def _swap(text: str, positions: dict[int, str]) -> str:
    words = text.split()
    for position, word in positions.items():
        words[position] = word
    return " ".join(words)


BASE = ("my team cannot export the monthly timesheet report to pdf since the last update and "
        "the download button shows a spinner for every project we try on chrome and firefox")
assert len(BASE.split()) == 30


def test_normalise_text_ignores_case_spacing_punctuation_and_width():
    assert normalise_text("  Hello,\tWORLD!!  ") == "hello world"
    # NFKC folds full-width letters and the ideographic space; the ellipsis is punctuation
    assert normalise_text("Ｈｅｌｌｏ　world…") == "hello world"
    assert normalise_text("don't") == "dont"


def test_exact_copies_with_different_case_and_whitespace_form_one_group():
    text = "The invoice for March shows the wrong VAT rate, please fix it."
    planted = [
        make_example(text, "BILLING", line=3),
        make_example("the invoice for march   shows the wrong vat rate please fix it", "billing",
                     line=8),
        make_example("  THE INVOICE FOR MARCH shows the wrong\nVAT rate, please fix it.  ",
                     "BILLING.", line=15),
    ]
    examples = _with([e for e in _unrelated(30) if e.line not in (3, 8, 15)], *planted)
    result = exact_duplicates(examples)
    assert result.check == "exact-duplicates"
    assert result.rows == [[3, 8, 15]]
    assert result.status == "warn"  # 2 copies of 30 examples: under 10%
    assert result.finding == "2 examples are exact copies of others (1 group)"
    assert "--fix" in result.fix
    assert result.details["copies"] == 2


def test_exact_duplicates_fail_at_ten_percent_and_pass_when_clean():
    examples = _unrelated(18)
    copies = [make_example(examples[0].input, examples[0].output, line=19),
              make_example(examples[1].input.upper(), examples[1].output, line=20)]
    assert exact_duplicates(examples + copies).status == "fail"  # 2 of 20
    assert exact_duplicates(examples + copies).rows == [[1, 19], [2, 20]]
    clean = exact_duplicates(examples)
    assert (clean.status, clean.rows, clean.fix) == ("pass", [], "")
    assert exact_duplicates([]).status == "pass"


def test_a_different_system_prompt_or_output_is_not_an_exact_copy():
    a = make_example("reset my password", "HOWTO", line=1)
    b = make_example("reset my password", "BUG", line=2)
    c = make_example("reset my password", "HOWTO", system="Answer in French.", line=3)
    assert exact_duplicates([a, b, c]).status == "pass"


def test_near_duplicates_are_grouped_and_unrelated_texts_are_not():
    one_word = _swap(BASE, {29: "edge"})  # last word changed
    two_words = _swap(BASE, {0: "our", 29: "safari"})  # first and last words changed
    planted = [make_example(BASE, "BUG", line=4), make_example(one_word, "BUG", line=11),
               make_example(two_words, "BUG", line=23)]
    examples = _with([e for e in _unrelated(40) if e.line not in (4, 11, 23)], *planted)
    result = near_duplicates(examples)
    assert result.check == "near-duplicates"
    assert result.rows == [[4, 11, 23]]
    assert result.status == "warn"  # 3 of 40
    assert result.details["groups"] == 1
    assert result.details["largest_group"] == 3
    assert result.details["threshold"] == 0.8
    assert near_duplicates(_unrelated(40)).status == "pass"


def test_a_mid_text_edit_needs_shorter_shingles_in_a_short_text():
    # One word changed mid-text alters 5 of 26 word 5-shingles: Jaccard 21/31 = 0.68, under
    # 0.8. With 2-shingles it alters 2 of 29: Jaccard 27/31 = 0.87, over it.
    edited = _swap(BASE, {14: "icon"})
    examples = [make_example(BASE, "BUG", line=1), make_example(edited, "BUG", line=2),
                *_unrelated(10, start=3)]
    assert near_duplicates(examples).rows == []
    assert near_duplicates(examples, shingle=2).rows == [[1, 2]]


def test_short_texts_use_character_shingles():
    examples = [make_example("cannot log in!", "BUG", line=1),
                make_example("cannot log in", "HOWTO", line=2),  # same input, other label
                make_example("cannot log inn", "BUG", line=3),
                make_example("refund please", "BILLING", line=4)]
    assert near_duplicates(examples, shingle=5).rows == [[1, 2, 3]]


def test_an_exact_copy_is_reported_once_not_again_as_a_near_duplicate():
    near = _swap(BASE, {29: "edge"})
    examples = _with(_unrelated(20, start=10),
                     make_example(BASE, "BUG", line=1),
                     make_example(BASE.upper() + " ", "BUG", line=2),  # exact copy of line 1
                     make_example(near, "BUG", line=3),
                     make_example("a ticket pasted twice", "HOWTO", line=4),
                     make_example("A ticket, pasted twice.", "HOWTO", line=5))
    assert exact_duplicates(examples).rows == [[1, 2], [4, 5]]
    result = near_duplicates(examples)
    assert result.rows == [[1, 3]]  # line 2 is line 1's exact copy; 4 and 5 are exact only


def test_a_large_cluster_of_near_copies_is_one_group():
    # 300 variants that differ only in their last word share LSH buckets far larger than the
    # pairwise limit, which exercises the exemplar path.
    examples = [make_example(_swap(BASE, {29: f"browser{i}"}), "BUG", line=i + 1)
                for i in range(300)]
    examples += _unrelated(20, start=301)
    result = near_duplicates(examples)
    assert result.rows == [list(range(1, 301))]
    assert result.status == "fail"  # 300 of 320


def test_contradictions_same_input_different_labels():
    planted = [make_example("The app crashes when I open the invoice page.", "BUG", line=5),
               make_example("the app crashes when i open the invoice page", "BILLING", line=12),
               make_example("The app crashes when I open the invoice page", "BUG", line=17)]
    examples = _with([e for e in _unrelated(20) if e.line not in (5, 12, 17)], *planted)
    result = contradictions(examples)
    assert result.check == "contradictions"
    assert result.status == "fail"
    assert result.rows == [[5, 12, 17]]
    assert result.details["inputs"] == 1
    assert result.details["example"] == {"lines": [5, 12], "outputs": ["BUG", "BILLING"]}
    assert "1 input has conflicting outputs" in result.finding


def test_contradictions_near_same_input_and_what_is_not_one():
    examples = [
        make_example(BASE, "BUG", line=1),
        make_example(BASE + " thanks", "FEATURE", line=2),  # Jaccard 26/27 with line 1
        make_example("refund my last payment", "BILLING", line=3),
        make_example("Refund my last payment!", "billing.", line=4),  # same output, normalised
        make_example("summarise this", "BUG", system="Label the ticket.", line=5),
        make_example("summarise this", "A short summary.", system="Summarise.", line=6),
        *_unrelated(10, start=7),
    ]
    result = contradictions(examples)
    assert result.rows == [[1, 2]]
    assert contradictions(_unrelated(30)).status == "pass"


def test_leakage_a_test_example_copied_into_train():
    train = _unrelated(40, start=1)
    val = _unrelated(5, seed=1, start=41)
    test = _unrelated(5, seed=2, start=46)
    copy = make_example(test[2].input.upper() + "!", test[2].output, line=51)
    result = leakage(Split(train=train + [copy], val=val, test=test))
    assert result.check == "leakage"
    assert result.status == "fail"
    assert result.rows == [[51, 48]]  # train line first, then the test line
    assert result.details["train-test"] == 1
    assert result.details["train-val"] == 0
    assert result.details["leaked"] == 1
    clean = leakage(Split(train=train, val=val, test=test))
    assert (clean.status, clean.rows) == ("pass", [])


def test_leakage_near_copy_and_val_test_overlap():
    train = [make_example(BASE, "BUG", line=1), *_unrelated(10, start=2)]
    val = [make_example(_swap(BASE, {29: "edge"}), "BUG", line=20)]
    test = [make_example("a question asked twice", "HOWTO", line=30)]
    val.append(make_example("A question, asked twice.", "HOWTO", line=21))
    result = leakage(Split(train=train, val=val, test=test))
    assert result.status == "fail"
    assert result.rows == [[1, 20]]
    assert (result.details["train-val"], result.details["val-test"]) == (1, 1)
    only_val_test = leakage(Split(train=train[1:], val=val, test=test))
    assert only_val_test.status == "pass"
    assert only_val_test.details["val-test"] == 1


@pytest.mark.skipif(not TICKETS.exists(), reason="example tickets not present")
def test_clean_tickets_pass():
    examples = read_examples(TICKETS)[:200]
    assert exact_duplicates(examples).status == "pass"
    assert contradictions(examples).status == "pass"
    # The generator keeps every pair of tickets under 85% shared words; at Jaccard 0.8 over
    # word 5-shingles nothing is near-duplicate either.
    near = near_duplicates(examples)
    assert (near.status, near.rows) == ("pass", [])


def test_punctuation_that_changes_the_meaning_is_kept_when_comparing():
    """A minus sign, a decimal point, a thousands separator, a percent and C#/C++ make texts
    different; a trailing full stop, a comma or a hyphen inside a word do not."""
    from rung.data.audit.duplicates import normalise_text

    different = [("-5", "5"), ("$10.50", "$1,050"), ("learn C#?", "learn C?"),
                 ("C++ rocks", "C rocks"), ("50% off", "50 off")]
    for a, b in different:
        assert normalise_text(a) != normalise_text(b), (a, b)
    same = [("Hello, world.", "hello world"), ("e-mail me!", "email me"), ("ＡＢＣ！", "abc")]
    for a, b in same:
        assert normalise_text(a) == normalise_text(b), (a, b)
    found = exact_duplicates([make_example("refund -5 dollars", "A", line=1),
                              make_example("refund 5 dollars", "A", line=2)])
    assert found.status == "pass"
