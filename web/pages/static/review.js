// The review queue: approve or reject a held play through the admin API.
"use strict";
(() => {
  const {api, say, refused, text} = Huodong;
  document.querySelectorAll("tr[data-claim] [data-action]").forEach((button) => {
    button.addEventListener("click", async () => {
      const row = button.closest("tr");
      try {
        const decided = await api("POST", `/review/${row.dataset.claim}/${button.dataset.action}`, {note: ""});
        row.remove();
        say(decided.review === "approved" ? text.approved : text.rejected);
      } catch (error) { refused(error); }
    });
  });
})();
