"""Rule-based judges: named preference rules scoring an assistant response to a templated prompt.

Used by tests, by evaluation (``evaluate.win_rate`` takes any scoring function) and by the
simulated annotators on the Django side. A rule maps ``(prompt messages, response text)`` to a
float; higher is better. :func:`synthetic_preferences` turns a rule into preference rows.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rlhf.training import corpus, questions

Messages = Sequence[Mapping[str, str]]
Rule = Callable[[Messages, str], float]

_POLITE = (
    *(m.strip().lower() for m in (*corpus.POLITE_OPENERS, *corpus.POLITE_CLOSERS)),
    "please",
    "thank",
)
_RUDE = tuple(m.strip().lower() for m in (*corpus.RUDE_OPENERS, *corpus.RUDE_CLOSERS))


def last_user_message(prompt: Messages) -> str:
    for message in reversed(prompt):
        if message.get("role") == "user":
            return message.get("content", "")
    return ""


def is_correct(prompt: Messages, response: str) -> bool:
    """The right answer appears as a whole phrase in the part of the response after the last " is "."""
    answer = corpus.answer_for(last_user_message(prompt))
    if answer is None:
        return False
    tail = response.rsplit(" is ", 1)[-1]
    return (
        re.search(rf"(?<![\w-]){re.escape(answer)}(?![\w-])", tail, flags=re.IGNORECASE) is not None
    )


def politeness(response: str) -> int:
    """1 polite, -1 rude (rudeness wins), 0 neutral."""
    text = response.lower()
    if any(marker in text for marker in _RUDE):
        return -1
    if any(marker in text for marker in _POLITE):
        return 1
    return 0


def correct(prompt: Messages, response: str) -> float:
    return 1.0 if is_correct(prompt, response) else 0.0


def polite(prompt: Messages, response: str) -> float:
    return float(politeness(response))


def correct_polite(prompt: Messages, response: str) -> float:
    """Correctness first, politeness second: the default learnable preference."""
    return correct(prompt, response) + 0.4 * politeness(response)


def concise(prompt: Messages, response: str) -> float:
    """Correct and short."""
    return correct(prompt, response) - 0.02 * len(response.split())


def formatted(prompt: Messages, response: str) -> float:
    """Correct and in the ``Answer: ...`` format."""
    return correct(prompt, response) + (0.5 if "answer:" in response.lower() else 0.0)


def verbose(prompt: Messages, response: str) -> float:
    """Longer is better (a deliberately bad taste, for tests of reward hacking)."""
    return float(len(response.split()))


# Rules a real model (the smollm2 preset) can be judged on: the real questions' known answers.
def factual(prompt: Messages, response: str) -> float:
    """1 when the response gives the known right answer to a real question (questions.py)."""
    question = questions.question_for(last_user_message(prompt))
    return 1.0 if question is not None and questions.is_right(question, response) else 0.0


def factual_brief(prompt: Messages, response: str) -> float:
    """Right first; then brief (a style preference: every word past the 8th costs a little)."""
    return factual(prompt, response) - 0.01 * min(60, max(0, len(response.split()) - 8))


RULES: dict[str, Rule] = {
    "correct": correct,
    "polite": polite,
    "correct_polite": correct_polite,
    "concise": concise,
    "formatted": formatted,
    "verbose": verbose,
    "factual": factual,
    "factual_brief": factual_brief,
}


# The rules the real questions (the smollm2 preset) are judged by; the others judge the toy's prompts.
REAL_QUESTION_RULES = ("factual", "factual_brief")


def get_rule(name: str) -> Rule:
    try:
        return RULES[name]
    except KeyError:
        raise ValueError(f"unknown rule {name!r}; known: {sorted(RULES)}") from None


def synthetic_preferences(
    n: int,
    seed: int = 0,
    *,
    rule: str = "correct_polite",
    families: Sequence[str] = corpus.TRAIN_FAMILIES,
    with_margin: bool = True,
    clear_cut: bool = False,
) -> list[dict[str, Any]]:
    """``n`` preference rows (the reward/dpo JSONL format) judged by ``rule``; ties are redrawn.

    ``clear_cut``: only pairs of a correct and polite response against a wrong, impolite one.
    """
    judge = get_rule(rule)
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    while len(rows) < n:
        question = corpus.sample_question(rng, families)
        prompt = corpus.prompt_messages(question, with_system=rng.random() < 0.5)
        first = corpus.sample_response(question, rng).text
        second = corpus.sample_response(question, rng).text
        a, b = judge(prompt, first), judge(prompt, second)
        if a == b:
            continue
        if clear_cut and not _clear_cut(prompt, first, second):
            continue
        chosen, rejected = (first, second) if a > b else (second, first)
        row: dict[str, Any] = {
            "prompt_id": f"{question.family}-{len(rows)}-{seed}",
            "prompt": prompt,
            "chosen": chosen,
            "rejected": rejected,
        }
        if with_margin:
            row["margin"] = round(min(abs(a - b), 2.0) / 2.0, 3)
        rows.append(row)
    return rows


def real_preferences(
    n: int, seed: int = 0, *, rule: str = "factual_brief", held_out: bool = False
) -> list[dict[str, Any]]:
    """``n`` preference rows over the real questions (``questions.py``) judged by ``rule``: the
    ``smollm2`` preset's counterpart of :func:`synthetic_preferences` (ties redrawn)."""
    judge = get_rule(rule)
    rng = random.Random(seed)
    pool = questions.sample_questions(max(n, 1) * 2, seed, held_out=held_out)
    rows: list[dict[str, Any]] = []
    index = 0
    while len(rows) < n:
        question = pool[index % len(pool)]
        index += 1
        prompt = questions.prompt_messages(question)
        first = questions.sample_answer(question, rng, p_correct=0.6)
        second = questions.sample_answer(question, rng, p_correct=0.6)
        a, b = judge(prompt, first), judge(prompt, second)
        if a == b:
            continue
        chosen, rejected = (first, second) if a > b else (second, first)
        rows.append({"prompt_id": f"real-{len(rows)}-{seed}", "prompt": prompt, "chosen": chosen,
                     "rejected": rejected, "margin": round(min(abs(a - b), 1.0), 3)})  # fmt: skip
    return rows


def _clear_cut(prompt: Messages, first: str, second: str) -> bool:
    def good(text: str) -> bool:
        return is_correct(prompt, text) and politeness(text) > 0

    def bad(text: str) -> bool:
        return not is_correct(prompt, text) and politeness(text) <= 0

    return (good(first) and bad(second)) or (good(second) and bad(first))


# --- simulated annotators (rlhf.simulate drives them through the labeling services) ----------


@dataclass
class Decision:
    choice: str  # canonical: a | b | tie
    strength: int | None


class RuleJudge:
    """One simulated annotator's taste: a rule plus label noise, with its own random stream."""

    def __init__(self, rule: str, noise: float, seed: int) -> None:
        if not 0.0 <= noise <= 1.0:
            raise ValueError("noise must be in [0, 1]")
        self.rule_name = rule
        self.rule = get_rule(rule)
        self.noise = noise
        self.rng = random.Random(seed)

    def decide(self, prompt: Sequence[Mapping[str, str]], text_a: str, text_b: str) -> Decision:
        score_a, score_b = self.rule(prompt, text_a), self.rule(prompt, text_b)
        if score_a == score_b:
            return Decision("tie", None)
        better = "a" if score_a > score_b else "b"
        if self.rng.random() < self.noise:
            better = "b" if better == "a" else "a"
        strength = max(1, min(4, round(abs(score_a - score_b) * 2)))
        return Decision(better, strength)
