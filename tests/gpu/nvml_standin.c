// SPDX-License-Identifier: MIT
// A scripted stand-in for libnvidia-ml.so.1, for tests on machines without a GPU: built as
// build/nvml-standin/libnvidia-ml.so.1 and found through LD_LIBRARY_PATH. It plays back the
// trace named by CRUX_NVML_TRACE (format below); without one, nvmlInit_v2 says the driver is
// not loaded. It exports only what crux calls, with NVML's names and types (src/target/nvml.h).
//
// Trace: one directive per line, '#' starts a comment.
//   device NAME_WITHOUT_SPACES MEM_MIB GPM(0|1)   a device (up to 8; none: one "Standin")
//   driver VERSION
//   init_error CODE        nvmlInit_v2 returns CODE (4: no permission, 9: driver not loaded)
//   no_devices             nvmlDeviceGetCount_v2 reports 0
//   proc_error CODE        the per-process calls return CODE
//   lost_after N           after N utilization reads every call on the device returns
//                          NVML_ERROR_GPU_IS_LOST
//   fail_after N           after N utilization reads they fail with NVML_ERROR_UNKNOWN (999)
//   step GPU MEM SM_ACTIVE SM_OCC TENSOR DRAM
//                          one utilization read (percentages); reads cycle through the steps;
//                          GPM metrics report the step of the device's latest read
// The processes on the GPU are the stand-in's host process's children (crux's target).
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "target/nvml.h"

#define EXPORT __attribute__((visibility("default")))
#define MAX_DEVS 8
#define MAX_STEPS 256
#define NVML_ERROR_UNKNOWN 999

struct step {
    double v[6]; /* gpu, mem, sm_active, sm_occ, tensor, dram */
};

static struct {
    bool loaded;
    int init_error, proc_error;
    bool no_devices;
    long lost_after, fail_after;
    char driver[64];
    unsigned ndevs;
    struct {
        char name[64];
        unsigned long long mem;
        int gpm;
        long reads;
    } dev[MAX_DEVS];
    struct step steps[MAX_STEPS];
    unsigned nsteps;
} S;

struct nvmlDevice_st {
    unsigned index;
};
static struct nvmlDevice_st handles[MAX_DEVS];

struct nvmlGpmSample_st {
    unsigned dev;
    long read;
};

static void parse_line(char *line)
{
    char *hash = strchr(line, '#');
    if (hash)
        *hash = '\0';
    char key[32];
    if (sscanf(line, "%31s", key) != 1)
        return;
    const char *rest = line + strspn(line, " \t") + strlen(key);
    if (strcmp(key, "device") == 0 && S.ndevs < MAX_DEVS) {
        unsigned mib = 0;
        int gpm = 0;
        if (sscanf(rest, "%63s %u %d", S.dev[S.ndevs].name, &mib, &gpm) >= 1) {
            S.dev[S.ndevs].mem = (unsigned long long)mib << 20;
            S.dev[S.ndevs].gpm = gpm;
            S.ndevs++;
        }
    } else if (strcmp(key, "driver") == 0) {
        if (sscanf(rest, "%63s", S.driver) != 1)
            S.driver[0] = '\0';
    } else if (strcmp(key, "init_error") == 0) {
        S.init_error = (int)strtol(rest, NULL, 10);
    } else if (strcmp(key, "proc_error") == 0) {
        S.proc_error = (int)strtol(rest, NULL, 10);
    } else if (strcmp(key, "no_devices") == 0) {
        S.no_devices = true;
    } else if (strcmp(key, "lost_after") == 0) {
        S.lost_after = strtol(rest, NULL, 10);
    } else if (strcmp(key, "fail_after") == 0) {
        S.fail_after = strtol(rest, NULL, 10);
    } else if (strcmp(key, "step") == 0 && S.nsteps < MAX_STEPS) {
        struct step *st = &S.steps[S.nsteps];
        if (sscanf(rest, "%lf %lf %lf %lf %lf %lf", &st->v[0], &st->v[1], &st->v[2], &st->v[3],
                   &st->v[4], &st->v[5]) == 6)
            S.nsteps++;
    }
}

static int load(void)
{
    memset(&S, 0, sizeof(S));
    const char *path = getenv("CRUX_NVML_TRACE");
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f)
        return NVML_ERROR_DRIVER_NOT_LOADED;
    char line[512];
    while (fgets(line, sizeof(line), f))
        parse_line(line);
    fclose(f);
    if (!S.ndevs) {
        snprintf(S.dev[0].name, sizeof(S.dev[0].name), "Standin");
        S.dev[0].mem = 16ull << 30;
        S.ndevs = 1;
    }
    if (!S.nsteps)
        S.nsteps = 1; /* one idle step */
    for (unsigned i = 0; i < MAX_DEVS; i++)
        handles[i].index = i;
    S.loaded = true;
    return NVML_SUCCESS;
}

