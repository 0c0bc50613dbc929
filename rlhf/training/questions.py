"""Real questions with known answers: the prompts of the ``smollm2`` preset's demo and benchmarks.

Plain Python (no torch, no Django): the demo project, the simulated annotators' rules
(``rules.factual``, ``rules.factual_brief``) and the benchmarks read it. Each question has one
right answer (and accepted spellings) that a real chat model can be judged on; a few are
arithmetic, generated from a seed. :func:`sample_answer` writes answers of varying correctness
and length for the demo's comparisons.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

SYSTEM_PROMPT = "You are a helpful assistant. Answer briefly."


@dataclass(frozen=True)
class RealQuestion:
    topic: str
    text: str
    answer: str  # the right answer as a phrase the response must contain
    accepted: tuple[str, ...] = ()  # other spellings that count as right
    wrong: tuple[str, ...] = ()  # plausible wrong answers (demo responses)


_FACTS: tuple[tuple[str, str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("geography", "What is the capital of France?", "Paris", (), ("Lyon", "Marseille")),
    ("geography", "What is the capital of Japan?", "Tokyo", (), ("Kyoto", "Osaka")),
    ("geography", "What is the capital of Italy?", "Rome", (), ("Milan", "Naples")),
    ("geography", "What is the capital of Spain?", "Madrid", (), ("Barcelona", "Seville")),
    ("geography", "What is the capital of Germany?", "Berlin", (), ("Munich", "Bonn")),
    ("geography", "What is the capital of Canada?", "Ottawa", (), ("Toronto", "Montreal")),
    ("geography", "What is the capital of Australia?", "Canberra", (), ("Sydney", "Melbourne")),
    ("geography", "What is the capital of Egypt?", "Cairo", (), ("Alexandria", "Giza")),
    ("geography", "What is the capital of Russia?", "Moscow", (), ("Saint Petersburg", "Kazan")),
    ("geography", "What is the capital of the United Kingdom?", "London", (), ("Manchester", "Edinburgh")),
    ("geography", "Which is the largest ocean on Earth?", "Pacific", (), ("Atlantic", "Indian")),
    ("geography", "On which continent is Kenya?", "Africa", (), ("Asia", "South America")),
    ("geography", "What is the longest river in South America?", "Amazon", (), ("Orinoco", "Parana")),
    ("geography", "Which country has the largest population in South America?", "Brazil", (), ("Argentina", "Colombia")),
    ("science", "What is the chemical symbol for gold?", "Au", (), ("Ag", "Gd")),
    ("science", "What is the chemical symbol for sodium?", "Na", (), ("So", "Sd")),
    ("science", "What gas do plants take in from the air for photosynthesis?", "carbon dioxide", ("CO2",), ("oxygen", "nitrogen")),
    ("science", "What planet is known as the Red Planet?", "Mars", (), ("Venus", "Jupiter")),
    ("science", "What is the largest planet in the solar system?", "Jupiter", (), ("Saturn", "Neptune")),
    ("science", "How many planets are in the solar system?", "8", ("eight",), ("9", "7")),
    ("science", "At what temperature in Celsius does water boil at sea level?", "100", ("one hundred",), ("90", "212")),
    ("science", "At what temperature in Celsius does water freeze?", "0", ("zero",), ("32", "-10")),
    ("science", "What is the chemical formula of water?", "H2O", (), ("CO2", "H2O2")),
    ("science", "What part of the cell contains the genetic material?", "nucleus", (), ("membrane", "ribosome")),
    ("science", "What force keeps us on the ground?", "gravity", (), ("magnetism", "friction")),
    ("science", "How many bones are in the adult human body?", "206", (), ("212", "186")),
    ("science", "What is the closest star to Earth?", "Sun", (), ("Proxima Centauri", "Sirius")),
    ("science", "What is the hardest natural substance?", "diamond", (), ("granite", "quartz")),
    ("nature", "How many legs does a spider have?", "8", ("eight",), ("6", "10")),
    ("nature", "How many legs does an insect have?", "6", ("six",), ("8", "4")),
    ("nature", "What is the largest mammal?", "blue whale", (), ("elephant", "giraffe")),
    ("nature", "What do bees make?", "honey", (), ("milk", "silk")),
    ("nature", "What is the fastest land animal?", "cheetah", (), ("lion", "horse")),
    ("history", "Who wrote Romeo and Juliet?", "Shakespeare", (), ("Dickens", "Marlowe")),
    ("history", "Who painted the Mona Lisa?", "Leonardo da Vinci", ("da Vinci", "Leonardo"), ("Michelangelo", "Raphael")),
    ("history", "Who was the first person to walk on the Moon?", "Neil Armstrong", ("Armstrong",), ("Buzz Aldrin", "Yuri Gagarin")),
    ("history", "In which year did World War II end?", "1945", (), ("1944", "1939")),
    ("history", "Who developed the theory of relativity?", "Einstein", (), ("Newton", "Bohr")),
    ("history", "Who wrote Pride and Prejudice?", "Jane Austen", ("Austen",), ("Charlotte Bronte", "Mary Shelley")),
    ("language", "What is the opposite of hot?", "cold", (), ("warm", "wet")),
    ("language", "What is the plural of mouse?", "mice", (), ("mouses", "meese")),
    ("language", "How many letters are in the English alphabet?", "26", ("twenty-six",), ("24", "28")),
    ("language", "What is the past tense of go?", "went", (), ("goed", "gone")),
    ("everyday", "How many days are in a week?", "7", ("seven",), ("5", "10")),
    ("everyday", "How many minutes are in an hour?", "60", ("sixty",), ("100", "30")),
    ("everyday", "How many hours are in a day?", "24", ("twenty-four",), ("12", "20")),
    ("everyday", "How many months are in a year?", "12", ("twelve",), ("10", "13")),
    ("everyday", "What colour do you get by mixing blue and yellow?", "green", (), ("purple", "orange")),
    ("everyday", "What colour do you get by mixing red and white?", "pink", (), ("purple", "orange")),
    ("everyday", "How many sides does a triangle have?", "3", ("three",), ("4", "5")),
    ("everyday", "How many sides does a hexagon have?", "6", ("six",), ("5", "8")),
)  # fmt: skip

FACTS: tuple[RealQuestion, ...] = tuple(
    RealQuestion(topic, text, answer, accepted, wrong)
    for topic, text, answer, accepted, wrong in _FACTS
)
_BY_TEXT = {q.text: q for q in FACTS}
_ARITHMETIC = re.compile(r"What is (\d+) (plus|minus|times) (\d+)\?")
ARITHMETIC_SHARE = 0.2  # of the prompts: arithmetic with a known answer


def arithmetic(rng: random.Random) -> RealQuestion:
    a, b = rng.randint(2, 30), rng.randint(2, 30)
    word = rng.choice(("plus", "minus", "times"))
    value = a + b if word == "plus" else a - b if word == "minus" else a * b
    return RealQuestion("arithmetic", f"What is {a} {word} {b}?", str(value), (),
                        (str(value + 1), str(value - 2), str(value + 10)))  # fmt: skip


def question_for(text: str) -> RealQuestion | None:
    """The known question with this text (facts, or any ``What is A plus|minus|times B?``)."""
    text = text.strip()
    if text in _BY_TEXT:
        return _BY_TEXT[text]
    match = _ARITHMETIC.fullmatch(text)
    if match is None:
        return None
    a, b = int(match[1]), int(match[3])
    value = {"plus": a + b, "minus": a - b, "times": a * b}[match[2]]
    return RealQuestion("arithmetic", text, str(value))


def is_right(question: RealQuestion, response: str) -> bool:
    """The right answer (or an accepted spelling) appears as a whole word or number. For
    arithmetic the *last* number of the response must be the answer (``7 + 5 = 12`` states 7 and
    5 first; ``12 times 3 is 32`` is wrong)."""
    if question.topic == "arithmetic":
        numbers = re.findall(r"(?<![\w.])-?\d+(?:\.\d+)?(?!\w|\.\d)", response.replace(",", ""))
        return bool(numbers) and numbers[-1] == question.answer
    return any(
        re.search(rf"(?<![\w-]){re.escape(phrase)}(?![\w-])", response, flags=re.IGNORECASE)
        for phrase in (question.answer, *question.accepted)
    )


def prompt_messages(question: RealQuestion, *, with_system: bool = True) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": SYSTEM_PROMPT}] if with_system else []
    messages.append({"role": "user", "content": question.text})
    return messages


def sample_questions(n: int, seed: int, *, held_out: bool = False) -> list[RealQuestion]:
    """``n`` questions: facts (each used once per cycle, shuffled) and ~20% arithmetic. Held-out
    draws (``held_out=True``) take the facts in another order and other arithmetic."""
    rng = random.Random(seed * 2 + (1 if held_out else 0))
    out: list[RealQuestion] = []
    pool: list[RealQuestion] = []
    for _ in range(n):
        if rng.random() < ARITHMETIC_SHARE:
            out.append(arithmetic(rng))
            continue
        if not pool:
            pool = list(FACTS)
            rng.shuffle(pool)
        out.append(pool.pop())
    return out


def prompt_rows(n: int, seed: int = 0, *, held_out: bool = False) -> list[dict[str, object]]:
    """Prompt rows ``{"prompt_id", "family", "prompt"}`` like :func:`corpus.demo_prompts`."""
    return [
        {
            "prompt_id": f"real-{'test' if held_out else 'train'}-{seed}-{index}",
            "family": question.topic,
            "prompt": prompt_messages(question),
        }
        for index, question in enumerate(sample_questions(n, seed, held_out=held_out))
    ]


_OPENERS = ("", "Sure! ", "Good question. ")
_LONG_TAILS = (
    " Let me know if you would like more details about this topic.",
    " This is a commonly asked question, and the answer is well established.",
    " I hope this helps you with your studies and any related questions.",
)


def sample_answer(question: RealQuestion, rng: random.Random, *, p_correct: float) -> str:
    """One answer: right with probability ``p_correct``, short or long, sometimes with an opener."""
    right = rng.random() < p_correct or not question.wrong
    value = question.answer if right else rng.choice(question.wrong)
    core = rng.choice((f"{value}.", f"The answer is {value}.", f"It is {value}."))
    tail = rng.choice(_LONG_TAILS) if rng.random() < 0.4 else ""
    return f"{rng.choice(_OPENERS)}{core}{tail}"
