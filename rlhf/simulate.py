"""Simulated annotators: scripted preference rules with label noise, over the real HTTP API or
in-process through the same labeling services.

A simulated annotator scores both shown responses with a rule from ``rlhf.training.rules``
(plain Python, no torch), picks the better one, flips its choice with probability ``noise``,
answers ``tie`` when the scores are equal, and sets the strength from the score gap.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from labeling.models import Project
from labeling.services import (
    assignment_claim_next,
    judgment_submit,
    user_create,
)
from rlhf.training.rules import Decision as Decision
from rlhf.training.rules import RuleJudge as RuleJudge


@dataclass
class SimulationStats:
    judged: int = 0
    ties: int = 0
    annotators: int = 0

    def add(self, decision: Decision) -> None:
        self.judged += 1
        self.ties += decision.choice == "tie"


def annotators_ensure(
    project: Project, count: int, *, prefix: str = "sim"
) -> list[tuple[Any, str]]:
    """``count`` annotator accounts that are members of ``project``, with their API tokens."""
    users_tokens = []
    user_model = get_user_model()
    for index in range(1, count + 1):
        username = f"{prefix}-annotator-{index}"
        user = user_model.objects.filter(username=username).first()
        if user is None:
            user, _ = user_create(username=username, role="annotator")
        project.annotators.add(user)
        token, _ = Token.objects.get_or_create(user=user)
        users_tokens.append((user, token.key))
    return users_tokens


def judge_in_process(
    *,
    project: Project,
    annotators: Sequence[Any],
    rule: str,
    noise: float,
    limit: int | None = None,
    seed: int = 0,
) -> SimulationStats:
    """Judge the queue through the labeling services (no server), round-robin over annotators."""
    judges = [RuleJudge(rule, noise, seed + i) for i in range(len(annotators))]
    stats = SimulationStats(annotators=len(annotators))
    active = list(range(len(annotators)))
    while active and (limit is None or stats.judged < limit):
        for index in list(active):
            if limit is not None and stats.judged >= limit:
                break
            lease = assignment_claim_next(annotator=annotators[index], project=project)
            if lease is None:
                active.remove(index)
                continue
            comparison = lease.comparison
            decision = judges[index].decide(
                comparison.prompt.messages, comparison.response_a.text, comparison.response_b.text
            )
            judgment_submit(
                annotator=annotators[index],
                comparison=comparison,
                choice=decision.choice,
                strength=decision.strength,
            )
            stats.add(decision)
    return stats


class ApiClient:
    """The few calls of the REST API an annotator makes, with token auth (stdlib only)."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    # A throttled (429) or busy (503) call is retried after its Retry-After, this many times:
    # a judgment is idempotent, a lease is the caller's one active lease.
    RETRIES = 20

    def post(self, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        for _ in range(self.RETRIES):
            status, payload, retry_after = self._post(path, body)
            if status not in (429, 503) or retry_after is None:
                break
            time.sleep(min(retry_after, 60.0))
        return status, payload

    def _post(self, path: str, body: dict[str, Any] | None) -> tuple[int, Any, float | None]:
        request = urllib.request.Request(
            f"{self.base_url}{path}",
            data=json.dumps(body or {}).encode("utf-8"),
            method="POST",
            headers={
                "Authorization": f"Token {self.token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None, None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                payload = json.loads(raw) if raw else None
            except json.JSONDecodeError:
                payload = raw.decode("utf-8", "replace")
            try:
                retry_after = float(exc.headers.get("Retry-After", ""))
            except ValueError:
                retry_after = None
            return exc.code, payload, retry_after


class ApiError(RuntimeError):
    pass


def judge_over_http(
    *,
    base_url: str,
    project_id: int,
    tokens: Sequence[str],
    rule: str,
    noise: float,
    limit: int | None = None,
    seed: int = 0,
) -> SimulationStats:
    """Judge the queue as ``len(tokens)`` annotators through the HTTP API, round-robin."""
    clients = [ApiClient(base_url, token) for token in tokens]
    judges = [RuleJudge(rule, noise, seed + i) for i in range(len(tokens))]
    stats = SimulationStats(annotators=len(tokens))
    active = list(range(len(tokens)))
    while active and (limit is None or stats.judged < limit):
        for index in list(active):
            if limit is not None and stats.judged >= limit:
                break
            status, lease = clients[index].post(f"/api/v1/projects/{project_id}/queue/next/")
            if status == 204:
                active.remove(index)
                continue
            if status != 200:
                raise ApiError(f"queue/next answered {status}: {lease}")
            shown = {
                lease["left"]["canonical"]: lease["left"],
                lease["right"]["canonical"]: lease["right"],
            }
            decision = judges[index].decide(
                lease["prompt"]["messages"], shown["a"]["text"], shown["b"]["text"]
            )
            status, body = clients[index].post(
                f"/api/v1/comparisons/{lease['comparison']}/judgments/",
                {"choice": decision.choice, "strength": decision.strength},
            )
            if status not in (200, 201):
                raise ApiError(f"judgment answered {status}: {body}")
            stats.add(decision)
    return stats
