"""Model rules held by the database: bad choices are refused there too, not only in forms."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from rlhf.models import ModelSpec


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "value"), [("dtype", "fp8"), ("device", "tpu")])
def test_model_spec_refuses_unknown_dtype_and_device(field: str, value: str) -> None:
    fields = {
        "name": "m",
        "base_model": "builtin:policy",
        "reward_backbone": "builtin:reward-backbone",
    }
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelSpec.objects.create(**fields, **{field: value})
    assert ModelSpec.objects.create(**fields, dtype="bfloat16").engine_fields() == {
        "device": "auto",
        "dtype": "bfloat16",
    }
