"""Reports: the per-profile record, the CSV record, the JSON report, the terminal summary and HTML extras."""
