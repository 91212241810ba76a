"""rung.toml: the task a team wants solved, validated in full before any model is loaded.

Each table in the file maps one-to-one to a model below. Every problem found is reported at
once with the line of the offending key, so a user fixes the file in one pass.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import tomllib
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rung.costs import CostsTable
from rung.errors import ConfigError
from rung.eval.custom_metrics import load_custom_metric
from rung.eval.text_metrics import TEXT_METRICS
from rung.task_problems import all_of, check_schema, line_from_message, line_of, \
    missing_files, problems_from

if TYPE_CHECKING:
    from rung.models.endpoint import Endpoint

TaskKind = Literal["classification", "extraction", "generation"]

# Which metrics make sense for which kind of task. A later metric joins by adding a row.
# A custom "module:function" metric fits any kind; json_schema needs [task] schema.
METRICS_BY_KIND: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "macro_f1"),
    **{
        kind: tuple(name for name, spec in TEXT_METRICS.items() if kind in spec.kinds)
        for kind in ("extraction", "generation")
    },
}


def is_custom_metric(metric: str) -> bool:
    return ":" in metric


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class TaskTable(_Strict):
    name: str = Field(min_length=1)
    kind: TaskKind
    instruction: str = Field(min_length=1)
    labels: list[str] = Field(default_factory=list)
    data: str
    corpus: str | None = None
    # a JSON Schema file the answers of an extraction task must meet ("schema" in rung.toml;
    # the attribute name avoids pydantic's own BaseModel.schema)
    schema_file: str | None = Field(default=None, alias="schema")
    metric: str
    target: float = Field(gt=0.0, le=1.0)
    seed: int = Field(default=0, ge=0)

    @field_validator("labels")
    @classmethod
    def _stripped(cls, labels: list[str]) -> list[str]:
        """A label is the label it names, as the data's are read (stripped_labels): "refund "
        in rung.toml would otherwise match no example's "refund"."""
        return [label.strip() for label in labels]

    @model_validator(mode="after")
    def _labels_fit_kind(self) -> "TaskTable":
        if self.kind == "classification":
            if len(self.labels) < 2:
                raise ValueError("a classification task needs at least two labels in 'labels'")
            if len(set(self.labels)) != len(self.labels):
                raise ValueError("'labels' has duplicates")
        return self

    @model_validator(mode="after")
    def _metric_fits_kind(self) -> "TaskTable":
        """Apart from the labels' check, so a wrong metric is said in the same round as wrong
        labels (task_problems runs a table's checks on the keys that passed)."""
        allowed = METRICS_BY_KIND[self.kind]
        if self.metric == "json_schema" and self.schema_file is None:
            raise ValueError("metric 'json_schema' needs 'schema = \"file.json\"' in [task]")
        if self.metric in allowed or is_custom_metric(self.metric):
            return self
        known = sorted({m for metrics in METRICS_BY_KIND.values() for m in metrics})
        if self.metric in known:
            raise ValueError(f"metric '{self.metric}' does not fit a {self.kind} task; use one "
                             f"of {list(allowed)}")
        close = difflib.get_close_matches(self.metric, allowed, n=1)
        raise ValueError(f"unknown metric '{self.metric}'"
                         + (f" (did you mean '{close[0]}'?)" if close else "")
                         + f"; a {self.kind} task takes one of {list(allowed)}, or your own "
                         "as 'module:function' / 'file.py:function'")


class SplitTable(_Strict):
    train: float = Field(default=0.8, gt=0.0, lt=1.0)
    val: float = Field(default=0.1, gt=0.0, lt=1.0)
    test: float = Field(default=0.1, gt=0.0, lt=1.0)
    group_key: str | None = None
    # a date (ISO 8601) or number on every record: the newest examples become test, the ones
    # before them val; for data that drifts, where a random split flatters every rung
    order_key: str | None = None

    @model_validator(mode="after")
    def _sums_to_one(self) -> "SplitTable":
        if abs(self.train + self.val + self.test - 1.0) > 1e-6:
            total = self.train + self.val + self.test
            raise ValueError(f"train + val + test must add up to 1.0, not {total:g} "
                             f"({self.train:g} + {self.val:g} + {self.test:g})")
        return self


class EndpointTable(_Strict):
    """[models.openai] / [models.anthropic]: where a remote backend answers and which
    environment variable holds its key (never the key itself)."""

    base_url: str | None = None  # e.g. http://127.0.0.1:8000/v1 for vLLM or a llama.cpp server
    api_key_env: str | None = None  # default OPENAI_API_KEY / ANTHROPIC_API_KEY; "" for none


