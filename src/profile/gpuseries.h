// SPDX-License-Identifier: MIT
// What the GPUs did during a recording: the devices, one timeline point per device per GPU
// sample (utilization, memory, clocks, power, PCIe, GPM metrics) and the per-process figures,
// on the samples' clock. Plain data: filled by sampler/gpusampler.c or store/store.c, read by
// analysis/gpuverdict.c and export/report.c. Not thread-safe; one owner at a time.
#ifndef CRUX_GPUSERIES_H
#define CRUX_GPUSERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PGPU_MAX_DEVS 16
/* Timeline points kept (devices together); later ones are counted in pgpu.dropped. At 10 Hz
 * and 8 devices this is over 3 hours. */
#define PGPU_MAX_POINTS ((size_t)1 << 20)
#define PGPU_MAX_PROCS ((size_t)1 << 20)
/* "Not known" for the float percentages below (the call failed or is not supported). */
#define PGPU_NA (-1.0f)
/* "Not known" for the integer fields below. */
#define PGPU_NA_U32 UINT32_MAX
#define PGPU_NA_U64 UINT64_MAX

struct pgpu_dev {
    uint32_t index;     /* NVML index */
    char *name;         /* "NVIDIA H100 80GB HBM3"; owned */
    char *uuid;         /* owned; may be NULL */
    uint64_t mem_total; /* bytes; 0 unknown */
    bool gpm;           /* GPM metrics (Hopper and later) were read */
};

/* One GPU sample of one device. Percentages are 0-100 or PGPU_NA. */
struct pgpu_point {
    uint64_t t_ns;        /* on the samples' clock */
    uint32_t dev;         /* index into pgpu.devs */
    uint32_t sm_clock;    /* MHz */
    float util_gpu;       /* NVML "utilization.gpu": share of time ANY kernel ran */
    float util_mem;       /* share of time device memory was read or written */
    float sm_active;      /* GPM: share of SMs busy (averaged over the SMs) */
    float sm_occupancy;   /* GPM: warps resident against the maximum */
    float tensor_active;  /* GPM: share of time tensor pipes ran */
    float dram_bw;        /* GPM: DRAM bandwidth used against the peak */
    uint64_t mem_used;    /* bytes */
    uint64_t throttle;    /* clock event (throttle) reasons, NVML's bit mask */
    uint32_t power_mw;    /* milliwatts */
    uint32_t pcie_tx_kbs; /* KB/s */
    uint32_t pcie_rx_kbs;
};

/* One per-process figure of one device: utilization from nvmlDeviceGetProcessUtilization, or
 * memory from the running compute processes (the other fields then PGPU_NA). */
struct pgpu_proc {
    uint64_t t_ns;
    uint32_t dev, pid;
    float sm_util, mem_util; /* percent or PGPU_NA */
    uint64_t mem_used;       /* bytes or PGPU_NA_U64 */
};

struct pgpu {
    bool on;            /* NVML answered and at least one device was sampled */
    char *driver;       /* driver version; owned; may be NULL */
    char *nvml_version; /* owned; may be NULL */
    char *note;         /* what went wrong ("NVML: GPU 0 is lost at 3.2 s"); owned; NULL none */
    struct pgpu_dev devs[PGPU_MAX_DEVS];
    uint32_t ndevs;
    struct pgpu_point *pts; /* in time order per device */
    size_t npts, cappts;
    struct pgpu_proc *procs;
    size_t nprocs, capprocs;
    uint64_t dropped; /* points or process figures past the caps */
};

/* Initializes an empty series in caller storage. */
void pgpu_init(struct pgpu *g);
/* Releases everything and leaves `g` empty (as pgpu_init). */
void pgpu_fini(struct pgpu *g);
/* Moves everything from `src` to `dst` (whose contents are released first); `src` is empty
 * after. */
void pgpu_move(struct pgpu *dst, struct pgpu *src);
/* Adds a device; `name` and `uuid` are copied. Returns its index, or -1 past PGPU_MAX_DEVS. */
int pgpu_add_dev(struct pgpu *g, uint32_t index, const char *name, const char *uuid,
                 uint64_t mem_total);
/* Appends a timeline point (copied); past PGPU_MAX_POINTS only counted in `dropped`. */
void pgpu_add_point(struct pgpu *g, const struct pgpu_point *pt);
/* Appends a per-process figure (copied); past PGPU_MAX_PROCS only counted. */
void pgpu_add_proc(struct pgpu *g, const struct pgpu_proc *pp);
/* Appends `text` to the note, "; " between notes; the same text twice is kept once. */
void pgpu_add_note(struct pgpu *g, const char *text);
/* Replaces a string field (driver, nvml_version, note) with a copy of `s` (NULL clears). */
void pgpu_set_str(char **field, const char *s);
/* A point with every figure unknown, at `t_ns` for device `dev`. */
struct pgpu_point pgpu_point_empty(uint64_t t_ns, uint32_t dev);

#endif
