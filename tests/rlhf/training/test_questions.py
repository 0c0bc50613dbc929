"""Real questions with known answers (the smollm2 preset) and the rules that judge them."""

from __future__ import annotations

from rlhf.training import questions, rules, specs


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_arithmetic_is_judged_by_the_last_number() -> None:
    prompt = ask("What is 12 times 3?")
    assert rules.factual(prompt, "12 times 3 is 36.") == 1.0
    assert rules.factual(prompt, "12 x 3 = 36") == 1.0
    assert rules.factual(prompt, "12 times 3 is 32.") == 0.0  # SmolLM2's own greedy answer
    assert rules.factual(prompt, "The answer is 360.") == 0.0
    assert rules.factual(ask("What is 5 minus 9?"), "5 - 9 = -4.") == 1.0
    assert rules.factual(prompt, "I cannot say.") == 0.0


def test_facts_accept_their_spellings_as_whole_words() -> None:
    assert rules.factual(ask("What is the capital of France?"), "The capital of France is Paris.")
    assert not rules.factual(ask("What is the capital of France?"), "It is Parisian? Lyon.")
    spider = ask("How many legs does a spider have?")
    assert rules.factual(spider, "A spider has eight legs.") == 1.0
    assert rules.factual(spider, "Spiders have 8 legs.") == 1.0
    boil = ask("At what temperature in Celsius does water boil at sea level?")
    assert rules.factual(boil, "Water boils at 100 degrees Celsius (212 F).") == 1.0
    assert rules.factual(ask("Who painted the Mona Lisa?"), "Leonardo da Vinci painted it.")
    assert rules.factual(ask("What is the meaning of life?"), "42") == 0.0  # unknown question


def test_factual_brief_prefers_the_right_answer_then_the_short_one() -> None:
    prompt = ask("What is the capital of Japan?")
    short, long = "Tokyo.", "The capital of Japan is Tokyo, " + "a very large city " * 6 + "."
    wrong = "Kyoto."
    assert rules.factual_brief(prompt, short) > rules.factual_brief(prompt, long)
    assert rules.factual_brief(prompt, long) > rules.factual_brief(prompt, wrong)


def test_question_sets_are_reproducible_with_known_answers_and_some_arithmetic() -> None:
    train = questions.sample_questions(100, seed=0)
    assert train == questions.sample_questions(100, seed=0)
    assert [q.text for q in train] != [
        q.text for q in questions.sample_questions(100, 0, held_out=True)
    ]
    share = sum(q.topic == "arithmetic" for q in train) / len(train)
    assert 0.1 <= share <= 0.3
    for question in train:
        known = questions.question_for(question.text)
        assert known is not None and known.answer == question.answer
    rows = questions.prompt_rows(5, seed=2, held_out=True)
    assert len({r["prompt_id"] for r in rows}) == 5


def test_real_preferences_follow_their_rule() -> None:
    rows = rules.real_preferences(40, seed=0, rule="factual")
    assert len(rows) == 40
    for row in rows:
        assert rules.factual(row["prompt"], row["chosen"]) > rules.factual(
            row["prompt"], row["rejected"]
        )


def test_every_rule_is_a_valid_evaluation_rule() -> None:
    assert set(specs.RULE_NAMES) == set(rules.RULES)
