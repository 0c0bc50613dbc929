"""KTO with LoRA (TRL KTOTrainer): unpaired desirable / undesirable completions; warm start and
reference as in :mod:`rlhf.training.dpo` (whose policy set-up it shares).

KTO needs no pairs: each row is one completion labelled good or bad, and the loss pushes the
policy's implicit reward beta * (log pi - log ref) above a KL baseline for desirable rows and below
it for undesirable ones. TRL estimates that baseline from mismatched (prompt, completion) pairs
inside a batch, hence ``batch_size >= 2`` and sequential sampling (TRL's default for KTO). Rows'
``weight`` is not used: TRL's loss weighs only the two kinds (``desirable_weight`` /
``undesirable_weight``). Result and checkpoint have the DPO step's shape.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from rlhf.training import data, scoring
from rlhf.training.callbacks import ProgressCallback, quiet_trainer
from rlhf.training.checkpoints import atomic_dir
from rlhf.training.devices import configure_threads, offline_trainer_kwargs, set_seed
from rlhf.training.dpo import anchored, policy_with_adapter, train_and_save
from rlhf.training.progress import Events
from rlhf.training.specs import KTOResult, KTOSpec


def completion_logps(model: Any, tokenizer: Any, rows: list[dict[str, Any]]) -> list[float]:
    """Log-probability of each row's completion given its prompt, in one batched pass."""
    return scoring.completion_logps(
        model, tokenizer, [r["prompt"] for r in rows], [r["completion"] for r in rows]
    )


def label_metrics(
    policy: list[float], reference: list[float], labels: list[bool], beta: float
) -> tuple[float | None, float | None]:
    """Accuracy (the implicit reward has the label's sign; ties half) and its label-signed mean."""
    if not policy:
        return None, None
    signed = [
        beta * (p - r) * (1.0 if label else -1.0)
        for p, r, label in zip(policy, reference, labels, strict=True)
    ]
    accuracy = sum(1.0 if m > 1e-6 else 0.5 if abs(m) <= 1e-6 else 0.0 for m in signed)
    return accuracy / len(signed), sum(signed) / len(signed)


def run(spec: KTOSpec, events: Events | None = None) -> KTOResult:
    from trl import KTOConfig, KTOTrainer

    events = events or Events()
    start = time.monotonic()
    configure_threads()
    set_seed(spec.seed)
    rows = data.load_unpaired(spec.data)
    train_rows, eval_rows = data.split(rows, spec.eval_fraction)
    desirable = sum(1 for r in train_rows if r["label"])
    events.log(
        f"kto: {len(train_rows)} train rows ({desirable} desirable, "
        f"{len(train_rows) - desirable} undesirable) / {len(eval_rows)} held-out"
        + (f"; + {spec.anchor_kl} x KL to the base" if spec.anchor_kl > 0 else "")
    )
    model, tokenizer, peft_config = policy_with_adapter(spec)
    events.check()
    with (
        atomic_dir(spec.output_dir) as out,
        tempfile.TemporaryDirectory(prefix="kto-trainer-") as scratch,
    ):
        args = KTOConfig(
            output_dir=scratch,
            beta=spec.beta,
            desirable_weight=spec.desirable_weight,
            undesirable_weight=spec.undesirable_weight,
            **offline_trainer_kwargs(spec),
        )
        trainer = anchored(KTOTrainer, spec.anchor_kl)(
            model=model,
            args=args,
            train_dataset=data.unpaired_dataset(train_rows),
            processing_class=tokenizer,
            peft_config=peft_config,
            callbacks=[ProgressCallback(events)],
        )
        quiet_trainer(trainer)
        labels = [bool(r["label"]) for r in eval_rows]
        metrics, data_hash = train_and_save(
            trainer,
            tokenizer,
            spec,
            events,
            out,
            method="kto",
            eval_rows=eval_rows,
            num_train=len(train_rows),
            logps=completion_logps,
            score=lambda policy, reference: label_metrics(policy, reference, labels, spec.beta),
        )
    return KTOResult(
        checkpoint_dir=str(Path(spec.output_dir).resolve()),
        data_hash=data_hash,
        wall_s=round(time.monotonic() - start, 3),
        **metrics,
    )
