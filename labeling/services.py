"""Write workflows of the labeling side: the ONE write path used by views, API, commands, tasks.

Accounts, projects, prompts, responses, comparisons and gold items (``labeling.gold``) are here. The queue's actions (claim,
skip, submit, undo, close, the judgment counts) live in ``labeling.queue``, the queue engine,
and are re-exported below: callers keep calling ``labeling.services.X``.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from labeling import gold
from labeling.errors import Conflict as Conflict
from labeling.errors import LabelingError as LabelingError
from labeling.models import (
    Adjudication,
    Assignment,
    AssignmentStatus,
    Choice,
    Comparison,
    ComparisonStatus,
    GoldAnswer,
    Judgment,
    JudgmentRevision,
    Project,
    ProjectInvite,
    ProjectRole,
    Prompt,
    QueueOrder,
    Response,
    ReviewComment,
    Source,
    Split,
    text_hash,
)
from labeling.onboarding import NotOnboarded as NotOnboarded  # rank (and below)
from labeling.onboarding import guidelines_acknowledge as guidelines_acknowledge
from labeling.onboarding import onboarding_check as onboarding_check
from labeling.onboarding import qualification_answer as qualification_answer
from labeling.preferences import id_list
from labeling.queue import STRENGTHLESS as STRENGTHLESS
from labeling.queue import SubmitResult as SubmitResult
from labeling.queue import assignment_claim_next as assignment_claim_next
from labeling.queue import assignment_release_all as assignment_release_all
from labeling.queue import assignment_skip as assignment_skip
from labeling.queue import comparisons_close as comparisons_close
from labeling.queue import judgment_counts_refresh as judgment_counts_refresh
from labeling.queue import judgment_submit as judgment_submit
from labeling.queue import judgment_submit_and_claim_next as judgment_submit_and_claim_next
from labeling.queue import judgment_undo as judgment_undo
from labeling.queue import judgment_validate as judgment_validate
from labeling.ranking import RankingResult as RankingResult
from labeling.ranking import ranking_lease_next as ranking_lease_next
from labeling.ranking import ranking_sets_create as ranking_sets_create
from labeling.ranking import ranking_skip as ranking_skip
from labeling.ranking import ranking_submit as ranking_submit
from labeling.ranking import ranking_undo as ranking_undo
from labeling.roles import ADMIN_GROUP, ANNOTATOR_GROUP
from labeling.tokens import admin_group_ensure as admin_group_ensure

# --- rank: labeling-depth settings (issue 13) ---

PROJECT_DEPTH_FIELDS = (
    "task_kind",
    "ask_acceptable",
    "onboarding_required",
    "qualification_items",
    "qualification_pass_mark",
)


def project_depth_set(*, project: Project, **changes: Any) -> Project:
    """Change a project's labeling-depth settings: ``task_kind`` (pairwise | ranking),
    ``ask_acceptable``, ``onboarding_required``, ``qualification_items`` (0-100) and
    ``qualification_pass_mark`` (0-1). Checked here, stored in one UPDATE."""
    unknown = sorted(set(changes) - set(PROJECT_DEPTH_FIELDS))
    if unknown:
        raise LabelingError(f"unknown settings {unknown}", field=unknown[0])
    if "task_kind" in changes and changes["task_kind"] not in ("pairwise", "ranking"):
        raise LabelingError("task_kind must be pairwise or ranking", field="task_kind")
    if "qualification_items" in changes and not 0 <= int(changes["qualification_items"]) <= 100:
        raise LabelingError(
            "qualification_items must be between 0 and 100", field="qualification_items"
        )
    mark = changes.get("qualification_pass_mark")
    if mark is not None and not 0 <= float(mark) <= 1:
        raise LabelingError(
            "qualification_pass_mark must be between 0 and 1", field="qualification_pass_mark"
        )
    if changes:
        Project.objects.filter(pk=project.pk).update(**changes)
        for name, value in changes.items():
            setattr(project, name, value)
    return project


# --- end rank ---

# --- accounts ----------------------------------------------------------------------------------


def user_create(*, username: str, role: str, password: str | None = None) -> tuple[Any, str]:
    """Create an annotator or admin account; returns the user and the (random) password."""
    from django.contrib.auth import get_user_model

    if role not in (ANNOTATOR_GROUP, ADMIN_GROUP):
        raise LabelingError(f"unknown role {role!r}: use annotator or admin", field="role")
    password = password or secrets.token_urlsafe(12)
    user_model = get_user_model()
    with transaction.atomic():
        if user_model.objects.filter(username=username).exists():
            raise Conflict(f"user {username!r} already exists", field="username")
        user = user_model.objects.create_user(
            username=username, password=password, is_staff=role == ADMIN_GROUP
        )
        if role == ADMIN_GROUP:
            group = admin_group_ensure()  # the Django-admin permissions admins need
        else:
            group, _ = Group.objects.get_or_create(name=role)
        user.groups.add(group)
    return user, password


# --- projects ----------------------------------------------------------------------------------


def project_create(
    *,
    name: str,
    created_by: Any = None,
    description: str = "",
    guidelines: str = "",
    judgments_per_comparison: int = 1,
    lease_minutes: int = 10,
    max_pairs_per_prompt: int | None = None,
    queue_order: str = QueueOrder.FIFO,
    annotator_usernames: Sequence[str] = (),
    gold_rate: float = 0.0,
) -> Project:
    """Create a project and make the named users its annotators (all must exist)."""
    from django.contrib.auth import get_user_model

    if not 1 <= judgments_per_comparison <= 50:
        raise LabelingError(
            "judgments_per_comparison must be between 1 and 50", field="judgments_per_comparison"
        )
    if lease_minutes < 1:
        raise LabelingError("lease_minutes must be at least 1", field="lease_minutes")
    _gold_rate_checked(gold_rate)
    _queue_order_checked(queue_order)
    wanted = set(annotator_usernames)
    users = list(get_user_model().objects.filter(username__in=wanted))
    missing = sorted(wanted - {u.username for u in users})
    if missing:
        raise LabelingError(f"unknown users {missing}", field="annotators")
    with transaction.atomic():
        if Project.objects.filter(name=name).exists():
            raise Conflict(f"a project named {name!r} already exists", field="name")
        project = Project.objects.create(
            name=name,
            created_by=created_by,
            description=description,
            guidelines=guidelines,
            judgments_per_comparison=judgments_per_comparison,
            lease_minutes=lease_minutes,
            max_pairs_per_prompt=max_pairs_per_prompt,
            gold_rate=gold_rate,
            queue_order=queue_order,
        )
        project.annotators.add(*users)
    return project


def _gold_rate_checked(rate: float) -> None:
    if not 0 <= rate <= 0.5:
        raise LabelingError(
            "gold_rate must be between 0 (no gold) and 0.5 (every other item)", field="gold_rate"
        )


def project_gold_rate_set(*, project: Project, gold_rate: float) -> Project:
    """How often gold is served to each annotator (``labeling.gold``); 0 turns it off."""
    _gold_rate_checked(gold_rate)
    Project.objects.filter(pk=project.pk).update(gold_rate=gold_rate)
    project.gold_rate = gold_rate
    return project


def _queue_order_checked(queue_order: str) -> None:
    if queue_order not in QueueOrder.values:
        raise LabelingError(
            f"queue_order must be one of {', '.join(QueueOrder.values)}; got {queue_order!r}",
            field="queue_order",
        )


def project_queue_order_set(*, project: Project, queue_order: str) -> Project:
    """Switch how the project's queue is ordered (``QueueOrder``). Switching to ``fifo`` stops
    the re-ordering; priorities already scored stay until the next batch arrives (the round tiers,
    newest batch first, hold either way)."""
    _queue_order_checked(queue_order)
    Project.objects.filter(pk=project.pk).update(queue_order=queue_order)
    project.queue_order = queue_order
    return project


PRIORITIZE_CHUNK = 200


def comparisons_prioritize(*, project: Project, priorities: dict[int, int]) -> int:
    """Set the queue priority of the project's open comparisons named in ``priorities``
    (comparison id -> priority); closed or complete ones and other projects' are left alone.
    Returns how many changed. Called by the worker (``rlhf.prioritize``), never per request."""
    if not priorities:
        return 0
    open_ids = set(
        Comparison.objects.open()
        .filter(project=project, pk__in=id_list(priorities))
        .values_list("pk", flat=True)
    )
    changed = [
        Comparison(pk=pk, priority=priority)
        for pk, priority in sorted(priorities.items())
        if pk in open_ids
    ]
    # Short transactions (one per chunk, rows in id order): claims skip the rows locked here.
    count = 0
    for start in range(0, len(changed), PRIORITIZE_CHUNK):
        count += Comparison.objects.bulk_update(
            changed[start : start + PRIORITIZE_CHUNK], ["priority"]
        )
    return count


# --- prompts, responses, comparisons ----------------------------------------------------------


def prompts_add(*, project: Project, rows: Sequence[dict[str, Any]]) -> list[Prompt]:
    """Add prompts ``{messages, external_id?, split?, metadata?}`` (used by rlhf's demo data).

    A row whose ``external_id`` the project already has returns the stored prompt, not a double.
    """
    wanted = [str(row.get("external_id", "")) for row in rows]
    existing = {
        p.external_id: p
        for p in Prompt.objects.filter(project=project, external_id__in=[w for w in wanted if w])
    }
    result: list[Prompt] = []
    with transaction.atomic():
        for row, external_id in zip(rows, wanted, strict=True):
            prompt = existing.get(external_id) if external_id else None
            if prompt is None:
                prompt = Prompt.objects.create(
                    project=project,
                    external_id=external_id,
                    messages=row["messages"],
                    metadata=row.get("metadata", {}),
                    split=row.get("split", Split.TRAIN),
                )
                if external_id:
                    existing[external_id] = prompt
            result.append(prompt)
    return result


def responses_add(
    *,
    prompt: Prompt,
    texts: Sequence[str],
    model_name: str = "",
    checkpoint_ref: str = "",
    generation_params: dict[str, Any] | None = None,
    seeds: Sequence[int | None] | None = None,
) -> list[Response]:
    """Add responses to a prompt; a text the prompt already has is returned, not doubled."""
    existing = {r.text_hash: r for r in Response.objects.filter(prompt=prompt)}
    result: list[Response] = []
    for index, text in enumerate(texts):
        key = text_hash(text)
        response = existing.get(key)
        if response is None:
            response = Response.objects.create(
                prompt=prompt,
                text=text,
                text_hash=key,
                model_name=model_name,
                checkpoint_ref=checkpoint_ref,
                generation_params=generation_params or {},
                seed=seeds[index] if seeds else None,
            )
            existing[key] = response
        result.append(response)
    return result


def pairs_all(
    responses: Sequence[Response], *, max_pairs: int | None = None, seed: int = 0
) -> list[tuple[Response, Response]]:
    """All pairs of distinct responses (by id order), or at most ``max_pairs`` sampled ones."""
    unique = sorted({r.pk: r for r in responses}.values(), key=lambda r: r.pk)
    pairs = list(itertools.combinations(unique, 2))
    if max_pairs is not None and len(pairs) > max_pairs:
        pairs = sorted(
            random.Random(seed).sample(pairs, max_pairs), key=lambda p: (p[0].pk, p[1].pk)
        )
    return pairs


def comparisons_create(
    *,
    project: Project,
    pairs: Iterable[tuple[Response, Response]],
    priority: int = 0,
    batch: str = "",
) -> list[Comparison]:
    """Turn response pairs into queue items. A pair already compared (either order) is skipped."""
    wanted = [(a, b) for a, b in pairs if a.pk != b.pk]
    if not wanted:
        return []
    ids = {r.pk for pair in wanted for r in pair}
    seen = {
        frozenset(pair)
        for pair in Comparison.objects.filter(response_a__in=ids, response_b__in=ids).values_list(
            "response_a", "response_b"
        )
    }
    new: list[Comparison] = []
    for a, b in wanted:
        if a.prompt_id != b.prompt_id:
            raise LabelingError("a comparison's two responses must answer the same prompt")
        if a.text_hash == b.text_hash:
            continue
        key = frozenset((a.pk, b.pk))
        if key in seen:
            continue
        seen.add(key)
        new.append(
            Comparison(
                project=project,
                prompt_id=a.prompt_id,
                response_a=a,
                response_b=b,
                priority=priority,
                batch=batch,
            )
        )
    return Comparison.objects.bulk_create(new)


# --- gold items (labeling.gold) ----------------------------------------------------------------


def comparison_gold_set(*, comparison: Comparison, answer: str) -> Comparison:
    """Make a comparison gold with ``answer`` (a side) as its correct answer, or change it.

    A gold comparison is served to every annotator once and never completes; its judgments leave
    preferences, exports and agreement figures. A closed comparison keeps what it was.
    """
    if answer not in GoldAnswer.values:
        raise LabelingError(
            f"answer must be one of {', '.join(GoldAnswer.values)}; got {answer!r} "
            "(only a side can be gold)",
            field="answer",
        )
    return _gold_change(comparison=comparison, answer=answer)


def comparison_gold_clear(*, comparison: Comparison) -> Comparison:
    """Make a gold comparison a normal one again: it takes k slots, its judgments count again."""
    return _gold_change(comparison=comparison, answer="")


def _gold_change(*, comparison: Comparison, answer: str) -> Comparison:
    with transaction.atomic():
        locked = Comparison.objects.select_for_update(of=("self",)).get(pk=comparison.pk)
        if locked.status == ComparisonStatus.CLOSED:
            raise Conflict("this comparison is closed: its gold answer can no longer change")
        if locked.gold_answer and not answer:
            # Its leases held no slot; let them go so that k is not exceeded (a submit on one
            # is still accepted while a slot is free).
            Assignment.objects.filter(comparison=locked, status=AssignmentStatus.ACTIVE).update(
                status=AssignmentStatus.RELEASED
            )
        Comparison.objects.filter(pk=locked.pk).update(gold_answer=answer)
        judgment_counts_refresh(comparison_ids=[locked.pk])  # gold stays open, normal completes
    locked.refresh_from_db()
    return locked


GOLD_GENERATE_MAX = 1000


def gold_generate(
    *,
    project: Project,
    count: int,
    seed: int | None = None,
    variants: Sequence[str] = gold.VARIANTS,
) -> list[Comparison]:
    """Up to ``count`` generated gold comparisons: a real response of the project against a
    known-worse variant of it (``labeling.gold``), stored as a response with model name
    ``gold:<variant>``; the original is the answer, on a random side. Fewer when the project has
    too few usable responses."""
    if not 1 <= count <= GOLD_GENERATE_MAX:
        raise LabelingError(f"count must be between 1 and {GOLD_GENERATE_MAX}", field="count")
    unknown = sorted(set(variants) - set(gold.VARIANTS))
    if unknown or not variants:
        raise LabelingError(
            f"variants must be among {', '.join(gold.VARIANTS)}; got {unknown or 'none'}",
            field="variants",
        )
    rng = random.Random(seed)
    real = list(
        Response.objects.filter(prompt__project=project)
        .exclude(model_name__startswith=gold.MODEL_PREFIX)
        .order_by("id")
        .values_list("id", "prompt_id")
    )
    order = rng.sample(real, len(real))
    created: list[Comparison] = []
    with transaction.atomic():
        for response_id, _ in order:
            if len(created) >= count:
                break
            original = Response.objects.select_related("prompt").get(pk=response_id)
            made = _gold_variant(original=original, kinds=variants, rng=rng, real=real)
            if made is None:
                continue
            kind, text = made
            [variant] = responses_add(
                prompt=original.prompt, texts=[text], model_name=f"{gold.MODEL_PREFIX}{kind}"
            )
            if not variant.model_name.startswith(gold.MODEL_PREFIX):
                continue  # the "variant" is a real answer to this prompt: not known-worse
            if Comparison.objects.filter(
                response_a__in=[original.pk, variant.pk], response_b__in=[original.pk, variant.pk]
            ).exists():
                continue
            answer = rng.choice(GoldAnswer.values)
            a, b = (original, variant) if answer == GoldAnswer.A else (variant, original)
            created.append(
                Comparison.objects.create(
                    project=project,
                    prompt=original.prompt,
                    response_a=a,
                    response_b=b,
                    batch=gold.BATCH,
                    gold_answer=answer,
                )
            )
    return created


def _gold_variant(
    *, original: Response, kinds: Sequence[str], rng: random.Random, real: Sequence[tuple[int, int]]
) -> tuple[str, str] | None:
    """A known-worse variant of ``original``: the first of ``kinds`` (tried in random order)
    that applies, as (kind, text)."""
    for kind in rng.sample(list(kinds), len(kinds)):
        if kind == "truncated":
            text = gold.truncated(original.text)
        elif kind == "shuffled":
            text = gold.shuffled(original.text, rng)
        else:
            text = None
            for _ in range(20):  # a response to another prompt, drawn at random
                other_id, prompt_id = rng.choice(real)
                if prompt_id != original.prompt_id:
                    other = Response.objects.get(pk=other_id)
                    text = other.text if other.text_hash != original.text_hash else None
                    break
        if text is not None:
            return kind, text
    return None


# --- review, judgment edits, people (helper: review) --------------------------------------------
#
# Reviewers (``Project.reviewers``) and admins browse, comment and adjudicate; an adjudication is
# stored beside the votes (``Adjudication``), never over them. Annotators edit their own judgments
# while the comparison is not closed and not adjudicated; each edit keeps the values it replaces
# (``JudgmentRevision``). Admins add and remove members and invite new users with a one-time link.

INVITE_DAYS = 7
INVITE_MAX_DAYS = 90
COMMENT_MAX = 5000


class Forbidden(LabelingError):
    status = 403


class InviteNotFound(LabelingError):
    status = 404


def _judgment_values_checked(*, choice: str, strength: int | None, flags: Sequence[str]) -> None:
    judgment_validate(choice=choice, strength=strength, flags=flags)
    if choice in (Choice.A, Choice.B) and strength is None:
        raise LabelingError("strength is required when a side is chosen (1-4)", field="strength")


def judgment_edit(
    *,
    annotator: Any,
    judgment: Judgment,
    choice: str,
    strength: int | None,
    rationale: str = "",
    flags: Sequence[str] = (),
    now: datetime | None = None,
) -> Judgment:
    """Change one's own judgment while its comparison is still open to it: not closed (frozen
    for a published dataset) and not adjudicated (the reviewer decided on the votes as they
    were). The values it replaces are kept (``JudgmentRevision``); an edit that changes nothing
    writes nothing. Imported judgments are not edited here."""
    if judgment.annotator_id != annotator.pk:
        raise Forbidden("only its annotator may edit a judgment")
    _judgment_values_checked(choice=choice, strength=strength, flags=flags)
    now = now or timezone.now()
    new = {
        "choice": choice,
        "strength": strength,
        "rationale": rationale,
        "flags": sorted(set(flags)),
    }
    with transaction.atomic():
        comparison = Comparison.objects.select_for_update(of=("self",)).get(
            pk=judgment.comparison_id
        )
        current = Judgment.objects.get(pk=judgment.pk)
        if current.source != Source.HUMAN:
            raise Conflict("an imported judgment cannot be edited")
        if current.ranking_id is not None:
            raise Conflict("this judgment comes from a ranking: it changes with the ranking")
        if comparison.status == ComparisonStatus.CLOSED:
            raise Conflict("this comparison is closed: its judgments can no longer change")
        if Adjudication.objects.filter(comparison=comparison).exists():
            raise Conflict("a reviewer has adjudicated this comparison: it can no longer change")
        old = {name: getattr(current, name) for name in new}
        if old == new:
            return current
        JudgmentRevision.objects.create(
            judgment=current, edited_by=annotator, replaced_at=now, **old
        )
        Judgment.objects.filter(pk=current.pk).update(**new)
    current.__dict__.update(new)
    return current


def comparison_comment_add(*, comparison: Comparison, author: Any, text: str) -> ReviewComment:
    """Add a comment to a comparison's review (a flat list)."""
    text = text.strip()
    if not text:
        raise LabelingError("a comment needs some text", field="text")
    if len(text) > COMMENT_MAX:
        raise LabelingError(f"a comment is at most {COMMENT_MAX} characters", field="text")
    return ReviewComment.objects.create(comparison=comparison, author=author, text=text)


