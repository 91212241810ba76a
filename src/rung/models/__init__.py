"""Models behind one small protocol, found through a registry of aliases."""

from rung.models.base import ChoiceScores, Generation, Model
from rung.models.registry import load_model, resolve

__all__ = ["ChoiceScores", "Generation", "Model", "load_model", "resolve"]
