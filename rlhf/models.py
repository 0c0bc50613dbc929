"""The model side's data: model specs, checkpoints, rounds and training runs."""
