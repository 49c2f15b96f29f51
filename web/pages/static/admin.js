// The admin page's shared JavaScript: call the admin JSON API with the session's CSRF token, show messages.
// Pages only display what the API answers; every rule lives on the server.
"use strict";

const Huodong = (() => {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const text = JSON.parse(document.getElementById("i18n").textContent);

  // A JSON body by default; a text body (a CSV upload) with its content type.
  async function api(method, path, body, contentType = "application/json") {
    const options = {method, headers: {"X-CSRF-Token": csrf, "Accept": "application/json"}, credentials: "same-origin"};
    if (body !== undefined) {
      options.headers["Content-Type"] = contentType;
      options.body = typeof body === "string" ? body : JSON.stringify(body);
    }
    const response = await fetch("/admin/api/v1" + path, options);
    const answer = response.status === 204 ? null : await response.json();
    if (!response.ok) {
      const error = new Error(answer.error.message);
      error.status = response.status;
      error.body = answer.error;
      throw error;
    }
    return answer;
  }

  function say(message, isError) {
    const where = document.querySelector("[data-testid=message]");
    if (!where) return;
    where.textContent = message;  // textContent: never HTML
    where.classList.toggle("error", Boolean(isError));
  }

  // A refusal at the top of the page and, when a form is given, its field errors beside their fields.
  function refused(error, form) {
    say(`${text.failed} ${error.body ? error.body.code + " — " + error.message : error.message}`, true);
    if (form && error.body && error.body.details) showFieldErrors(form, error.body.details.fields);
  }

  // Validation errors beside their fields: details.fields is nested like the document ({config: {prizes: {0: ...}}}).
  function showFieldErrors(form, fields) {
    form.querySelectorAll(".field-error").forEach((p) => { p.textContent = ""; });
    form.querySelectorAll("[data-field].invalid").forEach((el) => el.classList.remove("invalid"));
    const flat = [];
    (function walk(node, path) {
      if (Array.isArray(node)) { flat.push([path.join("."), node.join(" ")]); return; }
      if (node && typeof node === "object") { Object.entries(node).forEach(([k, v]) => walk(v, path.concat(k))); }
    })(fields || {}, []);
    for (const [path, message] of flat) {
      const input = form.querySelector(`[data-field="${CSS.escape(path)}"]`);
      let target = form.querySelector(`.field-error[data-error-for="${CSS.escape(path)}"]`);
      if (input) {
        input.classList.add("invalid");
        target = target || input.parentElement.querySelector(".field-error") || (() => {
          const p = document.createElement("span");
          p.className = "field-error";
          input.insertAdjacentElement("afterend", p);
          return p;
        })();
      }
      target = target || form.querySelector('.field-error[data-error-for^="' + path.split(".").slice(0, 2).join(".") + '"]')
        || form.querySelector('.field-error[data-error-for="*"]');
      if (target) target.textContent = (target.textContent ? target.textContent + " " : "") + `${path}: ${message}`;
    }
  }

  const yuan = (fen) => (fen / 100).toFixed(2);
  return {api, say, refused, showFieldErrors, text, yuan};
})();