def comparison_adjudicate(
    *,
    comparison: Comparison,
    adjudicator: Any,
    choice: str,
    strength: int | None = None,
    note: str = "",
    now: datetime | None = None,
) -> Adjudication:
    """Decide a comparison as a reviewer: stored beside its votes, which stay as they are; a
    second adjudication replaces the first. Gold comparisons have their answer already, and a
    comparison nobody judged has nothing to adjudicate."""
    _judgment_values_checked(choice=choice, strength=strength, flags=())
    now = now or timezone.now()
    with transaction.atomic():
        locked = Comparison.objects.select_for_update(of=("self",)).get(pk=comparison.pk)
        if locked.gold_answer:
            raise Conflict("a gold comparison has its answer already: nothing to adjudicate")
        if not Judgment.objects.filter(comparison=locked).exists():
            raise Conflict("nobody has judged this comparison yet: nothing to adjudicate")
        values = {"choice": choice, "strength": strength, "note": note.strip()}
        adjudication, _ = Adjudication.objects.update_or_create(
            comparison=locked,
            defaults={**values, "adjudicator": adjudicator, "updated_at": now},
            create_defaults={
                **values,
                "adjudicator": adjudicator,
                "created_at": now,
                "updated_at": now,
            },
        )
    return adjudication


def comparison_adjudication_clear(*, comparison: Comparison) -> int:
    """Withdraw a comparison's adjudication (its votes decide again). Returns 1, or 0 if none."""
    deleted, _ = Adjudication.objects.filter(comparison=comparison).delete()
    return deleted


