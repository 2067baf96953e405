// SPDX-License-Identifier: MIT
// The fixed text of the HTML report that report.c assembles around the analysis and data.
#ifndef CRUX_REPORT_ASSETS_H
#define CRUX_REPORT_ASSETS_H

/* Stylesheet added after the flame graph's. */
extern const char report_assets_css[];
/* Markup just before the flame graph: the colour-by control and the stage legend. */
extern const char report_assets_flame_intro[];
/* The timeline section (canvases the script draws). */
extern const char report_assets_timeline[];
/* Script run after the flame graph's viewer: colour modes and timelines. It reads the data
 * through window.cruxFlame and writes names only with textContent. */
extern const char report_assets_js[];

#endif
