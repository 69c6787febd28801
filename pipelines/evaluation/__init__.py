"""Offline model gates: a candidate is judged here before it may reach a canary."""
