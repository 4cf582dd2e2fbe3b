"""Sumo Sources: a self-hosted hosted collector for cloud security sources."""

__version__ = "0.1.0"
