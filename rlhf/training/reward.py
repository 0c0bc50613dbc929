"""Reward model: TRL RewardTrainer + LoRA (SEQ_CLS, head in modules_to_save) on preference rows.

Writes a checkpoint directory with the adapter, the tokenizer, ``manifest.json`` and (``merge``)
a ``merged/`` standalone model for scoring. With ``members`` N > 1, N reward models are trained
the same way from other seeds and ``merged/`` is their weight average, as is the adapter (an exact
one of N times the rank, ``lora.average_adapters``) (``keep_members``: each also
written merged under ``members/<i>``, for the score step's query by committee). Result: held-out
pairwise accuracy and mean margin (and each member's accuracy).
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from rlhf.training import data, lora, scoring
from rlhf.training.callbacks import ProgressCallback, quiet_trainer
from rlhf.training.checkpoints import MERGED, atomic_dir, file_hash, save_model, write_manifest
from rlhf.training.devices import (
    configure_threads,
    model_dtype,
    offline_trainer_kwargs,
    resolve_device,
    set_seed,
    with_chat_template,
)
from rlhf.training.progress import Events
from rlhf.training.specs import RewardResult, RewardSpec

MEMBERS = "members"
ADAPTER_CONFIG, ADAPTER_WEIGHTS = "adapter_config.json", "adapter_model.safetensors"


def member_seed(seed: int, member: int) -> int:
    """The training seed of a reward step's ``member`` (0: the spec's own)."""
    return seed + 7919 * member


def load_backbone(
    base_model: str, device: str, *, dtype: str = "auto", chat_template: str | None = None
) -> tuple[Any, Any]:
    """Backbone as a 1-label sequence classifier, with a tokenizer that has a pad token."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = with_chat_template(AutoTokenizer.from_pretrained(base_model), chat_template)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.chat_template is None:
        raise ValueError(f"the tokenizer of {base_model} has no chat template")
    model = AutoModelForSequenceClassification.from_pretrained(
        base_model, num_labels=1, dtype=model_dtype(dtype, device)
    )
    model.config.pad_token_id = tokenizer.pad_token_id
    return model.to(device), tokenizer


def _weighted_trainer_class() -> type:
    from trl import RewardTrainer

    class WeightedRewardTrainer(RewardTrainer):  # type: ignore[misc]
        """RewardTrainer whose loss weighs each pair by its ``weight`` column."""

        def _set_signature_columns_if_needed(self) -> None:
            if self._signature_columns is None:
                columns: Any = ["chosen_ids", "rejected_ids", "margin", "weight"]
                self._signature_columns = columns

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            weight = inputs.pop("weight", None)
            loss, outputs = super().compute_loss(model, inputs, return_outputs=True)
            if weight is not None:
                chosen, rejected = torch.chunk(outputs.logits.squeeze(-1), chunks=2)
                margin = inputs.get("margin", torch.zeros_like(chosen))
                per_pair = -nn.functional.logsigmoid(chosen - rejected - margin)
                loss = (per_pair * weight).sum() / weight.sum().clamp_min(1e-8)
                coefficient = getattr(self.args, "center_rewards_coefficient", None)
                if coefficient is not None:
                    loss = loss + coefficient * torch.mean((chosen + rejected) ** 2)
            return (loss, outputs) if return_outputs else loss

    return WeightedRewardTrainer