class ModelsTable(_Strict):
    small: str  # an alias, a folder, a .gguf file, hf:org/name, openai:MODEL or anthropic:MODEL
    large: str | None = None
    openai: EndpointTable = EndpointTable()
    anthropic: EndpointTable = EndpointTable()
    # remote models only: requests in flight at once, seconds each, rung's retries (the SDKs'
    # own backoff and jitter, honouring Retry-After; --budget counts each), and the share of
    # failed requests that stops
    concurrency: int = Field(default=4, ge=1, le=256)
    timeout_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=5, ge=0, le=20)
    max_error_rate: float = Field(default=0.05, ge=0, le=1)

    def endpoints(self) -> list["Endpoint"]:
        """The remote models this task names, with their settings."""
        from rung.models.endpoint import BACKENDS, Endpoint, is_remote

        found = []
        for reference in (self.small, self.large):
            if reference is None or not is_remote(reference):
                continue
            backend = reference.split(":", 1)[0]
            table: EndpointTable = getattr(self, backend)
            found.append(Endpoint.of(
                reference, base_url=table.base_url,
                api_key_env=BACKENDS[backend] if table.api_key_env is None else table.api_key_env,
                concurrency=self.concurrency, timeout_s=self.timeout_s,
                max_retries=self.max_retries, max_error_rate=self.max_error_rate))
        return found


RungName = Literal["classifier", "prompt", "few-shot", "rag", "bigger-model", "finetune"]


class LadderTable(_Strict):
    """Which rungs to climb. By default every rung that applies, stopping at the first whose
    choice on val reaches the target; `all` measures the rest too, to see the whole ladder."""

    skip: list[RungName] = Field(default_factory=list)  # rungs not to measure
    all: bool = False


ClassifierFeatures = Literal["tfidf", "minilm"]
ClassifierModel = Literal["logistic-regression", "linear-svm"]


class ClassifierTable(_Strict):
    """Rung 0 (classification tasks): every combination is a candidate, chosen on val."""

    features: list[ClassifierFeatures] = Field(default_factory=lambda: ["tfidf", "minilm"])
    models: list[ClassifierModel] = Field(
        default_factory=lambda: ["logistic-regression", "linear-svm"])
    C: list[float] = Field(default_factory=lambda: [1.0, 10.0])  # inverse regularisation
    # the seeds' first fix for imbalanced classes: "balanced" weighs each class by the inverse
    # of its share of train, so a rare label is not traded away for accuracy on common ones
    class_weight: list[Literal["none", "balanced"]] = Field(
        default_factory=lambda: ["none", "balanced"])

    @model_validator(mode="after")
    def _non_empty(self) -> "ClassifierTable":
        # one key per message: the error's line is the line of the key its message names
        if not self.C or any(c <= 0 for c in self.C):
            raise ValueError("C must be a non-empty list of positive numbers")
        if not self.features:
            raise ValueError("features must name at least one of tfidf, minilm")
        if not self.models:
            raise ValueError("models must name at least one of logistic-regression, linear-svm")
        if not self.class_weight:
            raise ValueError("class_weight must name at least one of none, balanced")
        return self


class PromptTable(_Strict):
    variants: list[str] | None = None  # None: every built-in variant is tried
    calibrate: bool = True  # classification: each variant also with contextual calibration
    # the team's own prompts, each a candidate beside the variants: sent as written, as the
    # system prompt before the input (the seeds: "test 5-10 prompt variants")
    instructions: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _instructions_written(self) -> "PromptTable":
        if any(not text.strip() for text in self.instructions):
            raise ValueError("instructions must not hold an empty prompt")
        if len({text.strip() for text in self.instructions}) != len(self.instructions):
            raise ValueError("instructions has the same prompt twice")
        return self


Selection = Literal["stratified", "random", "similar"]


