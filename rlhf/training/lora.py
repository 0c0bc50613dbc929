"""LoRA adapters: configs from a spec, and warm starts from a previous adapter's weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rlhf.training.specs import SpecError


def target_modules(modules: tuple[str, ...]) -> str | list[str]:
    return "all-linear" if modules == ("all-linear",) else sorted(modules)


def lora_config(
    *,
    r: int,
    alpha: int,
    dropout: float,
    modules: tuple[str, ...],
    task_type: str,
    parent_adapter: str | None = None,
    modules_to_save: list[str] | None = None,
    top_layers: int = 0,
    model: Any = None,
) -> Any:
    """A fresh trainable LoraConfig; with a parent adapter, the parent's shape (r, alpha, targets,
    layers) wins. ``top_layers`` > 0 adapts only the last ``top_layers`` layers of ``model``."""
    from peft import LoraConfig

    if parent_adapter is not None:
        parent = json.loads(Path(parent_adapter, "adapter_config.json").read_text(encoding="utf-8"))
        if parent.get("peft_type") != "LORA":
            raise SpecError(f"field 'parent_adapter': not a LoRA adapter: {parent_adapter}")
        if parent.get("task_type") != task_type:
            raise SpecError(
                f"field 'parent_adapter': adapter task {parent.get('task_type')!r} does not match {task_type!r}"
            )
        r, alpha = int(parent["r"]), int(parent["lora_alpha"])
        parent_targets = parent["target_modules"]
        targets: str | list[str] = (
            parent_targets if isinstance(parent_targets, str) else sorted(parent_targets)
        )
        modules_to_save = parent.get("modules_to_save") or modules_to_save
        layers = parent.get("layers_to_transform")
    else:
        targets = target_modules(modules)
        layers = None
        num_layers = getattr(getattr(model, "config", None), "num_hidden_layers", None)
        if top_layers and num_layers and top_layers < num_layers:
            layers = list(range(num_layers - top_layers, num_layers))
            if isinstance(targets, str):  # PEFT takes layer indices only with named modules
                targets = layer_linear_names(model)
    return LoraConfig(
        task_type=task_type,
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=targets,
        modules_to_save=modules_to_save,
        layers_to_transform=layers,
        bias="none",
    )


def load_adapter_weights(
    peft_model: Any, adapter_dir: str | Path, adapter_name: str = "default"
) -> None:
    """Copy a saved adapter's tensors into ``peft_model``'s (trainable) adapter ``adapter_name``."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = load_file(str(Path(adapter_dir, "adapter_model.safetensors")))
    result = set_peft_model_state_dict(peft_model, weights, adapter_name=adapter_name)
    missing = list(getattr(result, "unexpected_keys", []))
    if missing:
        raise SpecError(
            f"field 'parent_adapter': adapter weights do not fit the model: {missing[:3]}"
        )


def average_adapters(
    states: list[dict[str, Any]], config: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One LoRA adapter equal to the weight average of several of the same shape (the same base,
    targets, ``r`` and ``lora_alpha``): ``(state, adapter_config)`` in the saved form
    (``get_peft_model_state_dict`` keys, ``adapter_config.json``).

    Each adapted layer's average update ``(1/m) sum_i s B_i A_i`` (``s = lora_alpha / r``) is
    exactly one LoRA of rank ``m r``: the members' ``A`` stacked, their ``B`` side by side, at
    ``s / m`` (``lora_alpha`` kept, the new ``r`` is ``m r``). Other saved tensors (the head,
    ``modules_to_save``) are averaged. So the adapter on its base scores as the members' merged
    average does (``rlhf.training.reward.average_members``), at ``m`` times the adapter's size."""
    import torch

    if not states:
        raise ValueError("no adapters to average")
    if config.get("use_rslora") or config.get("rank_pattern") or config.get("alpha_pattern"):
        raise ValueError("only a plain LoRA (one r and alpha, no rsLoRA) can be averaged exactly")
    keys = set(states[0])
    if any(set(state) != keys for state in states[1:]):
        raise ValueError("the adapters differ in their tensors")
    members = len(states)
    out: dict[str, Any] = {}
    for key in sorted(keys):
        tensors = [state[key] for state in states]
        if key.endswith("lora_A.weight"):  # [r, in]: the members' rows stacked
            out[key] = torch.cat(tensors, dim=0).contiguous()
        elif key.endswith("lora_B.weight"):  # [out, r]: their columns side by side
            out[key] = torch.cat(tensors, dim=1).contiguous()
        elif ".lora_" in key:
            raise ValueError(f"cannot average adapter tensor {key}")
        else:
            out[key] = (sum(t.double() for t in tensors) / members).to(tensors[0].dtype)
    return out, {**config, "r": int(config["r"]) * members}


def classifier_head(model: Any) -> str:
    """Name of the scalar head of a sequence classifier (``score`` for Llama, ``classifier`` for BERT)."""
    names = {name for name, _ in model.named_children()}
    for candidate in ("score", "classifier"):
        if candidate in names:
            return candidate
    raise SpecError(
        f"field 'base_model': cannot find the classification head among {sorted(names)}"
    )


def layer_linear_names(model: Any) -> list[str]:
    """The names of the linear layers inside the model's numbered transformer blocks (what
    "all-linear" adapts, minus the heads)."""
    from torch import nn

    names = set()
    for name, module in model.named_modules():
        parts = name.split(".")
        if isinstance(module, nn.Linear) and any(part.isdigit() for part in parts[:-1]):
            names.add(parts[-1])
    if not names:
        raise SpecError("field 'lora_top_layers': the model has no numbered layers of linears")
    return sorted(names)
