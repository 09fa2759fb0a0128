"""Section 7 (the Lambda runtime): each execution environment is a child process running awslambdaric.

These run the real runtime client in child processes against the runner's Runtime API on
127.0.0.1, in real time (a child cannot share a stepped clock): the timeouts are 1 s.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from inqueue_local.backends import DUMMY_CREDENTIALS
from inqueue_local.reload import CodeWatch
from inqueue_local.runtime import MAX_PAYLOAD, Invocation, ProcessRuntime, function_environment
from inqueue_local.template import Template
from tests.local.conftest import HERE

pytestmark = [pytest.mark.enable_socket, pytest.mark.backends("moto")]
TEMPLATE = HERE / "templates" / "runtime.yaml"
REPORT = re.compile(
    r"^REPORT RequestId: (?P<id>[0-9a-f-]{36})\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\t"
    r"Memory Size: (?P<size>\d+) MB\tMax Memory Used: (?P<used>\d+) MB(?P<rest>.*)$"
)


class Lines:
    """The runner's log lines, as (who, what); waits for one without sleeping blindly."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self._changed = threading.Condition()

    def __call__(self, name: str, line: str) -> None:
        with self._changed:
            self.lines.append((name, line))
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = 10.0) -> tuple[str, str]:
        found: list[tuple[str, str]] = []
        with self._changed:
            self._changed.wait_for(
                lambda: bool(found.extend(x for x in self.lines if re.search(pattern, x[1])) or found), timeout
            )
        assert found, f"no line matching {pattern!r} in {self.lines}"
        return found[0]

    def texts(self) -> list[str]:
        with self._changed:
            return [line for _, line in self.lines]


@pytest.fixture
def lines() -> Lines:
    return Lines()


@pytest.fixture
def make_runtime(lines: Lines) -> Iterator[Callable[..., ProcessRuntime]]:
    made: list[ProcessRuntime] = []

    def make(
        name: str = "Probe", template: Path = TEMPLATE, max_environments: int = 4, handler: str | None = None,
        **overrides: object,
    ) -> ProcessRuntime:  # fmt: skip
        loaded = Template.load(template, {k: str(v) for k, v in overrides.items()})
        spec = loaded.functions()[name]
        if handler is not None:
            spec = dataclasses.replace(spec, handler=handler)
        env = function_environment(spec, lambda value: loaded.resolve(value, {}), dict(DUMMY_CREDENTIALS))
        runtime = ProcessRuntime(spec, env, max_environments=max_environments, log=lines)
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


def _report(invocation: Invocation) -> re.Match[str]:
    found = REPORT.match(invocation.report())
    assert found, invocation.report()
    return found


# ---------------------------------------------------------------- the process and what it sees


