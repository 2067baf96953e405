// SPDX-License-Identifier: MIT
// Saving and loading what the GPUs did (profile.gpu) in a recording's SQLite file.
#include "store/storegpu.h"

#include <string.h>

static const char schema[] =
    "CREATE TABLE gpu_devices(dev INTEGER PRIMARY KEY, nvml_index INTEGER NOT NULL,\n"
    "  name TEXT NOT NULL, uuid TEXT, mem_total INTEGER, gpm INTEGER NOT NULL);\n"
    "CREATE TABLE gpu_samples(t_ns INTEGER NOT NULL, dev INTEGER NOT NULL, util_gpu REAL,\n"
    "  util_mem REAL, sm_active REAL, sm_occupancy REAL, tensor_active REAL, dram_bw REAL,\n"
    "  mem_used INTEGER, sm_clock_mhz INTEGER, power_mw INTEGER, throttle INTEGER,\n"
    "  pcie_tx_kbs INTEGER, pcie_rx_kbs INTEGER);\n"
    "CREATE TABLE gpu_processes(t_ns INTEGER NOT NULL, dev INTEGER NOT NULL,\n"
    "  pid INTEGER NOT NULL, sm_util REAL, mem_util REAL, mem_used INTEGER);\n";

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    return sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK ? 0 : ERR_IO;
}

static int step_reset(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : ERR_IO;
}

static void bind_pct(sqlite3_stmt *st, int col, float v)
{
    if (v >= 0)
        sqlite3_bind_double(st, col, v);
    else
        sqlite3_bind_null(st, col);
}

static void bind_u64(sqlite3_stmt *st, int col, uint64_t v, uint64_t na)
{
    if (v != na)
        sqlite3_bind_int64(st, col, (int64_t)v);
    else
        sqlite3_bind_null(st, col);
}

