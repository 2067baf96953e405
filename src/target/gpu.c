// SPDX-License-Identifier: MIT
// NVIDIA GPUs through NVML loaded with dlopen: no header or library of the driver is needed to
// build crux, and a machine without the driver simply has no GPU data.
#include "target/gpu.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "target/nvml.h"
#include "util/xalloc.h"

#define PROC_SAMPLES_CAP 256
#define COMPUTE_PROCS_CAP 128

struct gpu_dev {
    nvmlDevice_t h;
    bool gpm;
    nvmlGpmSample_t gpm_prev, gpm_cur;
    bool gpm_have_prev;
    unsigned long long last_seen_us; /* newest process-utilization sample read */
};

struct gpu_nvml {
    void *lib;
    nvml_void_fn init, shutdown;
    nvml_errstr_fn errstr;
    nvml_str_fn driver_version, nvml_version;
    nvml_count_fn count;
    nvml_handle_fn handle;
    nvml_dev_str_fn name, uuid;
    nvml_mem_fn mem;
    nvml_util_fn util;
    nvml_clock_fn clock;
    nvml_u64_fn throttle;
    nvml_u32_fn power;
    nvml_pcie_fn pcie;
    nvml_procutil_fn procutil;
    nvml_procs_fn procs;
    nvml_gpm_support_fn gpm_support;
    nvml_gpm_alloc_fn gpm_alloc;
    nvml_gpm_free_fn gpm_free;
    nvml_gpm_get_fn gpm_get;
    nvml_gpm_metrics_fn gpm_metrics;
    unsigned ndevs;
    struct gpu_dev devs[GPU_MAX_DEVICES];
    nvmlProcessUtilizationSample_t psamples[PROC_SAMPLES_CAP];
    nvmlProcessInfo_t pinfo[COMPUTE_PROCS_CAP];
    nvmlGpmMetricsGet_t mget; /* 8 KiB: kept here, not on the sampler thread's stack */
};

/* dlsym into a function pointer: POSIX allows the conversion, ISO C does not say. */
static void *sym(void *lib, const char *name)
{
    return dlsym(lib, name);
}

static const char *nvml_text(const struct gpu_nvml *g, nvmlReturn_t r)
{
    const char *s = g->errstr ? g->errstr(r) : NULL;
    return s ? s : "unknown NVML error";
}

static int nvml_err(const struct gpu_nvml *g, nvmlReturn_t r)
{
    (void)g;
    switch (r) {
    case NVML_ERROR_NO_PERMISSION:
        return ERR_PERM;
    case NVML_ERROR_GPU_IS_LOST:
        return ERR_PROC_GONE;
    case NVML_ERROR_NOT_SUPPORTED:
    case NVML_ERROR_NOT_FOUND:
        return ERR_NOT_FOUND;
    default:
        return ERR_SYS;
    }
}

/* Looks the symbols up; the optional ones (GPM, per-process, clocks) may be missing in an old
 * driver and are then skipped. Returns the name of a missing required one, or NULL. */
static const char *bind(struct gpu_nvml *g)
{
    void *l = g->lib;
    *(void **)&g->init = sym(l, "nvmlInit_v2");
    *(void **)&g->shutdown = sym(l, "nvmlShutdown");
    *(void **)&g->errstr = sym(l, "nvmlErrorString");
    *(void **)&g->driver_version = sym(l, "nvmlSystemGetDriverVersion");
    *(void **)&g->nvml_version = sym(l, "nvmlSystemGetNVMLVersion");
    *(void **)&g->count = sym(l, "nvmlDeviceGetCount_v2");
    *(void **)&g->handle = sym(l, "nvmlDeviceGetHandleByIndex_v2");
    *(void **)&g->name = sym(l, "nvmlDeviceGetName");
    *(void **)&g->uuid = sym(l, "nvmlDeviceGetUUID");
    *(void **)&g->mem = sym(l, "nvmlDeviceGetMemoryInfo");
    *(void **)&g->util = sym(l, "nvmlDeviceGetUtilizationRates");
    *(void **)&g->clock = sym(l, "nvmlDeviceGetClockInfo");
    /* renamed in CUDA 12.2's NVML; the old name stays exported as an alias */
    *(void **)&g->throttle = sym(l, "nvmlDeviceGetCurrentClocksEventReasons");
    if (!g->throttle)
        *(void **)&g->throttle = sym(l, "nvmlDeviceGetCurrentClocksThrottleReasons");
    *(void **)&g->power = sym(l, "nvmlDeviceGetPowerUsage");
    *(void **)&g->pcie = sym(l, "nvmlDeviceGetPcieThroughput");
    *(void **)&g->procutil = sym(l, "nvmlDeviceGetProcessUtilization");
    *(void **)&g->procs = sym(l, "nvmlDeviceGetComputeRunningProcesses_v3");
    *(void **)&g->gpm_support = sym(l, "nvmlGpmQueryDeviceSupport");
    *(void **)&g->gpm_alloc = sym(l, "nvmlGpmSampleAlloc");
    *(void **)&g->gpm_free = sym(l, "nvmlGpmSampleFree");
    *(void **)&g->gpm_get = sym(l, "nvmlGpmSampleGet");
    *(void **)&g->gpm_metrics = sym(l, "nvmlGpmMetricsGet");
    if (!g->init)
        return "nvmlInit_v2";
    if (!g->shutdown)
        return "nvmlShutdown";
    if (!g->count)
        return "nvmlDeviceGetCount_v2";
    if (!g->handle)
        return "nvmlDeviceGetHandleByIndex_v2";
    if (!g->util)
        return "nvmlDeviceGetUtilizationRates";
    return NULL;
}

