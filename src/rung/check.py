"""`rung check`: the seeds' "validate before you deploy", on production inputs.

The run's shipped pipeline answers the inputs. With expected outputs, the score (with its
bootstrap interval) is compared with the run's test answers: a 0/1 metric by Fisher's exact
test on the share answered correctly, a graded one (ROUGE-L, BLEU, chrF, a custom score) by a
one-sided Mann-Whitney U test on the per-example values. Always, the inputs are compared with
what the pipeline was built on:

* distance: each input's cosine similarity to its nearest train input (MiniLM). The threshold
  is the k-th smallest of the m test inputs' own nearest-train similarities (k about 5% of
  m + 1), so about 5% of inputs like the test split fall below it; the count that does is
  tested against the beta-binomial that an estimated threshold gives (exact under no drift).
* labels (classification): the predicted labels against the test split's predicted labels,
  chi-square test of the two count rows; no answer a label at all is drift in itself.
* length: input lengths in words against the train inputs', Mann-Whitney U test.
* PII: kinds of personal data found in the inputs that the train inputs never had.

A finding is significant at p < `alpha` (0.01 by default: several tests run at once). The
audit's review sample of the inputs is written for a person to read.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rung.data.example import Example, make_example, with_shared_system
from rung.errors import DataError

INPUT_KEYS = ("input", "prompt", "text", "question")


def read_inputs(path: Path, shared_system: str | None = None) -> tuple[list[Example], bool]:
    """Examples from any supported format (outputs known), or inputs alone: a .txt file (one
    per line) or JSON lines with an input/prompt/text/question key; JSON lines with a CSV
    pair's keys (input/output, prompt/completion, text/label) carry their outputs. Returns (examples, whether
    they carry expected outputs). A line that cannot be read is an error naming that line; a
    file with no inputs at all is one too. A conversation's system prompt is left out of its
    input where it is the run's `shared_system`, as rung serve reads a request."""
    from rung.data.formats import read_examples
    from rung.data.records import CSV_PAIRS, error, json_kind, json_records, lines

    if path.suffix.lower() == ".txt":
        found = []
        for number, text in lines(path):
            if isinstance(text, DataError):
                raise text
            if text.strip():
                found.append(make_example(text.strip("\r\n"), "", line=number))
        return _some(found, path), False
    try:
        return _some(with_shared_system(read_examples(path), shared_system), path), True
    except DataError as first:
        found, labelled = [], None
        for number, record in json_records(path):
            if isinstance(record, DataError):  # not JSON lines at all: the reader's word
                raise (record if found else first) from None
            # an input with its expected output under a CSV pair's keys: labelled, or the
            # output would be dropped unsaid and no score computed
            pair = next(((i, o) for i, o in CSV_PAIRS if isinstance(record.get(i), str)
                         and o in record), None)
            key = pair[0] if pair else next(
                (k for k in INPUT_KEYS if isinstance(record.get(k), str)), None)
            if key is None:
                if found:  # inputs alone so far: this line is the one that breaks them
                    raise error(path, number, f"no input: the record has none of the keys "
                                f"{', '.join(INPUT_KEYS)}", "give every line the same key as the "
                                "lines before it") from None
                raise first from None
            if labelled is not None and labelled != bool(pair):
                raise error(path, number, "this line " + (
                    f"has an expected output ('{pair[1]}') and the lines before it have none"
                    if pair else "has no expected output and the lines before it have one"),
                    "give every line an expected output, or none") from None
            labelled = bool(pair)
            if pair and not isinstance(record[pair[1]], str):
                raise error(path, number, f"'{pair[1]}' must be a string, got "
                            f"{json_kind(record[pair[1]])}", "write the expected output as the "
                            f"label's text, or leave '{pair[1]}' out to check the inputs "
                            "alone") from None
            found.append(make_example(record[key], record[pair[1]] if pair else "",
                                      line=number))
        return _some(found, path), bool(labelled)


def _some(examples: list[Example], path: Path) -> list[Example]:
    if not examples:
        raise DataError("no inputs in the file", file=path,
                        fix="one input per line (.txt), or JSON lines with an \"input\" key")
    return examples


