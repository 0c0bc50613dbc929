"""LoRA helpers on hand-made modules: no training."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn

from rlhf.training import lora


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(6, 5)
        self.head = nn.Linear(5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.proj(x)))


def _member(base: nn.Module, seed: int, r: int = 2, alpha: int = 8) -> Any:
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=r, lora_alpha=alpha, target_modules=["proj"], modules_to_save=["head"])
    model = get_peft_model(copy.deepcopy(base), config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # a trained adapter: B and the head copy moved from their init
        for name, parameter in model.named_parameters():
            if "lora_" in name or "modules_to_save" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    return model.eval()


def test_the_averaged_adapter_is_the_members_weight_average_exactly() -> None:
    from peft import (
        LoraConfig,
        get_peft_model,
        get_peft_model_state_dict,
        set_peft_model_state_dict,
    )

    torch.manual_seed(0)
    base = _Tiny()
    members = [_member(base, seed) for seed in (1, 2, 3)]
    x = torch.randn(7, 6)
    # what the reward step's merged/ is: the members merged, their weights averaged
    merged = [copy.deepcopy(m).merge_and_unload() for m in members]
    soup = copy.deepcopy(merged[0])
    soup.load_state_dict({k: sum(m.state_dict()[k] for m in merged) / 3 for k in soup.state_dict()})
    states = [get_peft_model_state_dict(m) for m in members]
    config = members[0].peft_config["default"].to_dict()
    state, averaged = lora.average_adapters(states, config)
    assert averaged["r"] == 6 and averaged["lora_alpha"] == 8  # rank 3 x 2, alpha kept
    adapter = get_peft_model(
        copy.deepcopy(base),
        LoraConfig(r=6, lora_alpha=8, target_modules=["proj"], modules_to_save=["head"]),
    )
    result = set_peft_model_state_dict(adapter, state)
    assert not getattr(result, "unexpected_keys", [])
    with torch.no_grad():
        got, want = adapter.eval()(x), soup.eval()(x)
        assert torch.allclose(got, want, atol=1e-6)
        # not member 0's alone, which is what the adapter used to be
        assert not torch.allclose(members[0](x), want, atol=1e-3)
    # one member is itself
    single, same = lora.average_adapters(states[:1], config)
    assert same["r"] == 2 and all(torch.equal(single[k], states[0][k]) for k in single)


def test_adapters_that_cannot_be_averaged_exactly_are_refused() -> None:
    torch.manual_seed(0)
    base = _Tiny()
    states = [dict(m) for m in (_lora_state(base, 1), _lora_state(base, 2))]
    config = {"r": 2, "lora_alpha": 8}
    with pytest.raises(ValueError, match="no adapters"):
        lora.average_adapters([], config)
    with pytest.raises(ValueError, match="rsLoRA"):
        lora.average_adapters(states, {**config, "use_rslora": True})
    with pytest.raises(ValueError, match="differ in their tensors"):
        lora.average_adapters([states[0], {k: v for k, v in states[1].items() if "head" not in k}],
                              config)  # fmt: skip
    with pytest.raises(ValueError, match="cannot average adapter tensor"):
        lora.average_adapters([{"x.lora_magnitude_vector": torch.ones(2)}] * 2, config)


def _lora_state(base: nn.Module, seed: int) -> dict[str, torch.Tensor]:
    from peft import get_peft_model_state_dict

    return dict(get_peft_model_state_dict(_member(base, seed)))