static int save_meta(sqlite3 *db, const struct pgpu *g)
{
    sqlite3_stmt *st;
    if (prep(db, "INSERT INTO meta(key, value) VALUES(?, ?)", &st))
        return ERR_IO;
    const char *keys[3] = {"gpu_driver", "gpu_nvml_version", "gpu_note"};
    const char *vals[3] = {g->driver, g->nvml_version, g->note};
    int rc = 0;
    for (int i = 0; i < 3 && !rc; i++) {
        if (!vals[i])
            continue;
        sqlite3_bind_text(st, 1, keys[i], -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, vals[i], -1, SQLITE_STATIC);
        rc = step_reset(st);
    }
    if (!rc) {
        sqlite3_bind_text(st, 1, "gpu_dropped", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (int64_t)g->dropped);
        rc = step_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

static int save_devs(sqlite3 *db, const struct pgpu *g)
{
    sqlite3_stmt *st;
    if (prep(db,
             "INSERT INTO gpu_devices(dev, nvml_index, name, uuid, mem_total, gpm) "
             "VALUES(?,?,?,?,?,?)",
             &st))
        return ERR_IO;
    int rc = 0;
    for (uint32_t i = 0; i < g->ndevs && !rc; i++) {
        const struct pgpu_dev *d = &g->devs[i];
        sqlite3_bind_int64(st, 1, i);
        sqlite3_bind_int64(st, 2, d->index);
        sqlite3_bind_text(st, 3, d->name, -1, SQLITE_STATIC);
        if (d->uuid)
            sqlite3_bind_text(st, 4, d->uuid, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 4);
        bind_u64(st, 5, d->mem_total, 0);
        sqlite3_bind_int(st, 6, d->gpm);
        rc = step_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

static int save_points(sqlite3 *db, const struct pgpu *g)
{
    sqlite3_stmt *st;
    if (prep(db,
             "INSERT INTO gpu_samples(t_ns, dev, util_gpu, util_mem, sm_active, sm_occupancy, "
             "tensor_active, dram_bw, mem_used, sm_clock_mhz, power_mw, throttle, pcie_tx_kbs, "
             "pcie_rx_kbs) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
             &st))
        return ERR_IO;
    int rc = 0;
    for (size_t i = 0; i < g->npts && !rc; i++) {
        const struct pgpu_point *pt = &g->pts[i];
        sqlite3_bind_int64(st, 1, (int64_t)pt->t_ns);
        sqlite3_bind_int64(st, 2, pt->dev);
        bind_pct(st, 3, pt->util_gpu);
        bind_pct(st, 4, pt->util_mem);
        bind_pct(st, 5, pt->sm_active);
        bind_pct(st, 6, pt->sm_occupancy);
        bind_pct(st, 7, pt->tensor_active);
        bind_pct(st, 8, pt->dram_bw);
        bind_u64(st, 9, pt->mem_used, PGPU_NA_U64);
        bind_u64(st, 10, pt->sm_clock, PGPU_NA_U32);
        bind_u64(st, 11, pt->power_mw, PGPU_NA_U32);
        bind_u64(st, 12, pt->throttle, PGPU_NA_U64);
        bind_u64(st, 13, pt->pcie_tx_kbs, PGPU_NA_U32);
        bind_u64(st, 14, pt->pcie_rx_kbs, PGPU_NA_U32);
        rc = step_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

static int save_procs(sqlite3 *db, const struct pgpu *g)
{
    sqlite3_stmt *st;
    if (prep(db,
             "INSERT INTO gpu_processes(t_ns, dev, pid, sm_util, mem_util, mem_used) "
             "VALUES(?,?,?,?,?,?)",
             &st))
        return ERR_IO;
    int rc = 0;
    for (size_t i = 0; i < g->nprocs && !rc; i++) {
        const struct pgpu_proc *pp = &g->procs[i];
        sqlite3_bind_int64(st, 1, (int64_t)pp->t_ns);
        sqlite3_bind_int64(st, 2, pp->dev);
        sqlite3_bind_int64(st, 3, pp->pid);
        bind_pct(st, 4, pp->sm_util);
        bind_pct(st, 5, pp->mem_util);
        bind_u64(st, 6, pp->mem_used, PGPU_NA_U64);
        rc = step_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

int storegpu_save(sqlite3 *db, const struct profile *p)
{
    const struct pgpu *g = &p->gpu;
    if (!g->on && !g->note)
        return 0;
    if (sqlite3_exec(db, schema, NULL, NULL, NULL) != SQLITE_OK)
        return ERR_IO;
    int rc = save_meta(db, g);
    rc = rc ? rc : save_devs(db, g);
    rc = rc ? rc : save_points(db, g);
    rc = rc ? rc : save_procs(db, g);
    return rc;
}

/* Loading. */

static int db_err(sqlite3 *db, struct errbuf *eb, const char *path)
{
    return errbuf_set(eb, ERR_IO, "cannot read the GPU tables of %s: %s", path, sqlite3_errmsg(db));
}

static float col_pct(sqlite3_stmt *st, int c)
{
    if (sqlite3_column_type(st, c) == SQLITE_NULL)
        return PGPU_NA;
    double v = sqlite3_column_double(st, c);
    return v < 0 ? PGPU_NA : v > 1000 ? 1000.0f : (float)v;
}

static uint64_t col_u64(sqlite3_stmt *st, int c, uint64_t na)
{
    return sqlite3_column_type(st, c) == SQLITE_NULL ? na : (uint64_t)sqlite3_column_int64(st, c);
}

static uint32_t col_u32(sqlite3_stmt *st, int c)
{
    uint64_t v = col_u64(st, c, PGPU_NA_U32);
    return v > PGPU_NA_U32 ? PGPU_NA_U32 : (uint32_t)v;
}

static int load_meta(sqlite3 *db, struct pgpu *g)
{
    sqlite3_stmt *st;
    if (prep(db, "SELECT key, value FROM meta WHERE key LIKE 'gpu\\_%' ESCAPE '\\'", &st))
        return ERR_IO;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        const char *v = (const char *)sqlite3_column_text(st, 1);
        if (!k)
            continue;
        if (strcmp(k, "gpu_driver") == 0)
            pgpu_set_str(&g->driver, v);
        else if (strcmp(k, "gpu_nvml_version") == 0)
            pgpu_set_str(&g->nvml_version, v);
        else if (strcmp(k, "gpu_note") == 0)
            pgpu_set_str(&g->note, v);
        else if (strcmp(k, "gpu_dropped") == 0)
            g->dropped = (uint64_t)sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : ERR_IO;
}

static int load_devs(sqlite3 *db, struct pgpu *g)
{
    sqlite3_stmt *st;
    if (prep(db, "SELECT nvml_index, name, uuid, mem_total, gpm FROM gpu_devices ORDER BY dev",
             &st))
        return ERR_IO;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int k = pgpu_add_dev(g, (uint32_t)sqlite3_column_int64(st, 0),
                             (const char *)sqlite3_column_text(st, 1),
                             (const char *)sqlite3_column_text(st, 2), col_u64(st, 3, 0));
        if (k >= 0)
            g->devs[k].gpm = sqlite3_column_int(st, 4) != 0;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : ERR_IO;
}

static int load_points(sqlite3 *db, struct pgpu *g)
{
    sqlite3_stmt *st;
    if (prep(db,
             "SELECT t_ns, dev, util_gpu, util_mem, sm_active, sm_occupancy, tensor_active, "
             "dram_bw, mem_used, sm_clock_mhz, power_mw, throttle, pcie_tx_kbs, pcie_rx_kbs "
             "FROM gpu_samples ORDER BY rowid",
             &st))
        return ERR_IO;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t t = sqlite3_column_int64(st, 0), dev = sqlite3_column_int64(st, 1);
        if (t < 0 || dev < 0 || dev >= g->ndevs)
            continue; /* a point of no known device is not drawn */
        struct pgpu_point pt = pgpu_point_empty((uint64_t)t, (uint32_t)dev);
        pt.util_gpu = col_pct(st, 2);
        pt.util_mem = col_pct(st, 3);
        pt.sm_active = col_pct(st, 4);
        pt.sm_occupancy = col_pct(st, 5);
        pt.tensor_active = col_pct(st, 6);
        pt.dram_bw = col_pct(st, 7);
        pt.mem_used = col_u64(st, 8, PGPU_NA_U64);
        pt.sm_clock = col_u32(st, 9);
        pt.power_mw = col_u32(st, 10);
        pt.throttle = col_u64(st, 11, PGPU_NA_U64);
        pt.pcie_tx_kbs = col_u32(st, 12);
        pt.pcie_rx_kbs = col_u32(st, 13);
        pgpu_add_point(g, &pt);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : ERR_IO;
}

static int load_procs(sqlite3 *db, struct pgpu *g)
{
    sqlite3_stmt *st;
    if (prep(db,
             "SELECT t_ns, dev, pid, sm_util, mem_util, mem_used FROM gpu_processes "
             "ORDER BY rowid",
             &st))
        return ERR_IO;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t t = sqlite3_column_int64(st, 0), dev = sqlite3_column_int64(st, 1);
        if (t < 0 || dev < 0 || dev >= g->ndevs)
            continue;
        struct pgpu_proc pp = {.t_ns = (uint64_t)t,
                               .dev = (uint32_t)dev,
                               .pid = (uint32_t)sqlite3_column_int64(st, 2),
                               .sm_util = col_pct(st, 3),
                               .mem_util = col_pct(st, 4),
                               .mem_used = col_u64(st, 5, PGPU_NA_U64)};
        pgpu_add_proc(g, &pp);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : ERR_IO;
}

int storegpu_load(sqlite3 *db, struct profile *p, struct errbuf *eb, const char *path)
{
    sqlite3_stmt *st;
    if (prep(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'gpu_devices'", &st))
        return db_err(db, eb, path);
    int has = sqlite3_step(st);
    sqlite3_finalize(st);
    if (has == SQLITE_DONE)
        return 0; /* recorded without GPU data, or before crux sampled GPUs */
    if (has != SQLITE_ROW)
        return db_err(db, eb, path);
    struct pgpu *g = &p->gpu;
    int rc = load_meta(db, g);
    rc = rc ? rc : load_devs(db, g);
    rc = rc ? rc : load_points(db, g);
    rc = rc ? rc : load_procs(db, g);
    if (rc)
        return db_err(db, eb, path);
    g->on = g->ndevs > 0;
    return 0;
}