/* The status of any call on device `d` now. */
static nvmlReturn_t dev_state(nvmlDevice_t d)
{
    if (!S.loaded)
        return NVML_ERROR_UNINITIALIZED;
    if (!d || d->index >= S.ndevs)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (S.lost_after && S.dev[d->index].reads >= S.lost_after)
        return NVML_ERROR_GPU_IS_LOST;
    return NVML_SUCCESS;
}

static const struct step *cur_step(unsigned dev)
{
    long r = S.dev[dev].reads > 0 ? S.dev[dev].reads - 1 : 0;
    return &S.steps[(unsigned long)r % S.nsteps];
}

EXPORT nvmlReturn_t nvmlInit_v2(void)
{
    int rc = load();
    if (rc == NVML_SUCCESS && S.init_error) {
        S.loaded = false;
        return S.init_error;
    }
    return rc;
}

EXPORT nvmlReturn_t nvmlShutdown(void)
{
    S.loaded = false;
    return NVML_SUCCESS;
}

EXPORT const char *nvmlErrorString(nvmlReturn_t r)
{
    switch (r) {
    case NVML_SUCCESS:
        return "Success";
    case NVML_ERROR_NO_PERMISSION:
        return "Insufficient Permissions";
    case NVML_ERROR_GPU_IS_LOST:
        return "GPU is lost";
    case NVML_ERROR_DRIVER_NOT_LOADED:
        return "Driver Not Loaded";
    case NVML_ERROR_NOT_FOUND:
        return "Not Found";
    default:
        return "Unknown Error";
    }
}

EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *v, unsigned len)
{
    snprintf(v, len, "%s", S.driver[0] ? S.driver : "999.0.standin");
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlSystemGetNVMLVersion(char *v, unsigned len)
{
    snprintf(v, len, "12.999.standin");
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned *n)
{
    if (!S.loaded)
        return NVML_ERROR_UNINITIALIZED;
    *n = S.no_devices ? 0 : S.ndevs;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned i, nvmlDevice_t *d)
{
    if (!S.loaded)
        return NVML_ERROR_UNINITIALIZED;
    if (i >= S.ndevs)
        return NVML_ERROR_INVALID_ARGUMENT;
    *d = &handles[i];
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *s, unsigned len)
{
    nvmlReturn_t r = dev_state(d);
    if (r == NVML_SUCCESS)
        snprintf(s, len, "%s", S.dev[d->index].name);
    return r;
}

EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *s, unsigned len)
{
    nvmlReturn_t r = dev_state(d);
    if (r == NVML_SUCCESS)
        snprintf(s, len, "GPU-standin-%u", d->index);
    return r;
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m)
{
    nvmlReturn_t r = dev_state(d);
    if (r != NVML_SUCCESS)
        return r;
    m->total = S.dev[d->index].mem;
    m->used = m->total / 100 * (unsigned long long)(cur_step(d->index)->v[1] / 2 + 10);
    m->free = m->total - m->used;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u)
{
    nvmlReturn_t r = dev_state(d);
    if (r != NVML_SUCCESS)
        return r;
    if (S.fail_after && S.dev[d->index].reads >= S.fail_after)
        return NVML_ERROR_UNKNOWN;
    S.dev[d->index].reads++;
    const struct step *st = cur_step(d->index);
    u->gpu = (unsigned)st->v[0];
    u->memory = (unsigned)st->v[1];
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t d, int type, unsigned *mhz)
{
    nvmlReturn_t r = dev_state(d);
    if (r == NVML_SUCCESS)
        *mhz = type == NVML_CLOCK_SM ? 1980 : 1000;
    return r;
}

EXPORT nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t d, unsigned long long *v)
{
    nvmlReturn_t r = dev_state(d);
    if (r == NVML_SUCCESS)
        *v = cur_step(d->index)->v[0] < 1 ? NVML_CLOCK_EVENT_GPU_IDLE : 0;
    return r;
}

EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned *mw)
{
    nvmlReturn_t r = dev_state(d);
    if (r == NVML_SUCCESS)
        *mw = 70000 + (unsigned)(cur_step(d->index)->v[0] * 5000);
    return r;
}

