"""The local platform: revisions as real service processes on 127.0.0.1 behind a router."""
