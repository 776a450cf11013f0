{% load static %}/* The portal's service worker (served at /portal/sw.js, scope /portal/).
 * The shell (styles, script, icon, the offline page) is kept at install. Portal pages are
 * fetched from the network first; the home and usage pages are kept as last seen, so
 * offline the customer still sees the last usage. Signing out forgets the kept pages.
 * Token, receipt, bill and account pages are never kept. */
"use strict";
const SHELL = "portal-shell-{{ version }}";
const PAGES = "portal-pages-v1";
const OFFLINE = "{% url 'portal:offline' %}";
const SHELL_FILES = [
  OFFLINE,
  "{% static 'css/ami.css' %}",
  "{% static 'css/portal.css' %}",
  "{% static 'js/portal.js' %}",
  "{% static 'portal/icon-192.png' %}",
];
const KEPT = /^\/portal\/(usage\/)?$/;

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL).then((c) => c.addAll(SHELL_FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== SHELL && k !== PAGES).map((k) => caches.delete(k))))
      .then(() => self.clients.claim())
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.method === "POST" && url.pathname === "/logout/") {
    event.waitUntil(caches.delete(PAGES));
    return;
  }
  if (request.method !== "GET") return;
  if (request.mode === "navigate" && url.pathname.startsWith("/portal/")) {
    event.respondWith(
      fetch(request)
        .then((response) => {
          if (response.ok && !response.redirected && KEPT.test(url.pathname)) {
            const copy = response.clone();
            event.waitUntil(caches.open(PAGES).then((c) => c.put(request, copy)));
          }
          return response;
        })
        .catch(() => caches.match(request, { cacheName: PAGES }).then((hit) => hit || caches.match(OFFLINE)))
    );
    return;
  }
  if (url.pathname.startsWith("/static/")) {
    event.respondWith(caches.match(request).then((hit) => hit || fetch(request)));
  }
});
