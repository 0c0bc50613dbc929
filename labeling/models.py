"""The labeling data model: projects, prompts, responses, comparisons, leases and judgments.

Rules about a single row live here as constraints; workflows that span rows live in
``labeling.services``. Choices are stored in canonical terms of the comparison (response ``a`` /
``b``) together with the side response ``a`` was shown on, so position bias can be audited.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import Coalesce


def text_hash(text: str) -> str:
    """The content key of a response text (identical texts under one prompt are one response)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Source(models.TextChoices):
    HUMAN = "human", "Judged here"
    IMPORTED = "imported", "Imported"


class QueueOrder(models.TextChoices):
    """How a project's queue orders the comparisons within a priority (``Comparison.priority``)."""

    FIFO = "fifo", "First in, first out"
    UNCERTAINTY = "uncertainty", "Most uncertain for the reward model first"


class Project(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    guidelines = models.TextField(blank=True, help_text="Markdown shown to annotators.")
    judgments_per_comparison = models.PositiveSmallIntegerField(
        default=1, help_text="k: how many annotators judge each comparison."
    )
    lease_minutes = models.PositiveSmallIntegerField(
        default=10, help_text="How long a leased comparison stays reserved for its annotator."
    )
    max_pairs_per_prompt = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="When responses are imported, at most this many sampled pairs per prompt "
        "(empty: all pairs).",
    )
    gold_rate = models.FloatField(
        default=0.0,
        help_text="Share of the items served to each annotator that are gold (0: none, at most "
        "0.5). See labeling.gold.",
    )
    queue_order = models.CharField(
        max_length=16,
        choices=QueueOrder.choices,
        default=QueueOrder.FIFO,
        help_text="fifo: each batch in the order it came; uncertainty: after each reward-model "
        "step the worker re-orders open comparisons, those a label would teach the reward model "
        "most about (the pair's information under an ensemble of its head, BALD: not the pairs "
        "it calls a tie) or whose votes it disagrees with first.",
    )
    annotators = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="annotated_projects",
        help_text="Who may label in this project (admins always may).",
    )
    # review (helper: review): per-project reviewers (labeling.roles.can_review)
    reviewers = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="reviewed_projects",
        help_text="Who may review and adjudicate in this project (admins always may).",
    )
    # --- rank: labeling depth (issue 13): rankings, acceptability, onboarding ---
    task_kind = models.CharField(
        max_length=16,
        choices=[("pairwise", "Pairwise comparisons"), ("ranking", "Rank K responses")],
        default="pairwise",
        help_text="pairwise: annotators judge two responses; ranking: they order the K "
        "responses of a ranking set (labeling.ranking), expanded into pairwise judgments.",
    )
    ask_acceptable = models.BooleanField(
        default=False,
        help_text="Also ask whether the better response is acceptable; unacceptable and "
        "both-bad comparisons go to the rewrite export instead of preference pairs.",
    )
    onboarding_required = models.BooleanField(
        default=False,
        help_text="Annotators acknowledge the guidelines and pass the qualification set "
        "(labeling.onboarding) before live work.",
    )
    qualification_items = models.PositiveSmallIntegerField(
        default=0, help_text="How many gold items the qualification set holds (0: none)."
    )
    qualification_pass_mark = models.FloatField(
        default=0.8, help_text="The share of qualification items to answer right to pass."
    )
    # --- end rank ---
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(judgments_per_comparison__gte=1, judgments_per_comparison__lte=50),
                name="project_k_range",
            ),
            models.CheckConstraint(
                condition=Q(lease_minutes__gte=1), name="project_lease_positive"
            ),
            models.CheckConstraint(
                condition=Q(gold_rate__gte=0, gold_rate__lte=0.5), name="project_gold_rate_range"
            ),
            models.CheckConstraint(
                condition=Q(queue_order__in=["fifo", "uncertainty"]),
                name="project_queue_order_valid",
            ),
            # --- rank ---
            models.CheckConstraint(
                condition=Q(task_kind__in=["pairwise", "ranking"]), name="project_task_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(qualification_pass_mark__gte=0, qualification_pass_mark__lte=1),
                name="project_pass_mark_range",
            ),
            # --- end rank ---
        ]

    def __str__(self) -> str:
        return self.name


