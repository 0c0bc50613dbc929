"""Settings for the real worker processes the worker tests start (file database, fake engine)."""

import os

os.environ.setdefault("PAIRWISE_HTTPS", "0")

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
PAIRWISE_TRAINING_MODULE = os.environ.get("PAIRWISE_TRAINING_MODULE", "tests.rlhf.fake_training")
PAIRWISE_HEARTBEAT_S = float(os.environ.get("PAIRWISE_HEARTBEAT_S", "0.2"))
PAIRWISE_PROGRESS_FLUSH_S = 0.2
PAIRWISE_HEARTBEAT_STALE_S = float(os.environ.get("PAIRWISE_HEARTBEAT_STALE_S", "2"))
PAIRWISE_CANCEL_GRACE_S = 2.0
PAIRWISE_MIN_SNAPSHOT = 1  # the demo projects are tiny
