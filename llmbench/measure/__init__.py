"""How one point is measured, inside a worker process: the engine, clocks, samplers, quantizers, profiler and the
record each point yields. The stage that runs torch and transformers (imported lazily, inside functions).
"""
