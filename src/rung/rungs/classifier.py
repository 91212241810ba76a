"""Rung 0 (classification): a plain classifier, the cheapest honest alternative to an LLM.

The seeds' "a different architecture entirely": before anyone pays for prompts or training,
measure what the standard strong baselines do on the same split. TF-IDF over word 1-2 grams
and character 2-5 grams, or MiniLM sentence vectors (the packaged model), feed logistic
regression or a linear SVM, all from scikit-learn; every combination of [classifier]
features, models and C is a candidate, chosen on val like every other rung. They train in
seconds, answer in well under a millisecond (TF-IDF) and need no GPU.

Each fitted candidate is saved in `.rung/classifiers/KEY/`, KEY a hash of what shaped it
(the candidate, the seed, the labels, the train examples, scikit-learn's version), so a rerun
loads it instead of training, and a run's pipeline points at exactly the model it measured.
"""

from __future__ import annotations

import hashlib
import json
from itertools import product
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from rung.data.example import Example
from rung.models.classifier import MiniLMEmbedding, is_classifier_folder, save_classifier
from rung.pipeline import Pipeline
from rung.rungs.base import Rung
from rung.task import TaskSpec

if TYPE_CHECKING:
    from rung.models.cache import ResponseCache
    from rung.store import Store


def make_estimator(features: str, model: str, C: float, seed: int,
                   class_weight: str | None = None) -> Any:
    """The scikit-learn pipeline for one candidate, unfitted."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, make_pipeline
    from sklearn.svm import LinearSVC

    if features == "tfidf":
        featurizer: Any = FeatureUnion([
            ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True,
                                      min_df=2)),
        ])
    else:
        featurizer = MiniLMEmbedding()
    if model == "logistic-regression":
        estimator: Any = LogisticRegression(C=C, max_iter=5000, class_weight=class_weight)
    else:
        estimator = LinearSVC(C=C, max_iter=20000, random_state=seed, class_weight=class_weight)
    return make_pipeline(featurizer, estimator)


def candidate_label(spec: dict[str, Any]) -> str:
    """"tfidf + linear-svm, C=1" (", balanced" when the classes are weighted)."""
    weighted = ", balanced" if spec.get("class_weight") == "balanced" else ""
    return f"{spec['features']} + {spec['estimator']}, C={spec['C']:g}{weighted}"


def classifier_key(spec: dict[str, Any], seed: int, labels: Sequence[str],
                   train: Sequence[Example]) -> str:
    import sklearn

    payload = json.dumps({"spec": spec, "seed": seed, "labels": list(labels),
                          "sklearn": sklearn.__version__, "train": [e.id for e in train]},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def fitted(task: TaskSpec, spec: dict[str, Any], train: Sequence[Example], folder: Path) -> Path:
    """The candidate's folder under `folder`, trained and saved unless it already is."""
    out = folder / classifier_key(spec, task.task.seed, task.task.labels, train)
    if is_classifier_folder(out):
        return out
    estimator = make_estimator(spec["features"], spec["estimator"], spec["C"], task.task.seed,
                               spec.get("class_weight"))
    estimator.fit([e.input for e in train], [e.output for e in train])
    return save_classifier(estimator, out, {**spec, "labels": list(task.task.labels),
                                            "train_examples": len(train),
                                            "seed": task.task.seed})


class ClassifierRung(Rung):
    name = "classifier"
    raced = False  # fitting and predicting cost milliseconds: every candidate sees all of val

    def __init__(self, folder: Path) -> None:
        self.folder = folder  # .rung/classifiers

    def candidates(self, task: TaskSpec, train: Sequence[Example],
                   cache: "ResponseCache | None" = None) -> list[tuple[str, Pipeline]]:
        settings = task.classifier
        out = []
        # the weighted candidates come last, so a tie on val goes to the plain one: weighing
        # the classes must earn its place
        for weight, features, model, C in product(
                sorted(set(settings.class_weight), key=("none", "balanced").index),
                settings.features, settings.models, sorted(set(settings.C))):
            # unweighted, the spec (and so the saved model's key) is as it always was
            spec = {"features": features, "estimator": model, "C": C,
                    **({"class_weight": weight} if weight != "none" else {})}
            saved = fitted(task, spec, train, self.folder)
            out.append((candidate_label(spec), Pipeline(
                rung=self.name, kind=task.task.kind, model=str(saved.resolve()),
                instruction="", labels=list(task.task.labels), base_dir=str(task.root),
                details=dict(spec), classifier=spec)))
        return out


def export_classifier(store: "Store", run_id: str, out: Path) -> dict[str, Any]:
    """Copy the run's classifier to `out` with its provenance: the run, the hashes of its
    config, data and split, and the test score it was measured at. Load it with
    `joblib.load(out / "classifier.joblib")` (a MiniLM one needs rung installed)."""
    from rung.errors import ConfigError
    from rung.files import atomic_folder, copy_tree

    run, row = store.measured(run_id, "classifier", "classifier rung")
    from rung.pipeline import rerooted

    folder = Path(rerooted(json.loads(row["pipeline_json"])["model"], store.root.parent,
                           Path(run["task_path"]).parent))
    if not is_classifier_folder(folder):
        raise ConfigError(f"the classifier of run {run_id} is gone from {folder}",
                          fix="climb the task again: the classifier is retrained in seconds")
    summary = json.loads(row["summary_json"])
    provenance = {"run": run_id, "rung": "classifier", "config_hash": run["config_hash"],
                  "data_hash": run["data_hash"], "split_hash": run["split_hash"],
                  "classifier": summary["chosen"], "metric": summary["metric"],
                  "test_score": summary["score"], "test_ci": summary["ci"], "n": summary["n"]}
    with atomic_folder(out) as target:  # all of it or nothing, and never over a user's files
        copy_tree(folder, target)
        (target / "rung_export.json").write_text(json.dumps(provenance, indent=1))
    return provenance
