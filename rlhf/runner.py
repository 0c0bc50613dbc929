"""The job runner: the ONLY bridge between the database and the training engine.

For one :class:`~rlhf.models.TrainingRun` it turns rows into a spec, writes the data files
(preference rows / prompts JSONL) into ``$PAIRWISE_DATA_DIR/runs/<run id>/``, runs the engine as
a child process under :func:`rlhf.supervision.supervise`::

    python -m rlhf.training <step> --spec spec.json --result result.json
    accelerate launch [--config_file F] -m rlhf.training <step> ...   (PAIRWISE_LAUNCHER=accelerate)

and records what it ended with through :mod:`rlhf.runs` (checkpoints, metrics, queue items).
The engine is never imported here (it runs in the child), so this module is safe to import in
a worker and in the web process. It enqueues nothing: :mod:`rlhf.tasks` does.

Settings (all optional): ``PAIRWISE_LAUNCHER`` (python | accelerate), ``PAIRWISE_ACCELERATE_CONFIG``,
``PAIRWISE_TRAINING_MODULE`` (default ``rlhf.training``); the supervision's in ``rlhf.supervision``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from labeling.models import QueueOrder
from labeling.services import comparisons_prioritize
from rlhf import prioritize, runs, selectors
from rlhf.methods import METHOD_REGISTRY, policy_engine_steps
from rlhf.models import (
    Checkpoint,
    Round,
    RunStatus,
    Step,
    TrainingRun,
    data_dir,
    relative_to_data,
    resolve_data_path,
)
from rlhf.signals import online_refused, reward_pairs_withheld
from rlhf.supervision import Listener, Progress, supervise
from rlhf.training.specs import DPOSpec, OnlineSpec

# Engine steps that train (they go through ``accelerate launch`` when so configured).
TRAINING_STEPS = ("bootstrap", "reward", *policy_engine_steps())


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


# --- the command line -----------------------------------------------------------------------------


def build_command(
    engine_step: str,
    spec_path: str | Path,
    result_path: str | Path,
    *,
    launcher: str | None = None,
    accelerate_config: str | None = None,
    module: str | None = None,
) -> list[str]:
    """The child's argv. Training steps go through ``accelerate launch`` when so configured."""
    launcher = launcher if launcher is not None else str(_setting("PAIRWISE_LAUNCHER", "python"))
    accelerate_config = (
        accelerate_config
        if accelerate_config is not None
        else str(_setting("PAIRWISE_ACCELERATE_CONFIG", "") or "")
    )
    module = module or str(_setting("PAIRWISE_TRAINING_MODULE", "rlhf.training"))
    tail = [engine_step, "--spec", str(spec_path), "--result", str(result_path)]
    if launcher == "accelerate" and engine_step in TRAINING_STEPS:
        accelerate = Path(sys.executable).with_name("accelerate")
        command = [str(accelerate) if accelerate.exists() else "accelerate", "launch"]
        if accelerate_config:
            command += ["--config_file", accelerate_config]
        return [*command, "-m", module, *tail]
    if launcher not in ("python", "accelerate"):
        raise ValueError(f"PAIRWISE_LAUNCHER must be 'python' or 'accelerate', got {launcher!r}")
    return [sys.executable, "-m", module, *tail]


# --- specs from rows -------------------------------------------------------------------------------


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    count = 0
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def run_dir_for(run: TrainingRun) -> Path:
    path = data_dir() / "runs" / str(run.pk)
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Invocation:
    """One engine call of a step: ``engine_step`` with ``spec``; ``name`` labels its phase."""

    name: str
    engine_step: str
    spec: dict[str, Any]


def _common(round_: Round, *, policy: bool = True) -> dict[str, Any]:
    spec = round_.parent_checkpoint.model_spec
    return {"seed": int(round_.config.get("seed", 0)), **spec.engine_fields(policy=policy)}


