"""Django admin registrations for the model side (read-mostly: the pages and services write)."""

from django.contrib import admin

from rlhf.models import Checkpoint, ModelSpec, Round, TrainingRun


@admin.register(ModelSpec)
class ModelSpecAdmin(admin.ModelAdmin):
    list_display = ["name", "base_model", "reward_backbone", "device", "created_at"]


@admin.register(Checkpoint)
class CheckpointAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "kind", "parent", "is_champion", "adapter_dir", "created_at"]
    list_filter = ["project", "kind", "is_champion"]
    raw_id_fields = ["parent", "created_by"]
    readonly_fields = ["is_champion"]  # promote through the checkpoints page (one champion)


class TrainingRunInline(admin.TabularInline):
    model = TrainingRun
    extra = 0
    fields = ("step", "attempt", "status", "heartbeat_at", "started_at", "finished_at", "error")
    readonly_fields = (
        "step",
        "attempt",
        "status",
        "heartbeat_at",
        "started_at",
        "finished_at",
        "error",
    )
    can_delete = False


@admin.register(Round)
class RoundAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "number", "method", "status", "snapshot_size", "created_at"]
    list_filter = ["project", "method", "status"]
    readonly_fields = ["snapshot_judgment_ids", "snapshot_hash", "status"]
    raw_id_fields = ["parent_checkpoint", "checkpoint", "reward_checkpoint"]
    inlines = [TrainingRunInline]


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["id", "round", "step", "attempt", "status", "heartbeat_at", "pid", "host"]
    list_filter = ["step", "status"]
    raw_id_fields = ["round"]
