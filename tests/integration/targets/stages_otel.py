"""OpenTelemetry target: a server instrumented with the OpenTelemetry SDK, whose spans reach
crux through crux.otel.CruxSpanProcessor with no other change.

Each request is a root span "handle" with children "tokenize" (10 ms) and "model" (30 ms).
With --no-processor the target leaves crux out entirely (run it as
`python -m crux.otel stages_otel.py --no-processor`: the processor is then added for it).
"""
import time

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from _harness import parse_args, write_truth


def add_arguments(p):
    p.add_argument("--requests", type=int, default=10)
    p.add_argument("--no-processor", action="store_true")


def main():
    args = parse_args(__doc__, add_arguments)
    import crux  # the agent is loaded either way; only the processor line differs
    provider = TracerProvider()
    if not args.no_processor:
        from crux.otel import CruxSpanProcessor
        provider.add_span_processor(CruxSpanProcessor())
    tracer = provider.get_tracer("stages-test")
    write_truth(args.truth, {"phase": "ready"})
    deadline = time.monotonic() + 30
    while not crux.attached() and time.monotonic() < deadline:
        time.sleep(0.005)
    traces = []
    for _ in range(args.requests):
        with tracer.start_as_current_span("handle") as root:
            traces.append("%032x" % root.get_span_context().trace_id)
            with tracer.start_as_current_span("tokenize"):
                time.sleep(0.010)
            with tracer.start_as_current_span("model"):
                time.sleep(0.030)
    provider.shutdown()
    write_truth(args.truth, {"phase": "done", "traces": traces})


if __name__ == "__main__":
    main()