def test_an_environment_is_a_child_process_running_the_runtime_client(make_runtime) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a function of the template
    probe = make_runtime()

    # WHEN it is invoked
    invocation = probe.invoke({"echo": {"a": [1, "é"]}})

    # THEN the handler ran in another process, `python -S -m awslambdaric <handler>`, in its CodeUri
    assert not invocation.failed, invocation.error
    pid = invocation.result["pid"]
    assert pid != os.getpid()
    command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert command[1:5] == [b"-S", b"-m", b"awslambdaric", b"app.lambda_handler"]
    assert Path(f"/proc/{pid}/cwd").resolve() == probe.spec.code_uri
    # and the runtime client built the context from the Runtime API's headers
    context = invocation.result["context"]
    assert context["aws_request_id"] == invocation.request_id
    assert context["function_name"] == "Probe"
    assert context["memory_limit_in_mb"] == "256"
    assert context["invoked_function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:Probe"
    assert 0 < context["remaining_ms"] <= 3000
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", context["log_stream_name"])
    assert invocation.result["event"] == {"a": [1, "é"]}


def test_a_function_sees_only_the_environment_lambda_gives_it(make_runtime, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a variable in the runner's own environment, and another function with a variable of its own
    monkeypatch.setenv("RUNNER_ONLY_SECRET", "must-not-leak")
    probe = make_runtime()

    # WHEN the probe reports its environment
    names = ["FROM_GLOBALS", "QUEUE_URL", "ONLY_OTHER", "RUNNER_ONLY_SECRET", "AWS_LAMBDA_FUNCTION_NAME", "_HANDLER"]
    seen = probe.invoke({"env": names}).result

    # THEN the template's variables and Lambda's own are there, nothing of the runner's or of the other function
    assert seen["env"] == {
        "FROM_GLOBALS": "globals",
        "QUEUE_URL": "Queue",  # not provisioned here: the logical id stands in
        "ONLY_OTHER": None,
        "RUNNER_ONLY_SECRET": None,
        "AWS_LAMBDA_FUNCTION_NAME": "Probe",
        "_HANDLER": "app.lambda_handler",
    }
    lambdas = {
        "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_RUNTIME_API", "AWS_EXECUTION_ENV", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_XRAY_CONTEXT_MISSING",
        "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "_HANDLER", "_X_AMZN_TRACE_ID", "TZ", "LANG", "PATH", "PYTHONPATH",
        "LC_CTYPE",  # Python's own locale coercion, where en_US.UTF-8 is not installed
    }  # fmt: skip
    template = {"FROM_GLOBALS", "QUEUE_URL"}
    local = set(DUMMY_CREDENTIALS) | {
        "POWERTOOLS_TRACE_DISABLED", "POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_DEV", "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
    }  # fmt: skip
    assert set(seen["environ_names"]) <= lambdas | template | local


def test_a_function_imports_its_layer_and_nothing_of_the_runner(make_runtime) -> None:  # type: ignore[no-untyped-def]
    probe = make_runtime()
    layer = ["inqueue", "inqueue.envelope", "aws_lambda_powertools", "boto3", "awslambdaric"]
    tooling = ["inqueue_local", "inqueue_ops", "bench", "tests", "moto", "pytest", "mypy"]
    imports = probe.invoke({"imports": layer + tooling}).result["imports"]
    assert imports == {**dict.fromkeys(layer, True), **dict.fromkeys(tooling, False)}


# ---------------------------------------------------------------- cold starts, warm reuse, concurrency


def test_init_runs_once_per_environment_and_warm_environments_are_reused(make_runtime) -> None:  # type: ignore[no-untyped-def]
    probe = make_runtime()
    first, second = probe.invoke({}), probe.invoke({})
    assert (first.cold, second.cold) == (True, False)
    assert first.result["pid"] == second.result["pid"]
    assert (first.result["invocations"], second.result["invocations"]) == (1, 2)
    assert first.init_ms is not None
    assert "Init Duration" in first.report()
    assert second.init_ms is None
    assert "Init Duration" not in second.report()


def test_concurrent_invocations_get_environments_of_their_own(make_runtime) -> None:  # type: ignore[no-untyped-def]
    # GIVEN at most two environments, and three invocations at once that each take a while
    probe = make_runtime(max_environments=2)
    results: list[Invocation] = []

    def call() -> None:
        results.append(probe.invoke({"sleep": 0.4}))

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN two processes served them, each one invocation at a time
    assert all(not r.failed for r in results)
    pids = [r.result["pid"] for r in results]
    assert len(set(pids)) == 2
    assert sorted(r.result["invocations"] for r in results) == [1, 1, 2]


# ---------------------------------------------------------------- timeouts, crashes, memory


def test_at_the_timeout_the_environment_is_killed_and_replaced(make_runtime, lines: Lines, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a 1 s function whose handler sleeps 3 s, then writes a file
    probe = make_runtime(Timeout=1)
    before = probe.invoke({}).result["pid"]
    side_effect = tmp_path / "after-the-sleep"

    # WHEN it is invoked
    invocation = probe.invoke({"sleep": 3, "then_write": str(side_effect)})

    # THEN it timed out as Lambda says it, and the process is gone: the write can never happen
    assert invocation.timed_out
    assert str(invocation.error) == "Sandbox.Timedout: Task timed out after 1.00 seconds"
    assert not _alive(before)
    assert not side_effect.exists()
    assert _report(invocation)["rest"] == "\tStatus: timeout"
    lines.wait_for(rf"{invocation.request_id} Task timed out after 1\.00 seconds")
    lines.wait_for(rf"^REPORT RequestId: {invocation.request_id}\t.*\tStatus: timeout$")
    # and the next invocation gets a fresh environment
    after = probe.invoke({})
    assert after.cold
    assert after.result["pid"] != before


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"exit": 3}, "Runtime exited with error: exit status 3"),
        ({"exit": 0}, "Runtime exited without providing a reason"),
        ({"signal": "SIGKILL"}, "Runtime exited with error: signal: killed"),
        ({"signal": "SIGSEGV"}, "Runtime exited with error: signal: segmentation fault"),
    ],
)
def test_a_crash_is_an_invocation_error_and_the_next_gets_a_fresh_environment(make_runtime, event, message) -> None:  # type: ignore[no-untyped-def]
    probe = make_runtime()
    before = probe.invoke({}).result["pid"]
    crashed = probe.invoke(event)
    assert (crashed.error.type if crashed.error else None, crashed.error.message if crashed.error else None) == (
        "Runtime.ExitError",
        message,
    )
    assert _report(crashed)["rest"] == "\tStatus: error\tError Type: Runtime.ExitError"
    after = probe.invoke({})
    assert after.cold
    assert after.result["pid"] != before


