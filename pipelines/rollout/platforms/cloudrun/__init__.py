"""The Cloud Run platform (in progress): its metrics windows, read from Cloud Monitoring."""
