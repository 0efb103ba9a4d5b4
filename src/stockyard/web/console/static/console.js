// The console's one script (its Content-Security-Policy allows no inline script).
// Pages work without it; it adds what only a browser can do. See docs/console.md.
"use strict";
