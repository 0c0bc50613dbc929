"""Score step: both responses of each pair under a merged reward model, into a JSONL file,
with the pair's information: what its label would teach the reward model. Given the ``members``
the reward step kept (``RewardSpec.keep_members``: the models it averaged), that is how much they
disagree about the pair (``scoring.ensemble_information``, query by committee); without them, the
dropout ensemble of the model's own head (``scoring.bald``).

The worker runs it after a reward step (and after a round's generate step) for projects whose
queue is ordered by the reward model's uncertainty; the ordering itself is ``rlhf.prioritize``.
"""

from __future__ import annotations

import json
import time
from typing import Any

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
    responses_a, responses_b = [p["a"] for p in pairs], [p["b"] for p in pairs]
    if len(spec.members) >= 2:  # the committee's disagreement; the head's masks are not needed
        rewards_a = scoring.score(
            model, tokenizer, prompts, responses_a, batch_size=spec.batch_size
        )
        rewards_b = scoring.score(
            model, tokenizer, prompts, responses_b, batch_size=spec.batch_size
        )
        information = committee_information(spec, device, prompts, responses_a, responses_b, events)
    else:
        rewards_a, rewards_b, information = scoring.score_pairs(
            model, tokenizer, prompts, responses_a, responses_b, batch_size=spec.batch_size
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


def committee_information(
    spec: ScoreSpec,
    device: str,
    prompts: list[Any],
    responses_a: list[str],
    responses_b: list[str],
    events: Events,
) -> list[float]:
    """Each pair's information under the committee of ``spec.members`` (query by committee):
    BALD over the members' margins, one member loaded at a time."""
    columns = []
    for member in spec.members:
        model, tokenizer = scoring.load_reward_model(
            member, device, model_dtype(spec.dtype, device)
        )
        columns.append(
            scoring.margins(
                model, tokenizer, prompts, responses_a, responses_b, batch_size=spec.batch_size
            )
        )
        del model
        events.check()
    return scoring.ensemble_information(list(map(list, zip(*columns, strict=True))))