@dataclass(frozen=True)
class Finding:
    name: str
    significant: bool
    p_value: float | None
    detail: dict[str, Any]


NEAR_COPY = 0.98  # MiniLM cosine to a train input from which an input counts as a near-copy


SHARE_FAR = 0.05  # about this share of inputs like the test split's falls below the threshold


def distance_drift(test_similarity: Any, similarity: Any) -> dict[str, Any]:
    """The distance finding: how many inputs are farther from train than all but about 5%
    of the test inputs are, and whether that is more than inputs like the test split's give.

    The threshold is the k-th smallest of the m test inputs' similarities, k = the largest
    whole number not above 5% of m + 1 (at least 1). It is estimated from m points, so the
    share of inputs like the test split's below it is not 5% but varies as a Beta(k,
    m + 1 - k) draw; the count below it among n such inputs is then beta-binomial (exact for
    any continuous similarity). The p-value is that null's chance of as many far inputs or
    more; a binomial at exactly 5% took the threshold for known and fired on a third of
    inputs that had not drifted at all."""
    from scipy import stats

    test = np.sort(np.asarray(test_similarity, dtype=float))
    similarity = np.asarray(similarity, dtype=float)
    m, n = len(test), len(similarity)
    k = max(1, int(SHARE_FAR * (m + 1)))
    threshold = float(test[k - 1])
    far = int((similarity < threshold).sum())
    p_value = float(stats.betabinom.sf(far - 1, n, k, m + 1 - k)) if far else 1.0
    return {"far": far, "share_far": round(far / n, 4), "expected_share": round(k / (m + 1), 4),
            "threshold": round(threshold, 4), "test_inputs": m,
            "median_similarity": round(float(np.median(similarity)), 4),
            "test": f"beta-binomial: the threshold is the {k}th smallest of {m} test "
                    "similarities", "p_value": min(1.0, p_value), "similarity": similarity}


def label_drift(now: list[int], before: list[int],
                alpha: float) -> tuple[float | None, str | None, bool]:
    """The chi-square test of the labels the pipeline gave the inputs (`now`, a count per
    label) against those it gave the test split: (p, a note where no test can be made,
    whether the labels drifted). No answer to the inputs a label is drift, though no test can
    say by how much; no test answer a label leaves nothing to compare with."""
    from scipy import stats

    if not sum(now):
        return None, "no answer is a label", True
    if not sum(before):
        return None, "no answer on the test split was a label: nothing to compare with", False
    used = [i for i in range(len(now)) if now[i] + before[i] > 0]
    if len(used) < 2:
        return 1.0, None, False
    p_value = float(stats.chi2_contingency([[now[i] for i in used],
                                            [before[i] for i in used]]).pvalue)
    return p_value, None, p_value < alpha


def score_shift(spec: Any, expected: list[str], outputs: list[str], test_expected: list[str],
                test_outputs: list[str], labels: Sequence[str] = (), *,
                seed: int = 0) -> dict[str, Any]:
    """The inputs' score against the run's stored test answers, one-sided (worse?). A
    corpus-level metric (macro-F1) by a permutation test of that metric (corpus_shift): the
    share right could hold while a minority label collapsed; a 0/1 metric by Fisher's exact
    test on the share right; a graded one (ROUGE-L, BLEU, chrF, a custom score), whose
    right/wrong is exact match and would hide any drop, by the Mann-Whitney U test on the
    per-example values (the inputs are not the test examples: unpaired)."""
    from scipy import stats

    from rung.eval.metrics import corpus_shift, per_example_values

    if spec.corpus_level:
        p_value, score, before = corpus_shift(spec, labels, expected, outputs, test_expected,
                                              test_outputs, seed=seed)
        return {"p_value": p_value, "test": f"permutation test (one-sided) of {spec.name}",
                "worse": score < before}
    new = per_example_values(spec, expected, outputs)
    old = per_example_values(spec, test_expected, test_outputs)
    if spec.binary:
        right, test_right = int((new >= 1.0).sum()), int((old >= 1.0).sum())
        _, p_value = stats.fisher_exact([[right, len(new) - right],
                                         [test_right, len(old) - test_right]])
        return {"p_value": float(p_value), "test": "Fisher's exact test, share correct",
                "worse": right / len(new) < test_right / max(len(old), 1)}
    if len(old) == 0 or len(set(new) | set(old)) < 2:  # nothing stored, or every value equal
        p_value = 1.0
    else:
        p_value = float(stats.mannwhitneyu(new, old, alternative="less").pvalue)
    return {"p_value": p_value, "test": f"Mann-Whitney U test (one-sided) on per-example "
            f"{spec.name}", "mean": round(float(new.mean()), 4),
            "test_mean": round(float(old.mean()), 4) if len(old) else None,
            "worse": bool(len(old)) and float(new.mean()) < float(old.mean())}


