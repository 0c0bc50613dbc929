"""Shapes of the labeling API: input serializers check shape only, output ones render.

The rules (k, leases, which choice allows a strength) live in ``labeling.services``; a serializer
never writes to the database.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from labeling.models import Assignment, Choice, Flag, Judgment, Project, Side

# --- projects ----------------------------------------------------------------------------------


class ProjectSerializer(serializers.ModelSerializer[Project]):
    annotators: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username",
        many=True,
        read_only=True,
        help_text="Usernames of the project's annotators (shown to admins only).",
    )
    roles = serializers.SerializerMethodField(
        help_text="Your roles in the project: annotator (you label in it: the queue), reviewer "
        "(you browse, comment and adjudicate its comparisons). Admins may do both anywhere, "
        "with or without a role."
    )

    class Meta:
        model = Project
        fields = [
            "id",
            "name",
            "description",
            "guidelines",
            "judgments_per_comparison",
            "lease_minutes",
            "max_pairs_per_prompt",
            "gold_rate",
            "queue_order",
            "annotators",
            "roles",
            "created_at",
        ]
        read_only_fields = fields
        # Admins' eyes only (annotators are not told that gold exists): absent for annotators,
        # so not required in the schema (labeling.api.schema).
        optional_fields = ["annotators", "gold_rate"]

    @extend_schema_field(
        serializers.ListField(child=serializers.ChoiceField(choices=["annotator", "reviewer"]))
    )
    def get_roles(self, project: Project) -> list[str]:
        """From ``selectors.projects_listed_for``'s annotations (every view renders a project
        read through it)."""
        held = {"annotator": project.is_annotator, "reviewer": project.is_reviewer}  # type: ignore[attr-defined]
        return [role for role, has in held.items() if has]

    def get_fields(self) -> dict[str, Any]:
        """With ``show_annotators`` False the admins-only fields are not rendered at all
        (rendering then dropping them read each project's annotators: one query a project). The
        schema (drf-spectacular's ``swagger_fake_view``) documents them. No ``show_annotators``
        given: shown to nobody."""
        fields = super().get_fields()
        documenting = getattr(self.context.get("view"), "swagger_fake_view", False)
        if not self.context.get("show_annotators", False) and not documenting:
            for name in self.Meta.optional_fields:
                fields.pop(name, None)
        return fields


class ProjectCreateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    guidelines = serializers.CharField(required=False, allow_blank=True, default="")
    judgments_per_comparison = serializers.IntegerField(required=False, default=1)
    lease_minutes = serializers.IntegerField(required=False, default=10, max_value=32767)
    max_pairs_per_prompt = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, max_value=32767
    )
    gold_rate = serializers.FloatField(required=False, default=0.0)
    queue_order = serializers.CharField(
        required=False, default="fifo", help_text="fifo (default) or uncertainty."
    )
    annotators = serializers.ListField(
        child=serializers.CharField(), required=False, default=list, help_text="Usernames."
    )


class ProjectUpdateSerializer(serializers.Serializer[Any]):
    """A PATCH changes the settings it names, at least one."""

    gold_rate = serializers.FloatField(
        required=False, help_text="Share of served items that are gold, 0 (off) to 0.5."
    )
    queue_order = serializers.CharField(required=False, help_text="fifo or uncertainty.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError("name a setting to change: gold_rate, queue_order")
        return attrs


# --- leases ------------------------------------------------------------------------------------


class ShownResponseSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(help_text="The response's id.")
    canonical = serializers.CharField(
        help_text="Which response of the comparison this is: a or b (the stored choice's terms)."
    )
    text = serializers.CharField()


class PromptShownSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    messages = serializers.ListField(child=serializers.DictField(), help_text="{role, content}")


class LeaseSerializer(serializers.Serializer[Any]):
    """A leased comparison, with its responses in the order the annotator is shown them."""

    assignment = serializers.IntegerField(help_text="The lease's id.")
    comparison = serializers.IntegerField()
    project = serializers.IntegerField()
    prompt = PromptShownSerializer()
    left = ShownResponseSerializer()
    right = ShownResponseSerializer()
    shown_left = serializers.ChoiceField(choices=Side.choices)
    leased_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()


_DATETIME = serializers.DateTimeField()


def lease_payload(assignment: Assignment) -> dict[str, Any]:
    """A lease (loaded by ``selectors.assignment_with_content``) as LeaseSerializer renders it.

    Built by hand because it is on the hot path: one judgment and its next lease per request.
    """
    comparison = assignment.comparison
    shown = {
        Side.A.value: {
            "id": comparison.response_a_id,
            "canonical": Side.A.value,
            "text": comparison.response_a.text,
        },
        Side.B.value: {
            "id": comparison.response_b_id,
            "canonical": Side.B.value,
            "text": comparison.response_b.text,
        },
    }
    left = str(assignment.shown_left)
    right = Side.B.value if left == Side.A.value else Side.A.value
    return {
        "assignment": assignment.pk,
        "comparison": comparison.pk,
        "project": comparison.project_id,
        "prompt": {"id": comparison.prompt_id, "messages": comparison.prompt.messages},
        "left": shown[left],
        "right": shown[right],
        "shown_left": assignment.shown_left,
        "leased_at": _DATETIME.to_representation(assignment.leased_at),
        "expires_at": _DATETIME.to_representation(assignment.expires_at),
    }


# --- judgments ---------------------------------------------------------------------------------


class JudgmentInputSerializer(serializers.Serializer[Any]):
    choice = serializers.ChoiceField(
        choices=Choice.choices, help_text="In canonical terms: a / b / tie / both_bad."
    )
    strength = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="1-4 when a or b is chosen; empty for tie and both_bad.",
    )
    rationale = serializers.CharField(required=False, allow_blank=True, default="")
    flags = serializers.ListField(
        child=serializers.ChoiceField(choices=Flag.choices), required=False, default=list
    )
    time_spent_ms = serializers.IntegerField(
        required=False, allow_null=True, default=None, max_value=2_147_483_647
    )
    acceptable = serializers.BooleanField(  # rank
        required=False,
        allow_null=True,
        default=None,
        help_text="Is the better response acceptable? (projects with ask_acceptable; empty "
        "for both_bad). Unacceptable comparisons go to the rewrite export, not to pairs.",
    )
    next = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Also lease the next comparison and return it as `next` (same as ?next=1).",
    )


class JudgmentSerializer(serializers.ModelSerializer[Judgment]):
    shown_choice = serializers.CharField(
        read_only=True, help_text="The choice in screen terms: left / right / tie / both_bad."
    )

    class Meta:
        model = Judgment
        fields = [
            "id",
            "comparison",
            "choice",
            "strength",
            "rationale",
            "flags",
            "shown_left",
            "shown_choice",
            "time_spent_ms",
            "created_at",
        ]
        read_only_fields = fields


def judgment_payload(judgment: Judgment) -> dict[str, Any]:
    """A judgment as JudgmentSerializer renders it, built by hand for the hot path."""
    return {
        "id": judgment.pk,
        "comparison": judgment.comparison_id,
        "choice": judgment.choice,
        "strength": judgment.strength,
        "rationale": judgment.rationale,
        "flags": judgment.flags,
        "shown_left": judgment.shown_left,
        "shown_choice": judgment.shown_choice,
        "time_spent_ms": judgment.time_spent_ms,
        "created_at": _DATETIME.to_representation(judgment.created_at),
    }


class JudgmentResultSerializer(JudgmentSerializer):
    """A stored judgment; ``next`` is there only when the next lease was asked for."""

    created = serializers.BooleanField(help_text="False when this was a retry of a stored one.")
    next = LeaseSerializer(
        allow_null=True, required=False, help_text="The next lease (null: queue empty)."
    )

    class Meta(JudgmentSerializer.Meta):
        fields = [*JudgmentSerializer.Meta.fields, "created", "next"]
        read_only_fields = fields


class NextOptionSerializer(serializers.Serializer[Any]):
    next = serializers.BooleanField(
        required=False, default=False, help_text="Also lease and return the next comparison."
    )


class SkipInputSerializer(NextOptionSerializer):
    assignment = serializers.IntegerField(
        required=False, help_text="The lease to skip (default: your active lease)."
    )


class SkipResultSerializer(serializers.Serializer[Any]):
    skipped = serializers.IntegerField(help_text="The skipped lease's id.")
    comparison = serializers.IntegerField()
    next = LeaseSerializer(allow_null=True, required=False)


# --- stats -------------------------------------------------------------------------------------


class ProgressSerializer(serializers.Serializer[Any]):
    comparisons_total = serializers.IntegerField()
    comparisons_open = serializers.IntegerField()
    comparisons_complete = serializers.IntegerField()
    comparisons_closed = serializers.IntegerField()
    live_leases = serializers.IntegerField()
    judgments_total = serializers.IntegerField()
    judgments_today = serializers.IntegerField()


class AgreementSerializer(serializers.Serializer[Any]):
    comparisons_multiply_judged = serializers.IntegerField(
        help_text="Comparisons with two or more judgments."
    )
    judgment_pairs = serializers.IntegerField()
    agreeing_pairs = serializers.IntegerField()
    pairwise_agreement = serializers.FloatField(
        allow_null=True, help_text="agreeing_pairs / judgment_pairs."
    )
    side_choices = serializers.IntegerField(help_text="Judgments that picked a or b.")
    left_choices = serializers.IntegerField(help_text="... of which picked the left-shown one.")
    position_bias_left = serializers.FloatField(
        allow_null=True, help_text="left_choices / side_choices (0.5: no bias)."
    )


class AnnotatorFiguresSerializer(serializers.Serializer[Any]):
    annotator_id = serializers.IntegerField()
    username = serializers.CharField()
    judgments = serializers.IntegerField()
    median_time_spent_ms = serializers.FloatField(allow_null=True)
    agreement_with_majority = serializers.FloatField(
        allow_null=True,
        help_text="Share of judgments matching the strict plurality of the other judgments.",
    )
    majority_comparisons = serializers.IntegerField(
        help_text="Judgments where the others had a strict plurality."
    )
    tie_rate = serializers.FloatField(allow_null=True)


class FigureSerializer(serializers.Serializer[Any]):
    value = serializers.FloatField(allow_null=True)
    reason = serializers.CharField(help_text="Why the value is null (empty when it is not).")


class QualityAgreementSerializer(serializers.Serializer[Any]):
    comparisons = serializers.IntegerField(help_text="Comparisons with two or more judgments.")
    judgments = serializers.IntegerField(help_text="Judgments on those comparisons.")
    percent_agreement = FigureSerializer(
        help_text="Share of pairs of judgments with the same choice (an annotator: their pairs "
        "with the others)."
    )
    alpha_nominal = FigureSerializer(help_text="Krippendorff's alpha, nominal, on the choice.")
    alpha_ordinal = FigureSerializer(
        help_text="Krippendorff's alpha, ordinal, on the signed strength (a: +s, b: -s, tie: 0; "
        "both_bad left out)."
    )
    fleiss_kappa = FigureSerializer(
        help_text="Fleiss' kappa, generalised to a varying number of raters per comparison."
    )


class RoundAgreementSerializer(serializers.Serializer[Any]):
    round = serializers.IntegerField(help_text="0: comparisons no round made.")
    agreement = QualityAgreementSerializer()


class PairKappaSerializer(serializers.Serializer[Any]):
    annotator_ids = serializers.ListField(child=serializers.IntegerField())
    usernames = serializers.ListField(child=serializers.CharField())
    shared = serializers.IntegerField(help_text="Comparisons both judged.")
    cohen_kappa = FigureSerializer()


class FlagSerializer(serializers.Serializer[Any]):
    code = serializers.CharField(
        help_text="unreliable | left_side | longer | tie | both_bad | fast"
    )
    message = serializers.CharField()


class BiasSerializer(serializers.Serializer[Any]):
    judgments = serializers.IntegerField()
    side_choices = serializers.IntegerField(help_text="Judgments that picked a or b.")
    left_choices = serializers.IntegerField()
    left_rate = serializers.FloatField(allow_null=True, help_text="Left-shown side chosen.")
    length_pairs = serializers.IntegerField(
        help_text="Side choices between responses of unequal length."
    )
    longer_choices = serializers.IntegerField()
    longer_rate = serializers.FloatField(allow_null=True, help_text="Longer response chosen.")
    ties = serializers.IntegerField()
    tie_rate = serializers.FloatField(allow_null=True)
    both_bad = serializers.IntegerField()
    both_bad_rate = serializers.FloatField(allow_null=True)
    median_time_ms = serializers.FloatField(allow_null=True)


class ReliabilitySerializer(serializers.Serializer[Any]):
    units = serializers.IntegerField(
        help_text="Judgments on comparisons another annotator judged too (the evidence)."
    )
    dawid_skene = serializers.FloatField(
        allow_null=True,
        help_text="Dawid-Skene accuracy against the latent truth, chance-corrected, on [0, 1] "
        "(0: no better than chance). Null without a shared comparison.",
    )
    mace = serializers.FloatField(
        allow_null=True,
        help_text="MACE competence: the probability of not answering at random, on [0, 1].",
    )


class AnnotatorQualitySerializer(serializers.Serializer[Any]):
    annotator_id = serializers.IntegerField()
    username = serializers.CharField()
    agreement = QualityAgreementSerializer()
    reliability = ReliabilitySerializer(
        help_text="The vote weights of annotator_weights=dawid_skene|mace (exports, snapshots)."
    )
    bias = BiasSerializer()
    flags = FlagSerializer(many=True)


class QualitySerializer(serializers.Serializer[Any]):
    agreement = QualityAgreementSerializer()
    rounds = RoundAgreementSerializer(many=True)
    pairs = PairKappaSerializer(
        many=True, help_text="Annotator pairs sharing at least 10 comparisons."
    )
    bias = BiasSerializer()
    flags = FlagSerializer(many=True, help_text="Project-wide bias flags, in plain words.")
    annotators = AnnotatorQualitySerializer(many=True)


class GoldAccuracySerializer(serializers.Serializer[Any]):
    annotator_id = serializers.IntegerField()
    username = serializers.CharField()
    n = serializers.IntegerField(help_text="Gold judgments.")
    correct = serializers.IntegerField(help_text="... that chose the gold answer.")
    accuracy = serializers.FloatField(help_text="correct / n.")
    interval = serializers.ListField(
        child=serializers.FloatField(), help_text="Wilson 95% interval of the accuracy [low, high]."
    )
    flagged = serializers.BooleanField(help_text="The interval lies wholly under the threshold.")
    message = serializers.CharField(help_text="Why flagged, in plain words (empty when not).")


class GoldFiguresSerializer(serializers.Serializer[Any]):
    items = serializers.IntegerField(help_text="Gold comparisons in the project.")
    judgments = serializers.IntegerField(help_text="Judgments of gold comparisons.")
    threshold = serializers.FloatField(help_text="Accuracy under which annotators are flagged.")
    annotators = GoldAccuracySerializer(many=True)


class GoldMarkSerializer(serializers.Serializer[Any]):
    answer = serializers.CharField(help_text="The correct answer: a or b.")


class GoldGenerateSerializer(serializers.Serializer[Any]):
    count = serializers.IntegerField(help_text="How many gold comparisons to make (1-1000).")
    seed = serializers.IntegerField(required=False, allow_null=True, default=None)
    variants = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        default=None,
        help_text="Among truncated, shuffled, swapped (default: all).",
    )


class ProjectStatsSerializer(serializers.Serializer[Any]):
    project_id = serializers.IntegerField()
    progress = ProgressSerializer()
    agreement = AgreementSerializer()
    annotators = AnnotatorFiguresSerializer(many=True)
    quality = QualitySerializer(
        allow_null=True,
        help_text="Agreement per project, round, annotator and annotator pair; the bias audit "
        "(gold judgments left out).",
    )
    gold = GoldFiguresSerializer(
        allow_null=True, help_text="Accuracy of each annotator on gold comparisons."
    )
