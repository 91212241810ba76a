"""Contextual calibration (Zhao et al., 2021, "Calibrate Before Use").

A prompt biases a model towards some labels whatever the input: the label named last, the
most frequent one among the demonstrations, a word the model likes. Zhao et al. estimate that
bias by asking the same prompt about inputs with no content ("N/A", "", "[MASK]") and divide
each label's probability by what it got there. Here it is the log-space form of the same:
each label's log-probability (normalised over the labels) minus the log of its mean
probability on the content-free inputs. It is one more candidate, chosen on val like every
other; the uncalibrated pipeline stays a candidate beside it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from rung.models.labels import FLOOR
from rung.pipeline import Pipeline

if TYPE_CHECKING:
    from rung.models.cache import ResponseCache

CONTENT_FREE = ("N/A", "", "[MASK]")


def calibrated(pipeline: Pipeline, cache: "ResponseCache | None" = None) -> Pipeline | None:
    """The same pipeline with its content-free label probabilities measured and stored, so
    what is served divides out exactly what was measured. None where the model gives no
    probabilities to divide (a remote API whose labels are parsed from its words)."""
    if pipeline.kind != "classification" or pipeline.classifier is not None:
        raise ValueError("contextual calibration applies to label scoring by an LLM")
    if pipeline.nearest:
        raise ValueError("similar-example demonstrations change with the input; a content-free "
                         "input has no neighbours worth calibrating against")
    outputs = replace(pipeline, calibration=None).predict(list(CONTENT_FREE), cache=cache)
    if any(not out.label_logprobs or min(out.label_logprobs) <= FLOOR for out in outputs):
        return None
    probabilities = []
    for out in outputs:
        logprobs = np.asarray(out.label_logprobs, dtype=float)
        probabilities.append(np.exp(logprobs - np.logaddexp.reduce(logprobs)))
    mean = np.mean(probabilities, axis=0)
    return replace(pipeline, calibration=[float(x) for x in np.log(mean)],
                   details={**pipeline.details, "calibrated": True})