def test_using_more_than_memory_size_kills_the_environment(make_runtime) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a 128 MB function WHEN its handler takes 200 MB
    probe = make_runtime(MemorySize=128)
    before = probe.invoke({}).result["pid"]
    invocation = probe.invoke({"allocate_mb": 200})

    # THEN the environment was killed for it, as Lambda kills it, and REPORT shows the peak
    assert invocation.error is not None
    assert invocation.error.type == "Runtime.OutOfMemory"
    report = _report(invocation)
    assert (report["size"], report["rest"]) == ("128", "\tStatus: error\tError Type: Runtime.OutOfMemory")
    assert int(report["used"]) > 128
    assert not _alive(before)
    assert probe.invoke({}).cold


def test_a_handler_error_is_reported_and_keeps_the_environment(make_runtime, lines: Lines) -> None:  # type: ignore[no-untyped-def]
    probe = make_runtime()
    failed = probe.invoke({"raise": "boom"})
    assert failed.error is not None
    assert (failed.error.type, failed.error.message, failed.status) == ("ValueError", "boom", "error")
    assert any("lambda_handler" in line for line in failed.error.trace)
    # the runtime client logged it (one line per traceback line here, one event on CloudWatch)
    lines.wait_for(r"^\[ERROR\] ValueError: boom$")
    lines.wait_for(r"^Traceback \(most recent call last\):$")
    again = probe.invoke({})
    assert (again.cold, again.result["invocations"]) == (False, 2)


def test_an_init_error_fails_the_invocation_and_the_next_one_retries_the_init(make_runtime) -> None:  # type: ignore[no-untyped-def]
    broken = make_runtime("Broken")
    first, second = broken.invoke({}), broken.invoke({})
    for invocation in (first, second):
        assert invocation.cold
        assert invocation.error is not None
        assert (invocation.error.type, invocation.error.message) == ("RuntimeError", "init failed on purpose")
    assert broken.warm_up().failed


def test_a_missing_handler_module_is_runtime_import_module_error(make_runtime) -> None:  # type: ignore[no-untyped-def]
    missing = make_runtime(handler="nowhere.lambda_handler")
    invocation = missing.invoke({})
    assert invocation.error is not None
    assert invocation.error.type == "Runtime.ImportModuleError"
    assert "nowhere" in invocation.error.message


