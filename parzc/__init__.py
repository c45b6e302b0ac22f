"""parzc: parametric zero-cost proxies for neural-architecture search."""

__version__ = "0.1.0"

__all__ = ["ChoiceSpace", "score"]


def __getattr__(name: str):
    # imported on first use: `import parzc` stays free of torch (the DAG imports it)
    if name == "score":
        from parzc.scoring import score

        return score
    if name == "ChoiceSpace":
        from parzc.spaces.choice import ChoiceSpace

        return ChoiceSpace
    raise AttributeError(f"module 'parzc' has no attribute {name!r}")
