"""Templated assistant dialogues over small question families: the built-in models' world.

Every family makes questions with one known right answer and plausible wrong ones. Responses
vary in correctness, politeness, length and format, so preference rules (``rules.py``) have
something to judge. Everything is driven by an explicit ``random.Random(seed)``: reproducible.

Public helpers for the Django side: :data:`FAMILIES`, :data:`HELD_OUT_FAMILIES`,
:func:`demo_prompts`, :func:`sample_response`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

SYSTEM_PROMPT = "You are a helpful assistant."


@dataclass(frozen=True)
class Question:
    family: str
    text: str
    answer: str
    wrong: tuple[str, ...]
    subject: str  # the noun phrase used in full-sentence answers


@dataclass(frozen=True)
class Response:
    text: str
    correct: bool
    politeness: int  # -1 rude, 0 neutral, 1 polite
    style: str  # short | sentence | verbose
    fmt: str  # plain | answer | bullet


# --------------------------------------------------------------------------- question families

_CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid", "Japan": "Tokyo",
    "Egypt": "Cairo", "Canada": "Ottawa", "Kenya": "Nairobi", "Peru": "Lima", "Norway": "Oslo",
    "Greece": "Athens", "Poland": "Warsaw", "Chile": "Santiago", "Cuba": "Havana", "India": "New Delhi",
    "China": "Beijing", "Russia": "Moscow", "Austria": "Vienna", "Ireland": "Dublin", "Portugal": "Lisbon",
}  # fmt: skip
_COLOURS = {
    "the sky": "blue", "grass": "green", "snow": "white", "coal": "black", "a banana": "yellow",
    "blood": "red", "a carrot": "orange", "a plum": "purple", "chocolate": "brown", "a lemon": "yellow",
    "the sea": "blue", "milk": "white", "a tomato": "red", "a frog": "green", "a crow": "black",
}  # fmt: skip
_OPPOSITES = {
    "hot": "cold", "big": "small", "up": "down", "fast": "slow", "happy": "sad", "light": "dark",
    "old": "young", "open": "closed", "full": "empty", "early": "late", "hard": "soft", "wet": "dry",
    "rich": "poor", "loud": "quiet", "strong": "weak", "thick": "thin",
}  # fmt: skip
_SOUNDS = {
    "a cow": "moo", "a dog": "woof", "a cat": "meow", "a duck": "quack", "a sheep": "baa",
    "a lion": "roar", "a snake": "hiss", "a pig": "oink", "an owl": "hoot", "a horse": "neigh",
    "a bee": "buzz", "a mouse": "squeak", "a frog": "croak", "a rooster": "cock-a-doodle-doo",
}  # fmt: skip
_DEFINITIONS = {
    "a chair": "a seat for one person", "a cup": "a small container for drinking",
    "a book": "a set of printed pages", "a key": "a tool that opens a lock",
    "a clock": "a device that shows the time", "a bed": "a piece of furniture for sleeping",
    "a map": "a drawing of an area of land", "a pen": "a tool for writing with ink",
    "a bridge": "a structure that crosses a river", "a window": "an opening in a wall that lets in light",
    "a ladder": "a set of steps for climbing", "a spoon": "a tool for eating soup",
}  # fmt: skip
_PLURALS = {
    "mouse": "mice", "child": "children", "foot": "feet", "tooth": "teeth", "goose": "geese",
    "man": "men", "woman": "women", "person": "people", "box": "boxes", "city": "cities",
    "knife": "knives", "leaf": "leaves", "wolf": "wolves", "bus": "buses", "baby": "babies",
}  # fmt: skip
_LEGS = {
    "a spider": "8", "a dog": "4", "a bird": "2", "an ant": "6", "a cat": "4", "a human": "2",
    "a horse": "4", "a beetle": "6", "an octopus": "8", "a chicken": "2", "a cow": "4", "a bee": "6",
}  # fmt: skip
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _pick_wrong(rng: random.Random, right: str, pool: Sequence[str], k: int = 3) -> tuple[str, ...]:
    options = sorted({p for p in pool if p != right})
    return tuple(rng.sample(options, min(k, len(options))))


def _arithmetic(rng: random.Random) -> Question:
    a, b = rng.randint(1, 20), rng.randint(1, 20)
    op = rng.choice(["+", "-", "*"])
    value = a + b if op == "+" else a - b if op == "-" else a * b
    wrong = sorted({str(value + d) for d in (-2, -1, 1, 2, 10)})
    word = {"+": "plus", "-": "minus", "*": "times"}[op]
    return Question("arithmetic", f"What is {a} {word} {b}?", str(value), tuple(rng.sample(wrong, 3)),
                    f"{a} {word} {b}")  # fmt: skip


def _table_family(
    family: str, table: dict[str, str], template: str, subject: str
) -> Callable[[random.Random], Question]:
    def make(rng: random.Random) -> Question:
        key = rng.choice(sorted(table))
        right = table[key]
        return Question(family, template.format(key), right, _pick_wrong(rng, right, tuple(table.values())),
                        subject.format(key))  # fmt: skip

    return make


def _next_day(rng: random.Random) -> Question:
    i = rng.randrange(7)
    right = _DAYS[(i + 1) % 7]
    return Question("weekdays", f"What day comes after {_DAYS[i]}?", right, _pick_wrong(rng, right, _DAYS),
                    f"the day after {_DAYS[i]}")  # fmt: skip


def _bigger(rng: random.Random) -> Question:
    a, b = rng.sample(range(1, 100), 2)
    return Question("comparisons", f"Which is bigger, {a} or {b}?", str(max(a, b)), (str(min(a, b)),),
                    "the bigger number")  # fmt: skip


FAMILIES: dict[str, Callable[[random.Random], Question]] = {
    "arithmetic": _arithmetic,
    "capitals": _table_family(
        "capitals", _CAPITALS, "What is the capital of {}?", "the capital of {}"
    ),
    "colours": _table_family("colours", _COLOURS, "What colour is {}?", "the colour of {}"),
    "opposites": _table_family(
        "opposites", _OPPOSITES, "What is the opposite of {}?", "the opposite of {}"
    ),
    "animal_sounds": _table_family(
        "animal_sounds", _SOUNDS, "What sound does {} make?", "the sound of {}"
    ),
    "definitions": _table_family("definitions", _DEFINITIONS, "What is {}?", "{}"),
    "plurals": _table_family("plurals", _PLURALS, "What is the plural of {}?", "the plural of {}"),
    "animal_legs": _table_family(
        "animal_legs", _LEGS, "How many legs does {} have?", "the number of legs of {}"
    ),
    "weekdays": _next_day,
    "comparisons": _bigger,
}
# Families the bootstrap policy never sees: demo prompts for generalisation checks.
HELD_OUT_FAMILIES: tuple[str, ...] = ("animal_legs", "comparisons")
TRAIN_FAMILIES: tuple[str, ...] = tuple(f for f in FAMILIES if f not in HELD_OUT_FAMILIES)

# --------------------------------------------------------------------------- responses

POLITE_OPENERS = ("Sure! ", "Happy to help. ", "Great question! ", "Of course! ")
POLITE_CLOSERS = (
    " Hope this helps!",
    " Let me know if you need anything else.",
    " Thanks for asking!",
)
RUDE_OPENERS = ("Ugh. ", "Obviously, ", "Seriously? ", "Whatever. ")
RUDE_CLOSERS = (" Look it up next time.", " Everyone knows that.", " Stop asking.")
_FILLER = (
    " I thought about it carefully before answering.",
    " People ask this question often.",
    " It helps to remember that.",
)


def sample_response(
    question: Question,
    rng: random.Random,
    *,
    p_correct: float = 0.6,
    p_polite: float = 0.4,
    p_rude: float = 0.25,
) -> Response:
    """One templated assistant answer with random correctness, politeness, length and format."""
    correct = rng.random() < p_correct
    answer = question.answer if correct else rng.choice(question.wrong)
    roll = rng.random()
    politeness = 1 if roll < p_polite else -1 if roll < p_polite + p_rude else 0
    style = rng.choice(("short", "sentence", "verbose"))
    fmt = rng.choice(("plain", "plain", "answer", "bullet"))
    subject = question.subject[0].upper() + question.subject[1:]
    core = {
        "short": f"{answer}.",
        "sentence": f"{subject} is {answer}.",
        "verbose": f"{subject} is {answer}.{rng.choice(_FILLER)}",
    }[style]
    if fmt == "answer":
        core = f"Answer: {core}"
    elif fmt == "bullet":
        core = f"- {core}"
    if politeness > 0:
        text = rng.choice(POLITE_OPENERS) + core + rng.choice(POLITE_CLOSERS)
    elif politeness < 0:
        text = rng.choice(RUDE_OPENERS) + core + rng.choice(RUDE_CLOSERS)
    else:
        text = core
    return Response(text, correct, politeness, style, fmt)


def prompt_messages(question: Question, *, with_system: bool) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": SYSTEM_PROMPT}] if with_system else []
    messages.append({"role": "user", "content": question.text})
    return messages


def sample_question(rng: random.Random, families: Sequence[str] = TRAIN_FAMILIES) -> Question:
    return FAMILIES[rng.choice(sorted(families))](rng)


def dialogues(
    n: int, seed: int, families: Sequence[str] = TRAIN_FAMILIES
) -> list[list[dict[str, str]]]:
    """``n`` full conversations (optional system, user, assistant) for language-model pretraining."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        question = sample_question(rng, families)
        messages = prompt_messages(question, with_system=rng.random() < 0.5)
        messages.append({"role": "assistant", "content": sample_response(question, rng).text})
        out.append(messages)
    return out