def _role_checked(role: str) -> str:
    if role not in ProjectRole.values:
        raise LabelingError(
            f"role must be one of {', '.join(ProjectRole.values)}; got {role!r}", field="role"
        )
    return role


def _members(project: Project, role: str) -> Any:
    return project.annotators if role == ProjectRole.ANNOTATOR else project.reviewers


def project_member_add(*, project: Project, user: Any, role: str) -> None:
    """Make a user an annotator or reviewer of a project (already one: nothing changes)."""
    _members(project, _role_checked(role)).add(user)


def project_member_remove(*, project: Project, user: Any, role: str) -> None:
    """Take a role in a project away from a user. An annotator's live lease there is given
    back (its comparison goes to others); their judgments stay."""
    _role_checked(role)
    with transaction.atomic():
        _members(project, role).remove(user)
        if role == ProjectRole.ANNOTATOR:
            assignment_release_all(annotator=user, project=project)


def invite_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def invite_create(
    *,
    project: Project,
    role: str,
    created_by: Any,
    note: str = "",
    valid_days: int = INVITE_DAYS,
    now: datetime | None = None,
) -> tuple[ProjectInvite, str]:
    """A one-time invite to a project in a role; returns it and its token (shown once: only its
    sha256 is stored)."""
    _role_checked(role)
    if not 1 <= valid_days <= INVITE_MAX_DAYS:
        raise LabelingError(f"valid_days must be 1 to {INVITE_MAX_DAYS}", field="valid_days")
    now = now or timezone.now()
    token = secrets.token_urlsafe(32)
    invite = ProjectInvite.objects.create(
        project=project,
        role=role,
        token_hash=invite_token_hash(token),
        note=note.strip()[:200],
        expires_at=now + timedelta(days=valid_days),
        created_by=created_by,
    )
    return invite, token


