/* The service worker behind browser notifications: shows each pushed update, opens the page on click. */
"use strict";

function notificationOf(event) {
  let data = {};
  if (event.data) {
    try {
      data = event.data.json();
    } catch (error) {
      data = { body: event.data.text() };
    }
  }
  return {
    title: data.title || "Status update",
    options: { body: data.body || "", tag: data.tag, lang: data.language, data: { url: data.url || "/" } },
  };
}

self.addEventListener("push", (event) => {
  const { title, options } = notificationOf(event);
  const shown = self.registration.showNotification(title, options);
  try {
    event.waitUntil(shown);
  } catch (error) {
    // Only a push the browser delivered may extend its lifetime; one dispatched by hand just runs.
  }
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(self.clients.openWindow(event.notification.data.url));
});
