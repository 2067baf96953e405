// SPDX-License-Identifier: MIT
// The GPU part of the HTML report and of the verdict JSON: what the GPU did (its verdict and
// figures, the rules not applied, NVML's note), a timeline drawn as inline SVG (any kernel
// running, SM active, tensor, DRAM; requests in flight shaded behind), and the GPU run facts.
#ifndef CRUX_REPORTGPU_H
#define CRUX_REPORTGPU_H

#include "analysis/verdict.h"
#include "profile/profile.h"
#include "util/buf.h"
#include "util/jsonw.h"

/* Adds key "gpu" to the object being written: null when the recording has no GPU data and no
 * note, else {kind, label, figures, fix, not_applied, note, devices, busy, ...}. */
void reportgpu_json(struct jsonw *w, const struct profile *p, const struct analysis *a);
/* Appends the report's GPU section (nothing without GPU data or note). Returns 0 or ERR_*. */
int reportgpu_html(struct buf *b, const struct profile *p, const struct analysis *a) MUST_CHECK;
/* Appends the GPU rows of the run facts table (<tr>s): name, driver, memory, count. */
int reportgpu_facts(struct buf *b, const struct profile *p) MUST_CHECK;

#endif
