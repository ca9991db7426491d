"""Observability: logging set-up, the access log, error pages, lifecycle collectors."""
