"""What to measure: the scenario file's schema, its checks and its expansion into run points, grouped by model load.
Inert: loading a scenario touches no GPU, no network and no environment variable.
"""
