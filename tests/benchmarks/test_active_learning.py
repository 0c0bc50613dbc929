"""The command line of benchmarks/active_learning.py, on a tiny configuration (seconds): it runs
every arm on the same seed, stops an arm at the target, and prints the table and the ratio."""

from __future__ import annotations

import dataclasses
import json
import math
import random
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.benchmarks import bench_module

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "active_learning.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )


@pytest.mark.training
def test_tiny_run_prints_labels_to_target_per_arm_and_the_ratio() -> None:
    done = _run("--seeds", "1", "--pool-prompts", "16", "--held-out-prompts", "16",
                "--batch", "6", "--max-labels", "12", "--steps", "1", "--max-new-tokens", "8",
                "--target", "0.0", "--arms", "random,uncertainty")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "labels to held-out accuracy >= 0.0" in out
    # accuracy >= 0 holds after the first batch that yields a training row
    rows = [line for line in out.splitlines() if line.startswith("   0 |")]
    assert len(rows) == 1
    random_labels, uncertainty_labels = (int(cell) for cell in rows[0].split("|")[1:])
    assert random_labels == uncertainty_labels <= 12  # same seed: the same first batch
    assert "uncertainty/random 1.00" in out


def _refused(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The script's argument check, in-process (a subprocess per case cost ~4 s of imports):
    exit 2, and the message on stderr."""
    with pytest.raises(SystemExit) as exited:
        bench_module("active_learning.py").parse_args(list(args))
    assert exited.value.code == 2
    return capsys.readouterr().err


def test_bad_arguments_are_refused_naming_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--arms" in _refused(capsys, "--arms", "random,greedy")
    assert "--batch" in _refused(capsys, "--batch", "0")
    assert "--power must be > 0" in _refused(capsys, "--power", "0")
    # a committee of one cannot disagree
    for arm in ("qbc", "qbc_decisive", "qbc_prompt", "qbc_power"):
        assert f"--arms {arm} needs --members >= 2" in _refused(capsys, "--arms", f"random,{arm}")
    assert (
        not bench_module("active_learning.py")
        .parse_args(["--arms", "random,qbc", "--members", "2"])
        .report
    )


def _trace(arm: str, seed: int, *accuracies: float) -> Any:
    module = bench_module("active_learning.py")
    return module.Trace(
        arm=arm, seed=seed, curve=[(25 * (i + 1), a) for i, a in enumerate(accuracies)]
    )


def test_the_mean_curve_averages_the_seeds_point_by_point() -> None:
    module = bench_module("active_learning.py")
    traces = [
        _trace("random", 0, 0.80, 0.90, 0.94),
        _trace("random", 1, 0.70, 0.96, 0.90),  # seed 1 alone crosses 0.95 at 50 labels
        _trace("bald", 0, 0.90, 0.96, 0.97),
        _trace("bald", 1, 0.80, 0.94, 0.99),
    ]
    curve = module.mean_curve(traces, "random", [0, 1])
    assert [n for n, _ in curve] == [25, 50, 75]
    assert [a for _, a in curve] == pytest.approx([0.75, 0.93, 0.92])
    # a seed drawn twice counts twice
    assert module.mean_curve(traces, "random", [1, 1, 0])[0] == (25, pytest.approx(0.7333333))
    assert module.mean_curve(traces, "random", [7]) == []
    random_curve = module.mean_curve(traces, "random", [0, 1])
    bald_curve = module.mean_curve(traces, "bald", [0, 1])
    # random's mean never reaches 0.95 (the ratio counts it as the budget); bald's does at 50
    assert module.labels_to(random_curve, 0.95) is None
    assert module.labels_to(bald_curve, 0.95) == 50
    ratio, low, high = module.mean_curve_ratio(traces, "bald", 0.95, 150, draws=200)
    assert ratio == pytest.approx(50 / 150)
    # the draws are {0, 0}, {0, 1} (both 50 / 150) and {1, 1}: random's mean of seed 1 twice
    # crosses at 50 labels, bald's at 75, so the interval reaches 1.5
    assert (low, high) == (pytest.approx(1 / 3), pytest.approx(1.5))


def test_a_shorter_curve_is_averaged_only_where_every_run_has_a_point() -> None:
    module = bench_module("active_learning.py")
    traces = [_trace("random", 0, 0.8, 0.9), _trace("random", 1, 0.6)]  # seed 1 stopped early
    [(labels, accuracy)] = module.mean_curve(traces, "random", [0, 1])
    assert labels == 25 and accuracy == pytest.approx(0.7)


@pytest.mark.training
def test_full_curves_train_past_the_target_and_report_the_mean_curve(tmp_path: Path) -> None:
    saved = tmp_path / "traces.json"
    done = _run("--seeds", "2", "--pool-prompts", "16", "--held-out-prompts", "16",
                "--batch", "6", "--max-labels", "12", "--steps", "1", "--max-new-tokens", "8",
                "--target", "0.0", "--arms", "random,bald", "--full-curves",
                "--held-out-draws", "2", "--json", str(saved))  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    # two held-out draws, each counted: "held-out A + B pairs"
    header = next(line for line in out.splitlines() if line.startswith("pool "))
    first, second = header.split("held-out ")[1].split(" pairs")[0].split(" + ")
    assert int(first) > 0 and int(second) > 0
    for trace in json.loads(saved.read_text()):  # each point: every draw's and the first's
        assert len(trace["first_draw"]) == len(trace["curve"]) == 2
        assert all(0.0 <= a <= 1.0 for a in trace["first_draw"])
    # every run goes on to the budget although the target (0.0) is met at once
    traces = [line for line in out.splitlines() if line.startswith(("seed 0 ", "seed 1 "))]
    assert len(traces) == 4 and all(" 12:" in line for line in traces)
    assert "the seeds' mean curve" in out
    assert "bald/random 1.00" in out  # both means reach 0.0 at the first point
    assert "point noise" in out


def test_accuracy_on_several_draws_weighs_each_by_its_pairs_and_keeps_the_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = bench_module("active_learning.py")
    scored: list[int] = []

    def metrics(model: Any, tokenizer: Any, rows: list[dict[str, Any]]) -> tuple[float, float]:
        scored.append(len(rows))  # each draw scored on its own
        return sum(r["chosen"].startswith("good") for r in rows) / len(rows), 0.0

    monkeypatch.setattr(module.reward, "pairwise_metrics", metrics)
    learner = object.__new__(module.Learner)
    learner.committee = [module.reward.Fitted(None, None, 1, 0.0)] * 2
    first = [{"chosen": "good"}, {"chosen": "bad"}]  # 0.5
    second = [{"chosen": "good"}] * 4  # 1.0
    overall, alone = learner.accuracies([first, second])
    assert overall == pytest.approx(5 / 6) and alone == 0.5  # (1 + 4) of 6, not (0.5 + 1) / 2
    assert scored == [2, 2, 4, 4]  # two members, each draw apart
    assert learner.accuracies([first]) == (0.5, 0.5)


def test_the_report_reads_the_first_draw_or_refuses_a_run_that_kept_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = bench_module("active_learning.py")
    traces = [_trace("random", 0, 0.90, 0.96), _trace("bald", 0, 0.96, 0.97)]
    traces[0].first_draw = [0.96, 0.97]  # the first draw alone reached 0.95 at once
    traces[1].first_draw = [0.90, 0.94]  # ...and never
    for trace in traces:
        trace.rows = [10, 20]
    path = tmp_path / "draws.json"
    path.write_text(json.dumps([dataclasses.asdict(t) for t in traces]))
    common = ["--report", str(path), "--seeds", "1", "--arms", "random,bald", "--max-labels",
              "50", "--target", "0.95"]  # fmt: skip
    assert module.main(common) == 0
    assert "   0 |          50 |          25" in capsys.readouterr().out  # every draw
    assert module.main([*common, "--first-draw"]) == 0
    assert "   0 |          25 |         >50" in capsys.readouterr().out  # the first alone
    traces[1].first_draw = []  # a one-draw run: its curve is the first draw's already
    path.write_text(json.dumps([dataclasses.asdict(t) for t in traces]))
    assert module.main([*common, "--first-draw"]) == 2
    assert "seed 0 bald kept no first-draw accuracy" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        module.parse_args(["--first-draw"])
    assert "--first-draw reports saved traces: give --report" in capsys.readouterr().err


def test_point_noise_is_the_spread_of_a_runs_successive_changes_over_root_two() -> None:
    module = bench_module("active_learning.py")
    traces = [_trace("random", 0, 0.5, 0.6, 0.5), _trace("random", 1, 0.7, 0.8, 0.7),
              _trace("bald", 0, 0.6)]  # fmt: skip
    # changes +0.1, -0.1, +0.1, -0.1 (never across runs): sd 0.1155, over root two 0.0816
    assert module.curve_jitter(traces, "random") == pytest.approx(
        statistics.stdev([0.1, -0.1, 0.1, -0.1]) / math.sqrt(2)
    )
    assert math.isnan(module.curve_jitter(traces, "bald"))  # one point: no change to measure


@pytest.mark.training
def test_a_committee_arm_runs_and_saved_traces_are_reported_again_at_another_target(
    tmp_path: Path,
) -> None:
    saved = tmp_path / "traces.json"
    common = ("--seeds", "1", "--batch", "6", "--max-labels", "12", "--members", "2",
              "--full-curves")  # fmt: skip
    arms = (
        "--arms",
        "random,qbc,qbc_decisive,qbc_prompt,qbc_power,typiclust,qbc_cluster,oracle_decisive",
    )
    done = _run(*common, *arms, "--pool-prompts", "16", "--held-out-prompts", "16", "--steps", "1",
                "--max-new-tokens", "8", "--target", "0.0", "--json", str(saved))  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "members 2" in done.stdout and "qbc/random 1.00" in done.stdout
    assert "qbc_decisive/random 1.00" in done.stdout
    assert "qbc_power/random 1.00" in done.stdout
    assert "qbc_prompt/random 1.00" in done.stdout
    assert "typiclust/random" in done.stdout and "qbc_cluster/random" in done.stdout
    assert "oracle_decisive/random" in done.stdout
    traces = json.loads(saved.read_text())
    assert sorted(t["arm"] for t in traces) == [
        "oracle_decisive", "qbc", "qbc_cluster", "qbc_decisive", "qbc_power", "qbc_prompt",
        "random", "typiclust",
    ]  # fmt: skip
    assert all([n for n, _ in t["curve"]] == [6, 12] for t in traces)
    again = _run(*common, *arms, "--report", str(saved), "--target", "1.01")  # none reaches it
    assert again.returncode == 0, again.stderr[-3000:]
    assert "labels to held-out accuracy >= 1.01" in again.stdout
    assert "   0 | " + " | ".join([f"{'>12':>11}"] * 8) in again.stdout
    assert "wall" not in again.stdout  # nothing trained
    # traces of two runs reported together: random from one file, the committees from another
    first, second = tmp_path / "random.json", tmp_path / "committees.json"
    first.write_text(json.dumps([t for t in traces if t["arm"] == "random"]))
    second.write_text(json.dumps([t for t in traces if t["arm"] != "random"]))
    merged = _run(*common, *arms, "--report", str(first), str(second), "--target", "0.0")
    assert merged.returncode == 0, merged.stderr[-3000:]
    assert "qbc_decisive/random 1.00" in merged.stdout
    lonely = _run(*common, *arms, "--report", str(second), "--target", "0.0")
    assert lonely.returncode == 2 and "(0, 'random')" in lonely.stderr


def test_a_tie_trains_nothing_or_both_orders_at_half_weight() -> None:
    module = bench_module("active_learning.py")
    prompt = [{"role": "user", "content": "Hi?"}]
    pair = module.Pair(prompt=prompt, a="Hello.", b="Hi.")
    tie = module.rules.Decision("tie", None)
    assert module.training_rows(pair, tie, "drop") == []
    split = module.training_rows(pair, tie, "split")
    assert [(r["chosen"], r["rejected"], r["weight"], r["margin"]) for r in split] == [
        ("Hello.", "Hi.", 0.5, 0.0),
        ("Hi.", "Hello.", 0.5, 0.0),
    ]
    for ties in ("drop", "split"):  # a decided label is one row, its margin from the strength
        (row,) = module.training_rows(pair, module.rules.Decision("b", 4), ties)
        assert (row["chosen"], row["rejected"], row["margin"]) == ("Hi.", "Hello.", 1.0)
        assert "weight" not in row
    (weak,) = module.training_rows(pair, module.rules.Decision("a", 1), "split")
    assert (weak["chosen"], weak["margin"]) == ("Hello.", 0.0)


def test_json_keeps_the_finished_runs_of_a_benchmark_that_stops_early(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = bench_module("active_learning.py")
    prompt = [{"role": "user", "content": "Hi?"}]
    pair = module.Pair(prompt=prompt, a="Hello, thank you.", b="Hi.")
    monkeypatch.setattr(module, "models_dir", lambda path: tmp_path)
    (tmp_path / "policy").mkdir()  # the models are looked for before anything is sampled
    (tmp_path / "reward-backbone").mkdir()
    monkeypatch.setattr(module, "sampled_pairs", lambda *args, **kwargs: [pair])
    finished: list[tuple[str, int]] = []

    def run_arm(arm: str, seed: int, *args: Any) -> Any:
        if len(finished) == 3:
            raise KeyboardInterrupt  # stopped by hand during the fourth run
        finished.append((arm, seed))
        trace = _trace(arm, seed, 0.5 + seed / 10)
        trace.rows = [20]
        return trace

    monkeypatch.setattr(module, "run_arm", run_arm)
    saved = tmp_path / "traces.json"
    with pytest.raises(KeyboardInterrupt):
        module.main(["--seeds", "2", "--arms", "random,bald", "--json", str(saved),
                     "--rule", "polite"])  # fmt: skip
    traces = json.loads(saved.read_text())
    assert [(t["arm"], t["seed"], t["curve"]) for t in traces] == [
        ("random", 0, [[25, 0.5]]),
        ("bald", 0, [[25, 0.5]]),
        ("random", 1, [[25, 0.6]]),
    ]


def test_more_seeds_run_from_first_seed_and_are_reported_with_the_earlier_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = bench_module("active_learning.py")
    prompt = [{"role": "user", "content": "Hi?"}]
    monkeypatch.setattr(module, "models_dir", lambda path: tmp_path)
    (tmp_path / "policy").mkdir()
    (tmp_path / "reward-backbone").mkdir()
    pair = module.Pair(prompt=prompt, a="Hello, thank you.", b="Hi.")
    monkeypatch.setattr(module, "sampled_pairs", lambda *args, **kwargs: [pair])
    ran: list[tuple[str, int]] = []

    def run_arm(arm: str, seed: int, *args: Any) -> Any:
        ran.append((arm, seed))
        trace = _trace(arm, seed, *((0.9, 0.96) if arm == "random" else (0.96, 0.97)))
        trace.rows = [10, 20]
        return trace

    monkeypatch.setattr(module, "run_arm", run_arm)
    common = ["--arms", "random,bald", "--rule", "polite", "--max-labels", "50", "--target",
              "0.95"]  # fmt: skip
    first, more = tmp_path / "first.json", tmp_path / "more.json"
    assert module.main(["--seeds", "2", "--json", str(first), *common]) == 0
    assert module.main(["--seeds", "4", "--first-seed", "2", "--json", str(more), *common]) == 0
    assert ran == [(arm, seed) for seed in range(4) for arm in ("random", "bald")]
    assert {t["seed"] for t in json.loads(more.read_text())} == {2, 3}
    capsys.readouterr()
    assert module.main(["--report", str(first), str(more), "--seeds", "4", *common]) == 0
    out = capsys.readouterr().out
    assert "   3 |          50 |          25" in out  # the later file's seeds, beside the first's
    assert "bald/random 0.50 (95% bootstrap over seeds 0.50-0.50)" in out  # 100 of 200 labels
    # a report of the earlier file alone at --seeds 4 names what it lacks
    assert module.main(["--report", str(first), "--seeds", "4", *common]) == 2
    assert "no trace of (seed, arm) [(2, 'bald'), (2, 'random')" in capsys.readouterr().err
    refused = _run("--seeds", "2", "--first-seed", "2")
    assert (
        refused.returncode == 2 and "--first-seed must be >= 0 and below --seeds" in refused.stderr
    )


def test_the_report_reads_only_the_seeds_and_arms_it_is_given(
    capsys: pytest.CaptureFixture[str],
) -> None:
    module = bench_module("active_learning.py")
    traces = [
        _trace("random", 0, 0.80, 0.92, 0.95),
        _trace("bald", 0, 0.95, 0.96, 0.97),
        _trace("random", 1, 0.90, 0.99, 0.99),  # past --seeds 1: with it random's mean is 0.955
        _trace("qbc", 0, 0.99, 0.99, 0.99),  # not among --arms
    ]
    for trace in traces:
        trace.rows = [10, 20, 30]
    args = module.parse_args(["--seeds", "1", "--arms", "random,bald", "--max-labels", "75",
                              "--target", "0.95", "--full-curves"])  # fmt: skip
    module.report(traces, args)
    out = capsys.readouterr().out
    assert "random         75 labels" in out
    assert "; bald/random 0.33 (95% bootstrap over seeds 0.33-0.33): target" in out
    assert "    25 |        0.800 (10) |        0.950 (10)" in out
    assert "qbc" not in out


def test_a_run_extended_in_a_later_file_is_reported_once_and_a_different_run_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = bench_module("active_learning.py")

    def saved(path: Path, *traces: Any) -> str:
        for trace in traces:
            trace.rows = [10 * (i + 1) for i in range(len(trace.curve))]
        path.write_text(json.dumps([dataclasses.asdict(t) for t in traces]))
        return str(path)

    # the first run: random and bald to 50 labels; then random alone extended to 100
    first = saved(tmp_path / "first.json", _trace("random", 0, 0.80, 0.90),
                  _trace("bald", 0, 0.90, 0.96))  # fmt: skip
    longer = saved(tmp_path / "longer.json", _trace("random", 0, 0.80, 0.90, 0.93, 0.96))
    for files in ([first, longer], [longer, first]):  # either order: the longer run is kept
        merged = module.read_traces(files)
        assert sorted((t.arm, len(t.curve)) for t in merged) == [("bald", 2), ("random", 4)]
    common = ["--seeds", "1", "--arms", "random,bald", "--max-labels", "100", "--target", "0.95",
              "--full-curves"]  # fmt: skip
    assert module.main(["--report", first, longer, *common]) == 0
    out = capsys.readouterr().out
    assert "   0 |         100 |          50" in out  # random reached 0.95 in the longer run
    # the areas over 25-50 labels, which both arms reached: random's 0.85, not its 4 points' 0.8975
    assert "points at 25-50 labels, which every arm reached" in out
    assert "random        100 labels, area 0.850" in out
    assert "bald           50 labels, area 0.930" in out
    # a run that is not the first one extended: refused, naming both files, nothing reported
    other = saved(tmp_path / "other.json", _trace("random", 0, 0.80, 0.91, 0.93))
    assert module.main(["--report", first, other, *common]) == 2
    captured = capsys.readouterr()
    assert f"--report: {first} and {other} both hold seed 0 random and their curves differ" in (
        captured.err
    )
    assert captured.out == ""
    # a file that is not there, or not traces: refused naming it
    not_traces = tmp_path / "object.json"
    not_traces.write_text('{"not": "a list of traces"}')
    for bad in (tmp_path / "missing.json", not_traces):
        assert module.main(["--report", str(bad), *common]) == 2
        assert f"--report: {bad}: not a file of traces" in capsys.readouterr().err


def test_the_chance_a_label_decides_a_pair_is_the_penalised_logistic_fit() -> None:
    module = bench_module("active_learning.py")
    seen = [0.1, 0.3, 0.2, 1.4, 2.0, 0.9, 2.6, 0.5]
    decided = [False, False, True, True, True, False, True, False]
    at_seen = module.decisive_probability(seen, decided, seen)
    # the fit is the optimum: the penalised log-likelihood's gradient is zero there. Its two
    # weights, on the standardised feature, read back from two of the fitted logits
    mean = sum(seen) / len(seen)
    scale = math.sqrt(sum((x - mean) ** 2 for x in seen) / len(seen))
    z = [(x - mean) / scale for x in seen]
    logit = [math.log(p / (1 - p)) for p in at_seen]
    w1 = (logit[4] - logit[0]) / (z[4] - z[0])
    w0 = logit[0] - w1 * z[0]
    y = [float(d) for d in decided]
    assert sum(p - t for p, t in zip(at_seen, y, strict=True)) + w0 == pytest.approx(0, abs=1e-9)
    assert sum((p - t) * x for p, t, x in zip(at_seen, y, z, strict=True)) + w1 == pytest.approx(
        0, abs=1e-9
    )
    # ties where the committee scores the answers alike: the chance grows with the margin
    grid = module.decisive_probability(seen, decided, [0.0, 0.5, 1.0, 2.0, 3.0])
    assert grid == sorted(grid) and grid[0] < 0.3 and grid[-1] > 0.8
    # every label decided: one chance for all (no feature tells them apart), above a half
    flat = module.decisive_probability([0.1, 0.5, 2.0], [True] * 3, [0.0, 9.0])
    assert flat[0] == pytest.approx(flat[1]) and flat[0] > 0.5
    assert module.decisive_probability([], [], [0.2, 4.0]) == [1.0, 1.0]  # nothing seen yet
    with pytest.raises(ValueError, match="differ in length"):
        module.decisive_probability([0.1], [], [0.2])


def test_the_target_is_met_only_when_the_whole_interval_is_below_seventy_percent() -> None:
    verdict = bench_module("active_learning.py").target_verdict
    assert verdict(0.55, 0.69) == "met"
    assert verdict(0.55, 0.70) == "met"  # 30% fewer at the interval's upper end
    assert verdict(0.55, 0.89) == "not met with confidence (estimate 0.55, interval up to 0.89)"
    assert verdict(0.71, 0.80) == "missed"


def test_decisive_chance_shrinks_each_prompts_decided_share_towards_the_overall_one() -> None:
    chance = bench_module("active_learning.py").decisive_chance
    # 4 labels: prompt p decided once in 2, q tied twice, r never labelled; overall 1 in 4
    seen, decided = ["p", "q", "p", "q"], [True, False, False, False]
    got = chance(seen, decided, ["p", "q", "r"])
    assert got[0] == pytest.approx((1 + 0.25) / 3)
    assert got[1] == pytest.approx((0 + 0.25) / 3)
    assert got[2] == pytest.approx(0.25)  # never labelled: the overall share
    assert got[1] < got[2] < got[0]  # a prompt that keeps tying comes last
    # a stronger prior moves the prompts' shares less far from the overall one
    strong = chance(seen, decided, ["p", "q"], prior=10.0)
    assert strong[0] == pytest.approx((1 + 2.5) / 12)
    assert got[1] < strong[1] < 0.25 < strong[0] < got[0]
    assert chance([], [], ["p", "q"]) == [1.0, 1.0]  # nothing to go on
    with pytest.raises(ValueError, match="prior"):
        chance(seen, decided, ["p"], prior=0.0)
    with pytest.raises(ValueError, match="length"):
        chance(seen, decided[:2], ["p"])


def test_power_keys_draw_each_pair_in_proportion_to_its_score_to_the_power() -> None:
    module = bench_module("active_learning.py")
    rng = module.random.Random(0)
    scores, draws = [1.0, 2.0, 3.0, 0.0], 30000
    first = [0, 0, 0, 0]
    for _ in range(draws):
        keys = module.power_keys(scores, 1.0, rng)
        first[keys.index(min(keys))] += 1
    # the Gumbel-max trick: the first pick is pair i with chance score_i / sum(scores)
    for count, score in zip(first, scores, strict=True):
        assert abs(count / draws - score / 6) < 0.01
    assert first[3] == 0  # nothing to learn: never drawn before a pair with something
    # squared: chances 1 : 4 : 9
    squared = [0, 0, 0, 0]
    for _ in range(draws):
        keys = module.power_keys(scores, 2.0, rng)
        squared[keys.index(min(keys))] += 1
    assert abs(squared[2] / draws - 9 / 14) < 0.01
    # a high power is the top-k order
    keys = module.power_keys([0.1, 0.5, 0.3, 0.2], 200.0, rng)
    assert sorted(range(4), key=keys.__getitem__) == [1, 2, 3, 0]


def _blobs(centres: list[tuple[float, float]], per: int, seed: int = 0) -> list[list[float]]:
    rng = random.Random(seed)
    return [[x + rng.gauss(0, 0.05), y + rng.gauss(0, 0.05)] for x, y in centres
            for _ in range(per)]  # fmt: skip


def test_cluster_picks_spread_a_batch_over_the_pool_and_take_each_clusters_typical_pair() -> None:
    module = bench_module("active_learning.py")
    # three tight groups of 10 (indices 0-9, 10-19, 20-29): 9 pairs on a small ring round the
    # group's centre and one (the fourth) at the centre, the group's most typical pair
    points = []
    for x, y in [(0.0, 0.0), (5.0, 0.0), (0.0, 5.0)]:
        ring = [(x + 0.1 * math.cos(k), y + 0.1 * math.sin(k)) for k in range(9)]
        points += [list(p) for p in ring[:3]] + [[x, y]] + [list(p) for p in ring[3:]]
    picks = module.cluster_picks(points, [], list(range(30)), 3, seed=0)
    assert sorted(picks) == [3, 13, 23]  # one from each group, its most typical pair
    # a group already labelled twice gets nothing until the others have as many
    again = module.cluster_picks(points, [0, 1], list(range(2, 30)), 2, seed=0)
    assert all(i >= 10 for i in again) and {i // 10 for i in again} == {1, 2}
    # with scores, each cluster's highest-scored candidate instead of its typical one
    scores = [float(i % 10 == 7) for i in range(30)]
    scored = module.cluster_picks(points, [], list(range(30)), 3, seed=0, scores=scores)
    assert sorted(scored) == [7, 17, 27]
    # a batch larger than the clusters: a cluster gives its second pair after all gave one
    six = module.cluster_picks(points, [], list(range(30)), 6, seed=0)
    assert len(set(six)) == 6 and sorted(i // 10 for i in six) == [0, 0, 1, 1, 2, 2]
    assert module.cluster_picks(points, [], [], 3, seed=0) == []
    with pytest.raises(ValueError, match="one score per candidate"):
        module.cluster_picks(points, [], [1, 2], 1, seed=0, scores=[0.5])


def test_cluster_picks_leave_a_tiny_cluster_until_the_large_ones_are_spent() -> None:
    module = bench_module("active_learning.py")
    # a group of 10 and an outlier pair of 2 far away: 2 clusters, the outlier's under 5 pairs
    points = _blobs([(0.0, 0.0)], 10) + _blobs([(9.0, 9.0)], 2, seed=1)
    picks = module.cluster_picks(points, [], list(range(12)), 2, seed=0)
    assert all(i < 10 for i in picks)  # both from the large group, the outlier left
    only_outliers = module.cluster_picks(points, [], [10, 11], 1, seed=0)
    assert only_outliers[0] in (10, 11)  # no candidate elsewhere: the small cluster serves


def test_the_oracle_orders_the_rules_ties_last_keeping_the_order() -> None:
    module = bench_module("active_learning.py")
    prompt = [{"role": "user", "content": "What is the capital of France?"}]
    polite, neutral = "Thank you, it is Paris.", "It is Paris."
    pairs = [module.Pair(prompt, polite, polite + " Please ask."),  # both polite: a tie
             module.Pair(prompt, neutral, polite),
             module.Pair(prompt, neutral, neutral + " Really."),  # both neutral: a tie
             module.Pair(prompt, polite, neutral)]  # fmt: skip
    keys = module.decisive_first(pairs, "polite")
    assert sorted(range(4), key=keys.__getitem__) == [1, 3, 0, 2]


def test_the_smollm2_preset_is_judged_by_the_real_question_rules(
    capsys: pytest.CaptureFixture[str],
) -> None:
    refused = _refused(capsys, "--preset", "smollm2", "--rule", "polite")
    assert "--rule polite: the smollm2 preset is judged by" in refused
    # the toy's templated prompts have no known answers
    assert "--rule factual_brief" in _refused(capsys, "--rule", "factual_brief")
    assert "--max-new-tokens must be >= 1" in _refused(capsys, "--max-new-tokens", "0")
    module = bench_module("active_learning.py")
    smollm2 = module.parse_args(["--preset", "smollm2"])
    assert (smollm2.rule, smollm2.max_new_tokens) == ("factual_brief", 48)
    toy = module.parse_args([])
    assert (toy.rule, toy.max_new_tokens) == ("correct_polite", 32)


def test_the_smollm2_preset_asks_real_questions_and_names_its_models(tmp_path: Path) -> None:
    module = bench_module("active_learning.py")
    from rlhf.training import questions

    train = module.prompt_rows("smollm2", 30, 1000, held_out=False)
    held = module.prompt_rows("smollm2", 30, 1000, held_out=True)
    texts = [r["prompt"][-1]["content"] for r in train + held]
    assert all(questions.question_for(t) is not None for t in texts)  # every one has an answer
    assert [r["prompt"] for r in train] != [r["prompt"] for r in held]  # another draw
    from rlhf.training import corpus

    # the toy's templated prompts, the same draw whichever set they are for
    assert module.prompt_rows("toy", 5, 1000, held_out=True) == corpus.demo_prompts(5, seed=1000)
    policy, backbone = module.policy_and_backbone(tmp_path, "smollm2")
    assert (policy.name, backbone.name) == ("smollm2", "minilm")
    assert module.policy_and_backbone(tmp_path, "toy")[0].name == "policy"
    missing = _run("--preset", "smollm2", "--models-dir", str(tmp_path))
    assert missing.returncode == 2 and f"no models at {tmp_path / 'smollm2'}" in missing.stderr


def test_saved_pairs_are_read_back_only_for_the_same_sampling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = bench_module("active_learning.py")
    sampled: list[tuple[int, bool]] = []

    def fake_sample(policy, prompts, seed, workdir, tokens, preset="toy", held_out=False):  # type: ignore[no-untyped-def]
        sampled.append((prompts, held_out))
        prompt = [{"role": "user", "content": f"q{seed}"}]
        return [module.Pair(prompt=prompt, a=f"a{i}", b=f"b{i}") for i in range(prompts)]

    monkeypatch.setattr(module, "sampled_pairs", fake_sample)
    saved = tmp_path / "pairs.json"
    args = module.parse_args(["--pool-prompts", "3", "--held-out-prompts", "2",
                              "--pairs", str(saved)])  # fmt: skip
    pool, held = module.pool_and_held_out(args, tmp_path, tmp_path)
    assert sampled == [(3, False), (2, True)] and saved.exists()
    again_pool, again_held = module.pool_and_held_out(args, tmp_path, tmp_path)
    assert sampled == [(3, False), (2, True)]  # read back, not sampled again
    assert (again_pool, again_held) == (pool, held)
    assert [p.prompt[0]["content"] for p in held[0]] == ["q2000"] * 2  # one draw
    # two held-out draws: the first as before, the second of its own seed; another key
    draws = module.parse_args(["--pool-prompts", "3", "--held-out-prompts", "2",
                               "--held-out-draws", "2", "--pairs", str(saved)])  # fmt: skip
    with pytest.raises(ValueError, match=r"was sampled for .*'held_out_draws': 1"):
        module.pool_and_held_out(draws, tmp_path, tmp_path)
    two = tmp_path / "two.json"
    draws.pairs = str(two)
    _, held_two = module.pool_and_held_out(draws, tmp_path, tmp_path)
    assert [[p.prompt[0]["content"] for p in draw] for draw in held_two] == [
        ["q2000", "q2000"], ["q2001", "q2001"],
    ]  # fmt: skip
    assert module.pool_and_held_out(draws, tmp_path, tmp_path)[1] == held_two  # read back
    assert sampled[2:] == [(3, False), (2, True), (2, True)]  # sampled once
    del sampled[2:]
    other = module.parse_args(["--pool-prompts", "4", "--held-out-prompts", "2",
                               "--pairs", str(saved)])  # fmt: skip
    with pytest.raises(ValueError, match=r"was sampled for .*'pool_prompts': 3"):
        module.pool_and_held_out(other, tmp_path, tmp_path)
    unsaved = module.parse_args(["--pool-prompts", "1", "--held-out-prompts", "1"])
    module.pool_and_held_out(unsaved, tmp_path, tmp_path)
    assert len(sampled) == 4  # without --pairs every run samples
    # the policy's weights rebuilt in place behind the same path: sampled again, not read back
    policy = tmp_path / "policy"
    policy.mkdir()
    (policy / "model.safetensors").write_bytes(b"first weights")
    rebuilt = tmp_path / "rebuilt.json"
    args = module.parse_args(["--pool-prompts", "3", "--held-out-prompts", "2",
                              "--pairs", str(rebuilt)])  # fmt: skip
    module.pool_and_held_out(args, policy, tmp_path)
    assert len(sampled) == 6
    module.pool_and_held_out(args, policy, tmp_path)
    assert len(sampled) == 6  # the same weights: read back
    (policy / "model.safetensors").write_bytes(b"other weights")
    with pytest.raises(ValueError, match=r"was sampled for .*'weights': \{'model.safetensors'"):
        module.pool_and_held_out(args, policy, tmp_path)


def test_batches_of_ties_score_a_coin_on_every_draw_and_do_not_stop_at_the_target(
    tmp_path: Path,
) -> None:
    module = bench_module("active_learning.py")
    prompt = [{"role": "user", "content": "Hi?"}]
    tie = module.Pair(prompt=prompt, a="Hello.", b="Hi.")  # polite scores both 0: a tie
    args = module.parse_args(["--rule", "polite", "--noise", "0", "--batch", "1", "--max-labels",
                              "2", "--target", "0.0", "--arms", "random"])  # fmt: skip
    held_out = [[{"prompt": prompt, "chosen": "Hello, thank you.", "rejected": "Hi."}]] * 2
    trace = module.run_arm("random", 0, [tie, tie], held_out, args, tmp_path, tmp_path)
    # nothing trained (no decided label), yet every point is recorded on both measures
    assert trace.rows == [0, 0] and trace.curve == [(1, 0.5), (2, 0.5)]
    assert trace.first_draw == [0.5, 0.5]
    one = module.run_arm("random", 0, [tie, tie], held_out[:1], args, tmp_path, tmp_path)
    assert one.curve == [(1, 0.5), (2, 0.5)] and one.first_draw == []  # one draw keeps none
