"""factory_boy factories for the labeling data."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User

from labeling.models import Comparison, Project, Prompt, Response, text_hash
from labeling.roles import ADMIN_GROUP, ANNOTATOR_GROUP


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"annotator{n}")
    password = factory.PostGenerationMethodCall("set_password", "pw")

    @factory.post_generation
    def role(user: User, create: bool, extracted: str | None, **kwargs: object) -> None:
        if create:
            group, _ = Group.objects.get_or_create(name=extracted or ANNOTATOR_GROUP)
            user.groups.add(group)
            if extracted == ADMIN_GROUP:
                user.is_staff = True
            user.save()


class ProjectFactory(factory.django.DjangoModelFactory[Project]):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"project {n}")
    guidelines = "Prefer the **correct** and polite answer."


class PromptFactory(factory.django.DjangoModelFactory[Prompt]):
    class Meta:
        model = Prompt

    project = factory.SubFactory(ProjectFactory)
    external_id = factory.Sequence(lambda n: f"p{n}")
    messages = factory.Sequence(lambda n: [{"role": "user", "content": f"What is {n} + 1?"}])


class ResponseFactory(factory.django.DjangoModelFactory[Response]):
    class Meta:
        model = Response

    prompt = factory.SubFactory(PromptFactory)
    text = factory.Sequence(lambda n: f"The answer is {n}.")
    text_hash = factory.LazyAttribute(lambda o: text_hash(o.text))
    model_name = "test-model"


class ComparisonFactory(factory.django.DjangoModelFactory[Comparison]):
    class Meta:
        model = Comparison

    project = factory.SubFactory(ProjectFactory)
    prompt = factory.SubFactory(PromptFactory, project=factory.SelfAttribute("..project"))
    response_a = factory.SubFactory(ResponseFactory, prompt=factory.SelfAttribute("..prompt"))
    response_b = factory.SubFactory(ResponseFactory, prompt=factory.SelfAttribute("..prompt"))
