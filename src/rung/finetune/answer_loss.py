"""SFT whose LM head runs only where the loss is: the answer tokens.

A classification answer is 2-3 tokens after a prompt of hundreds, and the LM head of a small
model with a big vocabulary (SmolLM2: 576 x 49,152) costs as much as several decoder layers
per position. TRL's fused head scores only labelled positions when Triton kernels run (CUDA,
XPU); elsewhere it projects every position and recomputes the head in backward. Here, off
Triton, the model is asked for logits at the union of the batch's answer positions only
(`logits_to_keep` with indices), which is exact: the loss, token accuracy and entropy are
the same numbers TRL would log, from a few dozen rows of logits instead of thousands.
"""

from __future__ import annotations

from typing import Any

import torch
from trl import SFTTrainer


class AnswerOnlySFTTrainer(SFTTrainer):
    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        if not self._answer_only(model, inputs, return_outputs):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        mode = "train" if self.model.training else "eval"
        labels = inputs["labels"][:, 1:]  # position p predicts token p + 1
        mask = labels != -100
        keep = mask.any(dim=0).nonzero().squeeze(-1)
        forward = {k: v for k, v in inputs.items() if k != "labels"}
        logits = model(**forward, use_cache=False, logits_to_keep=keep).logits.float()
        targets, valid = labels[:, keep], mask[:, keep]
        log_probs = torch.log_softmax(logits, dim=-1)
        picked = log_probs.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        count = valid.sum() if num_items_in_batch is None else num_items_in_batch
        loss = -(picked * valid).sum() / torch.as_tensor(count).clamp(min=1)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes  # as TRL: DDP averages the gradients
        with torch.no_grad():  # the metrics TRL logs, over the answer tokens
            entropy = -(log_probs.exp() * log_probs).sum(-1)
            gather = self.accelerator.gather_for_metrics
            n = gather(valid.sum()).sum()
            correct = gather(((logits.argmax(-1) == targets) & valid).sum()).sum()
            spread = gather((entropy * valid).sum()).sum()
            self._metrics[mode]["entropy"].append((spread / n).item() if n > 0 else 0.0)
            self._metrics[mode]["mean_token_accuracy"].append((correct / n).item() if n > 0 else 0.0)
            if mode == "train":
                self._total_train_tokens += gather(inputs["attention_mask"].sum()).sum().item()
            self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
        return loss

    def _answer_only(self, model: Any, inputs: dict[str, Any], return_outputs: bool) -> bool:
        """Off Triton, with ordinary padded batches and no soft prompt shifting positions."""
        from trl.kernels.chunked_logprob import _use_triton

        unwrapped = self.accelerator.unwrap_model(model)
        prompt_learning = getattr(getattr(unwrapped, "active_peft_config", None),
                                  "is_prompt_learning", False)
        return (not return_outputs and "attention_mask" in inputs and "labels" in inputs
                and not _use_triton(inputs["labels"].device) and not prompt_learning
                and self.compute_loss_func is None and self.label_smoother is None
                and not self.aux_loss_enabled and self.args.loss_type == "nll")
