// The preview: a phone-sized player view that plays the campaign through the real player API as a dev player.
"use strict";
(() => {
  const root = document.getElementById("preview");
  const id = root.dataset.campaign;
  const {text} = Huodong;
  const result = root.querySelector("[data-testid=result]");
  const device = `preview-${root.dataset.player}`;
  let token = null;

  async function player(method, path, body) {
    if (!token) {
      const login = await fetch("/api/v1/auth/dev", {method: "POST", headers: {"Content-Type": "application/json",
        "X-Device-Id": device}, body: JSON.stringify({user_id: root.dataset.player, registered_days_ago: 30})});
      token = (await login.json()).token;
    }
    const response = await fetch(`/api/v1${path}`, {method, body: body && JSON.stringify(body), headers: {
      "Authorization": `Bearer ${token}`, "Content-Type": "application/json", "X-Device-Id": device,
      "Idempotency-Key": crypto.randomUUID(), "X-Request-Timestamp": String(Date.now()),
      "X-Request-Nonce": crypto.randomUUID().replaceAll("-", "")}});
    const answer = await response.json();
    if (!response.ok) throw new Error(`${answer.error.code}: ${answer.error.message}`);
    return answer;
  }

  const wheel = document.getElementById("wheel");
  if (wheel) {
    const prizes = JSON.parse(document.getElementById("prizes").textContent);
    const slots = prizes.length || 1;
    const colours = ["#e8553e", "#f6b042", "#4aa96c", "#3d84c6", "#9b59b6", "#e67e22", "#16a085", "#c0392b"];
    const stops = prizes.map((p, i) => `${colours[i % colours.length]} ${i / slots * 360}deg ${(i + 1) / slots * 360}deg`);
    wheel.style.background = `conic-gradient(${stops.join(", ")})`;  // CSSOM: allowed by the page's CSP
    root.querySelectorAll(".legend li").forEach((li, i) => { li.style.borderLeftColor = colours[i % colours.length]; });
    let turns = 0;
    root.querySelector("[data-action=spin]").addEventListener("click", async () => {
      result.textContent = "…";
      try {
        const answer = await player("POST", `/campaigns/${id}/actions/draw`, {times: 1});
        const given = answer.outcome.draws[0].given;
        const index = Math.max(0, prizes.findIndex((p) => p.id === given));
        turns += 5;
        // The pointer is at the top: turn so that the middle of the won slot ends under it.
        const angle = turns * 360 + (360 - (index + 0.5) * 360 / slots);
        wheel.style.transform = `rotate(${angle}deg)`;
        setTimeout(() => {
          const prize = prizes.find((p) => p.id === given);
          result.textContent = prize && prize.reward ? `${text.won}: ${prize.name}` : text.missed;
          result.dataset.prize = given || "";
        }, 1200);
      } catch (error) { result.textContent = error.message; }
    });
  } else {
    player("GET", `/campaigns/${id}`).then((view) => {
      root.querySelector("#public-view").textContent = JSON.stringify(view, null, 2);
    }).catch((error) => { result.textContent = error.message; });
  }
})();
