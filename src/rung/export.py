"""`rung export RUN --format hf|vllm`: a tuned pipeline as a folder another server loads.

The prompt is part of what was measured, so it travels with the weights: the folder's chat
template wraps the base model's own template so that a conversation holding only the user's
input is rendered exactly as rung rendered it (the pipeline's system instruction and fixed
demonstrations first, the input inside the prompt variant's wording). A server that applies
the folder's template (vLLM, TGI, transformers' `apply_chat_template`) then asks the tuned
model what rung measured. Pipelines whose prompt changes with the input (similar-example
demonstrations, retrieved passages) cannot be written as a fixed template: serve those with
`rung serve`.

* `hf`: LoRA merged into the base weights: one plain transformers model (a full tune is one
  already).
* `vllm`: the adapter beside a record of its base, for vLLM's LoRA serving (a full tune: its
  own weights, served alone, with --dtype naming the half precision it trained in on a
  GPU); the manifest holds the command line that starts it. Prefix and prompt tuning are
  refused: vLLM serves no soft prompts.

A LoRA or soft-prompt tune whose base model changed since it was trained is refused unless
forced (rung.finetune.artifacts.checked_base); the manifest names the base it was exported on.

Both carry `rung_manifest.json`: base model, adapter, method, the [finetune] config, the
config, data and split hashes, the test score with its interval, and the template's origin.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rung.data.example import SPEAKERS
from rung.errors import ConfigError
from rung.models.registry import ADAPTER_BASE
from rung.pipeline import Pipeline

SENTINEL = "\x00RUNG_INPUT\x00"
MANIFEST = "rung_manifest.json"
TEMPLATE = "chat_template.jinja"


def rung_chat_template(pipeline: Pipeline, base_template: str) -> str:
    """The base template, fed the pipeline's fixed turns and its wording of the input."""
    if pipeline.nearest or pipeline.retrieval is not None:
        raise ConfigError("this pipeline's prompt changes with each input (similar-example "
                          "demonstrations or retrieved passages): no fixed chat template "
                          "can carry it", fix="serve it with rung serve RUN")
    turns = pipeline.messages(SENTINEL)
    wording = turns[-1].content
    if wording.count(SENTINEL) != 1:
        raise ConfigError("the prompt variant does not hold the input once",
                          fix="serve it with rung serve RUN")
    before, after = wording.split(SENTINEL)
    fixed = [{"role": m.role, "content": m.content} for m in turns[:-1]]
    return ("{#- rung: the measured pipeline's instruction and demonstrations before the "
            "user's input, worded as rung worded it -#}\n"
            f"{{%- set rung_fixed = {_literal(fixed)} -%}}\n"
            + transcript(pipeline.shared_system) +
            f"{{%- set messages = rung_fixed + [{{'role': 'user', 'content': "
            f"{_literal(before)} ~ rung_input ~ {_literal(after)}}}] -%}}\n"
            + base_template)


def transcript(shared_system: str | None) -> str:
    """data.example.conversation_text in Jinja: the turns up to the last user turn, less a
    system (or developer) message that is the data's shared prompt, a lone user turn as its
    text, more as the "System: / User: / Assistant: " transcript the climb measured, so a
    client sending the conversation the data held is asked what rung measured."""
    # only a shared prompt is left out: without one every turn stays, as in conversation_text
    kept = ("{%- set rung.turns = rung.turns + [m] -%}" if shared_system is None else
            "{%- if not (m['role'] in ['system', 'developer'] and m['content'] == "
            f"{_literal(shared_system)}) -%}}{{%- set rung.turns = rung.turns + [m] -%}}"
            "{%- endif -%}")
    return (
        "{%- set rung = namespace(last=-1, parts=[], turns=[]) -%}\n"
        "{%- for m in messages -%}{%- if m['role'] == 'user' -%}"
        "{%- set rung.last = loop.index0 -%}{%- endif -%}{%- endfor -%}\n"
        "{%- for m in messages[:rung.last + 1] -%}" + kept + "{%- endfor -%}\n"
        "{%- if rung.turns | length == 1 -%}{%- set rung_input = rung.turns[0]['content'] -%}\n"
        "{%- else -%}{%- for m in rung.turns -%}{%- set rung.parts = rung.parts + ["
        + json.dumps({**SPEAKERS, "developer": "System"})  # the speakers conversation_text names
        + ".get(m['role'], m['role'] | capitalize) ~ ': ' ~ m['content']] -%}{%- endfor -%}\n"
        "{%- set rung_input = rung.parts | join('\\n\\n') -%}{%- endif -%}\n")