def _reward_model_dir(round_: Round) -> str:
    reward = round_.reward_checkpoint
    if reward is None:
        raise RuntimeError("the round has no reward model yet")
    merged = reward.metrics.get("merged_dir")
    if not merged:
        raise RuntimeError(f"reward checkpoint {reward.pk} has no merged model")
    return resolve_data_path(merged)


def _keep_members(round_: Round) -> bool:
    """Whether the reward step keeps its members (``keep_members``): a project whose queue the
    worker orders by their disagreement, when there are two or more."""
    members = int(round_.config["reward"].get("members", 1))
    return round_.project.queue_order == QueueOrder.UNCERTAINTY and members >= 2


def _member_dirs(round_: Round) -> list[str]:
    """The merged members the round's reward step kept (none: an empty list)."""
    reward = round_.reward_checkpoint
    dirs = (reward.metrics.get("member_dirs") or []) if reward is not None else []
    return [resolve_data_path(d) for d in dirs]


def _reward_model_verdict(
    round_: Round, verdict: Callable[[dict[str, Any] | None, float], str | None], setting: str,
    default: float,
) -> str | None:  # fmt: skip
    """``verdict`` (``rlhf.signals``) on the round's reward model against ``policy.<setting>``."""
    reward = round_.reward_checkpoint
    minimum = float(round_.config["policy"].get(setting, default))
    return verdict(reward.metrics if reward else None, minimum)


def _reward_pairs_withheld(round_: Round) -> str | None:
    """Why the round's offline policy step trains without the reward model's pairs it asks for
    (its held-out accuracy is not above ``policy.reward_pairs_min_accuracy``), or None. Read
    when the step is planned and again when it is recorded: the same rows give the same answer."""
    method = METHOD_REGISTRY[round_.method]
    if method.family != "offline-pairs" or not int(round_.config["policy"].get("reward_pairs", 0)):
        return None
    return _reward_model_verdict(round_, reward_pairs_withheld, "reward_pairs_min_accuracy",
                                 DPOSpec.reward_pairs_min_accuracy)  # fmt: skip


def _policy_inputs(family: str, round_: Round, workdir: Path) -> dict[str, Any]:
    """Write the data file the policy step of a method ``family`` trains on; its spec fields."""
    snapshot = round_.config["snapshot"]
    if family == "offline-pairs":
        rows = selectors.preference_rows(
            round_.snapshot_judgment_ids, snapshot, selectors.frozen_adjudications(round_)
        )
        write_jsonl(workdir / selectors.PREFERENCES_FILE, rows)
        fields = {"data": str(workdir / selectors.PREFERENCES_FILE)}
        if _reward_pairs_withheld(round_) is not None:
            return {**fields, "reward_pairs": 0}  # a coin's pairs are noise: people's rows alone
        if int(round_.config["policy"].get("reward_pairs", 0)):
            # best vs worst of the parent's samples by the round's reward model, on the training
            # prompts the round generates for (rlhf.training.dpo.reward_model_pairs)
            limit = int(round_.config["generate"]["max_prompts"])
            prompts = selectors.prompt_rows(selectors.generation_prompts(round_.project, limit))
            write_jsonl(workdir / "prompts.jsonl", prompts)
            fields["prompts"] = str(workdir / "prompts.jsonl")
            fields["reward_model"] = _reward_model_dir(round_)
        return fields
    if family == "offline-unpaired":
        write_jsonl(
            workdir / selectors.KTO_FILE,
            selectors.kto_rows(
                round_.snapshot_judgment_ids, snapshot, selectors.frozen_adjudications(round_)
            ),
        )
        return {"data": str(workdir / selectors.KTO_FILE)}
    if family == "online":
        refused = _reward_model_verdict(round_, online_refused, "reward_min_accuracy",
                                        OnlineSpec.reward_min_accuracy)  # fmt: skip
        if refused is not None:
            raise RuntimeError(refused)
        prompts = selectors.prompt_rows(selectors.training_prompts(round_.project))
        write_jsonl(workdir / "prompts.jsonl", prompts)
        return {
            "prompts": str(workdir / "prompts.jsonl"),
            "reward_model": _reward_model_dir(round_),
        }
    raise RuntimeError(f"unknown method family {family!r}")


