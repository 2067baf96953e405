// SPDX-License-Identifier: MIT
// The subset of NVIDIA's NVML API that crux calls, declared here so that crux builds without
// the driver or its headers and loads libnvidia-ml.so.1 at run time (target/gpu.c). Types,
// values and layouts are checked against nvml.h of nvidia-nvml-dev-cu12 12.9.79 (PyPI);
// docs/gpu.md says how. Names keep NVML's own spelling so that they can be compared.
#ifndef CRUX_NVML_H
#define CRUX_NVML_H

/* nvmlReturn_t: the values crux tells apart (the enum is an int). */
typedef int nvmlReturn_t;
#define NVML_SUCCESS 0
#define NVML_ERROR_UNINITIALIZED 1
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_NO_PERMISSION 4
#define NVML_ERROR_NOT_FOUND 6
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_ERROR_DRIVER_NOT_LOADED 9
#define NVML_ERROR_GPU_IS_LOST 15

typedef struct nvmlDevice_st *nvmlDevice_t;
typedef struct nvmlGpmSample_st *nvmlGpmSample_t;

typedef struct nvmlUtilization_st {
    unsigned int gpu;    /* percent of time one or more kernels ran */
    unsigned int memory; /* percent of time device memory was read or written */
} nvmlUtilization_t;

typedef struct nvmlMemory_st {
    unsigned long long total, free, used; /* bytes */
} nvmlMemory_t;

typedef struct nvmlProcessUtilizationSample_st {
    unsigned int pid;
    unsigned long long timeStamp; /* CPU time stamp, microseconds */
    unsigned int smUtil, memUtil, encUtil, decUtil;
} nvmlProcessUtilizationSample_t;

/* nvmlProcessInfo_v2_t, which nvmlDeviceGetComputeRunningProcesses_v3 fills. */
typedef struct nvmlProcessInfo_v2_st {
    unsigned int pid;
    unsigned long long usedGpuMemory; /* bytes; NVML_VALUE_NOT_AVAILABLE when not known */
    unsigned int gpuInstanceId, computeInstanceId;
} nvmlProcessInfo_t;
#define NVML_VALUE_NOT_AVAILABLE (-1)

/* nvmlClockType_t */
#define NVML_CLOCK_SM 1
/* nvmlPcieUtilCounter_t */
#define NVML_PCIE_UTIL_TX_BYTES 0
#define NVML_PCIE_UTIL_RX_BYTES 1
/* Clock event ("throttle") reasons, a bit mask. */
#define NVML_CLOCK_EVENT_GPU_IDLE 0x1ULL
#define NVML_CLOCK_EVENT_SW_POWER_CAP 0x4ULL
#define NVML_CLOCK_EVENT_HW_SLOWDOWN 0x8ULL
#define NVML_CLOCK_EVENT_SW_THERMAL 0x20ULL
#define NVML_CLOCK_EVENT_HW_THERMAL 0x40ULL
#define NVML_CLOCK_EVENT_HW_POWER_BRAKE 0x80ULL

#define NVML_DEVICE_NAME_V2_BUFFER_SIZE 96
#define NVML_DEVICE_UUID_V2_BUFFER_SIZE 96
#define NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE 80

/* GPM (Hopper and later): nvmlGpmMetricId_t values crux reads. */
#define NVML_GPM_METRIC_SM_UTIL 2
#define NVML_GPM_METRIC_SM_OCCUPANCY 3
#define NVML_GPM_METRIC_ANY_TENSOR_UTIL 5
#define NVML_GPM_METRIC_DRAM_BW_UTIL 10
/* The array size of nvmlGpmMetricsGet_t in the 12.9 header (older headers: 98); the driver
 * reads numMetrics entries, so a larger array is only caller storage. */
#define NVML_GPM_METRIC_MAX 210
#define NVML_GPM_METRICS_GET_VERSION 1
#define NVML_GPM_SUPPORT_VERSION 1

typedef struct {
    unsigned int metricId;   /* in */
    nvmlReturn_t nvmlReturn; /* out: nonzero when value is not valid */
    double value;            /* out */
    struct {
        char *shortName;
        char *longName;
        char *unit;
    } metricInfo;
} nvmlGpmMetric_t;

typedef struct {
    unsigned int version;    /* NVML_GPM_METRICS_GET_VERSION */
    unsigned int numMetrics; /* metrics[] entries to fill */
    nvmlGpmSample_t sample1, sample2;
    nvmlGpmMetric_t metrics[NVML_GPM_METRIC_MAX];
} nvmlGpmMetricsGet_t;

typedef struct {
    unsigned int version; /* NVML_GPM_SUPPORT_VERSION */
    unsigned int isSupportedDevice;
} nvmlGpmSupport_t;

/* Function types, one per symbol looked up (the exported, versioned names in comments). */
typedef nvmlReturn_t (*nvml_void_fn)(void);                        /* nvmlInit_v2, nvmlShutdown */
typedef const char *(*nvml_errstr_fn)(nvmlReturn_t r);             /* nvmlErrorString */
typedef nvmlReturn_t (*nvml_str_fn)(char *s, unsigned int length); /* nvmlSystemGet*Version */
typedef nvmlReturn_t (*nvml_count_fn)(unsigned int *n);            /* nvmlDeviceGetCount_v2 */
typedef nvmlReturn_t (*nvml_handle_fn)(unsigned int i, nvmlDevice_t *d); /* ..ByIndex_v2 */
typedef nvmlReturn_t (*nvml_dev_str_fn)(nvmlDevice_t d, char *s, unsigned int length);
typedef nvmlReturn_t (*nvml_mem_fn)(nvmlDevice_t d, nvmlMemory_t *m);
typedef nvmlReturn_t (*nvml_util_fn)(nvmlDevice_t d, nvmlUtilization_t *u);
typedef nvmlReturn_t (*nvml_clock_fn)(nvmlDevice_t d, int type, unsigned int *mhz);
typedef nvmlReturn_t (*nvml_u64_fn)(nvmlDevice_t d, unsigned long long *v);
typedef nvmlReturn_t (*nvml_u32_fn)(nvmlDevice_t d, unsigned int *v);
typedef nvmlReturn_t (*nvml_pcie_fn)(nvmlDevice_t d, int counter, unsigned int *kbs);
typedef nvmlReturn_t (*nvml_procutil_fn)(nvmlDevice_t d, nvmlProcessUtilizationSample_t *u,
                                         unsigned int *count, unsigned long long last_seen);
typedef nvmlReturn_t (*nvml_procs_fn)(nvmlDevice_t d, unsigned int *count, nvmlProcessInfo_t *p);
typedef nvmlReturn_t (*nvml_gpm_support_fn)(nvmlDevice_t d, nvmlGpmSupport_t *s);
typedef nvmlReturn_t (*nvml_gpm_alloc_fn)(nvmlGpmSample_t *s);
typedef nvmlReturn_t (*nvml_gpm_free_fn)(nvmlGpmSample_t s);
typedef nvmlReturn_t (*nvml_gpm_get_fn)(nvmlDevice_t d, nvmlGpmSample_t s);
typedef nvmlReturn_t (*nvml_gpm_metrics_fn)(nvmlGpmMetricsGet_t *m);

#endif
