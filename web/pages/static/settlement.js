// Settlement: retry a dead letter, give a compensation grant, upload coupon codes -- through the admin API.
"use strict";
(() => {
  const {api, say, refused, showFieldErrors, text} = Huodong;
  document.querySelectorAll("tr[data-grant] [data-action=retry]").forEach((button) => {
    button.addEventListener("click", async () => {
      try {
        await api("POST", `/grants/${button.closest("tr").dataset.grant}/retry`);
        window.location.reload();
      } catch (error) { refused(error); }
    });
  });
  const compensation = document.getElementById("compensation");
  compensation && compensation.addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = compensation.elements;
    const amount = Number(form.amount.value);
    try {
      await api("POST", "/grants/compensations", {campaign_id: Number(form.campaign_id.value), user_id: form.user_id.value,
        reward: {type: "points", amount, cost_fen: amount}, reason: form.reason.value});
      window.location.reload();
    } catch (error) {
      refused(error);
      if (error.body && error.body.details) showFieldErrors(compensation, error.body.details.fields);
    }
  });
  const upload = document.getElementById("coupon-upload");
  upload && upload.addEventListener("submit", async (event) => {
    event.preventDefault();
    const csrf = document.querySelector('meta[name="csrf-token"]').content;
    const pool = encodeURIComponent(upload.elements.pool.value);
    const response = await fetch(`/admin/api/v1/coupon-pools/${pool}/codes`, {method: "POST", credentials: "same-origin",
      headers: {"X-CSRF-Token": csrf, "Content-Type": "text/csv"}, body: await upload.elements.file.files[0].text()});
    const answer = await response.json();
    if (!response.ok) return say(`${text.failed} ${answer.error.code} — ${answer.error.message}`, true);
    say(`+${answer.added} (${answer.duplicates} dup), ${answer.available} / ${answer.total}`);
  });
})();
