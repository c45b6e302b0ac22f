"""parzc: parametric zero-cost proxies for neural-architecture search."""

__version__ = "0.1.0"
