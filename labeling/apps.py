"""App config for the human side of Pairwise."""

from django.apps import AppConfig


class LabelingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "labeling"
    verbose_name = "Labeling"

    def ready(self) -> None:
        from labeling import checks  # noqa: F401 - registers the deployment checks
