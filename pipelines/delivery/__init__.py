"""Delivery through GitHub: the pull-request comment, drift issues, and what they summarise."""
