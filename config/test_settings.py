"""Settings for the test suite: the production settings with HTTPS off and fast hashing."""

import os
import tempfile

os.environ.setdefault("PAIRWISE_HTTPS", "0")
os.environ.setdefault("PAIRWISE_DATA_DIR", os.path.join(tempfile.gettempdir(), "pairwise-test"))

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend", "QUEUES": []}}
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
# Each test process its own counts (tests/conftest.py clears them per test); the production
# file cache, shared between processes, is tested in tests/labeling/api/test_throttles.py.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if DATABASES["default"]["ENGINE"] in ("config.sqlite_backend", "django.db.backends.sqlite3"):  # noqa: F405
    # In memory, as Django makes an unnamed SQLite test database, but named: pytest-django's
    # parallel workers (pytest -n) then leave it alone instead of suffixing a file path that
    # does not exist (it treats only Django's own engine path as SQLite).
    DATABASES["default"]["TEST"] = {"NAME": ":memory:"}  # noqa: F405
