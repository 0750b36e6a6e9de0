"""The evaluator process's wire protocol: frame headers, requests, answers and engine codes.

Frames both ways: HEADER (payload length, request id, op or status), then the payload. Apart from
proxy/policy/evaluator.py so that the proxy's side (proxy/policy/isolated.py) never imports regorus.
"""

from __future__ import annotations

import struct

HEADER = struct.Struct("<IIB")
EVAL_HEAD = struct.Struct("<BH")  # engine, length of the rule path; then the rule, then the input JSON
NANOS = struct.Struct("<Q")  # how long an evaluation took, ahead of its answer

# Requests.
LOAD, EVAL, AST, CAPTURE = 1, 2, 3, 4
# Answers.
OK, FAILED = 0, 1

# Which engine an EVAL asks: the interpreter, what the proxy serves (RVM, interpreter where the RVM
# has no answer), or the RVM alone.
INTERPRETER, SERVED, RVM = 0, 1, 2
