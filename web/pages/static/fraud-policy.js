// The fraud policy editor: a form built from the policy's schema; saving PUTs the whole policy, which the API
// validates (its errors show beside their fields) and audits.
"use strict";
(async () => {
  const root = document.getElementById("policy-editor");
  const form = document.getElementById("policy-form");
  const {api, refused, say, showFieldErrors, text} = Huodong;
  let schema;
  try { schema = await api("GET", "/forms/fraud-policy"); } catch (error) { refused(error); return; }
  const editor = SchemaForm.build(form.querySelector(".form-root"), {
    schema: schema.schema, rewards: schema.rewards, text, value: JSON.parse(document.getElementById("policy").textContent),
    labels: JSON.parse(document.getElementById("labels").textContent),
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = root.dataset.name || form.policy_name.value.trim();
    if (!name) { showFieldErrors(form, {name: [text.required]}); return; }
    try {
      await api("PUT", `/fraud-policies/${encodeURIComponent(name)}`, editor.value());
      if (!root.dataset.name) { window.location.assign(`/admin/fraud/policies/${encodeURIComponent(name)}`); return; }
      showFieldErrors(form, {});
      say(text.saved);
    } catch (error) {
      refused(error, form);
    }
  });
})();