def plan_step(run: TrainingRun, workdir: Path) -> list[Invocation]:
    """Write the data files of a step and return the engine calls that make it."""
    round_ = run.round
    config = round_.config
    model_spec = round_.parent_checkpoint.model_spec
    base_model = model_spec.base_model_path
    parent_adapter = round_.parent_checkpoint.adapter_path
    common = _common(round_)
    if run.step == Step.REWARD:
        write_jsonl(workdir / selectors.PREFERENCES_FILE, selectors.reward_training_rows(round_))
        spec = {
            **_common(round_, policy=False),
            **config["reward"],
            "keep_members": _keep_members(round_),
            "base_model": model_spec.reward_backbone_path,
            "data": str(workdir / selectors.PREFERENCES_FILE),
            "output_dir": str(runs.run_output_dir(run.pk)),
            "merge": True,
        }
        return [Invocation("reward", "reward", spec)]
    if run.step == Step.POLICY:
        method = METHOD_REGISTRY[round_.method]
        policy = dict(config["policy"])
        if policy.get("reference") == "parent" and parent_adapter is None:
            # The round's parent is the base model itself: "the parent" as reference is the base.
            policy["reference"] = "base"
        spec = {
            **common,
            **policy,
            **_policy_inputs(method.family, round_, workdir),
            "base_model": base_model,
            "output_dir": str(runs.run_output_dir(run.pk)),
            "parent_adapter": parent_adapter,
        }
        return [Invocation("policy", method.engine_step, spec)]
    candidate = round_.checkpoint
    if candidate is None or candidate.adapter_path is None:
        raise RuntimeError("the round has no new policy checkpoint yet")
    if run.step == Step.EVALUATE:
        evaluate = dict(config["evaluate"])
        prompts = selectors.evaluation_prompts(
            round_.project, int(evaluate.get("max_prompts", 200))
        )
        write_jsonl(workdir / "prompts.jsonl", selectors.prompt_rows(prompts))
        opponents = selectors.evaluation_opponents(round_.project)
        (workdir / "opponents.json").write_text(
            json.dumps({label: c.pk for label, c in opponents.items()})
        )
        spec = {
            **common,
            **evaluate,
            "opponents": {label: c.adapter_path or "" for label, c in opponents.items()},
            "base_model": base_model,
            "candidate_adapter": candidate.adapter_path,
            "parent_adapter": parent_adapter,
            "reward_model": _reward_model_dir(round_),
            "prompts": str(workdir / "prompts.jsonl"),
        }
        return [Invocation("evaluate", "evaluate", spec)]
    if run.step == Step.GENERATE:
        generate = config["generate"]
        prompts = selectors.generation_prompts(
            round_.project,
            int(generate["max_prompts"]),
            held_out=int(generate.get("held_out_prompts", 0)),
        )
        write_jsonl(workdir / "prompts.jsonl", selectors.prompt_rows(prompts))
        sampling = {
            "max_new_tokens": int(generate["max_new_tokens"]),
            "temperature": float(generate["temperature"]),
        }
        invocations = [
            Invocation(
                "generate-candidate",
                "generate",
                {
                    **common,
                    **sampling,
                    "base_model": base_model,
                    "adapter": candidate.adapter_path,
                    "prompts": str(workdir / "prompts.jsonl"),
                    "output": str(workdir / "candidate.jsonl"),
                    "num_samples": int(generate["num_samples"]),
                },
            )
        ]
        have = selectors.checkpoint_responses(round_.parent_checkpoint, prompts)
        missing = [p for p in prompts if p.pk not in have]
        if missing:
            write_jsonl(workdir / "champion-prompts.jsonl", selectors.prompt_rows(missing))
            invocations.append(
                Invocation(
                    "generate-champion",
                    "generate",
                    {
                        **common,
                        **sampling,
                        "base_model": base_model,
                        "adapter": parent_adapter,
                        "prompts": str(workdir / "champion-prompts.jsonl"),
                        "output": str(workdir / "champion.jsonl"),
                        "num_samples": 1,
                    },
                )
            )
        return invocations
    raise RuntimeError(f"unknown step {run.step!r}")


