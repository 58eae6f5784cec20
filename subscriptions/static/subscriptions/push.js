/* The subscribe page's "Notify me in this browser": registers the service worker, subscribes with the
   site's VAPID key and sends the subscription with the ticked providers and models. */
"use strict";

(function () {
  const button = document.getElementById("push-subscribe");
  if (!button) return;
  const status = document.getElementById("push-status");
  const key = button.dataset.vapidKey;
  if (!key || !("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    return; // the button stays hidden where the browser cannot do it
  }
  button.hidden = false;

  function keyBytes(base64url) {
    const padded = (base64url + "===".slice((base64url.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  }

  // The worker's scope is its static folder, not this page, so `serviceWorker.ready` would never
  // settle here: wait for this registration's worker to be active instead.
  function activated(registration) {
    return new Promise((resolve) => {
      const worker = registration.installing || registration.waiting || registration.active;
      if (!worker || worker.state === "activated") {
        resolve(registration);
        return;
      }
      worker.addEventListener("statechange", () => {
        if (worker.state === "activated") resolve(registration);
      });
    });
  }

  function ticked(name) {
    return Array.from(document.querySelectorAll(`input[name="${name}"]:checked`), (input) => input.value);
  }

  button.addEventListener("click", async () => {
    status.textContent = button.dataset.working;
    try {
      if ((await Notification.requestPermission()) !== "granted") {
        status.textContent = button.dataset.denied;
        return;
      }
      const registration = await activated(await navigator.serviceWorker.register(button.dataset.worker));
      const subscription = await registration.pushManager.subscribe({
        userVisibleOnly: true,
        applicationServerKey: keyBytes(key),
      });
      const answer = await fetch(button.dataset.api, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          push: subscription.toJSON(),
          providers: ticked("providers"),
          models: ticked("models"),
          language: document.documentElement.lang,
        }),
      });
      status.textContent = answer.ok ? button.dataset.done : button.dataset.failed;
    } catch (error) {
      status.textContent = button.dataset.failed;
    }
  });
})();
