"""The ladder's rungs, cheapest first. Each builds a Pipeline from train and val only."""

from typing import get_args

from rung.rungs.base import Candidate, Rung, RungResult
from rung.rungs.classifier import ClassifierRung
from rung.rungs.few_shot import FewShotRung
from rung.rungs.prompt import PromptRung
from rung.task import RungName

# classifier runs for classification tasks, rag when [task] corpus is set, bigger-model when
# [models] large is, finetune when asked ([finetune] or --rung finetune)
LADDER: tuple[str, ...] = get_args(RungName)

__all__ = ["LADDER", "Candidate", "ClassifierRung", "Rung", "FewShotRung", "PromptRung",
           "RungResult"]