def _collator_with_weight(pad_token_id: int) -> Any:
    from trl.trainer.reward_trainer import DataCollatorForPreference

    base = DataCollatorForPreference(pad_token_id=pad_token_id)

    def collate(examples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = base(examples)
        batch["weight"] = torch.tensor([e["weight"] for e in examples], dtype=torch.float)
        return batch

    return collate


def pairwise_metrics(
    model: Any, tokenizer: Any, rows: list[dict[str, Any]]
) -> tuple[float | None, float | None]:
    """Held-out accuracy (chosen scored above rejected) and mean margin."""
    if not rows:
        return None, None
    prompts = [r["prompt"] for r in rows]
    chosen = scoring.score(model, tokenizer, prompts, [r["chosen"] for r in rows])
    rejected = scoring.score(model, tokenizer, prompts, [r["rejected"] for r in rows])
    diffs = [c - r for c, r in zip(chosen, rejected, strict=True)]
    return sum(d > 0 for d in diffs) / len(diffs), sum(diffs) / len(diffs)


@dataclasses.dataclass(frozen=True)
class Fitted:
    model: Any  # the PEFT model (backbone + LoRA + head)
    tokenizer: Any
    steps: int
    train_loss: float


def fit(
    spec: RewardSpec,
    train_rows: list[dict[str, Any]],
    *,
    use_margin: bool,
    use_weight: bool,
    events: Events | None = None,
) -> Fitted:
    """Train the LoRA reward model on ``train_rows`` in this process (``spec.data`` and
    ``spec.output_dir`` are not read).
    :func:`run` is this plus the data split, the held-out metrics and the checkpoint;
    benchmarks/active_learning.py calls it directly to retrain after each batch of labels."""
    from trl import RewardConfig

    events = events or Events()
    device = resolve_device(spec.device)
    model, tokenizer = load_backbone(
        spec.base_model, device, dtype=spec.dtype, chat_template=spec.chat_template
    )
    peft_config = lora.lora_config(
        r=spec.lora_r,
        alpha=spec.lora_alpha,
        dropout=spec.lora_dropout,
        modules=spec.lora_target_modules,
        task_type="SEQ_CLS",
        parent_adapter=spec.parent_adapter,
        modules_to_save=[lora.classifier_head(model)],
        top_layers=spec.lora_top_layers,
        model=model,
    )
    events.check()
    with tempfile.TemporaryDirectory(prefix="reward-trainer-") as scratch:
        args = RewardConfig(
            output_dir=scratch,
            warmup_steps=0,
            center_rewards_coefficient=spec.center_rewards_coefficient,
            **offline_trainer_kwargs(spec),
        )
        trainer_class = _weighted_trainer_class()
        trainer = trainer_class(
            model=model,
            args=args,
            train_dataset=data.preference_dataset(train_rows, margin=use_margin, weight=use_weight),
            processing_class=tokenizer,
            peft_config=peft_config,
            data_collator=_collator_with_weight(tokenizer.pad_token_id) if use_weight else None,
            callbacks=[ProgressCallback(events)],
        )
        quiet_trainer(trainer)
        if spec.parent_adapter is not None:
            lora.load_adapter_weights(trainer.model, spec.parent_adapter)
            events.log(f"reward: warm start from {spec.parent_adapter}")
        train_output = trainer.train()
    events.check()
    return Fitted(
        model=trainer.model,
        tokenizer=tokenizer,
        steps=int(trainer.state.global_step),
        train_loss=float(train_output.training_loss),
    )


def run(spec: RewardSpec, events: Events | None = None) -> RewardResult:
    events = events or Events()
    start = time.monotonic()
    configure_threads()
    set_seed(spec.seed)
    rows = data.load_preferences(spec.data)
    train_rows, eval_rows = data.split(rows, spec.eval_fraction)
    use_margin = spec.use_margin and data.has_field(rows, "margin")
    use_weight = data.has_field(rows, "weight")
    events.log(f"reward: {len(train_rows)} train / {len(eval_rows)} held-out pairs")
    with atomic_dir(spec.output_dir) as out:
        events.part(0, spec.members)
        fitted = fit(spec, train_rows, use_margin=use_margin, use_weight=use_weight, events=events)
        peft_model, tokenizer = fitted.model, fitted.tokenizer
        save_model(peft_model, tokenizer, out)  # members > 1: replaced by their average below
        scorer: Any = peft_model
        member_accuracy: list[float | None] = []
        if spec.members > 1:
            scorer, member_accuracy = average_members(
                spec, fitted, train_rows, eval_rows, use_margin, use_weight, out, events
            )
        accuracy, margin = pairwise_metrics(scorer, tokenizer, eval_rows)
        events.log(f"reward: held-out accuracy {accuracy}, mean margin {margin}")
        metrics = {
            "eval_accuracy": accuracy,
            "eval_mean_margin": margin,
            "train_loss": fitted.train_loss,
            "num_train": len(train_rows),
            "num_eval": len(eval_rows),
            "steps": fitted.steps,
            "member_eval_accuracy": member_accuracy,  # the count: the spec's ``members``
        }
        data_hash = file_hash(spec.data)
        write_manifest(
            out,
            base_model=spec.base_model,
            parent=spec.parent_adapter,
            method="reward",
            spec=spec.to_dict(),
            data_hash=data_hash,
            seed=spec.seed,
            metrics=metrics,
            # with members > 1, merged/ and the adapter are both the members' average
            extra={"task": "seq-cls", "merged": MERGED if spec.merge else None},
        )
        if spec.merge:
            merged = scorer if spec.members > 1 else peft_model.merge_and_unload()
            save_model(merged.to("cpu"), tokenizer, Path(out, MERGED))
        events.check()
    merged_dir = str(Path(spec.output_dir, MERGED).resolve()) if spec.merge else None
    kept = range(spec.members) if spec.keep_members else range(0)
    return RewardResult(
        checkpoint_dir=str(Path(spec.output_dir).resolve()),
        merged_dir=merged_dir,
        eval_accuracy=accuracy,
        eval_mean_margin=margin,
        train_loss=fitted.train_loss,
        num_train=len(train_rows),
        num_eval=len(eval_rows),
        steps=fitted.steps,
        data_hash=data_hash,
        wall_s=round(time.monotonic() - start, 3),
        members=spec.members,
        member_eval_accuracy=tuple(member_accuracy),
        member_dirs=tuple(str(Path(spec.output_dir, MEMBERS, str(i)).resolve()) for i in kept),
    )


def average_members(
    spec: RewardSpec,
    first: Fitted,
    train_rows: list[dict[str, Any]],
    eval_rows: list[dict[str, Any]],
    use_margin: bool,
    use_weight: bool,
    out: Path,
    events: Events,
) -> tuple[Any, list[float | None]]:
    """Train ``spec.members - 1`` more reward models beside ``first`` (member 0), each from its
    own seed on the same rows, and return their weight average, merged (a model soup: every
    member starts from the same backbone and moves little, so their weights average into one model
    that scores about like their mean: within 0.02 of it, benchmarks/reward_members.py), with
    each member's held-out accuracy. The adapter ``run`` wrote to ``out`` (member 0's) is replaced
    by the members' average (:func:`lora.average_adapters`: on the backbone it scores as the
    merged average does). ``keep_members`` also writes each member merged under
    ``out/members/<i>``."""
    from peft import get_peft_model_state_dict

    accuracies: list[float | None] = []
    total: dict[str, Any] = {}
    adapters: list[dict[str, Any]] = []
    soup: Any = None
    for member in range(spec.members):
        if member:
            events.part(member, spec.members)
            set_seed(member_seed(spec.seed, member))
            fitted = fit(
                dataclasses.replace(spec, seed=member_seed(spec.seed, member)),
                train_rows,
                use_margin=use_margin,
                use_weight=use_weight,
                events=events,
            )
        else:
            fitted = first
        accuracy, _ = pairwise_metrics(fitted.model, fitted.tokenizer, eval_rows)
        events.log(f"reward: member {member}, held-out accuracy {accuracy}")
        accuracies.append(accuracy)
        adapters.append(
            {
                k: v.detach().cpu().clone()
                for k, v in get_peft_model_state_dict(fitted.model).items()
            }
        )
        merged = fitted.model.merge_and_unload()
        if spec.keep_members:
            save_model(merged, fitted.tokenizer, Path(out, MEMBERS, str(member)))
        for name, value in merged.state_dict().items():
            if value.is_floating_point():
                total[name] = value.detach().double() + total.get(name, 0.0)
        soup = soup if soup is not None else merged
        events.check()
    config = json.loads(Path(out, ADAPTER_CONFIG).read_text(encoding="utf-8"))
    adapter, config = lora.average_adapters(adapters, config)
    save_file(adapter, str(Path(out, ADAPTER_WEIGHTS)), metadata={"format": "pt"})
    Path(out, ADAPTER_CONFIG).write_text(json.dumps(config, indent=2), encoding="utf-8")
    state = soup.state_dict()
    soup.load_state_dict(
        {
            name: (total[name] / spec.members).to(value.dtype) if name in total else value
            for name, value in state.items()
        }
    )
    return soup.eval(), accuracies
