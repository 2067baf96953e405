// SPDX-License-Identifier: MIT
// crux._agent: request stages measured inside a CPython process and written to a shared-memory
// ring (src/agent/agentshm.h) that crux reads. Built per interpreter by `make agent`; not part
// of the crux executable. Costs one load of the ring's `attached` flag while no crux reads.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "agentalloc.h"
#include "agentnative.h"
#include "agentshm.h"

/* The ring of this process, or NULL (disabled, failed, or not yet made after a fork). */
static struct agentshm_hdr *g_hdr;
static struct agentshm_rec *g_recs;
static struct agentshm_name *g_names_tab;
static struct agentshm_slot *g_slots;
static uint64_t g_mask;
static size_t g_size;
static pid_t g_owner;
static char g_path[256];
static int g_default_path; /* the file is /dev/shm/crux-agent-PID (named after our pid) */

/* What the hot path reads: the header's `attached`, or a zero while there is no ring. */
static uint32_t g_zero;
static uint32_t *volatile g_attached = &g_zero;

static PyObject *g_reqvar;   /* ContextVar holding the request id (an int) */
static PyObject *g_names;    /* dict: stage name (str) -> name index (int) */
static PyObject *g_decorate; /* crux._decorate(name, fn), set by crux/__init__.py */
static int g_names_stale;    /* set in a forked child: g_names indexes the parent's table */
static uint64_t g_next_request;
static uint64_t g_reader_timeout_ns = AGENTSHM_READER_TIMEOUT_NS;
static pthread_key_t g_slot_key;

static __thread pid_t t_tid;
static __thread struct agentshm_slot *t_slot;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static pid_t my_tid(void)
{
    if (!t_tid)
        t_tid = (pid_t)syscall(SYS_gettid);
    return t_tid;
}

static int attached(void)
{
    return __atomic_load_n(g_attached, __ATOMIC_RELAXED) != 0;
}

/* ---- the ring ---------------------------------------------------------------------------- */

static uint32_t env_records(void)
{
    const char *s = getenv("CRUX_AGENT_RECORDS");
    if (!s || !*s)
        return AGENTSHM_RECS_DEFAULT;
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || v < AGENTSHM_RECS_MIN)
        v = AGENTSHM_RECS_MIN;
    if (v > AGENTSHM_RECS_MAX)
        v = AGENTSHM_RECS_MAX;
    uint32_t p = AGENTSHM_RECS_MIN;
    while (p < v)
        p <<= 1;
    return p;
}

static int disabled(void)
{
    const char *s = getenv("CRUX_AGENT");
    return s && (!strcmp(s, "0") || !strcmp(s, "off") || !strcmp(s, "no"));
}

/* Writes "PREFIX<pid>" into g_path using no stdio (this runs in a fork child too). */
static void default_path(pid_t pid)
{
    char digits[16];
    int n = 0;
    unsigned v = (unsigned)pid;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < (int)sizeof(digits));
    size_t len = 0;
    const char *pre = AGENTSHM_DIR "/" AGENTSHM_PREFIX;
    while (pre[len] && len < sizeof(g_path) - 20) {
        g_path[len] = pre[len];
        len++;
    }
    while (n > 0)
        g_path[len++] = digits[--n];
    g_path[len] = '\0';
}

static void ring_unmap(void)
{
    if (g_hdr)
        munmap(g_hdr, g_size);
    g_hdr = NULL;
    g_recs = NULL;
    g_names_tab = NULL;
    g_slots = NULL;
    g_attached = &g_zero;
}

/* Makes the file and maps it; on any failure the agent stays off (stages cost a flag check).
 * `want_allocs` < 0: as $CRUX_ALLOCATIONS says; else with (1) or without (0) an allocation
 * section of `attach_bytes` between samples (crux attaching to a running process). */
