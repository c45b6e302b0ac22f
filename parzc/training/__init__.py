"""Training: splits of the labelled networks, and one fit with its held-out predictions."""
