"""The evaluator process (`python -m proxy.policy.evaluator`): one policy version in regorus, asked over
its stdin and answering on its stdout, one request at a time.

Policy code runs here rather than in the proxy because regorus holds the GIL for a whole evaluation
and cannot be interrupted: a version that loops would stop the proxy's event loop, and a thread would
not help. In a process of its own it can be given a deadline and killed (proxy/policy/isolated.py).

The frames it reads and writes are described in proxy/policy/frames.py.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time
from typing import Any

import orjson

from proxy.policy.frames import AST, CAPTURE, EVAL, EVAL_HEAD, FAILED, HEADER, INTERPRETER, LOAD, NANOS, OK, RVM
from proxy.policy.rego import Runtime

BATCH = 8  # answers per write at most


class Evaluator:
    """The state of one evaluator process: the loaded version, and what each request does with it."""

    def __init__(self) -> None:
        self.runtime: Runtime | None = None
        self.spec: dict[str, Any] = {}

    def handle(self, op: int, payload: bytes) -> tuple[int, bytes]:
        try:
            if op == EVAL:
                return self.evaluate(payload)
            if op == LOAD:
                return OK, self.load(orjson.loads(payload))
            if op == AST:
                return OK, str(self._loaded().engine.get_ast_as_json()).encode()
            if op == CAPTURE:
                return OK, self.capture()
            return FAILED, f"unknown request {op}".encode()
        except Exception as exc:  # every failure is an answer: the proxy decides what it means
            return FAILED, (str(exc) or type(exc).__name__).encode()

    def load(self, spec: dict[str, Any]) -> bytes:
        modules = [tuple(m) for m in spec["modules"]]
        self.runtime = Runtime(modules, spec["data"], spec["entrypoints"], compiled=spec["compiled"],
                               where=spec["where"])
        self.spec = spec
        mode = "interpreter" if self.runtime.vm is None else "compiled"
        return orjson.dumps({"mode": mode, "compile_error": self.runtime.compile_error})

    def evaluate(self, payload: bytes) -> tuple[int, bytes]:
        engine, length = EVAL_HEAD.unpack_from(payload)
        start = EVAL_HEAD.size
        rule = payload[start:start + length].decode()
        input_json = payload[start + length:].decode()
        runtime = self._loaded()
        began = time.perf_counter_ns()
        try:
            if engine == INTERPRETER:
                raw = runtime.interpret(rule, input_json)
            elif engine == RVM:
                raw = runtime.execute(rule, input_json)
            else:
                raw = runtime.answer(rule, input_json)
        except Exception as exc:
            return FAILED, NANOS.pack(time.perf_counter_ns() - began) + str(exc).encode()
        return OK, NANOS.pack(time.perf_counter_ns() - began) + raw.encode()

    def capture(self) -> bytes:
        from proxy.policy.test_inputs import capture  # only validation asks; serving processes never import it

        spec = self.spec
        tests = [tuple(m) for m in spec.get("tests", ())]
        return orjson.dumps(capture([tuple(m) for m in spec["modules"]], tests, spec["data"]))

    def _loaded(self) -> Runtime:
        if self.runtime is None:
            raise RuntimeError("no policy version loaded")
        return self.runtime


def serve(read_fd: int, write_fd: int) -> None:
    """Answers requests in order until the proxy closes the pipe. Requests that arrived together are
    answered with one write: under load that is one wake-up of the proxy's loop for many answers."""
    evaluator = Evaluator()
    buffer = bytearray()
    while True:
        chunk = os.read(read_fd, 1 << 16)
        if not chunk:
            return
        buffer += chunk
        answers = []
        while len(buffer) >= HEADER.size:
            length, request_id, op = HEADER.unpack_from(buffer)
            if len(buffer) < HEADER.size + length:
                break
            payload = bytes(buffer[HEADER.size:HEADER.size + length])
            del buffer[:HEADER.size + length]
            status, answer = evaluator.handle(op, payload)
            answers.append(HEADER.pack(len(answer), request_id, status) + answer)
            if len(answers) == BATCH:  # the first answers of a long burst should not wait for the last
                _write_all(write_fd, b"".join(answers))
                answers.clear()
        if answers:
            _write_all(write_fd, b"".join(answers))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _die_with_parent() -> None:
    # A killed proxy must not leave an evaluator spinning in a runaway policy (Linux only).
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (AttributeError, OSError):
        return
    if os.getppid() == 1:
        sys.exit(0)


def main() -> None:
    _die_with_parent()
    if len(sys.argv) > 2 and sys.argv[1] == "--nice":
        os.nice(int(sys.argv[2]))
    # The protocol gets the real stdout; anything else printing (a Rust println) goes to stderr.
    answers = os.dup(1)
    os.dup2(2, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the proxy decides
    serve(0, answers)


if __name__ == "__main__":
    main()
