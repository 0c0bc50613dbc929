"""The corpus and the rule-based judge agree, and demo prompts honour held-out families."""

from __future__ import annotations

import random

from rlhf.training import corpus, rules


def test_judge_recovers_generated_correctness_and_politeness() -> None:
    rng = random.Random(3)
    for _ in range(500):
        question = corpus.sample_question(rng, tuple(corpus.FAMILIES))
        prompt = corpus.prompt_messages(question, with_system=False)
        response = corpus.sample_response(question, rng)
        assert rules.is_correct(prompt, response.text) == response.correct
        assert rules.politeness(response.text) == response.politeness


def test_correct_polite_prefers_correct_and_polite() -> None:
    prompt = [{"role": "user", "content": "What is the capital of France?"}]
    good = "Sure! The capital of France is Paris. Hope this helps!"
    rude_right = "Ugh. Paris. Stop asking."
    polite_wrong = "Sure! The capital of France is Rome. Hope this helps!"
    assert rules.correct_polite(prompt, good) > rules.correct_polite(prompt, rude_right)
    assert rules.correct_polite(prompt, rude_right) > rules.correct_polite(prompt, polite_wrong)


def test_demo_prompts_are_reproducible_and_respect_held_out() -> None:
    assert corpus.demo_prompts(10, seed=1) == corpus.demo_prompts(10, seed=1)
    held = corpus.demo_prompts(30, seed=1, held_out=True)
    assert {r["family"] for r in held} <= set(corpus.HELD_OUT_FAMILIES)
    trained = corpus.demo_prompts(60, seed=1)
    assert not {r["family"] for r in trained} & set(corpus.HELD_OUT_FAMILIES)


def test_synthetic_preferences_follow_the_rule() -> None:
    rows = rules.synthetic_preferences(50, seed=2, rule="correct_polite")
    for row in rows:
        assert rules.correct_polite(row["prompt"], row["chosen"]) > rules.correct_polite(
            row["prompt"], row["rejected"]
        )
