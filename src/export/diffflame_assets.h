// SPDX-License-Identifier: MIT
// The fixed text of the differential flame graph page, which diffflame.c assembles around the data.
#ifndef CRUX_DIFFFLAME_ASSETS_H
#define CRUX_DIFFFLAME_ASSETS_H

/* The page is: <head> with the escaped title and <style>css</style>, then `head` (opens the
 * header and the <h1>), the escaped title, "</h1>", the escaped headline in <p id="headline">
 * when there is one, `body` (the rest of the markup), the data <script type="application/json"
 * id="crux-data">, then <script>js</script>. The strings are static and NUL-terminated. */
extern const char diffflame_assets_css[];
extern const char diffflame_assets_head[];
extern const char diffflame_assets_body[];
extern const char diffflame_assets_js[];

#endif
