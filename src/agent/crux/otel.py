"""OpenTelemetry spans as crux stages: add one span processor and existing instrumentation
shows up in `crux stages` with no other code change.

    from opentelemetry.sdk.trace import TracerProvider
    from crux.otel import CruxSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(CruxSpanProcessor())

Each ended span becomes a record in crux's ring while a recorder is attached: the trace id
(its low 64 bits) is the request id, the span name the stage; a span without a local
parent (a root, or one continuing a remote trace) is the request itself.

With no change to the program at all, run it through this module, which adds the processor
to every SDK TracerProvider the program makes:

    python -m crux.otel server.py ARGS...
"""
import os
import runpy
import sys

from crux import _agent

try:
    from opentelemetry.sdk.trace import SpanProcessor as _Base
except ImportError:  # the SDK is optional: the class still works with duck typing
    _Base = object

_MASK64 = (1 << 64) - 1


class CruxSpanProcessor(_Base):
    """Forwards ended spans to crux's shared-memory ring (a no-op while no crux reads)."""

    def on_start(self, span, parent_context=None):
        pass

    def on_end(self, span):
        if not _agent.attached():
            return
        ctx = span.get_span_context() if hasattr(span, "get_span_context") else span.context
        if ctx is None or span.start_time is None or span.end_time is None:
            return
        parent = span.parent
        kind = _agent.REQUEST if parent is None or parent.is_remote else _agent.STAGE
        _agent.emit(kind, span.name or "", ctx.trace_id & _MASK64, span.start_time,
                    span.end_time, True)

    def shutdown(self):
        pass

    def force_flush(self, timeout_millis=30000):
        return True


def install():
    """Makes every opentelemetry.sdk.trace.TracerProvider created from now on forward its
    spans to crux (adds a CruxSpanProcessor in its constructor). Idempotent."""
    from opentelemetry.sdk import trace as sdk_trace
    original = sdk_trace.TracerProvider.__init__
    if getattr(original, "_crux_installed", False):
        return

    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.add_span_processor(CruxSpanProcessor())
    __init__._crux_installed = True
    sdk_trace.TracerProvider.__init__ = __init__


def main(argv=None):
    """python -m crux.otel SCRIPT ARGS...: runs SCRIPT as __main__ after install()."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        sys.stderr.write("usage: python -m crux.otel SCRIPT [ARGS...]\n")
        return 2
    install()
    sys.argv = list(argv)
    sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))
    runpy.run_path(argv[0], run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
