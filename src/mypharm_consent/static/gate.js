/* mypharm-consent: brings gated third-party elements back to life.
   The server left them inert (scripts as type="text/plain", URLs in data-*
   attributes, iframes behind a click-to-load placeholder). This script
   activates those whose categories are granted, in document order, when the
   "mypharm:consent" event announces a choice, without a reload. */
(function () {
  "use strict";
  var script = document.currentScript;
  var prefix = (script && script.getAttribute("data-prefix")) || "/_consent";
  var csrf = script && script.getAttribute("data-csrf");
  var lang = script && script.getAttribute("data-lang");
  var granted = names(script && script.getAttribute("data-granted"));
  var URL_ATTRIBUTES = ["srcset", "imagesrcset", "src", "href", "poster", "srcdoc"];
  var SCRIPT_OWN = ["type", "src", "data-consent-active"];
  var started = typeof WeakSet === "function" ? new WeakSet() : null;
  var queue = Promise.resolve();

  function names(value) {
    var set = new Set(["necessary"]);
    String(value || "").split(/\s+/).forEach(function (name) { if (name) set.add(name); });
    return set;
  }

  function required(element) {
    return String(element.getAttribute("data-consent") || "").split(/\s+/).filter(Boolean);
  }

  function allowed(element) {
    var needed = required(element);
    return needed.length > 0 && needed.every(function (name) { return granted.has(name); });
  }

  /* The value the server moved away from ``name``, and where it put it. */
  function moved(element, name) {
    if (element.hasAttribute("data-consent-" + name)) return "data-consent-" + name;
    if (element.hasAttribute("data-" + name) && !element.hasAttribute(name)) return "data-" + name;
    return null;
  }

  function isInert(element) {
    if (element.tagName === "SCRIPT") {
      return String(element.getAttribute("type") || "").trim().toLowerCase() === "text/plain";
    }
    if (element.tagName === "IFRAME" && placeholderOf(element)) return true;
    return URL_ATTRIBUTES.some(function (name) { return moved(element, name) !== null; });
  }

  function placeholderOf(element) {
    var parent = element.parentElement;
    return parent && parent.classList.contains("mypharm-gate") ? parent : null;
  }

  function restoreUrls(element) {
    URL_ATTRIBUTES.forEach(function (name) {
      var from = moved(element, name);
      if (from === null) return;
      var value = element.getAttribute(from);
      element.removeAttribute(from);
      element.setAttribute(name, value);
    });
  }

  /* A script only runs when created anew: copy it, restore type and src. */
  function reviveScript(old) {
    var fresh = document.createElement("script");
    var typeFrom = old.hasAttribute("data-consent-type") ? "data-consent-type"
      : old.hasAttribute("data-type") ? "data-type" : null;
    var srcFrom = moved(old, "src");
    var skip = SCRIPT_OWN.concat([typeFrom, srcFrom]);
    Array.prototype.forEach.call(old.attributes, function (attribute) {
      if (skip.indexOf(attribute.name) === -1) fresh.setAttribute(attribute.name, attribute.value);
    });
    if (old.nonce) fresh.nonce = old.nonce;
    if (typeFrom !== null) fresh.setAttribute("type", old.getAttribute(typeFrom));
    fresh.setAttribute("data-consent-active", "");
    return new Promise(function (resolve) {
      if (srcFrom !== null) {
        fresh.async = false;
        fresh.addEventListener("load", function () { resolve(); });
        fresh.addEventListener("error", function () { resolve(); });
        fresh.src = old.getAttribute(srcFrom);
        old.replaceWith(fresh);
      } else {
        fresh.text = old.text;
        old.replaceWith(fresh);
        resolve();
      }
    });
  }

  function activate(element) {
    if (element.tagName === "SCRIPT") return reviveScript(element);
    var placeholder = element.tagName === "IFRAME" ? placeholderOf(element) : null;
    if (placeholder) {
      placeholder.replaceWith(element);
      element.removeAttribute("hidden");
    }
    restoreUrls(element);
    element.setAttribute("data-consent-active", "");
    var media = element.tagName === "SOURCE" || element.tagName === "TRACK"
      ? element.parentElement : element;
    if (media && (media.tagName === "VIDEO" || media.tagName === "AUDIO")) media.load();
    return Promise.resolve();
  }

  /* Elements run one after the other: an inline script that follows an
     external one waits for it, as it would have in the original page. */
  function enqueue(element) {
    if (started) {
      if (started.has(element)) return;
      started.add(element);
    }
    queue = queue.then(function () { return activate(element); });
  }

  function activateGranted() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-consent]"), function (element) {
      if (element.hasAttribute("data-consent-active")) return;
      if (allowed(element) && isInert(element)) enqueue(element);
    });
  }

  function grant(placeholder, button) {
    var wanted = required(placeholder.querySelector("iframe") || placeholder);
    var body = new URLSearchParams();
    body.append("csrf", csrf || "");
    body.append("action", "save");
    granted.forEach(function (name) { if (name !== "necessary") body.append("category", name); });
    wanted.forEach(function (name) { if (!granted.has(name)) body.append("category", name); });
    body.append("next", location.pathname + location.search);
    body.append("from", "banner");
    if (lang) body.append("lang", lang);
    button.disabled = true;
    var error = placeholder.querySelector("[data-gate-error]");
    fetch(prefix + "/decide", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Accept": "application/json" },
      body: body
    }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.json();
    }).then(function (answer) {
      var banner = document.getElementById("mypharm-consent-banner");
      if (banner) banner.hidden = true;
      document.dispatchEvent(new CustomEvent("mypharm:consent", {
        detail: { granted: answer.granted }
      }));
    }).catch(function () {
      button.disabled = false;
      if (error) error.hidden = false;
    });
  }

  function setUpPlaceholder(placeholder) {
    var iframe = placeholder.querySelector("iframe");
    if (!iframe) return;
    var width = parseInt(iframe.getAttribute("width"), 10);
    var height = parseInt(iframe.getAttribute("height"), 10);
    if (width > 0) placeholder.style.width = width + "px";
    if (width > 0 && height > 0) placeholder.style.aspectRatio = width + " / " + height;
    var load = placeholder.querySelector("[data-gate-load]");
    var allow = placeholder.querySelector("[data-gate-allow]");
    if (load) {
      load.hidden = false;
      load.addEventListener("click", function () {
        enqueue(iframe);
        queue.then(function () { iframe.focus(); });
      });
    }
    if (allow && csrf) {
      allow.hidden = false;
      allow.addEventListener("click", function () { grant(placeholder, allow); });
    }
    if (navigator.globalPrivacyControl === true
        && required(iframe).indexOf("marketing") !== -1) {
      var note = placeholder.querySelector("[data-gate-gpc]");
      if (note) note.hidden = false;
    }
  }

  document.addEventListener("mypharm:consent", function (event) {
    var detail = event.detail || {};
    if (!Array.isArray(detail.granted)) return;
    granted = names(detail.granted.join(" "));
    activateGranted();
  });

  Array.prototype.forEach.call(document.querySelectorAll(".mypharm-gate"), setUpPlaceholder);
  activateGranted();
})();