class Split(models.TextChoices):
    TRAIN = "train", "Train"
    TEST = "test", "Held out"


class Prompt(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prompts")
    external_id = models.CharField(max_length=200, blank=True)
    messages = models.JSONField(help_text="The conversation: a list of {role, content}.")
    metadata = models.JSONField(default=dict, blank=True)
    split = models.CharField(max_length=8, choices=Split.choices, default=Split.TRAIN)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.HUMAN)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "external_id"],
                condition=~Q(external_id=""),
                name="prompt_unique_external_id",
            ),
        ]

    def __str__(self) -> str:
        return self.external_id or f"prompt {self.pk}"

    @property
    def last_user_message(self) -> str:
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return str(message.get("content", ""))
        return ""


class Response(models.Model):
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="responses")
    text = models.TextField()
    text_hash = models.CharField(max_length=64, editable=False)
    model_name = models.CharField(max_length=200, blank=True, help_text="Who wrote it.")
    checkpoint_ref = models.CharField(
        max_length=64, blank=True, help_text="The Pairwise checkpoint that generated it, if any."
    )
    generation_params = models.JSONField(default=dict, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    external_id = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["prompt", "text_hash"], name="response_unique_text"),
        ]

    def __str__(self) -> str:
        return f"response {self.pk} ({self.model_name or 'unknown'})"


class ComparisonStatus(models.TextChoices):
    OPEN = "open", "Open"
    COMPLETE = "complete", "Complete"
    CLOSED = "closed", "Closed"


class GoldAnswer(models.TextChoices):
    """A gold item's answer: a side. Ties and both-bad are judgment calls, not checkable facts."""

    A = "a", "A is better"
    B = "b", "B is better"


class ComparisonQuerySet(models.QuerySet["Comparison"]):
    def open(self) -> ComparisonQuerySet:
        return self.filter(status=ComparisonStatus.OPEN)

    def gold(self) -> ComparisonQuerySet:
        return self.filter(gold_answer__gt="")

    def not_gold(self) -> ComparisonQuerySet:
        """What preferences, exports and agreement figures read: gold items never enter them."""
        return self.filter(gold_answer="")

    def _unseen_by(self, annotator: Any) -> ComparisonQuerySet:
        """Open comparisons this annotator has neither judged nor skipped."""
        return (
            self.open()
            .exclude(
                Exists(Judgment.objects.filter(comparison=OuterRef("pk"), annotator=annotator))
            )
            .exclude(
                Exists(
                    Assignment.objects.filter(
                        comparison=OuterRef("pk"),
                        annotator=annotator,
                        status=AssignmentStatus.SKIPPED,
                    )
                )
            )
        )

    def gold_claimable_by(self, annotator: Any) -> ComparisonQuerySet:
        """Gold items this annotator has neither judged nor skipped (no slots: each annotator
        once). Twin of ``labeling.queue._GOLD_CLAIMABLE``."""
        return self.gold()._unseen_by(annotator)

    def claimable_by(self, annotator: Any, *, now: datetime) -> ComparisonQuerySet:
        """Open comparisons, not gold, this annotator has neither judged nor skipped, with a free
        slot. Twin of ``labeling.queue._CLAIMABLE``."""
        live_leases = (
            Assignment.objects.filter(
                comparison=OuterRef("pk"), status=AssignmentStatus.ACTIVE, expires_at__gt=now
            )
            .values("comparison")
            .annotate(n=models.Count("pk"))
            .values("n")
        )
        return (
            self.not_gold()
            ._unseen_by(annotator)
            .alias(
                live_leases=Coalesce(
                    models.Subquery(live_leases, output_field=models.IntegerField()), 0
                )
            )
            .filter(judgment_count__lt=F("project__judgments_per_comparison") - F("live_leases"))
        )