def check(task_path: str | Path, inputs: str | Path, *, run_id: str | None = None,
          rung: str | None = None, alpha: float = 0.01) -> dict[str, Any]:
    from scipy import stats

    from rung.climb import load_examples, make_split
    from rung.data.audit.pii_find import find_pii
    from rung.data.audit.review import read_verdicts, review_sample
    from rung.eval.metrics import metric_spec
    from rung.eval.runner import evaluate
    from rung.eval.semantic import sentence_vectors
    from rung.probes import probe
    from rung.probes import summary as probe_summary
    from rung.serve import served_from
    from rung.store import Store, file_hash
    from rung.task import load_task

    task = load_task(task_path)
    served = served_from(task, run_id, rung)
    path = Path(inputs)
    examples, labelled = read_inputs(path, served.pipeline.shared_system)
    if labelled and task.task.kind == "classification":  # as the climb refuses them
        known = set(task.task.labels)
        for ex in examples:
            if ex.output.strip() not in known:
                raise DataError(f"label '{ex.output}' is not one of the task's labels "
                                f"{task.task.labels}", file=path, line=ex.line,
                                fix="correct the label, or leave outputs out to check the "
                                    "inputs alone")
    everything = load_examples(task)
    pipeline = served.pipeline
    store = Store(task.store_dir)
    try:
        # the run's own train and test, as it saved them: today's data or [split] may differ
        saved = store.artifacts(served.run_id) / "split.json"
        ids = json.loads(saved.read_text())["ids"] if saved.is_file() else {}
        train_ids, test_ids = set(ids.get("train", [])), set(ids.get("test", []))
        run_train = [e for e in everything if e.id in train_ids]
        run_test = [e for e in everything if e.id in test_ids]
        if not run_train or not run_test:  # none saved, or the data changed past recognition
            split = make_split(task, everything)
            run_train, run_test = split.train, split.test
        cache = store.response_cache()
        row = next(r for r in store.rung_rows(served.run_id) if r["rung"] == served.rung)
        tested = list(store.predictions(served.run_id, served.rung))
        if labelled:
            result = evaluate(pipeline, examples, metric=task.task.metric, cache=cache,
                              n_resamples=task.eval.bootstrap, seed=task.task.seed)
            outputs = [p.output for p in result.predictions]
        else:
            outputs = [o.text for o in pipeline.predict([e.input for e in examples],
                                                        cache=cache)]
        # the seeds' edge cases: empty, adversarial, out of distribution
        probed = probe_summary(probe(pipeline, schema=task.json_schema, cache=cache))
    finally:
        store.close()
    findings: list[Finding] = []

    score = None
    if labelled:
        summary = json.loads(row["summary_json"])
        s = result.score
        spec = metric_spec(task.task.metric, task.json_schema)
        shift = score_shift(spec, [e.output for e in examples], outputs,
                            [p["expected"] for p in tested], [p["output"] for p in tested],
                            task.task.labels, seed=task.task.seed)
        score = {"metric": s.metric, "score": round(s.value, 4),
                 "ci": [round(s.ci[0], 4), round(s.ci[1], 4)], "n": s.n,
                 "test_score": summary["score"], "test_ci": summary["ci"], **shift,
                 "significantly_worse": bool(shift["worse"] and shift["p_value"] < alpha)}
        del score["worse"]

    train_texts = [e.input for e in run_train]
    train_vectors = sentence_vectors(train_texts)

    def nearest(texts: list[str]) -> np.ndarray:
        return (sentence_vectors(texts) @ train_vectors.T).max(axis=1)

    distance = distance_drift(nearest([e.input for e in run_test]),
                              nearest([e.input for e in examples]))
    similarity = distance.pop("similarity")
    p_far = distance.pop("p_value")
    findings.append(Finding("distance", bool(p_far < alpha), p_far, distance))

    if task.task.kind == "classification":
        labels = list(task.task.labels)
        now = Counter(o for o in outputs if o in labels)
        before = Counter(p["output"] for p in tested if p["output"] in labels)
        p_labels, note, drifted = label_drift([now[label] for label in labels],
                                              [before[label] for label in labels], alpha)
        findings.append(Finding("labels", drifted, p_labels, {
            "inputs": {k: now[k] for k in labels}, "test": {k: before[k] for k in labels},
            **({"note": note} if note else {})}))

    # The seeds: validate on inputs you did not train on. A production input that is a train
    # example (or all but) is what the tune, classifier or demonstrations were built from,
    # and a score on it flatters the pipeline. Train is the run's own, as it saved it.
    trained = {" ".join(t.lower().split()) for t in train_texts}
    copies = [e.line for e in examples if " ".join(e.input.lower().split()) in trained]
    exact = set(copies)
    near = [e.line for e, sim in zip(examples, similarity)
            if sim >= NEAR_COPY and e.line not in exact]
    in_train = {"copies": len(copies), "near_copies": len(near),
                "share": round((len(copies) + len(near)) / len(examples), 4),
                "lines": sorted(copies + near)[:50], "near_copy_similarity": NEAR_COPY}

    lengths = [len(e.input.split()) for e in examples]
    train_lengths = [len(t.split()) for t in train_texts]
    p_length = float(stats.mannwhitneyu(lengths, train_lengths).pvalue)
    findings.append(Finding("length", bool(p_length < alpha), p_length, {
        "median_words": float(np.median(lengths)),
        "train_median_words": float(np.median(train_lengths))}))

    seen = {kind for t in train_texts for kind, _, _ in find_pii(t)}
    kinds = Counter(kind for e in examples for kind, _, _ in find_pii(e.input))
    new = {k: n for k, n in kinds.items() if k not in seen}
    findings.append(Finding("pii", bool(new), None, {"new_kinds": new, "all": dict(kinds)}))

    # one folder per run and inputs file (by content: prod.txt and prod.jsonl do not share
    # one); checked again, the verdicts a reviewer wrote into its review.csv are kept
    checks = task.store_dir / "checks"
    folder = checks / f"{served.run_id}-{path.stem}-{file_hash(path)[:8]}"
    answered = [make_example(e.input, o, line=e.line) for e, o in zip(examples, outputs)]
    # the sheet of this folder, then one from before folders were named by content (its
    # verdicts count only where the line's answer is the same, as read_verdicts checks)
    earlier = [sheet for sheet in (folder / "review.csv",
                                   checks / f"{served.run_id}-{path.stem}" / "review.csv")
               if sheet.is_file()]
    review = review_sample(answered, folder, seed=task.task.seed, source=str(path),
                           verdicts=read_verdicts(earlier, answered))
    drift = [f.name for f in findings if f.significant]
    return {
        "run": served.run_id, "rung": served.rung, "inputs": str(path), "n": len(examples),
        "score": score, "alpha": alpha,
        "drift": {f.name: {"significant": f.significant, "p_value": f.p_value, **f.detail}
                  for f in findings},
        "significant": drift + (["score"] if score and score["significantly_worse"] else [])
        + (["probes"] if probed["failed"] else []),
        "probes": probed,
        "review_sample": str(folder / "review.html") if review.status != "skip" else None,
        "in_train": in_train,
    }
