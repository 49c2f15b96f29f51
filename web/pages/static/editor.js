// The campaign editor: a form built from the game's schema (schema-form.js) and the same definition as JSON.
// Each change is checked by the server (POST /campaigns/check) as it is typed: its errors show beside their
// fields and the rules it derives (each prize's probability) beside their items. Saving sends the whole
// definition to the admin API, which validates it again.
"use strict";
(async () => {
  const root = document.getElementById("editor");
  const campaignId = root.dataset.campaign;
  const {api, refused, say, showFieldErrors, text} = Huodong;
  const form = document.getElementById("campaign-form");
  const jsonForm = document.getElementById("json-form");
  const initial = JSON.parse(document.getElementById("definition").textContent);
  const labels = JSON.parse(document.getElementById("labels").textContent);
  const checkedLine = form.querySelector("[data-testid=checked]");

  async function save(definition, where) {
    try {
      const saved = campaignId
        ? await api("PUT", `/campaigns/${campaignId}`, definition)
        : await api("POST", "/campaigns", definition);
      window.location.assign(`/admin/campaigns/${saved.id}`);
    } catch (error) {
      refused(error, where);
    }
  }

  let editor = null;
  let timer = null;
  let asked = 0;
  // Answers can come back out of order: only the latest question's answer is shown.
  async function check() {
    const question = ++asked;
    try {
      const checked = await api("POST", "/campaigns/check", editor.value());
      if (question !== asked) return;
      showFieldErrors(form, {});
      editor.showRules(checked.rules);
      checkedLine.textContent = text.checked_ok;
      checkedLine.classList.remove("error");
    } catch (error) {
      if (question !== asked) return;
      if (error.status !== 422) { refused(error); return; }
      showFieldErrors(form, error.body.details.fields);
      editor.showRules(null);
      checkedLine.textContent = text.checked_problems;
      checkedLine.classList.add("error");
    }
  }

  jsonForm.addEventListener("submit", (event) => {
    event.preventDefault();
    let definition;
    try { definition = JSON.parse(jsonForm.definition.value); } catch (error) {
      jsonForm.querySelector('[data-error-for="*"]').textContent = error.message;
      return;
    }
    save(definition, jsonForm);
  });
  jsonForm.querySelector("[data-action=import]").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (file) jsonForm.definition.value = await file.text();
  });

  let schema;
  try { schema = await api("GET", `/forms/campaign/${encodeURIComponent(root.dataset.game)}`); } catch (error) {
    refused(error);
    return;
  }
  editor = SchemaForm.build(form.querySelector(".form-root"), {
    schema: schema.schema, rewards: schema.rewards, labels, text, value: initial,
    onChange(value) {
      jsonForm.definition.value = JSON.stringify(value, null, 2);
      clearTimeout(timer);
      timer = setTimeout(check, 300);
    },
  });
  check();
  // The instants are shown in the campaign's zone: a new zone redraws them.
  form.addEventListener("change", (event) => { if (event.target.dataset.field === "timezone") editor.render(); });
  jsonForm.querySelector("[data-action=to-form]").addEventListener("click", () => {
    try { editor.load(JSON.parse(jsonForm.definition.value)); say(""); } catch (error) { say(error.message, true); }
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    save(editor.value(), form);
  });
})();
