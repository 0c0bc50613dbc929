"""Memory and time of the DPO anchor's KL to the base (``dpo.token_kl_to_base``), forward and
backward on one batch, against the plain computation it replaced (the full batch x length x
vocabulary logits of the policy and of the base, then the float32 formula at the answers'
positions), measured in the same run.

The model: a Llama with SmolLM2-135M's vocabulary (49 152 tokens) and ``--layers`` small layers
with a LoRA adapter, random weights (the memory depends on the shapes, not the weights), so it
runs offline in seconds on a CPU. Each variant runs in its own process; the figure is the rise of
the process's peak resident memory from just before the batch to just after its backward pass,
and the wall time of that pass (best of ``--repeats``). The two KLs must agree (printed).

    .venv/bin/python benchmarks/anchor_memory.py [--batch 8] [--length 512] [--answer 128]

Measured (2026-12-06, 2 CPU cores shared with an active-learning benchmark, the defaults): full
logits 1781 MiB, 15.05 s; the anchor's computation 1000 MiB, 7.53 s: 0.56x the memory, 0.50x the
time, the same KL (0.014646). The first version of it (softmax chunks of 256 positions) rose
1111 MiB. What remains is the policy's and the base's logits at the answers' positions and their
gradient: three answer-tokens x vocabulary tensors (200 MB each here).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=2 * args.hidden,
        num_hidden_layers=args.layers, num_attention_heads=4, num_key_value_heads=4,
        max_position_embeddings=args.length, tie_word_embeddings=True,
    )  # fmt: skip
    model = get_peft_model(
        LlamaForCausalLM(config),
        LoraConfig(r=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    )
    ids = torch.randint(3, args.vocab, (args.batch, args.length))
    completion = torch.zeros_like(ids)
    completion[:, -args.answer :] = 1
    inputs = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "completion_mask": completion,
    }
    return model, inputs


def full_logits_kl(model: Any, inputs: dict[str, Any]) -> Any:
    """The computation before: full logits of both, then the formula on the answers' positions."""
    import torch
    from trl.trainer.utils import use_adapter

    batch = {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]}
    answer = inputs["completion_mask"][:, 1:].bool()
    policy = model(**batch, use_cache=False).logits[:, :-1][answer]
    with torch.no_grad(), use_adapter(model, adapter_name=None):
        base = model(**batch, use_cache=False).logits[:, :-1][answer]
    logp = torch.log_softmax(policy.float(), dim=-1)
    logq = torch.log_softmax(base.float(), dim=-1)
    return (logp.exp() * (logp - logq)).sum(-1).clamp_min(0.0).mean()


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(args: argparse.Namespace) -> dict[str, float]:
    import torch

    from rlhf.training import dpo

    torch.set_num_threads(args.threads)
    model, inputs = build(args)
    compute = full_logits_kl if args.variant == "full" else dpo.token_kl_to_base
    before = peak_mib()
    seconds = []
    for _ in range(args.repeats):
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        kl = compute(model, inputs)
        kl.backward()
        seconds.append(time.perf_counter() - start)
    return {"rise_mib": peak_mib() - before, "seconds": min(seconds), "kl": float(kl)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--answer", type=int, default=128, help="answer tokens per row")
    parser.add_argument("--vocab", type=int, default=49152)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variant", choices=("full", "anchor"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(measure(args)))
        return
    print(f"batch {args.batch} x {args.length} tokens ({args.answer} answer tokens a row), "
          f"vocabulary {args.vocab}; peak memory rise and best time of forward + backward")  # fmt: skip
    results = {}
    for variant in ("full", "anchor"):
        out = subprocess.run(
            [sys.executable, __file__, *sys.argv[1:], "--variant", variant],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        results[variant] = json.loads(out.strip().splitlines()[-1])
        r = results[variant]
        print(f"{variant:7s} {r['rise_mib']:8.0f} MiB {r['seconds']:7.2f} s  kl {r['kl']:.6f}")
    full, anchor = results["full"], results["anchor"]
    print(f"anchor / full: memory {anchor['rise_mib'] / full['rise_mib']:.2f}x, "
          f"time {anchor['seconds'] / full['seconds']:.2f}x, "
          f"kl difference {abs(anchor['kl'] - full['kl']):.2e}")  # fmt: skip


if __name__ == "__main__":
    main()
