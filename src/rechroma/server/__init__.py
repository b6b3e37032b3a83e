"""The rechroma web server (FastAPI)."""
