import random
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
