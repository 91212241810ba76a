"""What `rung export` hands a server besides the weights: the chat template that carries the
measured prompt, rendered with jinja2 as transformers and vLLM render it."""

from __future__ import annotations

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from rung.data.example import Example, Message
from rung.export import rung_chat_template
from rung.pipeline import Pipeline
from rung.prompts import VARIANTS

# a base model's template in miniature: every turn's role and content, verbatim
BASE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def _render(template: str, messages: list[dict[str, str]]) -> str:
    # as transformers' apply_chat_template compiles a template
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(template).render(messages=messages, add_generation_prompt=True)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_exported_template_keeps_accents_and_emoji(variant: str) -> None:
    """json.dumps escapes 🚀 as a surrogate pair, which a Jinja string literal reads as two
    lone surrogates: the served prompt was not the measured one and cannot be encoded."""
    pipeline = Pipeline(
        rung="finetune", kind="classification", model="base", variant=variant,
        instruction="Classify the ticket from Café 🚀 \u2028 as BILLING or BUG \"quoted\" \\ {{ x }} %}",
        labels=["BILLING", "BUG"],
        demonstrations=[Example((Message("user", "the 🚀 launch page crashed, café"),
                                 Message("assistant", "BUG 🐛")))])
    ticket = "Café 🚀: my invoice is wrong"
    rendered = _render(rung_chat_template(pipeline, BASE), [{"role": "user", "content": ticket}])
    measured = _render(BASE, [{"role": m.role, "content": m.content}
                              for m in pipeline.messages(ticket)])
    assert rendered == measured
    assert "🚀" in rendered and "🐛" in rendered
    rendered.encode("utf-8")  # no lone surrogates


def test_the_exported_template_reads_a_conversation_as_the_climb_did() -> None:
    """Data with a system prompt or earlier turns is measured on the transcript
    (conversation_text); the template took the last user message alone, so a server running
    the export was asked something else than rung measured."""
    from rung.data.example import conversation_text

    pipeline = Pipeline(rung="finetune", kind="classification", model="base",
                        instruction="Classify the ticket as BILLING or BUG.",
                        labels=["BILLING", "BUG"])
    template = rung_chat_template(pipeline, BASE)
    conversation = [Message("system", "You are support."),
                    Message("user", "I ordered item 4 and was charged twice"),
                    Message("assistant", "Could you tell me more?"),
                    Message("user", "Yes, order 4")]
    for turns in (conversation, conversation[1:2]):
        rendered = _render(template, [{"role": m.role, "content": m.content} for m in turns])
        measured = _render(BASE, [{"role": m.role, "content": m.content}
                                  for m in pipeline.messages(conversation_text(turns))])
        assert rendered == measured
    developer = _render(template, [{"role": "developer", "content": "You are support."},
                                   {"role": "user", "content": "Yes, order 4"}])
    assert "System: You are support.\n\nUser: Yes, order 4" in developer


def test_the_exported_template_leaves_out_the_datas_shared_system_prompt() -> None:
    """A system prompt the data carried on every line was left out of every input the climb
    measured: the exported template leaves it out of a request too, as rung serve does, and
    reads any other system prompt as the transcript's."""
    from dataclasses import replace

    from rung.data.example import conversation_text

    shared = 'You are "support".\nBe brief.'  # quotes and a line break survive the literal
    pipeline = Pipeline(rung="finetune", kind="classification", model="base",
                        instruction="Classify the ticket as BILLING or BUG.",
                        labels=["BILLING", "BUG"], shared_system=shared)
    template = rung_chat_template(pipeline, BASE)
    for system in (shared, "You are the billing desk."):
        for role in ("system", "developer"):
            turns = [Message(role, system), Message("user", "I was charged twice"),
                     Message("assistant", "Which order?"), Message("user", "order 4")]
            rendered = _render(template, [{"role": m.role, "content": m.content}
                                          for m in turns])
            asked = conversation_text([replace(m, role="system") if m.role == "developer"
                                       else m for m in turns], shared)
            assert rendered == _render(BASE, [{"role": m.role, "content": m.content}
                                              for m in pipeline.messages(asked)])
            assert (system in rendered) == (system != shared)
    lone = _render(template, [{"role": "system", "content": shared},
                              {"role": "user", "content": "I was charged twice"}])
    assert lone == _render(BASE, [{"role": m.role, "content": m.content}
                                  for m in pipeline.messages("I was charged twice")])