static void ring_create_with(int want_allocs, uint64_t attach_bytes)
{
    if (disabled())
        return;
    pid_t pid = getpid();
    const char *env = getenv("CRUX_AGENT_PATH");
    g_default_path = !(env && *env);
    if (g_default_path) {
        default_path(pid);
    } else {
        size_t n = strlen(env);
        if (n >= sizeof(g_path))
            return;
        memcpy(g_path, env, n + 1);
    }
    uint32_t nrec = env_records();
    uint64_t names_off = AGENTSHM_HDR_SIZE;
    uint64_t slots_off = names_off + (uint64_t)AGENTSHM_NAMES * sizeof(struct agentshm_name);
    uint64_t recs_off = slots_off + (uint64_t)AGENTSHM_SLOTS * sizeof(struct agentshm_slot);
    uint64_t alloc_off = recs_off + (uint64_t)nrec * sizeof(struct agentshm_rec);
    uint64_t sample_bytes = attach_bytes;
    int allocs = want_allocs < 0 ? agentalloc_wanted(&sample_bytes) : want_allocs;
    uint32_t narec = sample_bytes ? AGENTSHM_AREC_DEFAULT : AGENTSHM_AREC_ALL;
    uint64_t total = alloc_off + (allocs ? agentalloc_bytes(narec) : 0);
    unlink(g_path); /* a stale file of a dead process that had our pid */
    int fd = open(g_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    void *m = MAP_FAILED;
    if (ftruncate(fd, (off_t)total) == 0)
        m = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        unlink(g_path);
        return;
    }
    struct agentshm_hdr *h = m;
    h->version = AGENTSHM_VERSION;
    h->hdr_size = AGENTSHM_HDR_SIZE;
    h->rec_size = sizeof(struct agentshm_rec);
    h->rec_count = nrec;
    h->name_size = sizeof(struct agentshm_name);
    h->name_count = AGENTSHM_NAMES;
    h->slot_size = sizeof(struct agentshm_slot);
    h->slot_count = AGENTSHM_SLOTS;
    h->names_off = names_off;
    h->slots_off = slots_off;
    h->recs_off = recs_off;
    h->total_size = total;
    h->pid = (uint32_t)pid;
    h->created_ns = now_ns();
    h->names_used = 1; /* entry 0: no stage */
    if (allocs)
        agentalloc_layout(h, alloc_off, narec, sample_bytes);
    /* `crux stages -- COMMAND` names itself, our parent: record from the start. */
    const char *att = getenv("CRUX_AGENT_ATTACHED");
    if (att && *att && strtol(att, NULL, 10) == (long)getppid())
        h->attached = 1;
    g_names_tab = (struct agentshm_name *)((char *)m + names_off);
    g_names_tab[0].state = AGENTSHM_NAME_READY;
    g_slots = (struct agentshm_slot *)((char *)m + slots_off);
    g_recs = (struct agentshm_rec *)((char *)m + recs_off);
    g_mask = nrec - 1;
    g_size = total;
    g_owner = pid;
    __atomic_thread_fence(__ATOMIC_RELEASE);
    memcpy(h->magic, AGENTSHM_MAGIC, sizeof(h->magic));
    g_hdr = h;
    g_attached = &h->attached;
    if (allocs && want_allocs < 0 && agentalloc_start(h))
        fprintf(stderr, "crux: allocation sampling unavailable: libcrux_alloc.so not found "
                        "(crux record --allocations preloads it; see docs/memory.md)\n");
}

static void ring_create(void)
{
    ring_create_with(-1, 0);
}

/* Removes ring files of processes that no longer exist (left by a kill -9 or os._exit). */
static void remove_stale(void)
{
    DIR *d = opendir(AGENTSHM_DIR);
    if (!d)
        return;
    size_t plen = strlen(AGENTSHM_PREFIX);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, AGENTSHM_PREFIX, plen) != 0)
            continue;
        char *end = NULL;
        long pid = strtol(e->d_name + plen, &end, 10);
        if (*end || pid <= 0 || pid > INT32_MAX)
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char path[300];
        int n = snprintf(path, sizeof(path), "%s/%s", AGENTSHM_DIR, e->d_name);
        if (n > 0 && (size_t)n < sizeof(path))
            unlink(path);
    }
    closedir(d);
}

static void at_exit(void)
{
    agentalloc_stop();
    if (g_hdr && getpid() == g_owner)
        unlink(g_path);
}

static void after_fork_child(void)
{
    /* The child has the parent's mapping; it gets a file of its own, and its one thread's
     * cached tid and slot belong to the parent. */
    ring_unmap();
    t_tid = 0;
    t_slot = NULL;
    pthread_setspecific(g_slot_key, NULL);
    g_names_stale = 1;
    if (g_default_path)
        ring_create();
}