static void gpm_setup(struct gpu_nvml *g, struct gpu_dev *d)
{
    if (!g->gpm_support || !g->gpm_alloc || !g->gpm_free || !g->gpm_get || !g->gpm_metrics)
        return;
    nvmlGpmSupport_t sup = {.version = NVML_GPM_SUPPORT_VERSION};
    if (g->gpm_support(d->h, &sup) != NVML_SUCCESS || !sup.isSupportedDevice)
        return;
    if (g->gpm_alloc(&d->gpm_prev) != NVML_SUCCESS)
        return;
    if (g->gpm_alloc(&d->gpm_cur) != NVML_SUCCESS) {
        g->gpm_free(d->gpm_prev);
        d->gpm_prev = NULL;
        return;
    }
    d->gpm = true;
}

static int open_devices(struct gpu_nvml *g, struct errbuf *eb)
{
    unsigned n = 0;
    nvmlReturn_t r = g->count(&n);
    if (r != NVML_SUCCESS)
        return errbuf_set(eb, nvml_err(g, r), "NVML cannot count the GPUs: %s", nvml_text(g, r));
    if (n == 0)
        return errbuf_set(eb, ERR_NOT_FOUND, "NVML found no GPU");
    if (n > GPU_MAX_DEVICES)
        n = GPU_MAX_DEVICES;
    nvmlReturn_t first = NVML_SUCCESS;
    for (unsigned i = 0; i < n; i++) {
        struct gpu_dev *d = &g->devs[g->ndevs];
        memset(d, 0, sizeof(*d));
        r = g->handle(i, &d->h);
        if (r != NVML_SUCCESS) {
            /* a device this user may not open is skipped; others may still be readable */
            first = first ? first : r;
            continue;
        }
        gpm_setup(g, d);
        g->ndevs++;
    }
    if (!g->ndevs)
        return errbuf_set(eb, nvml_err(g, first), "NVML cannot open any of %u GPUs: %s", n,
                          nvml_text(g, first));
    return 0;
}

