"""A recording fake of the Stream Analytics service for one job, with the service's rules.

It keeps the job's state as Azure does and records every call. Rules it enforces: a start is
accepted only from a stopped state (Created, Stopped, Failed), a stop only from a running one,
and, as pulumi-azure-native#785 reports, an update of the job, its input or its output is
refused while the job runs (:meth:`FakeStreamingJobs.update_definition` stands for the
azure-native provider's PUT). A PUT of the job itself, whose body has no inputs (they are
separate resources), is refused once the job exists: "The streaming job should have at least
one input defined." (422, pulumi-azure-native#688). The transformation (``transformations``)
is read with GET and changed with PATCH, only while the job is stopped.
"""

from __future__ import annotations

from azure.core.exceptions import HttpResponseError
from azure.mgmt.streamanalytics import models

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


def _transformation(query: str, units: int) -> models.Transformation:
    """The job's transformation as the SDK returns it (its model, from the REST body)."""
    return models.Transformation.deserialize(
        {"properties": {"query": query, "streamingUnits": units}}
    )


class FakeStreamingJobs:
    """Keeps one job's state like the service does and records every call."""

    def __init__(self, state="Created", last_output=None, query="SELECT 1", units=1):
        self.state = state
        self.last_output = last_output
        self.calls: list[tuple] = []
        self.fail: dict[str, list[Exception]] = {}
        self.stopping_polls = 0
        self.transformation = _transformation(query, units)
        self.settings: dict[str, object] = {}  # the job's event and error policies
        self.transformations = FakeTransformations(self)

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
                return models.StreamingJob.deserialize({"properties": {"jobState": "Stopping"}})
        # As the SDK hands it back: its own model deserialized from the REST body
        properties = {"jobState": self.state, "lastOutputEventTime": self.last_output}
        return models.StreamingJob.deserialize({"properties": {**properties, **self.settings}})

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

    def update(self, resource_group, job_name, streaming_job, **_):
        """PATCH of the job: only the properties set in ``streaming_job`` change."""
        attributes = {
            "eventsOutOfOrderPolicy": "events_out_of_order_policy",
            "eventsOutOfOrderMaxDelayInSeconds": "events_out_of_order_max_delay_in_seconds",
            "eventsLateArrivalMaxDelayInSeconds": "events_late_arrival_max_delay_in_seconds",
            "outputErrorPolicy": "output_error_policy",
        }
        patched = {k: getattr(streaming_job, a) for k, a in attributes.items()}
        patched = {k: v for k, v in patched.items() if v is not None}
        self.calls.append(("patch-job", resource_group, job_name, patched))
        if self.state not in sj.STOPPED_STATES:
            raise HttpResponseError(
                message=f"The streaming job is {self.state}: stop it before updating it.",
                response=FakeResponse(409),
            )
        self.settings.update(patched)
        return streaming_job

    def update_definition(self, resource: str):
        """The engine's update of the job, its input or its output (an ARM PUT)."""
        self.calls.append(("update", resource))
        if resource.startswith("stream-job"):  # the job's own PUT: no inputs in its body
            raise HttpResponseError(
                message="The streaming job should have at least one input defined.",
                response=FakeResponse(422),
            )
        if self.state not in sj.STOPPED_STATES:
            raise HttpResponseError(
                message=f"The streaming job is {self.state}: stop it before updating {resource}.",
                response=FakeResponse(409),
            )

    def actions(self):
        return [c for c in self.calls if not c[0].startswith("get")]


class FakeTransformations:
    """The job's one transformation: GET, and PATCH only while the job is stopped."""

    def __init__(self, jobs: FakeStreamingJobs):
        self.jobs = jobs

    def get(self, resource_group, job_name, transformation_name, **_):
        self.jobs.calls.append(("get-transformation", resource_group, job_name))
        self.jobs._maybe_fail("get-transformation")
        current = self.jobs.transformation
        return _transformation(current.query, current.streaming_units)

    def update(self, resource_group, job_name, transformation_name, transformation, **_):
        self.jobs.calls.append(
            ("patch-transformation", transformation.query, transformation.streaming_units)
        )
        if self.jobs.state not in sj.STOPPED_STATES:
            raise HttpResponseError(
                message=f"The streaming job is {self.jobs.state}: stop it before updating "
                "its transformation.",
                response=FakeResponse(409),
            )
        # PATCH: a property left None keeps its value
        if transformation.query is not None:
            self.jobs.transformation.query = transformation.query
        if transformation.streaming_units is not None:
            self.jobs.transformation.streaming_units = transformation.streaming_units
        return transformation
