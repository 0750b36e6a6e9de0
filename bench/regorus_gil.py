"""Why the policy evaluates in a process of its own (proxy/policy/isolated.py) and not in a thread: the
pinned regorus wheel holds the GIL while it evaluates, and offers no execution time limit.

    .venv/bin/python bench/regorus_gil.py

A second thread ticks every millisecond while one slow evaluation runs. Were the GIL released, it would
tick about as many times as the evaluation takes milliseconds; it ticks once or not at all, so an
evaluation in a thread stops the event loop as surely as one on it, and a runaway policy cannot be
abandoned. The last line lists the engine's and the VM's methods: none sets a time or instruction limit.
"""

from __future__ import annotations

import threading
import time

import regorus

SLOW = """package slow
import rego.v1

n := count([x | some i in numbers.range(1, 3000); some j in numbers.range(1, 1000); x := i * j])
"""


def main() -> None:
    engine = regorus.Engine()
    engine.add_policy("slow.rego", SLOW)
    engine.set_input_json("{}")
    ticks = 0
    stop = threading.Event()

    def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    thread = threading.Thread(target=ticker)
    thread.start()
    time.sleep(0.05)
    before = ticks
    started = time.perf_counter()
    engine.eval_rule("data.slow.n")
    took = time.perf_counter() - started
    during = ticks - before
    stop.set()
    thread.join()
    print(f"one evaluation took {took * 1000:.0f} ms; the other thread ticked {during} times meanwhile "
          f"(~{took * 1000:.0f} if the GIL were released)")
    methods = sorted({m for kind in (regorus.Engine, regorus.Rvm) for m in dir(kind) if not m.startswith("_")})
    print("regorus.Engine and regorus.Rvm methods:", ", ".join(methods))


if __name__ == "__main__":
    main()
