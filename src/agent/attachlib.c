// SPDX-License-Identifier: MIT
// libcrux_attach.so: what `crux record --allocations --pid PID` loads into a running Python
// (src/target/inject.c calls dlopen, then crux_attach_kick, on a borrowed thread). The borrowed
// thread only copies the argument and starts a thread: no Python, no GIL, no lock beyond
// malloc's. The new thread, with every signal blocked (so signal delivery in the process is
// unchanged), takes the GIL as any native thread does, imports crux._agent for this interpreter
// and starts its allocation hooks, writes "ok" or the error into the status file crux named,
// releases the GIL and ends. Python's API is found with dlsym: no libpython is linked.
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
#define FILE_INPUT 257 /* Py_file_input, the same in every CPython 3 */

/* The Python run in the target, in a fresh namespace (the program's __main__ is not touched);
 * sys.path gets the agent's directory only for the import. */
static const char SNIPPET[] =
    "def _crux_attach(root, shim, sample, status):\n"
    "    import os, sys\n"
    "    try:\n"
    "        v = '%d.%d' % sys.version_info[:2]\n"
    "        base = getattr(sys, 'base_prefix', sys.prefix)\n"
    "        tags = ['debian' + v, 'py' + v] if base == '/usr' else ['py' + v, 'debian' + v]\n"
    "        for tag in tags:\n"
    "            d = os.path.join(root, tag)\n"
    "            if os.path.isdir(os.path.join(d, 'crux')):\n"
    "                break\n"
    "        else:\n"
    "            raise RuntimeError('no agent built for Python %s in %s' % (v, root))\n"
    "        mod = sys.modules.get('crux._agent')\n"
    "        if mod is None:\n"
    "            added = d not in sys.path\n"
    "            if added:\n"
    "                sys.path.insert(0, d)\n"
    "            try:\n"
    "                from crux import _agent as mod\n"
    "            finally:\n"
    "                if added and d in sys.path:\n"
    "                    sys.path.remove(d)\n"
    "        r = mod._alloc_attach(shim, int(sample))\n"
    "        msg = 'ok ' + r[1] if isinstance(r, tuple) else 'ok'\n"
    "    except BaseException as e:\n"
    "        msg = 'error: %s: %s' % (type(e).__name__, e)\n"
    "    with open(status, 'w') as f:\n"
    "        f.write(msg)\n"
    "_crux_attach(_root, _shim, _sample, _status)\n";

typedef void PyObj;

struct pyapi {
    int (*is_initialized)(void);
    int (*gil_ensure)(void);
    void (*gil_release)(int);
    PyObj *(*dict_new)(void);
    int (*dict_set)(PyObj *, const char *, PyObj *);
    PyObj *(*str)(const char *);
    PyObj *(*builtins)(void);
    PyObj *(*run)(const char *, int, PyObj *, PyObj *, void *);
    void (*decref)(PyObj *);
    void (*err_clear)(void);
};

static int resolve(struct pyapi *a)
{
    void *h = RTLD_DEFAULT;
    *(void **)&a->is_initialized = dlsym(h, "Py_IsInitialized");
    *(void **)&a->gil_ensure = dlsym(h, "PyGILState_Ensure");
    *(void **)&a->gil_release = dlsym(h, "PyGILState_Release");
    *(void **)&a->dict_new = dlsym(h, "PyDict_New");
    *(void **)&a->dict_set = dlsym(h, "PyDict_SetItemString");
    *(void **)&a->str = dlsym(h, "PyUnicode_FromString");
    *(void **)&a->builtins = dlsym(h, "PyEval_GetBuiltins");
    *(void **)&a->run = dlsym(h, "PyRun_StringFlags");
    *(void **)&a->decref = dlsym(h, "Py_DecRef");
    *(void **)&a->err_clear = dlsym(h, "PyErr_Clear");
    return a->is_initialized && a->gil_ensure && a->gil_release && a->dict_new && a->dict_set &&
                   a->str && a->builtins && a->run && a->decref && a->err_clear
               ? 0
               : -1;
}

/* The argument: four lines, the agent's directory, the engine's path, the sampling rate and
 * the status file. */
struct job {
    char *text;
    char *field[4];
};

static void write_status(const char *path, const char *msg)
{
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return;
    ssize_t k = write(fd, msg, strlen(msg));
    (void)k;
    close(fd);
}

/* Sets globals[name] = str(value); 0 or -1. */
static int set_str(const struct pyapi *a, PyObj *g, const char *name, const char *value)
{
    PyObj *s = a->str(value);
    if (!s)
        return -1;
    int rc = a->dict_set(g, name, s);
    a->decref(s);
    return rc;
}

static void run_under_gil(const struct pyapi *a, const struct job *j)
{
    int gs = a->gil_ensure();
    PyObj *g = a->dict_new();
    int ok = g && !a->dict_set(g, "__builtins__", a->builtins()) &&
             !set_str(a, g, "_root", j->field[0]) && !set_str(a, g, "_shim", j->field[1]) &&
             !set_str(a, g, "_sample", j->field[2]) && !set_str(a, g, "_status", j->field[3]);
    PyObj *r = ok ? a->run(SNIPPET, FILE_INPUT, g, g, NULL) : NULL;
    if (r)
        a->decref(r);
    else
        a->err_clear();
    if (g)
        a->decref(g);
    a->gil_release(gs);
    if (!r)
        write_status(j->field[3], "error: the attach code could not run in the target");
}

static void *worker(void *p)
{
    struct job *j = p;
    struct pyapi a;
    if (resolve(&a))
        write_status(j->field[3], "error: no CPython API visible in the process (dlsym)");
    else if (!a.is_initialized())
        write_status(j->field[3], "error: the interpreter is not initialized");
    else
        run_under_gil(&a, j);
    free(j->text);
    free(j);
    return NULL;
}

/* Called by crux on the borrowed thread: copies `arg`, starts the worker and returns at once.
 * Returns 0, -EINVAL for a malformed argument, or minus pthread_create's error. */
EXPORT long crux_attach_kick(const char *arg);

EXPORT long crux_attach_kick(const char *arg)
{
    struct job *j = calloc(1, sizeof(*j));
    if (!j)
        return -ENOMEM;
    j->text = strdup(arg);
    if (!j->text) {
        free(j);
        return -ENOMEM;
    }
    char *s = j->text;
    for (int i = 0; i < 4; i++) {
        j->field[i] = s;
        char *nl = strchr(s, '\n');
        if (i < 3 && !nl) {
            free(j->text);
            free(j);
            return -EINVAL;
        }
        if (nl) {
            *nl = '\0';
            s = nl + 1;
        }
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t th;
    int rc = pthread_create(&th, &attr, worker, j);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc) {
        free(j->text);
        free(j);
        return -rc;
    }
    return 0;
}