class Comparison(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="comparisons")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="comparisons")
    response_a = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="+")
    response_b = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="+")
    priority = models.IntegerField(default=0, help_text="Higher comes first in the queue.")
    judgment_count = models.PositiveIntegerField(default=0)
    status = models.CharField(
        max_length=8, choices=ComparisonStatus.choices, default=ComparisonStatus.OPEN
    )
    batch = models.CharField(
        max_length=100,
        blank=True,
        help_text="Provenance tag, e.g. 'import' or 'round-3:vs-champion'.",
    )
    gold_answer = models.CharField(
        max_length=1,
        choices=GoldAnswer.choices,
        blank=True,
        help_text="A gold item's correct answer (empty: not gold). See labeling.gold.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ComparisonQuerySet.as_manager()

    class Meta:
        ordering = ["-priority", "id"]
        indexes = [
            models.Index(
                fields=["project", "status", "-priority", "id"], name="comparison_queue_idx"
            ),
            # The gold queue (labeling.queue._GOLD_CLAIMABLE): the few gold rows of a project.
            models.Index(
                fields=["project", "status", "-priority", "id"],
                condition=Q(gold_answer__gt=""),
                name="comparison_gold_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(response_a=F("response_b")), name="comparison_distinct_responses"
            ),
            models.UniqueConstraint(
                fields=["response_a", "response_b"], name="comparison_unique_pair"
            ),
            models.CheckConstraint(
                condition=Q(gold_answer__in=["", "a", "b"]), name="comparison_gold_answer_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"comparison {self.pk}"


class Side(models.TextChoices):
    A = "a", "Response A"
    B = "b", "Response B"


class AssignmentStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    DONE = "done", "Judged"
    SKIPPED = "skipped", "Skipped"
    EXPIRED = "expired", "Expired"
    RELEASED = "released", "Released"


class Assignment(models.Model):
    """A lease: one annotator holds one comparison until ``expires_at``."""

    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="assignments")
    leased_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    shown_left = models.CharField(
        max_length=1, choices=Side.choices, help_text="Which response was shown on the left."
    )
    status = models.CharField(
        max_length=8, choices=AssignmentStatus.choices, default=AssignmentStatus.ACTIVE
    )

    class Meta:
        ordering = ["-leased_at"]
        indexes = [
            models.Index(fields=["comparison", "status", "expires_at"], name="assignment_live_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["annotator", "project"],
                condition=Q(status="active"),
                name="assignment_one_active_per_annotator",
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=F("leased_at")), name="assignment_expires_after_lease"
            ),
        ]

    def __str__(self) -> str:
        return f"lease of {self.comparison_id} by {self.annotator_id}"

    def is_live(self, now: datetime) -> bool:
        return self.status == AssignmentStatus.ACTIVE and self.expires_at > now


class Choice(models.TextChoices):
    A = "a", "A is better"
    B = "b", "B is better"
    TIE = "tie", "Tie"
    BOTH_BAD = "both_bad", "Both bad"


class Strength(models.IntegerChoices):
    NEGLIGIBLE = 1, "Negligibly better"
    SLIGHT = 2, "Slightly better"
    CLEAR = 3, "Clearly better"
    STRONG = 4, "Much better"


class Flag(models.TextChoices):
    UNSAFE = "unsafe", "Unsafe"
    FACTUAL_ERROR = "factual_error", "Factual error"
    OFF_TOPIC = "off_topic", "Off-topic"
    OTHER = "other", "Other"


class Judgment(models.Model):
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="judgments"
    )
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="judgments")
    choice = models.CharField(max_length=8, choices=Choice.choices)
    strength = models.PositiveSmallIntegerField(choices=Strength.choices, null=True, blank=True)
    rationale = models.TextField(blank=True)
    flags = models.JSONField(default=list, blank=True)
    shown_left = models.CharField(max_length=1, choices=Side.choices)
    time_spent_ms = models.PositiveIntegerField(null=True, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.HUMAN)
    origin = models.CharField(
        max_length=16,
        blank=True,
        help_text="Imported judgments: the source the dataset recorded (kept for lossless export).",
    )
    # --- rank ---
    ranking = models.ForeignKey(
        "Ranking",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="judgments",
        help_text="The ranking this judgment was derived from (labeling.ranking), if any.",
    )
    acceptable = models.BooleanField(
        null=True,
        blank=True,
        help_text="Is the better response acceptable? (Project.ask_acceptable; empty: not asked)",
    )
    # --- end rank ---
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # An annotator's latest judgments, newest first (the gold schedule, labeling.queue).
            models.Index(fields=["annotator", "-id"], name="judgment_annotator_recent_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["annotator", "comparison"], name="judgment_once_per_annotator"
            ),
            models.CheckConstraint(
                condition=Q(choice__in=["a", "b", "tie", "both_bad"]), name="judgment_choice_valid"
            ),
            models.CheckConstraint(
                condition=Q(strength__isnull=True) | Q(strength__gte=1, strength__lte=4),
                name="judgment_strength_range",
            ),
            models.CheckConstraint(
                condition=Q(choice__in=["a", "b"]) | Q(strength__isnull=True),
                name="judgment_no_strength_for_tie",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.annotator_id} on {self.comparison_id}: {self.choice}"

    @property
    def shown_choice(self) -> str:
        """The choice in screen terms: ``left`` / ``right`` / ``tie`` / ``both_bad``."""
        if self.choice not in (Choice.A, Choice.B):
            return str(self.choice)
        return "left" if self.choice == self.shown_left else "right"


