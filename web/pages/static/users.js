// Users: add a person, change a role -- through the admin API (admins only).
"use strict";
(() => {
  const {api, say, refused, text} = Huodong;
  document.querySelectorAll("tr[data-user] [data-action=role]").forEach((select) => {
    select.addEventListener("change", async () => {
      try {
        await api("PUT", `/users/${select.closest("tr").dataset.user}/role`, {role: select.value});
        say(text.saved);
      } catch (error) { refused(error); }
    });
  });
  const form = document.getElementById("new-user");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = form.elements;
    try {
      await api("POST", "/users", {email: f.email.value, name: f.name.value, password: f.password.value, role: f.role.value});
      window.location.reload();
    } catch (error) {
      refused(error, form);
    }
  });
})();
