"""Evaluation: rank metrics of saved predictions, over held-out networks and cells."""