# --- rank: rankings (labeling.ranking) and onboarding (labeling.onboarding), issue 13 -----------

RANKING_MIN_K = 3
RANKING_MAX_K = 9


class RankingSet(models.Model):
    """K responses to one prompt that annotators put in order, each set ranked by
    ``Project.judgments_per_comparison`` annotators (the queue item of a ranking project)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="ranking_sets")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="ranking_sets")
    responses = models.ManyToManyField(Response, related_name="ranking_sets")
    size = models.PositiveSmallIntegerField(help_text="K: how many responses are ranked.")
    ranking_count = models.PositiveIntegerField(default=0)
    status = models.CharField(
        max_length=8, choices=ComparisonStatus.choices, default=ComparisonStatus.OPEN
    )
    batch = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(size__gte=RANKING_MIN_K, size__lte=RANKING_MAX_K),
                name="ranking_set_size_range",
            ),
        ]

    def __str__(self) -> str:
        return f"ranking set {self.pk} ({self.size} responses)"


class RankingLease(models.Model):
    """One annotator holds one ranking set until ``expires_at``; ``display_order`` is the order
    the responses were first shown in (response ids), kept for position-bias audits."""

    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ranking_leases"
    )
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    ranking_set = models.ForeignKey(RankingSet, on_delete=models.CASCADE, related_name="leases")
    display_order = models.JSONField()
    leased_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    status = models.CharField(
        max_length=8, choices=AssignmentStatus.choices, default=AssignmentStatus.ACTIVE
    )

    class Meta:
        ordering = ["-leased_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["annotator", "project"],
                condition=Q(status="active"),
                name="ranking_lease_one_active",
            ),
        ]

    def __str__(self) -> str:
        return f"lease of ranking set {self.ranking_set_id} by {self.annotator_id}"

    def is_live(self, now: datetime) -> bool:
        return self.status == AssignmentStatus.ACTIVE and self.expires_at > now


class Ranking(models.Model):
    """One annotator's order of a ranking set, best first; ``order`` is a list of tiers (lists
    of response ids, a tier of two or more being a tie). Expanded into one ``Judgment`` per pair
    (``Judgment.ranking``): C(K, 2) of them."""

    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rankings"
    )
    ranking_set = models.ForeignKey(RankingSet, on_delete=models.CASCADE, related_name="rankings")
    order = models.JSONField()
    display_order = models.JSONField(default=list)
    time_spent_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["annotator", "ranking_set"], name="ranking_once_per_annotator"
            ),
        ]

    def __str__(self) -> str:
        return f"ranking {self.pk} of set {self.ranking_set_id} by {self.annotator_id}"


class Onboarding(models.Model):
    """Where one annotator stands in a project's onboarding: guidelines acknowledged (for which
    text) and qualification passed."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="onboardings")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="onboardings"
    )
    guidelines_hash = models.CharField(max_length=64, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    attempt = models.PositiveSmallIntegerField(default=1)
    qualified_at = models.DateTimeField(null=True, blank=True)
    last_score = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "annotator"], name="onboarding_once"),
        ]

    def __str__(self) -> str:
        return f"onboarding of {self.annotator_id} in {self.project_id}"


