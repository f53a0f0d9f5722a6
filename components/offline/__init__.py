"""Offline tooling over the Pulumi program: the plan under mocks, its read-only view, the mocks.

Used by `make plan` and the tests; the program (`__main__.py`) and the components never
import it.
"""