def demo_prompts(
    n: int,
    seed: int = 0,
    *,
    held_out: bool | Sequence[str] = False,
    with_system: bool = True,
) -> list[dict[str, object]]:
    """``n`` prompt rows ``{"prompt_id", "family", "prompt": [messages]}`` for demos and tests.

    ``held_out=False`` draws from the families the built-in policy was trained on, ``True`` only
    from :data:`HELD_OUT_FAMILIES`, a list of names from exactly those families.
    """
    if held_out is True:
        families: Sequence[str] = HELD_OUT_FAMILIES
    elif held_out is False:
        families = TRAIN_FAMILIES
    else:
        families = tuple(held_out)
        unknown = sorted(set(families) - set(FAMILIES))
        if unknown:
            raise ValueError(f"unknown question families {unknown}; known: {sorted(FAMILIES)}")
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    for index in range(n):
        question = sample_question(rng, families)
        rows.append(
            {
                "prompt_id": f"demo-{seed}-{index}",
                "family": question.family,
                "prompt": prompt_messages(question, with_system=with_system),
            }
        )
    return rows


# --------------------------------------------------------------------------- answer lookup

_PATTERNS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"What is (\d+) (plus|minus|times) (\d+)\?"),
     lambda m: str({"plus": int.__add__, "minus": int.__sub__, "times": int.__mul__}[m[2]](int(m[1]), int(m[3])))),
    (re.compile(r"What is the capital of (.+)\?"), lambda m: _CAPITALS[m[1]]),
    (re.compile(r"What colour is (.+)\?"), lambda m: _COLOURS[m[1]]),
    (re.compile(r"What is the opposite of (.+)\?"), lambda m: _OPPOSITES[m[1]]),
    (re.compile(r"What sound does (.+) make\?"), lambda m: _SOUNDS[m[1]]),
    (re.compile(r"What is the plural of (.+)\?"), lambda m: _PLURALS[m[1]]),
    (re.compile(r"How many legs does (.+) have\?"), lambda m: _LEGS[m[1]]),
    (re.compile(r"What day comes after (\w+)\?"), lambda m: _DAYS[(_DAYS.index(m[1]) + 1) % 7]),
    (re.compile(r"Which is bigger, (\d+) or (\d+)\?"), lambda m: str(max(int(m[1]), int(m[2])))),
    (re.compile(r"What is (.+)\?"), lambda m: _DEFINITIONS[m[1]]),
]  # fmt: skip


def answer_for(question_text: str) -> str | None:
    """The right answer to a templated question, or None for a question of no known family."""
    text = question_text.strip()
    for pattern, solve in _PATTERNS:
        match = pattern.fullmatch(text)
        if match is None:
            continue
        try:
            return solve(match)
        except (KeyError, ValueError):
            continue
    return None
