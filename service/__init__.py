"""The FastAPI prediction service: one revision serves one verified model artifact."""
