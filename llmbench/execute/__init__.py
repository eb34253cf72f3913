"""Running a sweep from the parent process: the run plan (new, shard, resume), one supervised worker process per
model load, the run directory on disk, merges and pooled rounds. Never creates a CUDA context itself.
"""
