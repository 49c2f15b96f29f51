// API tokens: make one (its secret is shown once) and revoke one -- through the admin API (admins only).
"use strict";
(() => {
  const {api, refused, showFieldErrors} = Huodong;
  const text = JSON.parse(document.getElementById("tokens-text").textContent);
  document.querySelectorAll("tr[data-token] [data-action=revoke]").forEach((button) => {
    button.addEventListener("click", async () => {
      if (!window.confirm(text.confirm_revoke)) return;
      try {
        await api("POST", `/tokens/${button.closest("tr").dataset.token}/revoke`);
        window.location.reload();
      } catch (error) { refused(error); }
    });
  });
  const form = document.getElementById("new-token");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const made = await api("POST", "/tokens", {name: form.elements.name.value, role: form.elements.role.value});
      showFieldErrors(form, {});
      const secret = form.querySelector("[data-testid=new-token]");
      secret.querySelector("code").textContent = made.token;
      secret.hidden = false;
    } catch (error) {
      refused(error, form);
    }
  });
})();
