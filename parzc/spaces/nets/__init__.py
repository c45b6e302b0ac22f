"""Torch networks of the search spaces, imported only when a network is built."""
