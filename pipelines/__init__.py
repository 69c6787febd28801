"""Offline and orchestration steps: data, training, registry, rollouts and their CLI."""
