"""rung: climb the adaptation ladder on your own data before you fine-tune."""

__version__ = "0.1.0"
