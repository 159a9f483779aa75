"""Training: one optimisation step, LR schedules, checkpoints, logging and the loop."""
