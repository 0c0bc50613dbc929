"""Every export format loads with ``datasets`` unchanged and TRL trains one step on it.

A tiny random Llama (~100k parameters) and a small BPE tokenizer with a chat template are built
once per session; DPOTrainer, RewardTrainer and KTOTrainer each run ``max_steps=1`` on CPU.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from labeling.models import Project

pytestmark = pytest.mark.training

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(0)
    special = ["<|pad|>", "<|bos|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    texts = [
        f"Question {i}? good answer {i} bad answer {i} Be brief. Human Assistant" for i in range(50)
    ]
    core.train_from_iterator(
        texts,
        trainer=trainers.BpeTrainer(
            vocab_size=400,
            special_tokens=special,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<|bos|>",
        eos_token="<|end|>",
        pad_token="<|pad|>",
        chat_template=CHAT_TEMPLATE,
        model_max_length=128,
    )
    config = LlamaConfig(  # type: ignore[call-arg]
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        num_labels=1,
    )
    directory = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return {"path": str(directory), "tokenizer": tokenizer}


def _args(config_class: Any, output: Path, **extra: Any) -> Any:
    return config_class(
        output_dir=str(output),
        max_steps=1,
        per_device_train_batch_size=2,
        use_cpu=True,
        bf16=False,
        report_to="none",
        gradient_checkpointing=False,
        logging_steps=1,
        save_strategy="no",
        max_length=64,
        **extra,
    )


def _export(project: Project, tmp_path: Path, fmt: str, name: str, *extra: str) -> Path:
    output = tmp_path / name
    call_command(
        "export_preferences", str(project.pk), "--format", fmt, "--output", str(output), *extra
    )
    return output


def test_dpo_on_jsonl_parquet_and_hh(
    judged_project: Project, tmp_path: Path, tiny: dict[str, Any]
) -> None:
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer

    standard = load_dataset(
        "json", data_files=str(_export(judged_project, tmp_path, "trl", "t.jsonl")), split="train"
    )
    assert standard.column_names == ["prompt", "chosen", "rejected"] and len(standard) == 9
    conversational = load_dataset(
        "parquet",
        data_files=str(_export(judged_project, tmp_path, "trl_conversational", "c.parquet")),
        split="train",
    )
    assert conversational[0]["chosen"][0]["role"] == "assistant"
    hh = load_dataset(
        "json", data_files=str(_export(judged_project, tmp_path, "hh", "h.jsonl")), split="train"
    )
    assert hh[0]["chosen"].startswith("\n\nSystem: Be brief.\n\nHuman: Q0?\n\nAssistant: ")
    for dataset in (standard, conversational, hh):
        model = AutoModelForCausalLM.from_pretrained(tiny["path"])
        trainer = DPOTrainer(
            model=model,
            args=_args(DPOConfig, tmp_path / "dpo"),
            train_dataset=dataset,
            processing_class=tiny["tokenizer"],
        )
        trainer.train()
        assert trainer.state.global_step == 1


def test_reward_on_hf_directory_with_margin(
    judged_project: Project, tmp_path: Path, tiny: dict[str, Any]
) -> None:
    from datasets import load_from_disk
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    directory = _export(
        judged_project, tmp_path, "trl", "hf", "--container", "hf", "--margin", "--test-size", "0.3"
    )
    dataset = load_from_disk(str(directory))
    assert set(dataset) == {"train", "test"} and len(dataset["train"]) + len(dataset["test"]) == 9
    assert set(dataset["train"]["prompt"]).isdisjoint(dataset["test"]["prompt"])
    assert "Content hash" in (directory / "README.md").read_text()
    model = AutoModelForSequenceClassification.from_pretrained(tiny["path"], num_labels=1)
    trainer = RewardTrainer(
        model=model,
        args=_args(RewardConfig, tmp_path / "rm"),
        train_dataset=dataset["train"],
        processing_class=tiny["tokenizer"],
    )
    trainer.train()
    assert trainer.state.global_step == 1


def test_kto_on_csv(judged_project: Project, tmp_path: Path, tiny: dict[str, Any]) -> None:
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM
    from trl import KTOConfig, KTOTrainer

    dataset = load_dataset(
        "csv", data_files=str(_export(judged_project, tmp_path, "kto", "k.csv")), split="train"
    )
    assert (
        dataset.column_names == ["prompt", "completion", "label"]
        and dataset.features["label"].dtype == "bool"
    )
    trainer = KTOTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny["path"]),
        args=_args(KTOConfig, tmp_path / "kto"),
        train_dataset=dataset,
        processing_class=tiny["tokenizer"],
    )
    trainer.train()
    assert trainer.state.global_step == 1


def test_raw_loads_everywhere(judged_project: Project, tmp_path: Path) -> None:
    from datasets import load_dataset

    for name, loader in (("r.jsonl", "json"), ("r.csv", "csv"), ("r.parquet", "parquet")):
        dataset = load_dataset(
            loader, data_files=str(_export(judged_project, tmp_path, "raw", name)), split="train"
        )
        assert len(dataset) == 18 and "shown_left" in dataset.column_names


def test_web_modules_never_import_torch() -> None:
    code = (
        "import django, os, sys; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.test_settings');"
        "django.setup();"
        "import config.urls, labeling.interchange.api, labeling.interchange.views, labeling.interchange.exports,"
        " labeling.interchange.imports, labeling.interchange.preference_imports, labeling.interchange.cards, labeling.interchange.formats;"
        "import labeling.management.commands.export_preferences, labeling.management.commands.import_preferences;"
        "heavy = sorted(m for m in ('torch', 'transformers', 'trl', 'datasets') if m in sys.modules);"
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert result.stdout.strip() == "", result.stdout


def test_datasets_alone_does_not_pull_torch() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import sys, datasets; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "False"
