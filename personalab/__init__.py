"""Persona Lab: system prompt or fine-tuning? The course's library."""

__version__ = "0.1.0"
