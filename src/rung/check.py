"""`rung check`: the seeds' "validate before you deploy", on production inputs.

The run's shipped pipeline answers the inputs. With expected outputs, the score (with its
bootstrap interval) is compared with the run's test score by Fisher's exact test on the share
answered correctly. Always, the inputs are compared with what the pipeline was built on:

* distance: each input's cosine similarity to its nearest train input (MiniLM). The threshold
  is the 5th percentile of the test inputs' own nearest-train similarity, so about 5% of
  inputs like the test split fall below it; a one-sided binomial test says whether more do.
* labels (classification): the predicted labels against the test split's predicted labels,
  chi-square test of the two count rows.
* length: input lengths in words against the train inputs', Mann-Whitney U test.
* PII: kinds of personal data found in the inputs that the train inputs never had.

A finding is significant at p < `alpha` (0.01 by default: several tests run at once). The
audit's review sample of the inputs is written for a person to read.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rung.data.example import Example, make_example
from rung.errors import DataError

INPUT_KEYS = ("input", "prompt", "text", "question")


def read_inputs(path: Path) -> tuple[list[Example], bool]:
    """Examples from any supported format (outputs known), or inputs alone: a .txt file (one
    per line) or JSON lines with an input/prompt/text/question key; JSON lines with a CSV
    pair's keys (input/output, prompt/completion, text/label) carry their outputs. Returns (examples, whether
    they carry expected outputs). A line that cannot be read is an error naming that line; a
    file with no inputs at all is one too."""
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
        return _some(read_examples(path), path), True
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


def check(task_path: str | Path, inputs: str | Path, *, run_id: str | None = None,
          rung: str | None = None, alpha: float = 0.01) -> dict[str, Any]:
    from scipy import stats

    from rung.climb import load_examples, make_split
    from rung.data.audit.pii import find_pii
    from rung.data.audit.review import read_verdicts, review_sample
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
    examples, labelled = read_inputs(path)
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
        right = sum(p.correct for p in result.predictions)
        test_right = sum(bool(p["correct"]) for p in tested)
        _, p_value = stats.fisher_exact([[right, len(examples) - right],
                                         [test_right, len(tested) - test_right]])
        s = result.score
        worse = right / len(examples) < test_right / max(len(tested), 1)
        score = {"metric": s.metric, "score": round(s.value, 4),
                 "ci": [round(s.ci[0], 4), round(s.ci[1], 4)], "n": s.n,
                 "test_score": summary["score"], "test_ci": summary["ci"],
                 "p_value": float(p_value), "test": "Fisher's exact test, share correct",
                 "significantly_worse": bool(worse and p_value < alpha)}

    train_texts = [e.input for e in run_train]
    train_vectors = sentence_vectors(train_texts)

    def nearest(texts: list[str]) -> np.ndarray:
        return (sentence_vectors(texts) @ train_vectors.T).max(axis=1)

    threshold = float(np.percentile(nearest([e.input for e in run_test]), 5))
    similarity = nearest([e.input for e in examples])
    far = int((similarity < threshold).sum())
    p_far = stats.binomtest(far, len(examples), 0.05, alternative="greater").pvalue
    findings.append(Finding("distance", bool(p_far < alpha), float(p_far), {
        "far": far, "share_far": round(far / len(examples), 4), "expected_share": 0.05,
        "threshold": round(threshold, 4),
        "median_similarity": round(float(np.median(similarity)), 4)}))

    if task.task.kind == "classification":
        labels = list(task.task.labels)
        now = Counter(o for o in outputs if o in labels)
        before = Counter(p["output"] for p in tested if p["output"] in labels)
        used = [label for label in labels if now[label] + before[label] > 0]
        if len(used) > 1:
            table = [[now[label] for label in used], [before[label] for label in used]]
            p_labels = float(stats.chi2_contingency(table).pvalue)
        else:
            p_labels = 1.0
        findings.append(Finding("labels", bool(p_labels < alpha), p_labels, {
            "inputs": {k: now[k] for k in labels}, "test": {k: before[k] for k in labels}}))

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
