"""crux's in-process agent: mark the stages of each request so `crux stages` can time them.

    import crux

    with crux.request():              # binds a request id (contextvars: asyncio-safe)
        with crux.stage("tokenize"):
            ...
        with crux.stage("model"):
            ...

    @crux.stage("postprocess")        # a decorator too (sync or async functions)
    def postprocess(x): ...

Nothing is recorded, and a stage costs about one flag check, until a crux recorder
(`crux stages --pid PID`, `crux record`) attaches to this process. Stages go to a
shared-memory ring, /dev/shm/crux-agent-PID (or $CRUX_AGENT_PATH); CRUX_AGENT=0 turns
the agent off. Runs on CPython 3.8 and later.
"""
import functools
import inspect

from crux import _agent
from crux._agent import attached, mark, now, ring_path, stage

__all__ = ["stage", "request", "set_request", "current_request", "mark", "attached", "now",
           "ring_path"]

STAGE = _agent.STAGE
REQUEST = _agent.REQUEST
MARK = _agent.MARK
_var = _agent.request_var


def _decorate(name, fn):
    """The wrapper `@crux.stage(name)` puts around fn (a coroutine function stays one)."""
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def async_wrapper(*args, **kwargs):
            with stage(name):
                return await fn(*args, **kwargs)
        return async_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with stage(name):
            return fn(*args, **kwargs)
    return wrapper


_agent._set_decorate(_decorate)


class request(object):
    """Binds a request id for the code inside (`with crux.request(id):`) and records the
    request's own span. `id` is an int, a str or bytes (hashed to 64 bits), or None for a
    new id. The binding lives in a ContextVar, so asyncio tasks keep their own ids."""

    __slots__ = ("id", "_token", "_start")

    def __init__(self, id=None):
        self.id = _agent.request_id(id)
        self._token = None
        self._start = 0

    def __enter__(self):
        self._token = _var.set(self.id)
        self._start = now() if attached() else 0
        return self

    def __exit__(self, *exc):
        _var.reset(self._token)
        self._token = None
        if self._start:
            _agent.emit(REQUEST, "", self.id, self._start, now())
        return False

    def __call__(self, fn):
        """As a decorator: every call of fn is a new request."""
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*args, **kwargs):
                with request():
                    return await fn(*args, **kwargs)
            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with request():
                return fn(*args, **kwargs)
        return wrapper


def set_request(id=None):
    """Binds a request id in the current context without a request span; returns the id.
    Stages that follow (in this thread or asyncio task) belong to it."""
    rid = _agent.request_id(id)
    _var.set(rid)
    return rid


def current_request():
    """The request id bound in the current context, or None."""
    return _var.get(None)
