"""Pulumi programs that put the service on Cloud Run."""
