"""How one point is measured, inside a worker process: the engine, clocks, samplers, quantizers, profiler and the
record each point yields. The only stage that imports torch and transformers (lazily, inside functions).
"""
