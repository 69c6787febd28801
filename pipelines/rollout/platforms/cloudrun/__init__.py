"""The Cloud Run platform: Pulumi transitions, live traffic from the Admin API, PromQL windows."""
