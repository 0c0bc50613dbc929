"""Score step: both responses of each pair under a merged reward model, into a JSONL file,
with the pair's information (``scoring.bald``: what its label would teach the reward model).

The worker runs it after a reward step (and after a round's generate step) for projects whose
queue is ordered by the reward model's uncertainty; the ordering itself is ``rlhf.prioritize``.
"""

from __future__ import annotations

import json
import time

from rlhf.training import data, scoring
from rlhf.training.checkpoints import atomic_file
from rlhf.training.devices import configure_threads, model_dtype, resolve_device
from rlhf.training.progress import Events
from rlhf.training.specs import ScoreResult, ScoreSpec


def run(spec: ScoreSpec, events: Events | None = None) -> ScoreResult:
    events = events or Events()
    start = time.monotonic()
    configure_threads()
    pairs = data.load_pairs(spec.pairs)
    device = resolve_device(spec.device)
    model, tokenizer = scoring.load_reward_model(
        spec.reward_model, device, model_dtype(spec.dtype, device)
    )
    events.check()
    prompts = [p["prompt"] for p in pairs]
    rewards_a, rewards_b, information = scoring.score_pairs(
        model,
        tokenizer,
        prompts,
        [p["a"] for p in pairs],
        [p["b"] for p in pairs],
        batch_size=spec.batch_size,
    )
    events.log(f"score: {len(pairs)} pairs scored")
    with atomic_file(spec.output) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        for pair, reward_a, reward_b, bits in zip(
            pairs, rewards_a, rewards_b, information, strict=True
        ):
            row = {
                "id": pair["id"],
                "reward_a": reward_a,
                "reward_b": reward_b,
                "information": bits,
            }
            handle.write(json.dumps(row) + "\n")
    return ScoreResult(
        output=spec.output, num_pairs=len(pairs), wall_s=round(time.monotonic() - start, 3)
    )
