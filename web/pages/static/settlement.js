// Settlement: retry a dead letter, give a compensation grant, upload coupon codes -- through the admin API.
"use strict";
(() => {
  const {api, say, refused} = Huodong;
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
      refused(error, compensation);
    }
  });
  const upload = document.getElementById("coupon-upload");
  upload && upload.addEventListener("submit", async (event) => {
    event.preventDefault();
    const pool = encodeURIComponent(upload.elements.pool.value);
    try {
      const answer = await api("POST", `/coupon-pools/${pool}/codes`, await upload.elements.file.files[0].text(),
                               "text/csv");
      say(`+${answer.added} (${answer.duplicates} dup), ${answer.available} / ${answer.total}`);
    } catch (error) { refused(error); }
  });
})();
