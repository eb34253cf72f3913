"""What every stage shares: the run record's type, the registries (metrics, sweep axes, precisions) and the
pure arithmetic on them. Plain data, no I/O, no torch; every other stage may import it.
"""
