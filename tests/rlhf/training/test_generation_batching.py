"""Batched generation (left padding, KV cache) gives what one prompt at a time gives, and the
generate step reports its throughput in tokens per second."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rlhf.training import corpus, generate
from rlhf.training.progress import Events
from rlhf.training.specs import GenerateSpec


def test_batched_greedy_equals_one_prompt_at_a_time(policy_dir: str) -> None:
    model, tokenizer = generate.load_policy(policy_dir, None, "cpu")
    rows = corpus.demo_prompts(12, seed=11)
    prompts = [r["prompt"] for r in rows]  # system + user: lengths differ, so padding is real
    texts = [tokenizer.apply_chat_template(p, tokenize=False) for p in prompts]
    widths = {len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]}
    assert len(widths) > 1
    batched = generate.sample(model, tokenizer, prompts, temperature=0.0, max_new_tokens=16,  # type: ignore[arg-type]
                              batch_size=12)  # fmt: skip
    alone = generate.sample(model, tokenizer, prompts, temperature=0.0, max_new_tokens=16,  # type: ignore[arg-type]
                            batch_size=1)  # fmt: skip
    assert batched == alone
    assert all(text for ((text, _),) in batched)


def test_generate_reports_tokens_per_second(
    policy_dir: str, prompts_file: Path, tmp_path: Path
) -> None:
    stream = io.StringIO()
    spec = GenerateSpec(base_model=policy_dir, prompts=str(prompts_file), output=str(tmp_path / "out.jsonl"),
                        num_samples=2, max_new_tokens=8, batch_size=8)  # fmt: skip
    generate.run(spec, Events(stream))
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    progress = [e for e in events if e["event"] == "progress"]
    assert progress and progress[-1]["step"] == progress[-1]["total"] == 16
    metrics = progress[-1]["metrics"]
    assert metrics["samples"] == 32
    assert 0 < metrics["new_tokens"] <= 32 * 8
    assert metrics["tokens_per_s"] > 0
    logs = " ".join(e["message"] for e in events if e["event"] == "log")
    assert "tokens/s" in logs and "torch threads" in logs
