import random
import time
from collections import Counter

import pytest

from rung.data.example import make_example
from rung.data.splits import split_examples
from rung.errors import DataError


def _examples(n: int = 300, groups: int | None = None):
    labels = ["A"] * 150 + ["B"] * 100 + ["C"] * 40 + ["D"] * 10
    return [
        make_example(f"text {i}", labels[i % len(labels)], line=i + 1,
                     **({"group": f"g{i % groups}"} if groups else {}))
        for i in range(n)
    ]


def test_same_seed_same_split_whatever_the_order():
    examples = _examples()
    shuffled = examples[:]
    random.Random(1).shuffle(shuffled)
    a = split_examples(examples, seed=3)
    b = split_examples(shuffled, seed=3)
    assert a.hash() == b.hash()
    assert [e.id for e in a.test] == [e.id for e in b.test]
    assert split_examples(examples, seed=4).hash() != a.hash()


def test_fractions_and_stratification():
    split = split_examples(_examples(), seed=0)
    assert (len(split.train), len(split.val), len(split.test)) == (240, 30, 30)
    ids = [e.id for part in split.parts().values() for e in part]
    assert len(ids) == len(set(ids)) == 300
    for part in (split.val, split.test):
        counts = Counter(e.output for e in part)
        assert counts == {"A": 15, "B": 10, "C": 4, "D": 1}


def test_groups_never_straddle_splits():
    split = split_examples(_examples(groups=40), seed=0, group_key="group")
    where = {}
    for name, part in split.parts().items():
        for e in part:
            assert where.setdefault(e.extra["group"], name) == name
    assert 20 <= len(split.test) <= 45 and 20 <= len(split.val) <= 45


def test_missing_group_key_is_an_error_with_its_line():
    examples = _examples(groups=10)
    broken = examples[:5] + [make_example("no group", "A", line=6)] + examples[6:]
    with pytest.raises(DataError) as info:
        split_examples(broken, seed=0, group_key="group", source="data.jsonl")
    assert info.value.line == 6 and "group" in str(info.value)


def test_save_writes_ids_and_hash(tmp_path):
    import json

    split = split_examples(_examples(), seed=0)
    split.save(tmp_path / "split.json")
    saved = json.loads((tmp_path / "split.json").read_text())
    assert saved["split_hash"] == split.hash()
    assert saved["counts"] == {"train": 240, "val": 30, "test": 30}
    assert saved["ids"]["test"] == [e.id for e in split.test]


def _dated(n: int = 100, groups: int | None = None):
    """Example i written on day i (in a shuffled file order), as ISO dates."""
    from datetime import date, timedelta

    days = list(range(n))
    random.Random(5).shuffle(days)
    return [make_example(f"ticket {d}", "AB"[d % 2], line=i + 1,
                         created=(date(2026, 1, 1) + timedelta(days=d)).isoformat(),
                         **({"group": f"g{d // (n // groups)}"} if groups else {}))
            for i, d in enumerate(days)]


def test_an_order_key_puts_the_newest_examples_in_test_and_the_next_in_val():
    split = split_examples(_dated(), seed=0, order_key="created")
    day = lambda e: int(e.input.split()[1])  # noqa: E731
    assert sorted(map(day, split.test)) == list(range(90, 100))
    assert sorted(map(day, split.val)) == list(range(80, 90))
    assert max(map(day, split.train)) == 79
    # the same examples in each split whatever the seed: time decides, not a hash
    other = split_examples(_dated(), seed=9, order_key="created")
    assert all({e.id for e in other.parts()[name]} == {e.id for e in part}
               for name, part in split.parts().items())


def test_an_order_key_keeps_groups_whole_by_their_newest_record():
    split = split_examples(_dated(groups=20), seed=0, order_key="created", group_key="group")
    where = {}
    for name, part in split.parts().items():
        for e in part:
            assert where.setdefault(e.extra["group"], name) == name
    assert {e.extra["group"] for e in split.test} == {"g19", "g18"}


@pytest.mark.parametrize("value, said", [(None, "has no 'created' field"),
                                         ("last tuesday", "not an ISO 8601 date or time"),
                                         (17, "a number here and a date on line 1"),
                                         ([2026], "has a list in its 'created' field")])
