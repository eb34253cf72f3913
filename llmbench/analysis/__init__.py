"""Reading run directories: records as DataFrames, comparisons and regression gates, baselines, the memory model,
capacity and SLO tables. Reads records only; never torch.
"""
