"""A recording fake of the Stream Analytics service for one job, with the service's rules.

It keeps the job's state as Azure does and records every call. Rules it enforces: a start is
accepted only from a stopped state (Created, Stopped, Failed), a stop only from a running one,
and, as pulumi-azure-native#785 reports, an update of the job, its input or its output is
refused while the job runs (:meth:`FakeStreamingJobs.update_definition` stands for the
azure-native provider's PUT).
"""

from __future__ import annotations

from types import SimpleNamespace

from azure.core.exceptions import HttpResponseError

from components.providers import stream_job as sj


class FakePoller:
    def __init__(self, on_done):
        self._on_done = on_done
        self._finished = False

    def result(self, timeout=None):
        self._on_done()
        self._finished = True

    def done(self):
        return self._finished


class FakeResponse:
    def __init__(self, status, headers=None):
        self.status_code = status
        self.reason = "Error"
        self.headers = headers or {}

    def text(self):
        return ""


class FakeStreamingJobs:
    """Keeps one job's state like the service does and records every call."""

    def __init__(self, state="Created", last_output=None):
        self.state = state
        self.last_output = last_output
        self.calls: list[tuple] = []
        self.fail: dict[str, list[Exception]] = {}
        self.stopping_polls = 0

    def _maybe_fail(self, op):
        errors = self.fail.get(op)
        if errors:
            raise errors.pop(0)

    def get(self, resource_group, job_name, **_):
        self.calls.append(("get", resource_group, job_name))
        self._maybe_fail("get")
        if self.state == "Stopping":
            self.stopping_polls -= 1
            if self.stopping_polls < 0:
                self.state = "Stopped"
                return SimpleNamespace(job_state="Stopping", last_output_event_time=None)
        return SimpleNamespace(job_state=self.state, last_output_event_time=self.last_output)

    def begin_start(self, resource_group, job_name, start_job_parameters=None, **_):
        mode = start_job_parameters.output_start_mode
        self.calls.append(("start", resource_group, job_name, mode))
        self._maybe_fail("start")
        assert self.state in sj.STOPPED_STATES, f"start called while {self.state}"

        def finish():
            self.state = "Running"

        return FakePoller(finish)

    def begin_stop(self, resource_group, job_name, **_):
        self.calls.append(("stop", resource_group, job_name))
        self._maybe_fail("stop")
        assert self.state in sj.RUNNING_STATES, f"stop called while {self.state}"

        def finish():
            self.state = "Stopped"

        return FakePoller(finish)

    def update_definition(self, resource: str):
        """The engine's update of the job, its input or its output (an ARM PUT)."""
        self.calls.append(("update", resource))
        if self.state not in sj.STOPPED_STATES:
            raise HttpResponseError(
                message=f"The streaming job is {self.state}: stop it before updating {resource}.",
                response=FakeResponse(409),
            )

    def actions(self):
        return [c for c in self.calls if c[0] != "get"]