static void slot_release(void *p)
{
    struct agentshm_slot *s = p;
    if (!s || !g_hdr)
        return;
    __atomic_store_n(&s->name, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&s->tid, 0, __ATOMIC_RELEASE);
}

/* This thread's slot in the ring (claimed on first use), or NULL when all are taken. */
static struct agentshm_slot *my_slot(void)
{
    if (t_slot || !g_hdr)
        return t_slot;
    uint32_t tid = (uint32_t)my_tid();
    for (uint32_t i = 0; i < AGENTSHM_SLOTS; i++) {
        uint32_t expect = 0;
        if (__atomic_compare_exchange_n(&g_slots[i].tid, &expect, tid, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_RELAXED)) {
            t_slot = &g_slots[i];
            pthread_setspecific(g_slot_key, t_slot);
            return t_slot;
        }
    }
    return NULL;
}

/* A recorder killed with SIGKILL never clears `attached`: once its heartbeat is stale, the
 * agent clears it, so that stages go back to the detached cost. */
static void check_reader(struct agentshm_hdr *h)
{
    uint64_t beat = __atomic_load_n(&h->reader_ns, __ATOMIC_RELAXED);
    uint64_t now = now_ns();
    if (beat && now > beat && now - beat > g_reader_timeout_ns)
        __atomic_store_n(&h->attached, 0, __ATOMIC_RELAXED);
}

static void emit(uint32_t kind, uint32_t name, uint64_t request, uint64_t start, uint64_t end)
{
    struct agentshm_hdr *h = g_hdr;
    if (!h)
        return;
    uint64_t idx = __atomic_fetch_add(&h->write_idx, 1, __ATOMIC_RELAXED);
    if (idx % AGENTSHM_HEARTBEAT_EVERY == AGENTSHM_HEARTBEAT_EVERY - 1)
        check_reader(h);
    struct agentshm_rec *r = &g_recs[idx & g_mask];
    r->request = request;
    r->start_ns = start;
    r->end_ns = end;
    r->tid = (uint32_t)my_tid();
    r->name = name;
    r->kind = kind;
    r->flags = 0;
    __atomic_store_n(&r->seq, idx + 1, __ATOMIC_RELEASE);
}

/* The name index of `name` (a str), interning it into the ring's table on first sight;
 * 0 when the table is full or the text cannot be encoded. Needs the GIL. */
static uint32_t intern(PyObject *name)
{
    if (!g_hdr)
        return 0;
    if (PyUnicode_GET_LENGTH(name) == 0)
        return 0;
    if (g_names_stale) {
        PyDict_Clear(g_names);
        g_names_stale = 0;
    }
    PyObject *v = PyDict_GetItemWithError(g_names, name);
    if (v)
        return (uint32_t)PyLong_AsUnsignedLong(v);
    if (PyErr_Occurred())
        PyErr_Clear();
    Py_ssize_t n = 0;
    const char *s = PyUnicode_AsUTF8AndSize(name, &n);
    if (!s) {
        PyErr_Clear();
        return 0;
    }
    uint32_t idx = __atomic_fetch_add(&g_hdr->names_used, 1, __ATOMIC_RELAXED);
    if (idx >= AGENTSHM_NAMES) {
        __atomic_store_n(&g_hdr->names_used, AGENTSHM_NAMES, __ATOMIC_RELAXED);
        __atomic_fetch_add(&g_hdr->dropped, 1, __ATOMIC_RELAXED);
        idx = 0;
    } else {
        size_t len = (size_t)n;
        if (len > AGENTSHM_NAME_MAX) { /* cut at a UTF-8 character boundary */
            len = AGENTSHM_NAME_MAX;
            while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
                len--;
        }
        struct agentshm_name *e = &g_names_tab[idx];
        memcpy(e->text, s, len);
        e->len = (uint32_t)len;
        __atomic_store_n(&e->state, AGENTSHM_NAME_READY, __ATOMIC_RELEASE);
    }
    PyObject *iv = PyLong_FromUnsignedLong(idx);
    if (!iv || PyDict_SetItem(g_names, name, iv) < 0)
        PyErr_Clear();
    Py_XDECREF(iv);
    return idx;
}

