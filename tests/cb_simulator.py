"""A small continuous-batching simulator with the SyncEngine methods (llmbench/measure/loadgen.py), for testing the
generator without a model: every step (step_s of sleep) each running request gains one token; waiting requests
join up to max_batch. It can reject chosen ids, stall after N steps or die after N steps."""

import queue
import threading
import time

from llmbench.measure.loadgen import EngineDied, EngineResult


class SimulatedEngine:
    def __init__(self, step_s=0.002, max_batch=4, stall_after=None, die_after=None, reject=()):
        self.step_s, self.max_batch = step_s, max_batch
        self.stall_after, self.die_after, self.reject = stall_after, die_after, set(reject)
        self.inbox, self.out = queue.Queue(), queue.Queue()
        self.running, self.waiting, self.cancelled = {}, [], set()
        self.submitted, self.max_running_seen = 0, 0
        self.alive = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def submit(self, request_id, prompt_ids, max_new_tokens, ignore_eos):
        if request_id in self.reject:
            raise RuntimeError("queue full")
        self.submitted += 1
        self.inbox.put((request_id, len(prompt_ids), max_new_tokens))

    def next_result(self, timeout_s):
        try:
            return self.out.get(timeout=timeout_s)
        except queue.Empty:
            if not self.alive:
                raise EngineDied("simulated engine stopped") from None
            return None

    def cancel(self, request_id):
        self.cancelled.add(request_id)

    def sample(self):
        return (len(self.waiting), len(self.running), len(self.running), self.max_batch)

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2)

    def _loop(self):
        steps = 0
        while not self._stop.is_set():
            while not self.inbox.empty():
                self.waiting.append(self.inbox.get())
            if self.die_after is not None and steps >= self.die_after:
                self.alive = False
                return
            stalled = self.stall_after is not None and steps >= self.stall_after
            while self.waiting and len(self.running) < self.max_batch and not stalled:
                rid, n_in, n_out = self.waiting.pop(0)
                self.running[rid] = dict(n_in=n_in, n_out=n_out, scheduled=time.perf_counter(), times=[])
            self.max_running_seen = max(self.max_running_seen, len(self.running))
            time.sleep(self.step_s)
            if stalled:
                continue
            steps += 1
            now = time.perf_counter()
            for rid in list(self.running):
                st = self.running[rid]
                st["times"].append(now)
                if len(st["times"]) >= st["n_out"]:
                    del self.running[rid]
                    self.out.put(EngineResult(rid, st["scheduled"], st["times"], now, st["n_in"], st["n_out"], True))
