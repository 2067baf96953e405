// SPDX-License-Identifier: MIT
// NVIDIA GPUs seen through NVML, loaded at run time with dlopen (no build dependency on the
// driver): open the library, list the devices, read one device's figures, the processes using
// it, and its GPM metrics where the device has them. Every read may fail; a failure is a code
// and a sentence, never a crash. One thread at a time per struct gpu_nvml (NVML itself is
// thread-safe; crux calls it from the GPU sampler's thread only).
#ifndef CRUX_GPU_H
#define CRUX_GPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define GPU_MAX_DEVICES 16
/* The library crux loads; a folder on LD_LIBRARY_PATH can hold a stand-in (tests/gpu/). */
#define GPU_NVML_LIB "libnvidia-ml.so.1"

struct gpu_nvml;

/* A device's fixed facts. */
struct gpu_devinfo {
    char name[96];
    char uuid[96]; /* "" when not known */
    uint64_t mem_total;
    bool gpm; /* GPM metrics supported (Hopper and later) */
};

/* One device's figures at one moment. A figure that could not be read is left at its "not
 * known" value: -1 for the doubles, UINT32_MAX / UINT64_MAX for the integers. */
struct gpu_reading {
    double util_gpu, util_mem; /* percent of time any kernel ran / memory was read or written */
    double sm_active, sm_occupancy, tensor_active, dram_bw; /* GPM, percent */
    uint64_t mem_used, throttle;
    uint32_t sm_clock, power_mw, pcie_tx_kbs, pcie_rx_kbs;
};

/* One process on one device. */
struct gpu_procfig {
    uint32_t pid;
    double sm_util, mem_util; /* percent or -1 */
    uint64_t mem_used;        /* bytes or UINT64_MAX */
};

/* Loads GPU_NVML_LIB, initializes NVML and finds the devices. Returns ERR_NOT_FOUND when the
 * library is absent (no driver: not an error for the caller to report), another ERR_* with a
 * sentence in `eb` when it is there but unusable (no device, no permission, a missing symbol).
 * On success *out is the handle; release it with gpu_close. */
int gpu_open(struct gpu_nvml **out, struct errbuf *eb) MUST_CHECK;
/* Shuts NVML down, unloads it and frees `g` (NULL is fine). */
void gpu_close(struct gpu_nvml *g);
/* Number of devices found. */
unsigned gpu_count(const struct gpu_nvml *g);
/* The driver and NVML versions into the caller's buffers ("" when not known). */
void gpu_versions(struct gpu_nvml *g, char *driver, size_t dcap, char *nvml, size_t ncap);
/* Device `i`'s fixed facts. Returns 0 or an ERR_* with a sentence. */
int gpu_devinfo(struct gpu_nvml *g, unsigned i, struct gpu_devinfo *out,
                struct errbuf *eb) MUST_CHECK;
/* Reads device `i`'s figures now. Returns 0 when the utilization was read (other figures may
 * still be missing), ERR_PROC_GONE when the device is lost, ERR_PERM when not allowed, another
 * ERR_* otherwise, each with a sentence in `eb`. */
int gpu_read(struct gpu_nvml *g, unsigned i, struct gpu_reading *r, struct errbuf *eb) MUST_CHECK;
/* The processes on device `i`: utilization samples newer than the last call for this device
 * and memory of the running compute processes, up to `cap` into `out`; *n gets the count.
 * Returns 0, or an ERR_* with a sentence (ERR_PERM: per-process figures not allowed). */
int gpu_procs(struct gpu_nvml *g, unsigned i, struct gpu_procfig *out, size_t cap, size_t *n,
              struct errbuf *eb) MUST_CHECK;

#endif
