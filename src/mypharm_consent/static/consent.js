/* mypharm-consent: progressive enhancement of the server-rendered banner.
   Without this file everything still works through plain form posts. */
(function () {
  "use strict";
  var script = document.currentScript;

  function announce(granted) {
    document.dispatchEvent(new CustomEvent("mypharm:consent", { detail: { granted: granted } }));
  }

  if (script && script.getAttribute("data-decided") === "1") {
    var names = (script.getAttribute("data-granted") || "").split(" ").filter(Boolean);
    announce(names);
  }

  var banner = document.getElementById("mypharm-consent-banner");
  if (!banner) return;
  var form = banner.querySelector("[data-mpc-form]");
  var panel = banner.querySelector("[data-mpc-panel]");
  var customize = banner.querySelector("[data-mpc-customize]");
  var reopen = document.getElementById("mypharm-consent-reopen");

  function setPanel(open) {
    panel.hidden = !open;
    customize.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) {
      var first = panel.querySelector("input:not([disabled])");
      (first || panel).focus();
    }
  }

  if (customize && panel) {
    customize.setAttribute("aria-controls", panel.id);
    customize.setAttribute("aria-expanded", "false");
    customize.addEventListener("click", function (event) {
      event.preventDefault();
      setPanel(panel.hidden);
    });
  }

  // Escape only closes the details panel: it never counts as a choice.
  banner.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && panel && !panel.hidden) {
      setPanel(false);
      customize.focus();
    }
  });

  function fallback(action) {
    var field = document.createElement("input");
    field.type = "hidden";
    field.name = "action";
    field.value = action;
    form.appendChild(field);
    form.submit();
  }

  form.addEventListener("submit", function (event) {
    var submitter = event.submitter;
    if (!submitter || !window.fetch) return;
    event.preventDefault();
    var body = new URLSearchParams(new FormData(form));
    body.set("action", submitter.value);
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (button) { button.disabled = true; });
    // Not form.action: the buttons named "action" shadow that property.
    fetch(form.getAttribute("action"), {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { Accept: "application/json" }
    })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.json();
      })
      .then(function (answer) {
        banner.hidden = true;
        if (reopen) {
          reopen.hidden = false;
          reopen.focus();
        }
        announce(answer.granted);
      })
      .catch(function () {
        buttons.forEach(function (button) { button.disabled = false; });
        fallback(submitter.value);
      });
  });
})();
