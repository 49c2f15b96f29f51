// The review queue: approve or reject a held play through the admin API.
"use strict";
(() => {
  const {api, say, refused, text} = Huodong;
  // The referral tree around a held play (GET /review/<claim>): its players, what they did, their devices and
  // IPs, and which of those more than one of them used.
  document.querySelectorAll("tr[data-claim] [data-action=graph]").forEach((button) => {
    button.addEventListener("click", async () => {
      try {
        const item = await api("GET", `/review/${button.closest("tr").dataset.claim}`);
        const section = document.getElementById("graph");
        const body = section.querySelector("tbody");
        body.replaceChildren();
        for (const node of item.graph.nodes) {
          const row = body.insertRow();
          for (const value of [node.user_id, node.roles.join(", "), node.devices.join(", "), node.ips.join(", "),
                               node.held.join(", ")]) {
            row.insertCell().textContent = value;
          }
        }
        const shared = item.graph.shared;
        section.querySelector("[data-testid=shared]").textContent =
          `${text.shared}: ${[...shared.devices, ...shared.ips].join(", ") || "–"}`;
        section.hidden = false;
      } catch (error) { refused(error); }
    });
  });
  document.querySelectorAll("tr[data-claim] [data-action=approve], tr[data-claim] [data-action=reject]").forEach((button) => {
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
