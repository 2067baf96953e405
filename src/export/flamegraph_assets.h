// SPDX-License-Identifier: MIT
// The fixed text of the HTML flame graph page, which flamegraph.c assembles around the data.
#ifndef CRUX_FLAMEGRAPH_ASSETS_H
#define CRUX_FLAMEGRAPH_ASSETS_H

/* The page is: <head> with the escaped title and <style>css</style>, then `head` (opens the
 * header and the <h1>), the escaped title, `body` (the rest of the markup), the data
 * <script type="application/json" id="crux-data">, then <script>js</script>. The strings are
 * static and NUL-terminated. */
extern const char flamegraph_assets_css[];
extern const char flamegraph_assets_head[];
extern const char flamegraph_assets_body[];
extern const char flamegraph_assets_js[];

#endif
