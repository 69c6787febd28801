"""What both cloud platforms share: Pulumi transitions, the release record, Prometheus
windows, Google credentials and Cloud Storage."""
