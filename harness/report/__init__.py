"""reports/summary.html: the page, its figures, the training figures."""