class FewShotTable(_Strict):
    k: list[int] = Field(default_factory=lambda: [5, 10])
    # how the k demonstrations are picked; each is a candidate, chosen on val. "similar": each
    # input gets its k nearest train examples by MiniLM similarity
    selection: list[Selection] = Field(default_factory=lambda: ["stratified", "similar"])
    calibrate: bool = True  # classification: fixed demonstrations also with calibration

    @field_validator("selection", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _positive(self) -> "FewShotTable":
        if not self.k or any(k < 1 for k in self.k):
            raise ValueError("k must be a non-empty list of positive integers")
        if not self.selection:
            raise ValueError("selection must name at least one of stratified, random, similar")
        return self


class EvalTable(_Strict):
    bootstrap: int = Field(default=2000, ge=100)
    latency_samples: int = Field(default=20, ge=0)
    max_new_tokens: int = Field(default=64, ge=1)
    val_limit: int | None = Field(default=None, ge=1)  # cap val examples used for choices
    min_gain: float = Field(default=0.0, ge=0.0, le=1.0)  # smallest gain worth a costlier rung
    # what must reach [task] target: the point estimate, or the 95% interval's lower bound
    decide_on: Literal["point", "lower-bound"] = "point"
    # how candidates are chosen on val: raced by successive halving (all start on a few val
    # examples, the better half goes on to twice as many, the last two meet on all of val;
    # no round smaller than race_start), or every one on all of val ("full")
    selection: Literal["full", "race"] = "race"
    race_start: int = Field(default=10, ge=1)
    # the seeds' "is the base model too slow?": a rung reaches the target only if its p95
    # latency (single requests on val inputs) is within this many milliseconds too
    max_latency_ms: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _latency_measured(self) -> "EvalTable":
        if self.max_latency_ms is not None and self.latency_samples == 0:
            raise ValueError("max_latency_ms needs latency measured: set latency_samples above 0")
        return self


class RagTable(_Strict):
    methods: list[Literal["bm25", "dense", "hybrid"]] = Field(
        default_factory=lambda: ["bm25", "dense", "hybrid"])  # candidates, chosen on val
    k: list[int] = Field(default_factory=lambda: [1, 3, 5])  # chunks in the prompt
    # similar train questions shown before each question, each with its own retrieved
    # passages and its answer; 0: none. Every value is a candidate, chosen on val
    shots: list[int] = Field(default_factory=lambda: [0])
    chunk_tokens: int = Field(default=160, ge=16, le=256)  # MiniLM reads at most 256
    overlap: int = Field(default=32, ge=0)
    index: str = ".rung/index.db"  # relative to rung.toml

    @model_validator(mode="after")
    def _sizes(self) -> "RagTable":
        if self.overlap >= self.chunk_tokens:
            raise ValueError("overlap must be smaller than chunk_tokens")
        if not self.k or any(k < 1 for k in self.k):
            raise ValueError("k must be a non-empty list of positive integers")
        if not self.methods:
            raise ValueError("methods must name at least one of bm25, dense, hybrid")
        if not self.shots or any(n < 0 for n in self.shots):
            raise ValueError("shots must be a non-empty list of counts (0: no demonstrations)")
        return self


FineTuneMethod = Literal["lora", "qlora", "full", "prefix", "prompt-tuning", "dpo"]


class FineTuneTable(_Strict):
    """The seeds' defaults: LoRA r=16, alpha 2r, dropout 0.05 on the attention and MLP
    projections; lr 2e-4, 3 epochs, batch 4 x accumulation 4, warmup 5%, cosine, decay 0.01."""

    method: FineTuneMethod = "lora"
    # None: train on the best prompt's instruction. A short one is worth trying: once the
    # behaviour is trained in, every request stops paying for the long prompt.
    instruction: str | None = None
    rank: int = Field(default=16, ge=1, le=256)
    alpha: int = Field(default=32, ge=1)  # unset: twice the rank, the seeds' rule
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: [
        "q_proj", "v_proj", "k_proj", "o_proj", "up_proj", "down_proj"])
    virtual_tokens: int = Field(default=20, ge=1, le=512)  # prefix and prompt-tuning
    dpo_beta: float = Field(default=0.1, gt=0.0)  # how far DPO may move from the base
    learning_rate: float | None = Field(default=None, gt=0.0, le=1.0)  # None: the method's
    epochs: float = Field(default=3.0, gt=0.0, le=50.0)
    batch_size: int = Field(default=4, ge=1)
    gradient_accumulation: int = Field(default=4, ge=1)
    warmup_ratio: float = Field(default=0.05, ge=0.0, lt=1.0)
    weight_decay: float = Field(default=0.01, ge=0.0, le=1.0)
    scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    max_seq_length: int | None = Field(default=None, ge=16)  # None: [audit] max_seq_length
    gradient_checkpointing: bool = False  # trades ~30% more compute for activation memory
    # refuse, before the first step, a tune whose estimated peak exceeds the device's memory
    memory_check: bool = True
    eval_steps: int | None = Field(default=None, ge=1)  # None: twice an epoch, at least patience + 2 times
    early_stopping_patience: int = Field(default=2, ge=1)  # evaluations without val-loss gain
    keep_checkpoints: int = Field(default=2, ge=1)  # the best and the latest survive
    regression_threshold: float = Field(default=0.05, ge=0.0, le=1.0)  # general-suite drop flagged
    seed: int | None = Field(default=None, ge=0)  # None: [task] seed

    @model_validator(mode="before")
    @classmethod
    def _alpha_twice_the_rank(cls, data: Any) -> Any:
        """The seeds: alpha "typically 2x rank". A rank of 8 with the default alpha of 32
        would scale its updates twice as hard as the rank-16 default does."""
        if not isinstance(data, dict) or "alpha" in data:
            return data
        rank = data.get("rank")
        if isinstance(rank, (int, float)) and not isinstance(rank, bool) \
                and float(rank).is_integer():
            return {**data, "alpha": 2 * int(rank)}
        return data


