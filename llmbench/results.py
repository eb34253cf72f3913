"""`llmbench.results`: run directories as pandas DataFrames (the public reading API; llmbench/analysis/results.py)."""

from llmbench.analysis.results import ResultsError, flatten_record, load, load_calls, load_records

__all__ = ["ResultsError", "flatten_record", "load", "load_calls", "load_records"]
