// The Django admin console, for assistive technology (tests/test_browser_a11y_admin.py).
(function () {
  // An autocomplete box (select2) is a combobox labelled by the text box inside it, which
  // shows the choice and has no name of its own (an empty box: no name at all). Both take the
  // name of the <select> they stand for (its <label>, or the aria-label a tabular inline's
  // input has); the choice stays the text box's content. Boxes appear when jQuery is ready and
  // when an inline row is added: named as they come.
  function nameSelect2Boxes() {
    for (const box of document.querySelectorAll(".select2-selection__rendered[id]:not([aria-label])")) {
      const select = document.getElementById(box.id.replace(/^select2-/, "").replace(/-container$/, ""));
      const label = select && (select.getAttribute("aria-label") || select.labels?.[0]?.textContent);
      if (!label) continue;
      const name = label.replace(/:\s*$/, "").trim();
      box.setAttribute("aria-label", name);
      const combobox = box.closest("[role=combobox]");
      if (combobox) {
        combobox.removeAttribute("aria-labelledby");
        combobox.setAttribute("aria-label", name);
      }
    }
  }
  new MutationObserver(nameSelect2Boxes).observe(document.body, { childList: true, subtree: true });
  nameSelect2Boxes();
  // The search icon SelectFilter2.js puts in a filter box's label (filter_horizontal) is a
  // plain <span> with an aria-label, which assistive technology ignores; as an image it is
  // announced. This script is at the end of the page: its "load" runs after SelectFilter2's.
  window.addEventListener("load", () => {
    for (const icon of document.querySelectorAll(".help-tooltip[aria-label]:not([role])")) {
      icon.setAttribute("role", "img");
    }
  });
})();
