"""rung: climb the adaptation ladder on your own data before you fine-tune."""

import os

__version__ = "0.1.0"

# Nothing reaches a model hub by accident: libraries underneath (transformers,
# sentence-transformers) that would look a name up online fail fast instead. An `hf:` model
# downloads only when RUNG_ALLOW_DOWNLOADS=1 (models/registry.py).
if os.environ.get("RUNG_ALLOW_DOWNLOADS", "") in ("", "0"):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