def test_an_event_over_6_mb_is_refused_before_any_environment_starts(make_runtime) -> None:  # type: ignore[no-untyped-def]
    probe = make_runtime()
    invocation = probe.invoke({"echo": "x" * MAX_PAYLOAD})
    assert invocation.error is not None
    assert invocation.error.type == "RequestEntityTooLargeException"
    assert not invocation.cold
    assert probe._idle == []


# ---------------------------------------------------------------- output and REPORT


def test_output_reaches_the_log_prefixed_with_the_function_then_one_report_line(make_runtime, lines: Lines) -> None:  # type: ignore[no-untyped-def]
    probe = make_runtime()
    invocation = probe.invoke({"print": "hello from the handler"})
    report = lines.wait_for(rf"^REPORT RequestId: {invocation.request_id}\t")
    said = lines.lines.index(("Probe", "hello from the handler"))
    assert said < lines.lines.index(report)
    assert report[0] == "Probe"
    assert [line for line in lines.texts() if line.startswith("REPORT")] == [invocation.report()]
    found = _report(invocation)
    assert found["id"] == invocation.request_id
    assert found["size"] == "256"
    assert 0 < int(found["used"]) <= 256
    assert re.search(r"\tInit Duration: \d+\.\d\d ms$", invocation.report())
    assert invocation.billed_ms >= invocation.duration_ms + (invocation.init_ms or 0)


# ---------------------------------------------------------------- hot reload


def test_an_edit_retires_warm_environments_and_the_next_cold_start_uses_it(make_runtime, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a function whose code is a copy we may edit, warm
    code = tmp_path / "probe"
    shutil.copytree(HERE / "functions" / "probe", code)
    probe = make_runtime(ProbeCode=str(code))
    watch = CodeWatch([code])
    assert probe.invoke({}).result["version"] == "v1"

    # WHEN the handler's module is edited and the watch looks
    app = code / "app.py"
    app.write_text(app.read_text().replace('VERSION = "v1"', 'VERSION = "v2"'))
    os.utime(app, ns=(app.stat().st_atime_ns, app.stat().st_mtime_ns + 1_000_000_000))
    changed = watch.check()
    retired = probe.retire_warm()

    # THEN the change is seen, the warm environment retired, and the next invocation cold-starts on v2
    assert changed == [app]
    assert retired == 1
    after = probe.invoke({})
    assert (after.cold, after.result["version"]) == (True, "v2")
    assert watch.check() == []


def test_an_invocation_in_flight_finishes_on_its_code_and_its_environment_is_retired(make_runtime) -> None:  # type: ignore[no-untyped-def]
    probe = make_runtime()
    results: list[Invocation] = []
    thread = threading.Thread(target=lambda: results.append(probe.invoke({"sleep": 0.5})))
    thread.start()
    while not probe._busy:  # the invocation has its environment
        threading.Event().wait(0.01)
    assert probe.retire_warm() == 1
    thread.join()
    assert not results[0].failed
    assert probe._idle == []
    assert probe.invoke({}).cold


def test_the_layer_view_is_exactly_what_src_makefile_ships(make_runtime) -> None:  # type: ignore[no-untyped-def]
    probe = make_runtime()
    names = probe.view.names()
    assert "inqueue" in names
    assert {"inqueue_local", "inqueue_ops", "moto", "pytest"}.isdisjoint(names)
    assert {"aws_lambda_powertools", "aws_xray_sdk", "boto3", "botocore", "jmespath", "wrapt"} <= names
    assert (probe.view.layer / "inqueue").resolve() == (HERE.parent.parent / "src" / "inqueue").resolve()
    assert json.loads(json.dumps(sorted(names)))  # plain names, nothing else