int gpu_open(struct gpu_nvml **out, struct errbuf *eb)
{
    *out = NULL;
    void *lib = dlopen(GPU_NVML_LIB, RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        return errbuf_set(eb, ERR_NOT_FOUND, "%s not found (no NVIDIA driver)", GPU_NVML_LIB);
    struct gpu_nvml *g = xcalloc(1, sizeof(*g));
    g->lib = lib;
    const char *missing = bind(g);
    if (missing) {
        int rc =
            errbuf_set(eb, ERR_NOT_FOUND, "%s lacks %s (a driver too old)", GPU_NVML_LIB, missing);
        g->init = NULL; /* not initialized: no shutdown */
        gpu_close(g);
        return rc == ERR_NOT_FOUND ? ERR_SYS : rc;
    }
    nvmlReturn_t r = g->init();
    if (r != NVML_SUCCESS) {
        int rc = errbuf_set(eb, nvml_err(g, r), "NVML did not start: %s", nvml_text(g, r));
        g->init = NULL;
        gpu_close(g);
        return rc == ERR_NOT_FOUND ? ERR_SYS : rc;
    }
    int rc = open_devices(g, eb);
    if (rc) {
        gpu_close(g);
        return rc == ERR_NOT_FOUND ? ERR_SYS : rc;
    }
    *out = g;
    return 0;
}

void gpu_close(struct gpu_nvml *g)
{
    if (!g)
        return;
    for (unsigned i = 0; i < g->ndevs; i++)
        if (g->devs[i].gpm) {
            g->gpm_free(g->devs[i].gpm_prev);
            g->gpm_free(g->devs[i].gpm_cur);
        }
    if (g->init && g->shutdown)
        (void)g->shutdown();
    dlclose(g->lib);
    free(g);
}

unsigned gpu_count(const struct gpu_nvml *g)
{
    return g->ndevs;
}

void gpu_versions(struct gpu_nvml *g, char *driver, size_t dcap, char *nvml, size_t ncap)
{
    driver[0] = nvml[0] = '\0';
    if (g->driver_version && g->driver_version(driver, (unsigned)dcap) != NVML_SUCCESS)
        driver[0] = '\0';
    if (g->nvml_version && g->nvml_version(nvml, (unsigned)ncap) != NVML_SUCCESS)
        nvml[0] = '\0';
    driver[dcap - 1] = nvml[ncap - 1] = '\0';
}

int gpu_devinfo(struct gpu_nvml *g, unsigned i, struct gpu_devinfo *out, struct errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    if (i >= g->ndevs)
        return errbuf_set(eb, ERR_ARG, "no GPU %u", i);
    struct gpu_dev *d = &g->devs[i];
    nvmlReturn_t r = g->name ? g->name(d->h, out->name, sizeof(out->name)) : NVML_SUCCESS;
    if (r != NVML_SUCCESS)
        return errbuf_set(eb, nvml_err(g, r), "GPU %u: no name: %s", i, nvml_text(g, r));
    if (!out->name[0])
        snprintf(out->name, sizeof(out->name), "GPU %u", i);
    if (g->uuid && g->uuid(d->h, out->uuid, sizeof(out->uuid)) != NVML_SUCCESS)
        out->uuid[0] = '\0';
    nvmlMemory_t m;
    if (g->mem && g->mem(d->h, &m) == NVML_SUCCESS)
        out->mem_total = m.total;
    out->name[sizeof(out->name) - 1] = out->uuid[sizeof(out->uuid) - 1] = '\0';
    out->gpm = d->gpm;
    return 0;
}

/* GPM metrics between the previous sample and one taken now (the first call only takes it). */
static void read_gpm(struct gpu_nvml *g, struct gpu_dev *d, struct gpu_reading *r)
{
    if (g->gpm_get(d->h, d->gpm_cur) != NVML_SUCCESS) {
        d->gpm_have_prev = false;
        return;
    }
    if (d->gpm_have_prev) {
        static const unsigned ids[4] = {NVML_GPM_METRIC_SM_UTIL, NVML_GPM_METRIC_SM_OCCUPANCY,
                                        NVML_GPM_METRIC_ANY_TENSOR_UTIL,
                                        NVML_GPM_METRIC_DRAM_BW_UTIL};
        double *dst[4] = {&r->sm_active, &r->sm_occupancy, &r->tensor_active, &r->dram_bw};
        nvmlGpmMetricsGet_t *m = &g->mget;
        memset(m, 0, sizeof(*m));
        m->version = NVML_GPM_METRICS_GET_VERSION;
        m->numMetrics = 4;
        m->sample1 = d->gpm_prev;
        m->sample2 = d->gpm_cur;
        for (int k = 0; k < 4; k++)
            m->metrics[k].metricId = ids[k];
        if (g->gpm_metrics(m) == NVML_SUCCESS)
            for (int k = 0; k < 4; k++)
                if (m->metrics[k].nvmlReturn == NVML_SUCCESS)
                    *dst[k] = m->metrics[k].value;
    }
    nvmlGpmSample_t t = d->gpm_prev;
    d->gpm_prev = d->gpm_cur;
    d->gpm_cur = t;
    d->gpm_have_prev = true;
}

int gpu_read(struct gpu_nvml *g, unsigned i, struct gpu_reading *r, struct errbuf *eb)
{
    *r = (struct gpu_reading){.util_gpu = -1,
                              .util_mem = -1,
                              .sm_active = -1,
                              .sm_occupancy = -1,
                              .tensor_active = -1,
                              .dram_bw = -1,
                              .mem_used = UINT64_MAX,
                              .throttle = UINT64_MAX,
                              .sm_clock = UINT32_MAX,
                              .power_mw = UINT32_MAX,
                              .pcie_tx_kbs = UINT32_MAX,
                              .pcie_rx_kbs = UINT32_MAX};
    if (i >= g->ndevs)
        return errbuf_set(eb, ERR_ARG, "no GPU %u", i);
    struct gpu_dev *d = &g->devs[i];
    nvmlUtilization_t u;
    nvmlReturn_t rc = g->util(d->h, &u);
    if (rc != NVML_SUCCESS)
        return errbuf_set(eb, nvml_err(g, rc), "GPU %u utilization: %s", i, nvml_text(g, rc));
    r->util_gpu = u.gpu;
    r->util_mem = u.memory;
    nvmlMemory_t m;
    if (g->mem && g->mem(d->h, &m) == NVML_SUCCESS)
        r->mem_used = m.used;
    unsigned v;
    unsigned long long t;
    if (g->clock && g->clock(d->h, NVML_CLOCK_SM, &v) == NVML_SUCCESS)
        r->sm_clock = v;
    if (g->throttle && g->throttle(d->h, &t) == NVML_SUCCESS)
        r->throttle = t;
    if (g->power && g->power(d->h, &v) == NVML_SUCCESS)
        r->power_mw = v;
    /* each PCIe counter is measured over 20 ms (nvml.h): ~40 ms of this thread per device
     * per round; with several GPUs the rate falls below 10 Hz rather than bursting */
    if (g->pcie && g->pcie(d->h, NVML_PCIE_UTIL_TX_BYTES, &v) == NVML_SUCCESS)
        r->pcie_tx_kbs = v;
    if (g->pcie && g->pcie(d->h, NVML_PCIE_UTIL_RX_BYTES, &v) == NVML_SUCCESS)
        r->pcie_rx_kbs = v;
    if (d->gpm)
        read_gpm(g, d, r);
    return 0;
}

static int read_procutil(struct gpu_nvml *g, unsigned i, struct gpu_procfig *out, size_t cap,
                         size_t *n, struct errbuf *eb)
{
    struct gpu_dev *d = &g->devs[i];
    unsigned cnt = PROC_SAMPLES_CAP;
    nvmlReturn_t r = g->procutil(d->h, g->psamples, &cnt, d->last_seen_us);
    if (r == NVML_ERROR_NOT_FOUND)
        return 0; /* no process ran a kernel since the last call */
    if (r != NVML_SUCCESS)
        return errbuf_set(eb, nvml_err(g, r), "GPU %u per-process utilization: %s", i,
                          nvml_text(g, r));
    if (cnt > PROC_SAMPLES_CAP)
        cnt = PROC_SAMPLES_CAP;
    for (unsigned k = 0; k < cnt && *n < cap; k++) {
        const nvmlProcessUtilizationSample_t *s = &g->psamples[k];
        if (s->timeStamp > d->last_seen_us)
            d->last_seen_us = s->timeStamp;
        out[(*n)++] = (struct gpu_procfig){
            .pid = s->pid, .sm_util = s->smUtil, .mem_util = s->memUtil, .mem_used = UINT64_MAX};
    }
    return 0;
}

int gpu_procs(struct gpu_nvml *g, unsigned i, struct gpu_procfig *out, size_t cap, size_t *n,
              struct errbuf *eb)
{
    *n = 0;
    if (i >= g->ndevs)
        return errbuf_set(eb, ERR_ARG, "no GPU %u", i);
    int rc = g->procutil ? read_procutil(g, i, out, cap, n, eb) : 0;
    if (!g->procs)
        return rc;
    unsigned cnt = COMPUTE_PROCS_CAP;
    nvmlReturn_t r = g->procs(g->devs[i].h, &cnt, g->pinfo);
    if (r != NVML_SUCCESS)
        return rc ? rc
                  : errbuf_set(eb, nvml_err(g, r), "GPU %u compute processes: %s", i,
                               nvml_text(g, r));
    if (cnt > COMPUTE_PROCS_CAP)
        cnt = COMPUTE_PROCS_CAP;
    for (unsigned k = 0; k < cnt && *n < cap; k++) {
        unsigned long long mu = g->pinfo[k].usedGpuMemory;
        out[(*n)++] = (struct gpu_procfig){
            .pid = g->pinfo[k].pid,
            .sm_util = -1,
            .mem_util = -1,
            .mem_used = mu == (unsigned long long)NVML_VALUE_NOT_AVAILABLE ? UINT64_MAX : mu};
    }
    return rc;
}
