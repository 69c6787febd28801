"""The environment contract: what environments/ declares and how every side reads it."""
