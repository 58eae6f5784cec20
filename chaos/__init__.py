"""The chaos suite: the whole product started from outside as processes, faults injected, truth measured.

`python -m chaos.run` (or `make chaos`); tests/test_chaos.py runs a short subset. Not a Django app: it
drives the product over HTTP, WebSocket, SQL and signals, as an operator's bad day would.
"""