class QualificationAnswer(models.Model):
    """One answer to a qualification (gold) item, in one attempt. Not a ``Judgment``: it
    neither takes a slot nor enters gold accuracy, preferences or agreement."""

    onboarding = models.ForeignKey(Onboarding, on_delete=models.CASCADE, related_name="answers")
    attempt = models.PositiveSmallIntegerField()
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="+")
    choice = models.CharField(max_length=8, choices=Choice.choices)
    correct = models.BooleanField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["onboarding", "attempt", "comparison"], name="qualification_answer_once"
            ),
        ]

    def __str__(self) -> str:
        return f"answer of {self.onboarding_id} on {self.comparison_id}"


# --- end rank ---


# --- review, judgment edits, people (helper: review) ---------------------------------------------


class JudgmentRevision(models.Model):
    """A judgment's values before its annotator edited it (``services.judgment_edit``): the audit
    trail. The judgment row holds the current values; each edit adds the previous ones here."""

    judgment = models.ForeignKey(Judgment, on_delete=models.CASCADE, related_name="revisions")
    choice = models.CharField(max_length=8, choices=Choice.choices)
    strength = models.PositiveSmallIntegerField(choices=Strength.choices, null=True, blank=True)
    rationale = models.TextField(blank=True)
    flags = models.JSONField(default=list, blank=True)
    edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    replaced_at = models.DateTimeField(help_text="When these values were replaced.")

    class Meta:
        ordering = ["judgment", "-replaced_at", "-id"]

    def __str__(self) -> str:
        return f"revision of judgment {self.judgment_id}: {self.choice}"


class Adjudication(models.Model):
    """A reviewer's decision on one comparison, stored beside its votes (never over them).

    Exports use it when asked (``adjudicated=prefer``), rounds by default
    (``snapshot.adjudicated``): then it stands for the comparison's votes as one decisive vote
    (``labeling.preferences``)."""

    comparison = models.OneToOneField(
        Comparison, on_delete=models.CASCADE, related_name="adjudication"
    )
    choice = models.CharField(max_length=8, choices=Choice.choices)
    strength = models.PositiveSmallIntegerField(choices=Strength.choices, null=True, blank=True)
    note = models.TextField(blank=True)
    adjudicator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(choice__in=["a", "b", "tie", "both_bad"]),
                name="adjudication_choice_valid",
            ),
            models.CheckConstraint(
                condition=Q(choice__in=["a", "b"]) | Q(strength__isnull=True),
                name="adjudication_no_strength_for_tie",
            ),
            models.CheckConstraint(
                condition=Q(strength__isnull=True) | Q(strength__gte=1, strength__lte=4),
                name="adjudication_strength_range",
            ),
        ]

    def __str__(self) -> str:
        return f"adjudication of {self.comparison_id}: {self.choice}"


class ReviewComment(models.Model):
    """A reviewer's or admin's comment on one comparison (a flat list, oldest first)."""

    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["comparison", "created_at", "id"]

    def __str__(self) -> str:
        return f"comment {self.pk} on {self.comparison_id}"


class ProjectRole(models.TextChoices):
    """A member's role in one project (admins have every role everywhere)."""

    ANNOTATOR = "annotator", "Annotator"
    REVIEWER = "reviewer", "Reviewer"


class ProjectInvite(models.Model):
    """A one-time link that lets a new user set a password and join a project in a role.

    Only the token's sha256 is stored; the link is shown once, when the invite is created."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="invites")
    role = models.CharField(max_length=16, choices=ProjectRole.choices)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    note = models.CharField(max_length=200, blank=True, help_text="Who it is for (for admins).")
    expires_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(role__in=["annotator", "reviewer"]), name="invite_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"invite {self.pk} to {self.project_id} as {self.role}"

    def is_usable(self, now: datetime) -> bool:
        return self.used_at is None and self.revoked_at is None and self.expires_at > now
