"""OpenTelemetry spans as crux stages: add one span processor and existing instrumentation
shows up in `crux stages` with no other code change.

    from opentelemetry.sdk.trace import TracerProvider
    from crux.otel import CruxSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(CruxSpanProcessor())

Each ended span becomes a record in crux's ring while a recorder is attached: the trace id
(its low 64 bits) is the request id, the span name the stage; a span without a local
parent (a root, or one continuing a remote trace) is the request itself.
"""
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
