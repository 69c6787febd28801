"""Watching a served model: drift and performance against its training reference, and the
retraining that proposes a new model through the same gates and pull request as any change."""
