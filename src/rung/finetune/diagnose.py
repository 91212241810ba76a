"""Read training curves for the seeds' overfitting signals and name the seeds' fix for each.

| signal | what it looks like | fix |
| train loss drops, val loss rises | the classic overfit curve | reduce epochs, add data |
| val loss flat, train loss dropping | memorisation starting | early stopping |
| perfect train accuracy | the model memorised the data | more data, regularisation |

(The fourth, worse than the base model on general tasks, needs the regression suite, not
curves.) "Rises" is judged from the best val loss onwards, "flat" from the first evaluation
within FLAT of the best (improvements smaller than that are flat too), each with a
tolerance, so noise on a few evaluation points does not raise an alarm. Early stopping
(schedule.py) counts an evaluation as an improvement by the same FLAT.

The gradient norms the seeds ask to monitor ("explosions or vanishing") are read too: a
non-finite norm or one many times the run's median so far is an explosion; norms that
collapse towards zero while the train loss stays where it was mean nothing is learning.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Signal:
    name: str
    evidence: str
    fix: str


RISE = 0.05  # val loss this far (relative) above its best counts as rising
FLAT = 0.01  # val loss moving less than this (relative) counts as flat
TRAIN_DROP = 0.10  # train loss must fall at least this much (relative) to count as dropping
SPIKE = 10.0  # a gradient norm this many times the median of those before it: an explosion
SPIKE_AFTER = 5  # logged norms needed before a spike can be judged
VANISH = 1e-3  # the last tenth's mean norm below this share of the first tenth's: vanishing


def diagnose(train_loss: Sequence[float], val_loss: Sequence[float],
             train_accuracy: Sequence[float] = (),
             grad_norm: Sequence[float] = (), stopped_early: bool = False) -> list[Signal]:
    """`train_loss` (and `train_accuracy`, `grad_norm`) in logging order, `val_loss` one
    value per evaluation. `stopped_early`: early stopping ended the run, the best checkpoint
    kept, so a flat val loss at the end is the fix at work, not a sign to act on."""
    signals: list[Signal] = []
    if len(val_loss) >= 2 and len(train_loss) >= 2:
        best_at = min(range(len(val_loss)), key=lambda i: val_loss[i])
        best, last = val_loss[best_at], val_loss[-1]
        half = len(train_loss) // 2
        early = sum(train_loss[:half]) / max(half, 1)
        late = sum(train_loss[half:]) / max(len(train_loss) - half, 1)
        train_falls = late < early * (1 - TRAIN_DROP)
        if train_falls and best_at < len(val_loss) - 1 and last > best * (1 + RISE):
            signals.append(Signal(
                "overfitting", f"train loss fell {early:.3f} -> {late:.3f} while val loss rose "
                f"from its best {best:.3f} (evaluation {best_at + 1}) to {last:.3f}",
                "reduce epochs, add data"))
        elif not stopped_early and \
                (flat := _flat_since_best(train_loss, val_loss, best_at)) is not None:
            signals.append(Signal("memorisation", flat, "early stopping"))
    # Token accuracy is logged per batch: one small batch can be perfect by luck, so the
    # signal reads the mean of the last tenth of the points.
    window = train_accuracy[-max(1, len(train_accuracy) // 10):]
    if window and sum(window) / len(window) >= 0.999:
        signals.append(Signal("perfect-train-accuracy",
                              f"train token accuracy averaged {sum(window) / len(window):.3f} "
                              f"over the last {len(window)} logged batches",
                              "more data, regularisation"))
    signals += _gradient_signals(train_loss, grad_norm)
    return signals


def _flat_since_best(train_loss: Sequence[float], val_loss: Sequence[float],
                     best_at: int) -> str | None:
    """Val loss that stopped improving while train loss kept falling: the seeds'
    memorisation. Stopped improving means every evaluation from the first within FLAT of the
    best on stays near the best: improvements under FLAT are flat too, so val loss creeping
    down by hairs, each a new best, is judged from where it reached that level, not from
    its last hair. Train points are matched to evaluations by position, evaluations being
    spread over the run."""
    best = val_loss[best_at]
    start = next(i for i, v in enumerate(val_loss) if v <= best * (1 + FLAT))
    since = val_loss[start:]
    # one evaluation after the plateau's start must stay within FLAT of the best; two or
    # more, below RISE (drifting up a little, not yet the overfitting curve)
    tolerance = FLAT if len(since) == 2 else RISE
    if len(since) < 2 or any(v > best * (1 + tolerance) for v in since):
        return None
    cut = round(len(train_loss) * (start + 1) / len(val_loss))
    before, after = train_loss[:cut], train_loss[cut:]
    if not before or len(after) < 2:
        return None
    width = max(1, len(after) // 2)
    at_start = sum(before[-width:]) / len(before[-width:])
    late = sum(after[-width:]) / width
    if late >= at_start * (1 - TRAIN_DROP):
        return None
    return (f"val loss stayed within {tolerance:.0%} of its best {best:.3f} (evaluation "
            f"{best_at + 1}) for the {len(since) - 1} evaluation(s) after evaluation "
            f"{start + 1}, while train loss fell {at_start:.3f} -> {late:.3f}")


def _gradient_signals(train_loss: Sequence[float], norms: Sequence[float]) -> list[Signal]:
    for i, norm in enumerate(norms):
        median = statistics.median(norms[:i]) if i else None
        if not math.isfinite(norm) or (i >= SPIKE_AFTER and median and norm > SPIKE * median):
            seen = f"{norm:.3g}" + (f", {norm / median:.0f}x the median {median:.3g} of the "
                                    f"{i} before it" if math.isfinite(norm) and median else "")
            return [Signal("exploding-gradients", f"gradient norm {seen} at logged point {i + 1}",
                           "lower the learning rate, lengthen the warmup, keep gradient "
                           "clipping on; look for broken or extreme examples")]
    tenth = max(1, len(norms) // 10)
    if len(norms) >= 10 and len(train_loss) >= 2:
        first, last = sum(norms[:tenth]) / tenth, sum(norms[-tenth:]) / tenth
        half = len(train_loss) // 2
        early = sum(train_loss[:half]) / max(half, 1)
        late = sum(train_loss[half:]) / max(len(train_loss) - half, 1)
        if first > 0 and last < VANISH * first and late > early * (1 - TRAIN_DROP):
            return [Signal("vanishing-gradients",
                           f"gradient norm fell {first:.3g} -> {last:.3g} while train loss "
                           f"stayed {early:.3f} -> {late:.3f}",
                           "raise the learning rate, check the trainable modules and that the "
                           "loss covers the answer tokens")]
    return []