def read_samples(path: Path) -> list[runs.GeneratedSample]:
    """The engine's generate output as samples (empty texts dropped)."""
    if not path.is_file():
        return []
    return [
        runs.GeneratedSample(
            prompt_id=int(row["prompt_id"]),
            text=str(row["text"]),
            seed=row.get("seed"),
            params=dict(row.get("params") or {}),
        )
        for row in read_jsonl(path)
        if str(row.get("text", "")).strip()
    ]


def record_success(run: TrainingRun, workdir: Path, results: dict[str, dict[str, Any]]) -> None:
    """Turn the engine's results into checkpoint rows, metrics and queue items."""
    with transaction.atomic():
        _record_success(run, workdir, results)


def _record_success(run: TrainingRun, workdir: Path, results: dict[str, dict[str, Any]]) -> None:
    if run.step in (Step.REWARD, Step.POLICY):
        result = results["reward" if run.step == Step.REWARD else "policy"]
        metrics = dict(result)
        metrics["checkpoint_dir"] = relative_to_data(result["checkpoint_dir"])
        if result.get("merged_dir"):
            metrics["merged_dir"] = relative_to_data(result["merged_dir"])
        if result.get("member_dirs"):
            metrics["member_dirs"] = [relative_to_data(d) for d in result["member_dirs"]]
        withheld = _reward_pairs_withheld(run.round) if run.step == Step.POLICY else None
        if withheld is not None:
            metrics["reward_pairs_withheld"] = withheld
        runs.training_run_succeed(
            run=run,
            result=result,
            checkpoint={"adapter_dir": metrics["checkpoint_dir"], "metrics": metrics},
        )
        return
    if run.step == Step.EVALUATE:
        evaluation = dict(results["evaluate"])
        # Name each sampled opponent's checkpoint: "champion" means the one at evaluation time.
        opponents_file = workdir / "opponents.json"
        ids = json.loads(opponents_file.read_text()) if opponents_file.is_file() else {}
        evaluation["sampled"] = {
            label: {**figures, "checkpoint": ids.get(label)}
            for label, figures in (evaluation.get("sampled") or {}).items()
        }
        runs.training_run_succeed(run=run, result=evaluation, evaluation=evaluation)
        return
    round_ = Round.objects.select_related(
        "checkpoint__model_spec", "parent_checkpoint", "project"
    ).get(pk=run.round_id)
    counts = runs.round_responses_add(
        round=round_,
        candidate=read_samples(workdir / "candidate.jsonl"),
        champion=read_samples(workdir / "champion.jsonl"),
    )
    runs.training_run_succeed(
        run=run, result={**results.get("generate-candidate", {}), "comparisons": counts}
    )


def _record_pid(run_id: int, pid: int) -> None:
    TrainingRun.objects.filter(pk=run_id).update(pid=pid)


def _cancel_requested(run_id: int) -> Callable[[], bool]:
    def check() -> bool:
        return bool(
            TrainingRun.objects.filter(pk=run_id)
            .exclude(status=RunStatus.RUNNING, cancel_requested=False)
            .exists()
        )

    return check