def test_an_order_value_that_cannot_be_placed_in_time_is_named_with_its_line(value, said):
    examples = _dated(10)
    extra = {} if value is None else {"created": value}
    broken = examples[:6] + [make_example("odd", "A", line=7, **extra)] + examples[7:]
    with pytest.raises(DataError) as info:
        split_examples(broken, seed=0, order_key="created", source="data.jsonl")
    assert info.value.line == 7 and said in str(info.value), str(info.value)
    assert "ISO 8601" in info.value.fix and "[split] order_key" in info.value.fix


def test_numbers_and_zoned_times_order_too(monkeypatch):
    numbered = [make_example(f"t {i}", "AB"[i % 2], line=i + 1, seq=i) for i in range(50)]
    split = split_examples(numbered, seed=0, order_key="seq")
    assert sorted(e.extra["seq"] for e in split.test) == [45, 46, 47, 48, 49]
    # hour h written in UTC, every other one with a zone that says so in another way: the
    # two newest are test, on any machine's clock
    from datetime import datetime, timedelta, timezone

    tokyo = timezone(timedelta(hours=9))
    zoned = [make_example(f"z {h}", "AB"[h % 2], line=h + 1, at=(
        datetime(2026, 5, 1, h, tzinfo=timezone.utc).astimezone(tokyo).isoformat() if h % 2
        else f"2026-05-01T{h:02d}:00:00")) for h in range(5, 20)]
    for tz in ("UTC", "Asia/Tokyo", "America/Los_Angeles"):
        monkeypatch.setenv("TZ", tz)
        time.tzset()
        test = split_examples(zoned, seed=0, order_key="at").test
        assert sorted(e.input for e in test) == ["z 18", "z 19"], tz
    nan = [make_example("n", "A", line=1, seq=float("nan"))]
    with pytest.raises(DataError, match="no place in time"):
        split_examples(nan * 10, seed=0, order_key="seq")
    # a CSV cell is text: the same numbers written as text order the same way
    texts = [make_example(f"t {i}", "AB"[i % 2], line=i + 1, seq=str(i)) for i in range(50)]
    assert [e.id for e in split_examples(texts, seed=0, order_key="seq").test] == \
        [e.id for e in split.test]
    # digits alone are a number, though "10000101" would also read as a date (year 1000);
    # and past 2**53 they stay exact: nanosecond stamps one apart are not ties
    ids = [make_example(f"i {i}", "AB"[i % 2], line=i + 1, seq=str(10_000_000 + i * 101))
           for i in range(20)]
    assert len(split_examples(ids, seed=0, order_key="seq").test) == 2
    nanos = [make_example(f"n {i}", "AB"[i % 2], line=i + 1, seq=str(2 ** 60 + i))
             for i in range(20)]
    assert sorted(e.input for e in split_examples(nanos, seed=0, order_key="seq").test) == \
        ["n 18", "n 19"]


def test_a_numeric_order_key_survives_the_trip_through_csv(tmp_path):
    """JSON Lines with an integer timestamp, converted to CSV (where it is text) and climbed
    with [split] order_key: the same split as from the JSON Lines."""
    from rung.data.formats import read_examples, write_examples

    records = [make_example(f"ticket {i}", "AB"[i % 2], line=i + 1, ts=1_700_000_000 + i)
               for i in range(40)]
    write_examples(records, tmp_path / "d.jsonl", "openai")
    write_examples(read_examples(tmp_path / "d.jsonl"), tmp_path / "d.csv", "csv")
    from_csv = read_examples(tmp_path / "d.csv")
    assert isinstance(from_csv[0].extra["ts"], str)
    ids = [[e.input for e in split_examples(read_examples(tmp_path / name), seed=0,
                                            order_key="ts").test]
           for name in ("d.jsonl", "d.csv")]
    newest = {f"ticket {i}" for i in range(40 - len(ids[0]), 40)}
    assert ids[0] == ids[1] and set(ids[0]) == newest


