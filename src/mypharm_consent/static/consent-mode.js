/* mypharm-consent: Google Consent Mode v2 bootstrap.
   Loaded synchronously at the start of <head>, before any tag, so that
   gtag('consent', 'default', ...) precedes every Google tag. The signals come
   from the <script type="application/json" id="mypharm-consent-mode"> block
   the server renders (no inline script: strict CSP). Each "mypharm:consent"
   event sends gtag('consent', 'update', ...). */
(function () {
  "use strict";
  var block = document.getElementById("mypharm-consent-mode");
  if (!block) return;
  var config;
  try {
    config = JSON.parse(block.textContent);
  } catch (error) {
    return;
  }
  var signals = config.signals || {};
  window.dataLayer = window.dataLayer || [];
  if (typeof window.gtag !== "function") {
    /* Google's tags read the arguments object itself, not an array. */
    window.gtag = function () { window.dataLayer.push(arguments); };
  }
  var gpc = config.gpc === true || navigator.globalPrivacyControl === true;
  var defaults = config["default"] || {};
  window.gtag("consent", "default", defaults);
  if (gpc) window.gtag("set", "ads_data_redaction", defaults.ad_storage !== "granted");

  document.addEventListener("mypharm:consent", function (event) {
    var detail = event.detail || {};
    if (!Array.isArray(detail.granted)) return;
    var granted = new Set(["necessary"].concat(detail.granted));
    var update = {};
    Object.keys(signals).forEach(function (signal) {
      var needed = signals[signal];
      update[signal] = needed.length > 0 && needed.every(function (name) {
        return granted.has(name);
      }) ? "granted" : "denied";
    });
    window.gtag("consent", "update", update);
    if (gpc) window.gtag("set", "ads_data_redaction", update.ad_storage !== "granted");
  });
})();
