"""The demo's admin can do what the README says: manage tokens (and the app's data) in the Django
admin, and on the Tokens page; re-running ``demo_data`` fixes an older demo's admin group."""

from __future__ import annotations

import io
from typing import Any

from django.test import Client


def test_the_demo_admin_can_use_the_django_admin(db: Any) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    # an older demo: its admin group has no permissions yet
    old_admin = get_user_model().objects.create_user("admin", password="pw-admin-1", is_staff=True)
    old_admin.groups.add(Group.objects.create(name="admin"))
    call_command("demo_data", "--prompts", "3", "--held-out", "1", stdout=io.StringIO())
    admin = get_user_model().objects.get(username="admin")
    assert admin.has_perm("authtoken.add_token") and admin.has_perm("labeling.view_judgment")
    client = Client()
    client.force_login(admin)
    index = client.get("/admin/").content.decode()
    assert "permission to view or edit anything" not in index
    assert client.get("/admin/authtoken/tokenproxy/").status_code == 200
    assert client.get("/tokens/").status_code == 200
