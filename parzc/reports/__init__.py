"""Reports: proxy, predictor and search tables and plots."""
