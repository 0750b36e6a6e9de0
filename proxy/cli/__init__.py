"""Command-line tools beside `serve`: budgets and the demo."""
