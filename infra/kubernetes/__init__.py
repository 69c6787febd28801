"""The Kubernetes alternative to Cloud Run: the release states on GKE (platform: kubernetes)."""
