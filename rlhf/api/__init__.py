"""The tuning REST API (DRF) under /api/v1/."""
