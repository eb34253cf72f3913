"""What people read: the offline HTML report with its figures, markdown and CSV, the comparison's outputs, and the
console's plans, progress and summary tables. Renders records and tables; never torch.
"""
