"""The Kubernetes platform: the live split from the cluster's HTTPRoute, the candidate through
its header."""
