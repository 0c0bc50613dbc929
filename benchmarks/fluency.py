"""Plain vs length-matched fluency (``rlhf/training/fluency.py``) on answers whose fluency is
known: the built-in base policy's own samples, its own briefest answers, its answers cut to their
first sentence or mid-sentence, and word salad; optionally the samples of tuned adapters
(``--adapters DIR...``, e.g. a benchmarks/loop.py run's ``checkpoints/run-N``).

Each set is read by the base model: its perplexity over the base model's perplexity on its own
samples (plain), and over its perplexity on its own samples of the same lengths (length-matched,
the curve fitted to one sample set and read on the others). A figure that calls brevity a
collapse reads the base model's own brief answers far above 1.

    .venv/bin/python benchmarks/fluency.py --models-dir DIR [--prompts 40] [--adapters ...]

Measured (2026-12-05, 2 CPU cores, the loop's toy models: the 175-step policy), ``--adapters``
the three rounds of ``benchmarks/loop.py --rule concise --seed 2``; 40 prompts, the curve fitted
on 4 samples a prompt, each set 8 more (plain / length-matched / share of answers over 3.5x
the base's own of their length / words):

- its own samples of another seed 0.97 / 0.99 / 3.1% / 11.0
- its own answers of at most 3 words (36) 4.55 / 1.33 / 11.1% / 1.6
- each cut to its first sentence 2.06 / 1.37 / 9.1% / 5.0
- each cut mid-sentence to 2 / 3 / 4 words 12.8 / 8.1 / 7.1 and 3.80 / 3.53 / 3.80
- words shuffled 3873 / 4075 / 92.2%
- concise seed 2, rounds 1 / 2 / 3: plain 1.42 / 1.89 / 3.74,
  matched 1.38 / 1.68 / 2.92, over 3.5x 5.3 / 13.8 / 30.6%, words 9.5 / 7.8 / 6.0. Round 3 is
  word salad in about a third of its answers ("Seriouslyrniture. Stop knows that."): both
  figures say so; the base model's own brief answers only the plain one calls a collapse.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rlhf.training import corpus, fluency, generate, scoring  # noqa: E402
from rlhf.training.devices import configure_threads  # noqa: E402

Messages = list[dict[str, str]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", required=True,
                        help="built-in models, e.g. $PAIRWISE_DATA_DIR/models (make demo's, or "
                        "benchmarks/loop.py's --models-from)")  # fmt: skip
    parser.add_argument("--prompts", type=int, default=40)
    parser.add_argument("--samples", type=int, default=8, help="samples a prompt of each set")
    parser.add_argument("--adapters", nargs="*", default=[], help="LoRA adapter dirs to read")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=0,
                        help="print this many of each adapter's answers, spread over their ratios")  # fmt: skip
    args = parser.parse_args()
    configure_threads()
    policy_dir = str(Path(args.models_dir) / "policy")
    base, tokenizer = generate.load_policy(policy_dir, None, "cpu", merge=False)
    prompts: list[Messages] = [
        row["prompt"]  # type: ignore[misc]
        for row in corpus.demo_prompts(args.prompts, seed=args.seed + 5)
    ]

    def samples(model: object, count: int, seed: int) -> tuple[list[Messages], list[str]]:
        drawn = generate.sample(model, tokenizer, prompts, num_samples=count, max_new_tokens=32,
                                temperature=1.0, seed=seed)  # fmt: skip
        return ([p for p, texts in zip(prompts, drawn, strict=True) for _ in texts],
                [text for texts in drawn for text, _ in texts])  # fmt: skip

    def read(messages: list[Messages], texts: list[str]) -> tuple[list[float], list[int]]:
        return scoring.completion_logps_and_counts(base, tokenizer, messages, texts)

    own = read(*samples(base, 4, args.seed + 1))
    curve = fluency.fit(*own)
    own_perplexity = scoring.perplexity(*own)
    print(f"curve: {curve.floor:.3f} + {curve.slope:.3f} / tokens nats a token; the base's own "
          f"samples read {own_perplexity:.2f} (plain)")  # fmt: skip
    print(f"{'answers':<46} {'plain':>8} {'matched':>8} {'over 3.5x':>9} {'words':>6}")

    def row(name: str, messages: list[Messages], texts: list[str], show: int = 0) -> None:
        figures = read(messages, texts)
        each = fluency.ratios(*figures, curve)
        words = sum(len(t.split()) for t in texts) / len(texts)
        print(f"{name:<46} {scoring.perplexity(*figures) / own_perplexity:>8.2f} "
              f"{fluency.ratio(*figures, curve):>8.2f} "
              f"{sum(r > 3.5 for r in each) / len(each):>9.1%} {words:>6.1f}")  # fmt: skip
        ranked = sorted(zip(each, texts, strict=True))
        for i in range(show):
            ratio, text = ranked[i * (len(ranked) - 1) // max(1, show - 1)]
            print(f"{'':<8}{ratio:>8.2f}  {text!r}")

    messages, texts = samples(base, args.samples, args.seed + 2)
    row("its own samples, another seed", messages, texts)
    brief = [i for i, text in enumerate(texts) if len(text.split()) <= 3]
    if brief:
        row(f"its own answers of at most 3 words ({len(brief)})",
            [messages[i] for i in brief], [texts[i] for i in brief])  # fmt: skip
    first = [t.split(". ")[0].split("! ")[-1].rstrip(".") + "." for t in texts]
    row("each cut to its first sentence", messages, first)
    for k in (2, 3, 4):
        row(
            f"each cut mid-sentence to {k} words",
            messages,
            [" ".join(t.split()[:k]) for t in texts],
        )
    rng = random.Random(args.seed)
    shuffled = []
    for text in texts:
        words = text.split()
        rng.shuffle(words)
        shuffled.append(" ".join(words))
    row("words shuffled", messages, shuffled)
    for adapter in args.adapters:
        model, _ = generate.load_policy(policy_dir, adapter, "cpu")
        row(f"adapter {Path(adapter).name}", *samples(model, args.samples, args.seed + 3),
            show=args.show)  # fmt: skip


if __name__ == "__main__":
    main()
