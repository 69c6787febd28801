"""The platforms a rollout runs on, one folder each: `local` (real processes on this machine)."""
