"""Round batches already in the queue move into their round's priority tier
(``rlhf.methods.QUEUE_TIER``): the newest round's unjudged pairs are served first."""

from typing import Any

from django.db import migrations
from django.db.models import F

TIER = 1_000_000  # rlhf.methods.QUEUE_TIER when this was written


def tiered(apps: Any, schema_editor: Any) -> None:
    comparison = apps.get_model("labeling", "Comparison")
    batches = comparison.objects.filter(batch__startswith="round-", priority__lt=TIER)
    for batch in batches.values_list("batch", flat=True).distinct():
        number = batch.removeprefix("round-").split(":", 1)[0]
        if number.isdigit() and int(number) > 0:
            batches.filter(batch=batch).update(priority=F("priority") + int(number) * TIER)


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0004_project_queue_order"),
        ("rlhf", "0006_round_reward_snapshot"),
    ]

    operations = [migrations.RunPython(tiered, migrations.RunPython.noop)]