/* The request id bound in the current context, 0 when none. */
static uint64_t current_request(void)
{
    PyObject *v = NULL;
    if (PyContextVar_Get(g_reqvar, NULL, &v) < 0) {
        PyErr_Clear();
        return 0;
    }
    if (!v)
        return 0;
    uint64_t r = 0;
    if (PyLong_Check(v)) {
        r = PyLong_AsUnsignedLongLongMask(v);
        if (r == (uint64_t)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            r = 0;
        }
    }
    Py_DECREF(v);
    return r;
}

/* ---- crux._agent.Stage ------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD PyObject *name; /* str */
    uint64_t start;               /* 0: not recording */
    uint32_t id;
    uint32_t prev; /* the thread's stage before this one */
} StageObject;

static PyTypeObject StageType;

static void stage_dealloc(PyObject *self)
{
    Py_XDECREF(((StageObject *)self)->name);
    PyObject_Free(self);
}

static PyObject *stage_enter(PyObject *self, PyObject *unused)
{
    (void)unused;
    StageObject *st = (StageObject *)self;
    if (attached()) {
        st->id = intern(st->name);
        st->start = now_ns();
        struct agentshm_slot *slot = my_slot();
        if (slot) {
            st->prev = slot->name;
            slot->request = current_request();
            slot->since_ns = st->start;
            __atomic_store_n(&slot->name, st->id, __ATOMIC_RELEASE);
        }
    }
    Py_INCREF(self);
    return self;
}

static PyObject *stage_exit(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)args;
    (void)nargs;
    StageObject *st = (StageObject *)self;
    if (st->start) {
        uint64_t end = now_ns();
        emit(AGENTSHM_STAGE, st->id, current_request(), st->start, end);
        struct agentshm_slot *slot = t_slot;
        if (slot && g_hdr)
            __atomic_store_n(&slot->name, st->prev, __ATOMIC_RELEASE);
        st->start = 0;
    }
    Py_RETURN_NONE;
}

