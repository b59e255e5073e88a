"""Instructor-only grading material: hidden cases per exercise (``exNN.py`` defining ``HIDDEN``).

This folder is never part of a student release (``personalab release``) and is not mounted in the grading
sandbox; ``personalab grade`` loads it from the grading side only.
"""
