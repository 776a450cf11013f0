/* The portal: installable, and usable offline (the service worker, /portal/sw.js). */
"use strict";
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/portal/sw.js", { scope: "/portal/" }).catch(() => {});
}
