"""Architecture search: strategies over a pool of stored architectures, and what a search cost."""
