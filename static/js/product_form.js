// The product form: add and remove ports and fields without reloading. Rows are copied from
// <template>s whose names carry placeholders (ports-__prefix__-…, ports-__port__-fields-__prefix__-…)
// and the formsets' TOTAL_FORMS counters are raised. Removing ticks the row's DELETE box and
// hides it, so numbering never changes.
(function () {
  const form = document.getElementById("product-form");
  if (!form) return;
  document.documentElement.classList.add("js");

  function total(prefix) {
    return form.querySelector(`input[name="${prefix}-TOTAL_FORMS"]`);
  }

  function fromTemplate(id, replacements) {
    let html = document.getElementById(id).innerHTML;
    for (const [pattern, value] of replacements) html = html.replace(pattern, value);
    const holder = document.createElement("tbody");
    if (id === "port-template") {
      const div = document.createElement("div");
      div.innerHTML = html.trim();
      return div.firstElementChild;
    }
    holder.innerHTML = html.trim();
    return holder.firstElementChild;
  }

  form.addEventListener("click", (event) => {
    const addPort = event.target.closest("[data-add-port]");
    const addField = event.target.closest("[data-add-field]");
    const remove = event.target.closest("[data-remove-row]");
    if (addPort) {
      const counter = total("ports");
      const index = Number(counter.value);
      const card = fromTemplate("port-template", [[/__prefix__/g, String(index)]]);
      form.querySelector("[data-ports]").appendChild(card);
      if (window.htmx) window.htmx.process(card); // its data-source picker asks as one types
      counter.value = index + 1;
      card.querySelector("input[type=text], input:not([type=hidden])").focus();
    } else if (addField) {
      const card = addField.closest("[data-port]");
      const port = card.dataset.port;
      const counter = total(`ports-${port}-fields`);
      const index = Number(counter.value);
      const row = fromTemplate("field-template", [[/__port__/g, port], [/__prefix__/g, String(index)]]);
      card.querySelector("[data-field-rows]").appendChild(row);
      counter.value = index + 1;
      row.querySelector("input[type=text]").focus();
    } else if (remove) {
      const row = remove.closest("[data-row]");
      const box = row.querySelector("input[name$='-DELETE']");
      if (box) box.checked = true;
      row.hidden = true;
    }
  });
})();