EXPORT nvmlReturn_t nvmlDeviceGetPcieThroughput(nvmlDevice_t d, int counter, unsigned *kbs)
{
    nvmlReturn_t r = dev_state(d);
    if (r == NVML_SUCCESS)
        *kbs = counter == NVML_PCIE_UTIL_TX_BYTES ? 1000 : 2000;
    return r;
}

/* The host process's children: the processes "on the GPU". */
static unsigned children(unsigned *out, unsigned cap)
{
    unsigned n = 0;
    pid_t self = getpid();
    DIR *dir = opendir("/proc");
    struct dirent *e;
    while (dir && (e = readdir(dir)) && n < cap) {
        char path[300], buf[512];
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t k = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[k] = '\0';
        char *rp = strrchr(buf, ')');
        int ppid = 0;
        if (rp && sscanf(rp + 1, " %*c %d", &ppid) == 1 && ppid == self)
            out[n++] = (unsigned)strtoul(e->d_name, NULL, 10);
    }
    if (dir)
        closedir(dir);
    return n;
}

EXPORT nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t d,
                                                    nvmlProcessUtilizationSample_t *u,
                                                    unsigned *count, unsigned long long last)
{
    (void)last;
    nvmlReturn_t r = dev_state(d);
    if (r != NVML_SUCCESS)
        return r;
    if (S.proc_error)
        return S.proc_error;
    unsigned pids[16];
    unsigned n = children(pids, 16);
    if (!n)
        return NVML_ERROR_NOT_FOUND;
    if (!u || *count < n) {
        *count = n;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    const struct step *st = cur_step(d->index);
    for (unsigned i = 0; i < n; i++)
        u[i] =
            (nvmlProcessUtilizationSample_t){.pid = pids[i],
                                             .timeStamp = (unsigned long long)S.dev[d->index].reads,
                                             .smUtil = (unsigned)st->v[0],
                                             .memUtil = (unsigned)st->v[1]};
    *count = n;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned *count,
                                                            nvmlProcessInfo_t *p)
{
    nvmlReturn_t r = dev_state(d);
    if (r != NVML_SUCCESS)
        return r;
    if (S.proc_error)
        return S.proc_error;
    unsigned pids[16];
    unsigned n = children(pids, 16);
    if (*count < n) {
        *count = n;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    for (unsigned i = 0; i < n; i++)
        p[i] = (nvmlProcessInfo_t){.pid = pids[i],
                                   .usedGpuMemory = 1ull << 30,
                                   .gpuInstanceId = 0xFFFFFFFFu,
                                   .computeInstanceId = 0xFFFFFFFFu};
    *count = n;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlGpmQueryDeviceSupport(nvmlDevice_t d, nvmlGpmSupport_t *s)
{
    nvmlReturn_t r = dev_state(d);
    if (r == NVML_SUCCESS)
        s->isSupportedDevice = (unsigned)S.dev[d->index].gpm;
    return r;
}

EXPORT nvmlReturn_t nvmlGpmSampleAlloc(nvmlGpmSample_t *s)
{
    *s = calloc(1, sizeof(**s));
    return *s ? NVML_SUCCESS : NVML_ERROR_UNKNOWN;
}

EXPORT nvmlReturn_t nvmlGpmSampleFree(nvmlGpmSample_t s)
{
    free(s);
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlGpmSampleGet(nvmlDevice_t d, nvmlGpmSample_t s)
{
    nvmlReturn_t r = dev_state(d);
    if (r == NVML_SUCCESS) {
        s->dev = d->index;
        s->read = S.dev[d->index].reads;
    }
    return r;
}

EXPORT nvmlReturn_t nvmlGpmMetricsGet(nvmlGpmMetricsGet_t *m)
{
    if (!S.loaded || m->version != NVML_GPM_METRICS_GET_VERSION || !m->sample2)
        return NVML_ERROR_INVALID_ARGUMENT;
    const struct step *st = cur_step(m->sample2->dev);
    for (unsigned i = 0; i < m->numMetrics && i < NVML_GPM_METRIC_MAX; i++) {
        nvmlGpmMetric_t *x = &m->metrics[i];
        x->nvmlReturn = NVML_SUCCESS;
        switch (x->metricId) {
        case NVML_GPM_METRIC_SM_UTIL:
            x->value = st->v[2];
            break;
        case NVML_GPM_METRIC_SM_OCCUPANCY:
            x->value = st->v[3];
            break;
        case NVML_GPM_METRIC_ANY_TENSOR_UTIL:
            x->value = st->v[4];
            break;
        case NVML_GPM_METRIC_DRAM_BW_UTIL:
            x->value = st->v[5];
            break;
        default:
            x->nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
        }
    }
    return NVML_SUCCESS;
}
