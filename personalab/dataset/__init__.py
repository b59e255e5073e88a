"""Persona dataset: user requests, generation (teacher model or offline), validation and analysis."""