class AuditTable(_Strict):
    # which row of the seeds' dataset-size table applies; None: classification and extraction
    # use their own rows, generation uses "style"
    profile: Literal["classification", "extraction", "style", "domain", "code"] | None = None
    max_seq_length: int = Field(default=2048, ge=16)  # the training max length to check against
    review_sample: int = Field(default=25, ge=0)  # examples exported for human review
    near_duplicate_threshold: float = Field(default=0.8, gt=0.0, le=1.0)  # MinHash Jaccard


class TaskSpec(_Strict):
    task: TaskTable
    split: SplitTable = SplitTable()
    models: ModelsTable
    ladder: LadderTable = LadderTable()
    classifier: ClassifierTable = ClassifierTable()
    prompt: PromptTable = PromptTable()
    few_shot: FewShotTable = FewShotTable()
    eval: EvalTable = EvalTable()
    audit: AuditTable = AuditTable()
    rag: RagTable = RagTable()
    finetune: FineTuneTable = FineTuneTable()
    costs: CostsTable = CostsTable()
    path: Path = Field(exclude=True)  # the rung.toml this came from

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def data_path(self) -> Path:
        return (self.root / self.task.data).resolve()

    @property
    def corpus_path(self) -> Path | None:
        return (self.root / self.task.corpus).resolve() if self.task.corpus else None

    @property
    def store_dir(self) -> Path:
        return self.root / ".rung"

    @cached_property
    def json_schema(self) -> dict | None:
        """Read once: every candidate and every evaluation asks for it."""
        if self.task.schema_file is None:
            return None
        return json.loads((self.root / self.task.schema_file).read_text(encoding="utf-8"))

    def line_of(self, section: str, key: str) -> int | None:
        """Where `key` is set in this task's rung.toml, for an error found after loading."""
        try:
            return line_of(self.path.read_text(encoding="utf-8-sig"), section, key)
        except OSError:
            return None

    def settings(self) -> dict[str, Any]:
        """Every setting the climb ran with, defaults included, as the run store keeps it."""
        return self.model_dump(mode="json", exclude={"path"})

    def config_hash(self) -> str:
        text = self.model_dump_json(exclude={"path"})
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_task(path: str | Path) -> TaskSpec:
    """Read and validate rung.toml (or a folder holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "rung.toml"
    if not path.exists():
        raise ConfigError(
            "no task file here", file=path, fix="pass a rung.toml or a folder that has one"
        )
    data = path.read_bytes()
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")  # Notepad saves with a BOM
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ConfigError(f"not UTF-8: byte 0x{data[err.start]:02x} at byte offset {err.start}",
                          file=path, line=line, fix="re-save rung.toml as UTF-8 (TOML files "
                          "must be UTF-8)") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        if path.suffix.lower() != ".toml":  # a data file handed to climb: say what it wants
            raise ConfigError(
                "this is not a task file: climb, eval and the other task commands take a "
                "rung.toml (or its folder)", file=path,
                fix=f"write a rung.toml whose [task] data = \"{path.name}\" (README: \"The "
                    f"task file\"); rung audit {path} checks a data file on its own") from None
        line = getattr(err, "lineno", None) or line_from_message(str(err))
        raise ConfigError(f"not valid TOML: {err}", file=path, line=line,
                          fix="check quotes and brackets on that line") from None
    try:
        spec = TaskSpec.model_validate({**raw, "path": path.resolve()})
    except ValidationError as err:
        # the files it names are checked too, so one round shows every problem
        raise all_of(problems_from(err, text, path, raw, TaskSpec), missing_files(raw, path, text)) \
            from None
    problems = missing_files(raw, path, text)
    if is_custom_metric(spec.task.metric):
        try:
            load_custom_metric(spec.task.metric, base_dir=spec.root)
        except ConfigError as err:
            problems.append(ConfigError(err.message, file=path, fix=err.fix,
                                        line=line_of(text, "task", "metric")))
        else:
            module, _, function = spec.task.metric.rpartition(":")
            # ~ is expanded first, as load_custom_metric does: anchored unexpanded,
            # "~/m.py" became "<task>/~/m.py", which passed here and was missing at evaluation
            path = Path(module).expanduser()
            if module.endswith(".py") and (str(path) != module or not path.is_absolute()):
                # The evaluator runs from anywhere: anchor a file reference at the task folder.
                task_table = spec.task.model_copy(
                    update={"metric": f"{spec.root / path}:{function}"})
                spec = spec.model_copy(update={"task": task_table})
    if spec.task.schema_file is not None and (spec.root / spec.task.schema_file).is_file():
        try:
            check_schema(spec, text, path)
        except ConfigError as err:
            problems.append(err)
    if problems:
        raise all_of(*problems)
    return spec