def invite_revoke(*, invite: ProjectInvite, now: datetime | None = None) -> ProjectInvite:
    """Make an unused invite's link useless."""
    now = now or timezone.now()
    if invite.used_at is not None:
        raise Conflict("this invite has been used already")
    ProjectInvite.objects.filter(pk=invite.pk, revoked_at__isnull=True).update(revoked_at=now)
    invite.refresh_from_db()
    return invite


def invite_usable(*, token: str, now: datetime | None = None) -> ProjectInvite:
    """The invite a token opens, if it can still be used; Conflict (409) / 404 otherwise."""
    now = now or timezone.now()
    invite = (
        ProjectInvite.objects.select_related("project")
        .filter(token_hash=invite_token_hash(token))
        .first()
    )
    if invite is None:
        raise InviteNotFound("this invite link is not valid")
    if invite.used_at is not None:
        raise Conflict("this invite link has been used already")
    if invite.revoked_at is not None:
        raise Conflict("this invite link has been withdrawn")
    if invite.expires_at <= now:
        raise Conflict("this invite link has expired: ask for a new one")
    return invite


def invite_accept(
    *, token: str, username: str, password: str, now: datetime | None = None
) -> tuple[Any, ProjectInvite]:
    """Use an invite: create the new user with this password and join the project in the
    invite's role, all or nothing. The link works once (a second use, even concurrent, is 409)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    now = now or timezone.now()
    username = username.strip()
    if not username:
        raise LabelingError("choose a username", field="username")
    invite = invite_usable(token=token, now=now)
    try:
        validate_password(password, get_user_model()(username=username))
    except ValidationError as exc:
        raise LabelingError(" ".join(exc.messages), field="password") from None
    with transaction.atomic():
        _invite_take(invite, now)
        user, _ = user_create(username=username, role=ANNOTATOR_GROUP, password=password)
        ProjectInvite.objects.filter(pk=invite.pk).update(used_by=user)
        project_member_add(project=invite.project, user=user, role=invite.role)
    invite.refresh_from_db()
    return user, invite


def invite_join(*, token: str, user: Any, now: datetime | None = None) -> ProjectInvite:
    """Use an invite with an account the user has: join the project in the invite's role. The
    link works once, as for a new user. A user who holds the role there already is told so and
    the link stays unused (for whom it was meant)."""
    now = now or timezone.now()
    invite = invite_usable(token=token, now=now)
    if _members(invite.project, invite.role).filter(pk=user.pk).exists():
        raise Conflict(
            f"you are a {invite.role} in {invite.project.name} already: the link stays unused"
        )
    with transaction.atomic():
        _invite_take(invite, now, used_by=user)
        project_member_add(project=invite.project, user=user, role=invite.role)
    invite.refresh_from_db()
    return invite


def _invite_take(invite: ProjectInvite, now: datetime, **also: Any) -> None:
    """Mark the invite used (and ``also``), or Conflict: the conditional UPDATE is the single
    use; of two concurrent uses one updates a row."""
    taken = ProjectInvite.objects.filter(
        pk=invite.pk, used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now
    ).update(used_at=now, **also)
    if not taken:
        raise Conflict("this invite link has been used already")
