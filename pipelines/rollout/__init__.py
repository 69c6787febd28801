"""Gated canary rollouts: policy, gates, platforms, the controller and its report."""