def training_run_execute(run_id: int, *, listener: Listener | None = None) -> str:
    """Run one step of a round end to end (the body of the task). Safe to call twice."""
    runs.runs_reap()
    run = runs.training_run_claim(run_id=run_id)
    if run is None:
        return "skipped"
    run = TrainingRun.objects.select_related(
        "round__project",
        "round__parent_checkpoint__model_spec",
        "round__checkpoint",
        "round__reward_checkpoint",
    ).get(pk=run.pk)
    workdir = run_dir_for(run)
    outputs: list[str] = []
    try:
        invocations = plan_step(run, workdir)
        outputs = [str(i.spec.get("output_dir") or i.spec.get("output") or "") for i in invocations]
        TrainingRun.objects.filter(pk=run.pk).update(
            run_dir=relative_to_data(workdir), spec={i.name: i.spec for i in invocations}
        )
        history: list[dict[str, Any]] = []
        results: dict[str, dict[str, Any]] = {}
        cpu_s = 0.0
        for index, invocation in enumerate(invocations):
            spec_path = workdir / f"{invocation.name}.spec.json"
            result_path = workdir / f"{invocation.name}.result.json"
            spec_path.write_text(json.dumps(invocation.spec, indent=2, sort_keys=True))
            command = build_command(invocation.engine_step, spec_path, result_path)
            TrainingRun.objects.filter(pk=run.pk).update(command=command)
            outcome = supervise(
                command,
                workdir=workdir,
                progress=Progress(
                    run.pk,
                    phase=invocation.name,
                    history=history,
                    listener=listener,
                    phase_index=index,
                    phase_count=len(invocations),
                ),
                should_cancel=_cancel_requested(run.pk),
                on_start=lambda pid: _record_pid(run.pk, pid),
            )
            cpu_s += outcome.cpu_s
            TrainingRun.objects.filter(pk=run.pk).update(cpu_s=round(cpu_s, 2))
            if not outcome.ok:
                for output in outputs:
                    if output and run.step in (Step.REWARD, Step.POLICY):
                        runs.partial_outputs_remove(output)
                runs.training_run_fail(
                    run=run,
                    error="cancelled" if outcome.cancelled else outcome.error,
                    cancelled=outcome.cancelled,
                )
                return "cancelled" if outcome.cancelled else "failed"
            assert outcome.result is not None
            results[invocation.name] = outcome.result
        record_success(run, workdir, results)
    except BaseException as exc:
        if run.step in (Step.REWARD, Step.POLICY):
            for output in outputs:
                if output and not Checkpoint.objects.filter(created_by=run).exists():
                    runs.partial_outputs_remove(output)
        if isinstance(exc, Exception):
            runs.training_run_fail(run=run, error=f"{type(exc).__name__}: {exc}")
            return "failed"
        # The worker itself is stopping (SIGTERM, Ctrl-C): the step did not fail on its own.
        runs.training_run_fail(run=run, error=f"the worker stopped ({type(exc).__name__})")
        raise
    if run.step in RESCORE_AFTER:
        queue_rescore(run, workdir)
    return "succeeded"


# --- queue order from the live reward model (uncertainty projects) ------------------------------

RESCORE_AFTER = (Step.REWARD, Step.GENERATE)  # a new reward model; new pairs


def queue_rescore(run: TrainingRun, workdir: Path) -> dict[str, Any] | None:
    """Re-order an ``uncertainty`` project's open comparisons by the round's reward model
    (``rlhf.prioritize``), after its reward or generate step succeeded; None for fifo projects.

    The step is done and recorded: a failure here is logged on its result (``queue_rescore``)
    and the round goes on with the queue's current order.
    """
    round_ = Round.objects.select_related(
        "project", "reward_checkpoint", "parent_checkpoint__model_spec"
    ).get(pk=run.round_id)
    if round_.project.queue_order != QueueOrder.UNCERTAINTY:
        return None
    try:
        pairs = prioritize.open_pairs(round_.project)
        outcome: dict[str, Any] = {"scored": len(pairs), "changed": 0}
        if pairs:
            write_jsonl(workdir / "queue-pairs.jsonl", pairs)
            spec = {
                **_common(round_, policy=False),
                "reward_model": _reward_model_dir(round_),
                "members": _member_dirs(round_),
                "pairs": str(workdir / "queue-pairs.jsonl"),
                "output": str(workdir / "queue-scores.jsonl"),
            }
            engine_call("score", spec, workdir=workdir, name="queue-score")
            scores = read_jsonl(workdir / "queue-scores.jsonl")
            outcome["changed"] = comparisons_prioritize(
                project=round_.project, priorities=prioritize.priorities(round_.project, scores)
            )
    except Exception as exc:
        outcome = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
    result = TrainingRun.objects.get(pk=run.pk).result
    TrainingRun.objects.filter(pk=run.pk).update(result={**result, "queue_rescore": outcome})
    return outcome


