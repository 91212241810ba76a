"""Rung 0's model: a scikit-learn text classifier, no LLM at all.

The seeds' "different architecture entirely": TF-IDF features (word and character n-grams)
or MiniLM sentence vectors feeding a linear model. It is kept as a folder, like a tune:
`classifier.joblib` (the fitted scikit-learn pipeline) and `classifier.json` (what it is, its
labels, the versions that wrote it, what it takes in memory), written to a temporary folder
and renamed into place, so a folder with a manifest is always a whole classifier. The model
registry fingerprints it like any weights, so cached latencies and stored runs know which
classifier answered.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import joblib
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from rung.errors import ModelError
from rung.models.registry import CLASSIFIER_MANIFEST as MANIFEST

WEIGHTS = "classifier.joblib"
UNSEEN = 1e-12  # the probability of a label that no train example had


class MiniLMEmbedding(TransformerMixin, BaseEstimator):
    """Sentence vectors from the packaged all-MiniLM-L6-v2 as a scikit-learn step. It holds
    no weights, so the fitted pipeline pickles small and loads the packaged model on use."""

    def fit(self, texts: Sequence[str], labels: Any = None) -> "MiniLMEmbedding":
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        from rung.eval.semantic import sentence_vectors

        return sentence_vectors(list(texts))


@dataclass(frozen=True)
class TextClassifier:
    folder: Path
    estimator: Any  # a fitted scikit-learn Pipeline
    manifest: dict[str, Any]

    @property
    def labels(self) -> list[str]:
        return list(self.manifest["labels"])

    def predict(self, texts: Sequence[str]) -> tuple[list[str], np.ndarray | None]:
        """Each text's label, and where the model has probabilities (logistic regression)
        the log-probability of every label in `labels` order, for the per-example loss."""
        texts = list(texts)
        if not texts:
            return [], None
        predicted = [str(p) for p in self.estimator.predict(texts)]
        if not hasattr(self.estimator, "predict_proba"):
            return predicted, None
        proba = self.estimator.predict_proba(texts)
        seen = [str(c) for c in self.estimator.classes_]
        logp = np.log(np.maximum(proba, UNSEEN))
        # a label no train example had is never the answer; its probability is floored at
        # 1e-12, not 0, so a loss stays a number JSON can carry
        full = np.full((len(texts), len(self.labels)), np.log(UNSEEN))
        for i, label in enumerate(self.labels):
            if label in seen:
                full[:, i] = logp[:, seen.index(label)]
        return predicted, full


def is_classifier_folder(path: Path) -> bool:
    return (path / MANIFEST).is_file()


def save_classifier(estimator: Any, folder: Path, manifest: dict[str, Any]) -> Path:
    """Write the fitted pipeline and its manifest into `folder` at once (temp + rename).

    The manifest records the memory the loaded classifier takes: measured with tracemalloc
    while loading it back, plus the MiniLM weights its features need, if any."""
    import sklearn

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        joblib.dump(estimator, tmp / WEIGHTS, compress=3)
        record = {**manifest, "sklearn": sklearn.__version__,
                  "memory_bytes": _loaded_bytes(tmp / WEIGHTS)
                  + (_embedding_bytes() if manifest.get("features") == "minilm" else 0)}
        (tmp / MANIFEST).write_text(json.dumps(record, indent=1, sort_keys=True))
        if folder.exists() and not (folder / MANIFEST).is_file():  # not a finished copy
            shutil.rmtree(folder, ignore_errors=True)
        try:
            tmp.rename(folder)
        except OSError:
            # another climb of this task saved the same classifier first (its key names the
            # candidate, seed, labels and train ids, so the fit is the same): keep theirs
            if not (folder / MANIFEST).is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _loaded_bytes(path: Path) -> int:
    tracemalloc.start()
    try:
        loaded = joblib.load(path)
        size = tracemalloc.get_traced_memory()[0]
        del loaded
    finally:
        tracemalloc.stop()
    return int(size)


def _embedding_bytes() -> int:
    from rung.eval.semantic import embedding_model_folder

    return sum(p.stat().st_size for p in embedding_model_folder().glob("*.safetensors"))


_LOADED: dict[tuple[str, int], TextClassifier] = {}


def load_classifier(folder: str | Path) -> TextClassifier:
    """Loaded once per process and version of the file."""
    path = Path(folder)
    if not is_classifier_folder(path):
        raise ModelError(f"{path} is not a saved classifier (no {MANIFEST})",
                         fix="re-run `rung climb` to train it again, or point at another run")
    stamp = (str(path.resolve()), (path / WEIGHTS).stat().st_mtime_ns)
    if stamp not in _LOADED:
        manifest = json.loads((path / MANIFEST).read_text())
        _LOADED[stamp] = TextClassifier(path, joblib.load(path / WEIGHTS), manifest)
    return _LOADED[stamp]


def serving_bytes(folder: str | Path) -> int | None:
    """What the saved classifier takes in memory, as its manifest measured it."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    return json.loads(path.read_text()).get("memory_bytes")