/* As a decorator: crux._decorate(name, fn) builds the wrapper (sync or async). */
static PyObject *stage_call(PyObject *self, PyObject *args, PyObject *kwargs)
{
    PyObject *fn = NULL;
    if (kwargs && PyDict_Size(kwargs) > 0) {
        PyErr_SetString(PyExc_TypeError, "crux.stage(...) decorates one function");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O:stage", &fn))
        return NULL;
    if (!g_decorate) {
        PyErr_SetString(PyExc_TypeError, "import crux (not crux._agent) to use crux.stage as a "
                                         "decorator");
        return NULL;
    }
    return PyObject_CallFunctionObjArgs(g_decorate, ((StageObject *)self)->name, fn, NULL);
}

static PyObject *stage_get_name(PyObject *self, void *closure)
{
    (void)closure;
    PyObject *n = ((StageObject *)self)->name;
    Py_INCREF(n);
    return n;
}

static PyMethodDef stage_methods[] = {
    {"__enter__", stage_enter, METH_NOARGS, "Begins the stage (records only while attached)."},
    {"__exit__", (PyCFunction)(void (*)(void))stage_exit, METH_FASTCALL, "Ends the stage."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef stage_getset[] = {
    {"name", stage_get_name, NULL, "the stage name", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject StageType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "crux._agent.Stage",
    .tp_basicsize = sizeof(StageObject),
    .tp_dealloc = stage_dealloc,
    .tp_call = stage_call,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A request stage: `with crux.stage(name):` or `@crux.stage(name)`.",
    .tp_methods = stage_methods,
    .tp_getset = stage_getset,
};

/* ---- module functions -------------------------------------------------------------------- */

static PyObject *mod_stage(PyObject *mod, PyObject *name)
{
    (void)mod;
    if (!PyUnicode_Check(name)) {
        PyErr_SetString(PyExc_TypeError, "crux.stage(name): name must be a str");
        return NULL;
    }
    StageObject *st = PyObject_New(StageObject, &StageType);
    if (!st)
        return NULL;
    Py_INCREF(name);
    st->name = name;
    st->start = 0;
    st->id = 0;
    st->prev = 0;
    return (PyObject *)st;
}

static PyObject *mod_mark(PyObject *mod, PyObject *name)
{
    (void)mod;
    if (!PyUnicode_Check(name)) {
        PyErr_SetString(PyExc_TypeError, "crux.mark(name): name must be a str");
        return NULL;
    }
    if (attached()) {
        uint64_t t = now_ns();
        emit(AGENTSHM_MARK, intern(name), current_request(), t, t);
    }
    Py_RETURN_NONE;
}

static PyObject *mod_attached(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    return PyBool_FromLong(attached());
}

static PyObject *mod_now(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    return PyLong_FromUnsignedLongLong(now_ns());
}

static PyObject *mod_ring_path(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    if (!g_hdr)
        Py_RETURN_NONE;
    return PyUnicode_DecodeFSDefault(g_path);
}

static uint64_t fnv1a(const char *s, Py_ssize_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (Py_ssize_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* request_id(obj): None -> a new id; int -> its low 64 bits; str/bytes -> a 64-bit hash. */
static PyObject *mod_request_id(PyObject *mod, PyObject *obj)
{
    (void)mod;
    uint64_t id = 0;
    if (obj != Py_None) {
        if (PyLong_Check(obj)) {
            id = PyLong_AsUnsignedLongLongMask(obj);
            if (id == (uint64_t)-1 && PyErr_Occurred())
                return NULL;
        } else if (PyUnicode_Check(obj)) {
            Py_ssize_t n = 0;
            const char *s = PyUnicode_AsUTF8AndSize(obj, &n);
            if (!s)
                return NULL;
            id = fnv1a(s, n);
        } else if (PyBytes_Check(obj)) {
            id = fnv1a(PyBytes_AS_STRING(obj), PyBytes_GET_SIZE(obj));
        } else {
            PyErr_SetString(PyExc_TypeError, "a request id is an int, str, bytes or None");
            return NULL;
        }
    }
    if (!id)
        id = __atomic_add_fetch(&g_next_request, 1, __ATOMIC_RELAXED);
    return PyLong_FromUnsignedLongLong(id);
}

/* emit(kind, name, request, start_ns, end_ns, realtime=False): one record, when attached.
 * With realtime true the times are CLOCK_REALTIME (OpenTelemetry's) and are converted. */
static PyObject *mod_emit(PyObject *mod, PyObject *args)
{
    (void)mod;
    unsigned int kind = 0;
    PyObject *name = NULL;
    unsigned long long req = 0, start = 0, end = 0;
    int realtime = 0;
    if (!PyArg_ParseTuple(args, "IUKKK|p:emit", &kind, &name, &req, &start, &end, &realtime))
        return NULL;
    if (kind < AGENTSHM_STAGE || kind > AGENTSHM_MARK) {
        PyErr_SetString(PyExc_ValueError, "emit: kind is 1 (stage), 2 (request) or 3 (mark)");
        return NULL;
    }
    if (!attached())
        Py_RETURN_NONE;
    if (realtime) {
        struct timespec rt;
        clock_gettime(CLOCK_REALTIME, &rt);
        int64_t off =
            (int64_t)((uint64_t)rt.tv_sec * 1000000000u + (uint64_t)rt.tv_nsec) - (int64_t)now_ns();
        start = (unsigned long long)((int64_t)start - off);
        end = (unsigned long long)((int64_t)end - off);
    }
    emit(kind, intern(name), req, start, end);
    Py_RETURN_NONE;
}

static PyObject *mod_alloc_stop(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    agentalloc_stop();
    Py_RETURN_NONE;
}

/* _alloc_attach(shim, sample_bytes): called by crux's attach code (src/agent/attachlib.c) in a
 * running process, with the GIL: makes the ring with an allocation section (replacing one
 * without: stage writers hold the GIL too) and starts the hooks of the PyMem and PyObject
 * domains, and native malloc's through the GOT (agentnative.h). Called again by a later attach,
 * it restarts the engine on the same ring. Returns (ring path, native report). */
static PyObject *mod_alloc_attach(PyObject *mod, PyObject *args)
{
    (void)mod;
    const char *shim = NULL;
    unsigned long long sample = 0;
    if (!PyArg_ParseTuple(args, "sK", &shim, &sample))
        return NULL;
    if (disabled()) {
        PyErr_SetString(PyExc_RuntimeError, "the agent is turned off (CRUX_AGENT=0)");
        return NULL;
    }
    if (g_hdr && !g_hdr->arecs_off) {
        if (g_owner == getpid())
            unlink(g_path);
        ring_unmap();
    }
    if (!g_hdr)
        ring_create_with(1, sample);
    if (!g_hdr || !g_hdr->arecs_off) {
        PyErr_SetString(PyExc_RuntimeError, "cannot make the ring in /dev/shm");
        return NULL;
    }
    g_hdr->sample_bytes = sample;
    if (agentalloc_attach(g_hdr, shim)) {
        PyErr_Format(PyExc_RuntimeError, "cannot start the engine (dlopen %s: %s)", shim,
                     agentalloc_error());
        return NULL;
    }
    char native[160];
    if (agentnative_attach(g_hdr, native, sizeof(native))) {
        /* the report says why: it goes back to crux in the status file */
    }
    return Py_BuildValue("(ss)", g_path, native);
}

static PyObject *mod_set_decorate(PyObject *mod, PyObject *fn)
{
    (void)mod;
    Py_INCREF(fn);
    Py_XSETREF(g_decorate, fn);
    Py_RETURN_NONE;
}

static PyMethodDef mod_methods[] = {
    {"stage", mod_stage, METH_O, "stage(name): a context manager (and decorator) for a stage."},
    {"mark", mod_mark, METH_O, "mark(name): an instant event in the current request."},
    {"attached", mod_attached, METH_NOARGS, "True while a crux recorder reads the ring."},
    {"now", mod_now, METH_NOARGS, "CLOCK_MONOTONIC in nanoseconds (the ring's clock)."},
    {"ring_path", mod_ring_path, METH_NOARGS, "The ring file's path, or None when off."},
    {"request_id", mod_request_id, METH_O, "request_id(obj): a 64-bit request id for obj."},
    {"emit", mod_emit, METH_VARARGS, "emit(kind, name, request, start_ns, end_ns[, realtime])."},
    {"_alloc_stop", mod_alloc_stop, METH_NOARGS, "Stops allocation sampling (at exit)."},
    {"_alloc_attach", mod_alloc_attach, METH_VARARGS,
     "Starts allocation sampling in a running process (crux record --allocations --pid)."},
    {"_set_decorate", mod_set_decorate, METH_O, "Sets the decorator factory (crux/__init__)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef agent_module = {
    PyModuleDef_HEAD_INIT,
    "crux._agent",
    "crux's in-process agent: request stages.",
    -1,
    mod_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

/* 3.8's PyMODINIT_FUNC does not mark the symbol visible; this build hides everything else. */
#define AGENT_EXPORT __attribute__((visibility("default")))

AGENT_EXPORT PyMODINIT_FUNC PyInit__agent(void);

AGENT_EXPORT PyMODINIT_FUNC PyInit__agent(void)
{
    if (PyType_Ready(&StageType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&agent_module);
    if (!m)
        return NULL;
    g_names = PyDict_New();
    g_reqvar = PyContextVar_New("crux_request", NULL);
    if (!g_names || !g_reqvar)
        goto fail;
    Py_INCREF(g_reqvar);
    if (PyModule_AddObject(m, "request_var", g_reqvar) < 0) {
        Py_DECREF(g_reqvar);
        goto fail;
    }
    Py_INCREF(&StageType);
    if (PyModule_AddObject(m, "Stage", (PyObject *)&StageType) < 0) {
        Py_DECREF(&StageType);
        goto fail;
    }
    if (PyModule_AddIntConstant(m, "STAGE", AGENTSHM_STAGE) < 0 ||
        PyModule_AddIntConstant(m, "REQUEST", AGENTSHM_REQUEST) < 0 ||
        PyModule_AddIntConstant(m, "MARK", AGENTSHM_MARK) < 0)
        goto fail;
    static int once;
    if (!once) {
        once = 1;
        if (pthread_key_create(&g_slot_key, slot_release) != 0)
            goto fail;
        pthread_atfork(NULL, NULL, after_fork_child);
        Py_AtExit(at_exit);
        if (!disabled() && !getenv("CRUX_AGENT_PATH"))
            remove_stale();
        const char *t = getenv("CRUX_AGENT_READER_TIMEOUT_MS");
        if (t && *t && strtoull(t, NULL, 10) > 0)
            g_reader_timeout_ns = strtoull(t, NULL, 10) * 1000000ull;
        ring_create();
    }
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
