"""The model side of Pairwise: model specs, checkpoints, tuning rounds, the job runner."""
