"""qa eval: test sets, the metrics of one answer, runs over a test set, reports and comparisons."""
