/* Light or dark theme (Bootstrap's data-bs-theme on <html>).
 *
 * Loaded in <head>, before the page paints, so there is no flash of the wrong theme. The
 * system setting (prefers-color-scheme) decides until the person presses the toggle in the
 * navigation; their choice is kept in localStorage ("mesh-theme": "light" or "dark") and wins
 * from then on. No inline script or style: the Content Security Policy stays strict.
 */
(function () {
  "use strict";

  var KEY = "mesh-theme";
  var media = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  function stored() {
    try {
      var v = window.localStorage.getItem(KEY);
      return v === "light" || v === "dark" ? v : null;
    } catch (e) {
      return null;  // storage refused (private mode, policy): follow the system
    }
  }

  function preferred() {
    return stored() || (media && media.matches ? "dark" : "light");
  }

  function label(button, theme) {
    var next = theme === "dark" ? "light" : "dark";
    button.setAttribute("aria-pressed", theme === "dark" ? "true" : "false");
    button.setAttribute("title", "Switch to the " + next + " theme");
    var text = button.querySelector("[data-theme-label]");
    if (text) { text.textContent = theme === "dark" ? "Light theme" : "Dark theme"; }
  }

  function apply(theme) {
    document.documentElement.setAttribute("data-bs-theme", theme);
    var button = document.getElementById("theme-toggle");
    if (button) { label(button, theme); }
  }

  apply(preferred());

  if (media && media.addEventListener) {
    media.addEventListener("change", function () { if (!stored()) { apply(preferred()); } });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var button = document.getElementById("theme-toggle");
    if (!button) { return; }
    button.hidden = false;  // without JavaScript there is nothing to toggle
    label(button, document.documentElement.getAttribute("data-bs-theme"));
    button.addEventListener("click", function () {
      var theme = document.documentElement.getAttribute("data-bs-theme") === "dark" ? "light" : "dark";
      try { window.localStorage.setItem(KEY, theme); } catch (e) { /* kept for this page only */ }
      apply(theme);
    });
  });
})();
