/* beacon.js: counts a page view, anonymously, on the site's own beacon endpoint.
 *
 * <script src="/b/beacon.js" defer></script>
 *
 * data-endpoint  where the beacon app is mounted (default: where this file came from)
 * data-auto      "off" to not count the page view on load
 * Custom events: window.beacon.track("signup").
 * Only the page path and its utm_* parameters leave the browser, never the rest of the URL.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) {
    return;
  }
  var endpoint = script.getAttribute("data-endpoint") ||
    script.src.replace(/\/beacon\.js(?:[?#].*)?$/, "");
  endpoint = endpoint.replace(/\/$/, "");

  function page() {
    var kept = [];
    try {
      new URLSearchParams(location.search).forEach(function (value, name) {
        if (/^utm_(source|medium|campaign|term|content)$/i.test(name)) {
          kept.push(encodeURIComponent(name) + "=" + encodeURIComponent(value));
        }
      });
    } catch (ignored) {
      kept = [];
    }
    return location.pathname + (kept.length ? "?" + kept.join("&") : "");
  }

  function send(kind, name) {
    var event = { k: kind, n: name || "", u: page(), r: document.referrer || "" };
    var body = JSON.stringify(event);
    if (navigator.sendBeacon) {
      try {
        if (navigator.sendBeacon(endpoint + "/e", body)) {
          return;
        }
      } catch (ignored) {
        /* fall back to the image below */
      }
    }
    var image = new Image(1, 1);
    image.src = endpoint + "/p.gif?k=" + encodeURIComponent(kind) +
      "&n=" + encodeURIComponent(event.n) + "&u=" + encodeURIComponent(event.u) +
      "&r=" + encodeURIComponent(event.r);
  }

  window.beacon = {
    track: function (name) {
      send("event", String(name || ""));
    },
    pageview: function () {
      send("pageview");
    }
  };
  if (script.getAttribute("data-auto") !== "off") {
    send("pageview");
  }
})();