def _literal(value: Any) -> str:
    """`value` as a Jinja literal. JSON string and list literals are Jinja literals too, but
    not with JSON's \\uXXXX escapes beyond the BMP: Jinja reads a surrogate pair as two lone
    surrogates (an emoji no tokenizer can encode). Characters are written as they are, and
    Jinja reads them back whole; quotes, backslashes and control characters stay escaped."""
    return json.dumps(value, ensure_ascii=False)


def export_pipeline(store: Any, run_id: str, out: Path, fmt: str, *,
                    force: bool = False) -> dict[str, Any]:
    """Write the run's tune in `fmt` (hf: merged; vllm: adapter) with the pipeline's chat
    template and the manifest; returns the manifest. `force`: export a tune whose base model
    changed since it was trained, on the base as it is now."""
    from transformers import AutoTokenizer

    from rung.finetune.artifacts import export_tune, past_tune

    past = past_tune(store, run_id)
    base = json.loads((past.tune.artifact / ADAPTER_BASE).read_text())
    if fmt == "vllm" and base.get("trains") == "soft-prompt":
        raise ConfigError(f"run {run_id}'s fine-tune ({past.tune.method}) is a soft prompt "
                          "that PEFT prepends to every input, and vLLM serves LoRA adapters "
                          "and whole models, not soft prompts",
                          fix=f"serve it with rung serve {run_id} --rung finetune, or "
                              "re-tune with [finetune] method = \"lora\" to export for vLLM")
    _, row = store.measured(run_id, "finetune", "fine-tune")
    summary = json.loads(row["summary_json"])
    tokenizer = AutoTokenizer.from_pretrained(str(past.tune.artifact))
    if not tokenizer.chat_template:
        raise ConfigError("the tuned model's tokenizer has no chat template to wrap",
                          fix="export with rung export RUN --rung finetune and render "
                              "prompts as rung's pipeline JSON says")
    template = rung_chat_template(past.pipeline, tokenizer.chat_template)
    summary_of_run = {"metric": summary["metric"], "test_score": summary["score"],
                      "test_ci": summary["ci"], "n": summary["n"]}
    manifest: dict[str, Any] = {}

    def finish(folder: Path) -> None:  # inside the folder before it is moved into place
        (folder / TEMPLATE).write_text(template, encoding="utf-8")
        tokenizer.chat_template = template
        tokenizer.save_pretrained(str(folder))  # its config now carries the template too
        manifest.update(_manifest(provenance_of(folder), fmt, out, base, summary_of_run,
                                  past.pipeline, base_folder))
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, default=str))

    base_folder = None if base.get("trains") == "all" else _base_folder(past.tune.artifact)
    export_tune(store, run_id, out, merge=fmt == "hf", finish=finish, force=force)
    return manifest


def _base_folder(artifact: Path) -> str | None:
    """The folder vLLM would load the adapter's base from: a transformers folder, as the tune
    resolves it today; None for a GGUF base (vLLM takes LoRA on transformers weights)."""
    from rung.errors import ModelError
    from rung.models.registry import tune_base_ref

    try:
        ref = tune_base_ref(artifact)
    except ModelError:  # export_tune says why, naming the run
        return None
    return None if ref.gguf_file else ref.location


def provenance_of(folder: Path) -> dict[str, Any]:
    from rung.finetune.artifacts import EXPORT_FILE

    return json.loads((folder / EXPORT_FILE).read_text())


def _manifest(provenance: dict[str, Any], fmt: str, out: Path, base: dict[str, Any],
              measured: dict[str, Any], pipeline: Pipeline,
              base_folder: str | None = None) -> dict[str, Any]:
    """`base`: the artifact's rung_base.json; `base_folder`: where its base is today."""
    whole = fmt == "hf" or base.get("trains") == "all"  # merged, or a full tune's own weights
    flags = f"--chat-template {out / TEMPLATE}"
    # a full tune is served in the half precision it trained in on a GPU (rung_base.json
    # says which; record.save_weights writes the weights in it): named, so that vLLM does
    # not pick by its own --dtype auto rule, which serves an fp32 checkpoint as fp16
    if base.get("trains") == "all" and base.get("serve_dtype"):
        flags = f"--dtype {base['serve_dtype']} {flags}"
    return {
        **provenance, "format": fmt, "rung": "finetune",
        "base_model": base["model"], "base_folder": None if whole else base_folder,
        "adapter": None if whole else str(out),
        **measured, "pipeline": pipeline.to_dict(), "chat_template": TEMPLATE,
        "labels": pipeline.labels,
        "serve": (f"vllm serve {out} {flags}" if whole else
                  f"vllm serve {base_folder or 'BASE_MODEL_FOLDER'} --enable-lora "
                  f"--lora-modules rung={out} {flags}"),
    }
