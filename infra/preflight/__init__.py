"""Preflight for keyless deploys: say in plain words which link between GitHub and GCP is missing.

In a GitHub job it walks the real chain with the job's OIDC token (`oidc.py`); on a workstation it
reads the trust and grants with your own credentials (`bindings.py`).
"""