def test_the_split_keeps_its_test_set_when_lines_move_and_copies_stay_together():
    """Content, not line numbers, decides: a file read in another order (so every line
    number changes) or with a line deleted above keeps its test set, and two copies of one
    example land in one split (a copy in train would let test score memory)."""
    examples = _examples()
    renumbered = [make_example(e.input, e.output, line=k + 1)
                  for k, e in enumerate(reversed(examples))]
    a, b = split_examples(examples, seed=3), split_examples(renumbered, seed=3)
    assert sorted(e.id for e in a.test) == sorted(e.id for e in b.test)
    copies = examples + [make_example(e.input, e.output, line=1000 + k)
                         for k, e in enumerate(examples[:100])]
    split = split_examples(copies, seed=3)
    where = {}
    for name, part in split.parts().items():
        for e in part:
            where.setdefault(e.id, set()).add(name)
    assert all(len(names) == 1 for names in where.values())


def test_copies_the_audit_calls_copies_stay_together_in_the_split():
    """A copy shouted ("REFUND MY ORDER 6!") is a copy to the audit's exact-duplicate check,
    and its leakage check then failed on the split the climb made: the split kept only
    byte-identical copies together. Examples with no such copy keep their split."""
    examples = _examples()
    shouted = [make_example(e.input.upper() + "!", e.output, line=1000 + k)
               for k, e in enumerate(examples[:100])]
    split = split_examples(examples + shouted, seed=3)
    where = {e.id: name for name, part in split.parts().items() for e in part}
    for original, copy in zip(examples[:100], shouted):
        assert where[original.id] == where[copy.id]
    alone = split_examples(examples, seed=3)  # the same file without the copies
    unchanged = {e.id: name for name, part in alone.parts().items() for e in part}
    moved = [i for i, name in unchanged.items() if where[i] != name]
    assert len(moved) < len(examples) // 4  # the copies take room; the rest mostly stays


def test_small_labels_and_many_labels_still_get_val_and_test():
    """The held-out share is fixed for the whole file (rounded half up), not rounded label by
    label (which left twenty labels of four with no val or test at all), and a label of
    four among ninety keeps one example in val and one in test."""
    many = [make_example(f"q {i}", f"L{i % 20}", line=i + 1) for i in range(80)]
    split = split_examples(many, seed=1)
    assert (len(split.train), len(split.val), len(split.test)) == (64, 8, 8)
    rare = [make_example(f"q {i}", "BUG" if i < 90 else "RARE", line=i + 1) for i in range(94)]
    split = split_examples(rare, seed=1)
    assert Counter(e.output for e in split.test) == {"BUG": 8, "RARE": 1}
    assert Counter(e.output for e in split.val) == {"BUG": 8, "RARE": 1}
    ten = [make_example(f"q {i}", "A", line=i + 1) for i in range(10)]
    assert len(split_examples(ten, seed=1, fractions=(0.9, 0.05, 0.05)).test) == 1


def test_one_big_group_stays_in_train_rather_than_swallow_test():
    """One customer with 500 of 600 tickets: dealt first, it used to become a test split of
    over 500; a group goes to test or val only where it brings that split closer to its share."""
    examples = [make_example(f"q {i}", "x", line=i + 1, customer="big" if i < 500 else f"c{i}")
                for i in range(600)]
    for seed in (1, 2, 3):
        split = split_examples(examples, seed=seed, stratify=False, group_key="customer")
        assert len(split.test) == 60 and len(split.val) == 39  # 40 wanted; the last group
        assert {e.extra["customer"] for e in split.train} >= {"big"}  # stays in train
        assert len(split.train) == 501


def test_no_label_is_held_out_whole():
    """A label's last example (or group) stays in train: a label of one or two examples used
    to go wholly to val and test, scored there but never seen in training."""
    labels = ["A"] * 90 + ["B"] * 2 + ["C"] + ["D"] * 7
    examples = [make_example(f"q {i}", label, line=i + 1) for i, label in enumerate(labels)]
    for seed in (0, 1, 2):
        split = split_examples(examples, seed=seed)
        assert {e.output for e in split.train} == {"A", "B", "C", "D"}
