"""Schemathesis against /api/v1/schema/: every operation, as an admin and as an annotator, a few
generated requests each (valid and invalid ones, fixed seed). No response may be a 5xx and every
one must match the schema: a documented status code and content type, a body of the documented
shape. (Not checked: that every schema-violating request is refused. DRF coerces on purpose,
e.g. ``"name": 0`` is the name "0", and an unreadable ``limit`` means the default page.)

The requests go through Django's WSGI handler inside the test's transaction, so the PostgreSQL
pass runs this too. Even path ids are mapped to real rows (a project, a comparison, a finished
round and its checkpoint), so the requests get past the 404s into the views. Jobs are enqueued
on commit, which never comes inside the test: no round or generation runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from labeling.models import Project
from rlhf import services
from rlhf.models import Checkpoint, Round, RoundStatus
from tests.factories import ComparisonFactory

MAX_EXAMPLES = 4  # per operation and generation mode (valid, invalid)
SEED = 20261204
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {
            "mode": "all",
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",
        },
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
    }
)

# Read when the module is collected (Django is set up by then; the schema view reads no rows).
schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", WSGIHandler(), config=CONFIG)


@dataclass(frozen=True)
class World:
    ids: dict[str, int]
    tokens: dict[str, str]


@pytest.fixture(autouse=True)
def connection_kept_across_requests(db: Any) -> Iterator[None]:
    """Django's test client keeps the connection (the test's transaction) across requests; so
    must the WSGI handler the generated requests go through."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def world(admin_user: Any, annotator: Any, project: Project) -> World:
    comparison = ComparisonFactory.create(project=project)
    ComparisonFactory.create_batch(2, project=project)
    base = services.checkpoint_base(project=project)
    policy = Checkpoint.objects.create(
        project=project, model_spec=base.model_spec, parent=base, adapter_dir="checkpoints/x"
    )
    round_ = Round.objects.create(
        project=project,
        number=1,
        method="dpo",
        parent_checkpoint=base,
        checkpoint=policy,
        status=RoundStatus.SUCCEEDED,
        snapshot_hash="0" * 64,
        snapshot_size=3,
    )
    tokens = {
        role: Token.objects.get_or_create(user=user)[0].key
        for role, user in (("admin", admin_user), ("annotator", annotator))
    }
    ids = {
        "project_id": project.pk,
        "comparison_id": comparison.pk,
        "round_id": round_.pk,
        "checkpoint_id": policy.pk,
    }
    return World(ids=ids, tokens=tokens)


@schema.parametrize()
@settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_to_its_schema(case: Any, world: World) -> None:
    for name, value in list((case.path_parameters or {}).items()):
        if name in world.ids and isinstance(value, int) and value % 2 == 0:
            case.path_parameters[name] = world.ids[name]
    for role in ("admin", "annotator"):
        case.call_and_validate(
            headers={"Authorization": f"Token {world.tokens[role]}"}, checks=CHECKS
        )
