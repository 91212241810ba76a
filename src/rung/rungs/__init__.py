"""The ladder's rungs, cheapest first. Each builds a Pipeline from train and val only."""

from rung.rungs.base import Candidate, Rung, RungResult
from rung.rungs.few_shot import FewShotRung
from rung.rungs.prompt import PromptRung

# rag runs when [task] corpus is set, bigger-model when [models] large is, finetune when asked
# ([finetune] or --rung finetune)
LADDER = ("prompt", "few-shot", "rag", "bigger-model", "finetune")

__all__ = ["LADDER", "Candidate", "Rung", "FewShotRung", "PromptRung", "RungResult"]
