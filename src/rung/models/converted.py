"""GGUF models as plain transformers folders, converted once and kept.

transformers reads a GGUF file slowly: it parses the header once for the config, once for the
tokenizer and once for the weights, walks every vocabulary string through numpy memmaps,
rebuilds its tensor-name map once per tensor and dequantises in numpy. Here (2 cores) that is
17 s for SmolLM2-135M and 40 s for Gemma 3 270M, in every process that loads one: each climb,
`rung serve`, the fine-tune's fresh copy of the base. What it ends with is an ordinary fp32
model and a fast tokenizer, so the first load saves both (`save_pretrained`: safetensors and
tokenizer.json) and later loads read that folder in about a second, with the same weights and
the same tokenizer (tests/test_models.py checks both).

The folder is named by the GGUF's weights fingerprint and the transformers version that
converted it, so a new quantisation or a new converter makes a new folder. It lives under
`$RUNG_GGUF_CACHE` (default `~/.cache/rung/gguf`; `off` reads the GGUF every time). It holds
the dequantised weights: about 4 bytes a parameter (0.5 GB for SmolLM2, 1.1 GB for Gemma 3
270M); deleting it costs one slow load. Where the folder cannot be written, the GGUF is read
as before.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import tempfile
from pathlib import Path

from rung.models.registry import ModelRef, weights_fingerprint

DONE = "rung_converted.txt"  # written last: a folder without it was cut off mid-save


def cache_root() -> Path | None:
    """Where converted models are kept; None when switched off."""
    setting = os.environ.get("RUNG_GGUF_CACHE", "")
    if setting.lower() == "off":
        return None
    if setting:
        return Path(setting).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rung" / "gguf"


def converted_folder(ref: ModelRef) -> Path | None:
    """Where this GGUF's conversion is (or would be) kept; None for a model that is not a
    GGUF file, or with the cache switched off."""
    root = cache_root()
    if not ref.gguf_file or root is None:
        return None
    import transformers

    name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(ref.gguf_file).stem)[:60]
    weights = weights_fingerprint(_base(ref))  # an alias and a path to one file: one folder
    return root / f"{name}-{weights}-transformers{transformers.__version__}"


def _base(ref: ModelRef) -> ModelRef:
    """The GGUF alone: an adapter is applied after loading, never converted with it."""
    return ModelRef("gguf", ref.location, ref.gguf_file)


def source_of(ref: ModelRef, *, convert: bool = True) -> tuple[str, dict[str, str]]:
    """What to hand `from_pretrained`: the converted folder where one is complete, converting
    the GGUF now where the cache allows, else (or without `convert`) the GGUF itself."""
    folder = converted_folder(ref) if convert else None
    if folder is not None and ((folder / DONE).is_file() or _convert(ref, folder)):
        return str(folder), {}
    return ref.location, {"gguf_file": ref.gguf_file} if ref.gguf_file else {}


def _convert(ref: ModelRef, folder: Path) -> bool:
    """Load the GGUF once the slow way and save what it gave. Written to a temporary folder
    beside the final one and renamed into place, so a second process converting at the same
    time, or a kill mid-save, never leaves a half folder where a whole one is expected."""
    import torch

    from rung.models.hf import load_causal_lm, load_tokenizer

    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    except OSError:
        return False  # not writable: read the GGUF as before
    try:
        gguf = _base(ref)
        with contextlib.redirect_stderr(io.StringIO()):  # saving draws a bar
            load_tokenizer(gguf, convert=False).save_pretrained(str(staging))
            load_causal_lm(gguf, dtype=torch.float32, convert=False).save_pretrained(
                str(staging))
        (staging / DONE).write_text(f"{Path(ref.location) / (ref.gguf_file or '')}\n")
        try:
            staging.rename(folder)
        except OSError:  # another process put its conversion there first: use that one
            pass
        return (folder / DONE).is_file()
    except OSError:
        return False  # a full disk: the GGUF still loads
    finally:
        shutil.rmtree(staging, ignore_errors=True)