# --- steps outside rounds (bootstrap, generation, evaluation helpers of run_loop) ------------------------------


def engine_call(
    engine_step: str,
    spec: dict[str, Any],
    *,
    workdir: Path,
    name: str | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run one engine step outside a round (no run row); raise RuntimeError when it fails."""
    name = name or engine_step
    workdir.mkdir(parents=True, exist_ok=True)
    spec_path = workdir / f"{name}.spec.json"
    spec_path.write_text(json.dumps(spec, indent=2, sort_keys=True))
    progress = Progress(
        None,
        phase=name,
        history=[],
        listener=(lambda phase, event: on_event(event)) if on_event else None,
    )
    outcome = supervise(
        build_command(engine_step, spec_path, workdir / f"{name}.result.json"),
        workdir=workdir,
        progress=progress,
        should_cancel=lambda: False,
    )
    if not outcome.ok or outcome.result is None:
        raise RuntimeError(f"{engine_step} failed: {outcome.error}")
    return outcome.result


def checkpoint_generate(
    *,
    checkpoint: int,
    eval_only: bool = True,
    split: str = "test",
    prompts: int = 200,
    samples: int = 2,
    temperature: float = 1.0,
    max_new_tokens: int = 32,
    seed: int = 0,
    priority: int = 50,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[int, runs.SamplesAdded]:
    """Sample a checkpoint outside a round (``manage.py generate``, the generate API's task):
    ``samples`` per prompt of ``split``, stored with its ``checkpoint_ref`` and the generation
    params and seeds; with ``eval_only`` nothing enters the queue, else the pairs of training
    prompts do (batch ``generate:ckpt-N``). Returns (prompts sampled, what was added); raises
    RuntimeError when the engine fails or the split has no prompt."""
    row = Checkpoint.objects.select_related("model_spec", "project").get(pk=checkpoint)
    chosen = selectors.split_prompts(row.project, split, prompts)
    if not chosen:
        raise RuntimeError(f"the project has no prompts in split {split!r}")
    parent = data_dir() / "runs"
    parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"generate-{row.pk}-", dir=parent))
    write_jsonl(workdir / "prompts.jsonl", selectors.prompt_rows(chosen))
    output = workdir / "samples.jsonl"
    spec = {
        "base_model": row.model_spec.base_model_path,
        "adapter": row.adapter_path,
        "prompts": str(workdir / "prompts.jsonl"),
        "output": str(output),
        "num_samples": samples,
        "temperature": temperature,
        "max_new_tokens": max_new_tokens,
        "seed": seed,
        **row.model_spec.engine_fields(),
    }
    engine_call("generate", spec, workdir=workdir, on_event=on_event)
    added = runs.checkpoint_samples_add(
        checkpoint=row,
        samples=read_samples(output),
        batch=f"generate:ckpt-{row.pk}",
        priority=priority,
        eval_only=eval_only,
    )
    return len(chosen), added


# --- driving a round in this process (commands) -----------------------------------------------------


def round_drive(round_id: int, *, poll_s: float = 0.5, listener: Listener | None = None) -> Round:
    """Run a round's queued steps here, one after the other, until the round finishes.

    A worker may take a step first (the claim decides); then this waits for it. Used by
    ``launch_round --inline`` and ``run_loop`` so they need no worker.
    """
    while True:
        round_ = Round.objects.get(pk=round_id)
        if not round_.is_active:
            return round_
        queued = (
            TrainingRun.objects.filter(round_id=round_id, status=RunStatus.QUEUED)
            .order_by("id")
            .first()
        )
        if queued is not None:
            training_run_execute(queued.pk, listener=listener)
        else:
            time.sleep(poll_s)
