"""The browser check's models, runner and RESULTS table (see cases.py)."""
