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
  } else if (root.querySelector(".game-view")) {
    gameView(root.querySelector(".game-view").dataset.view);
  } else if (root.querySelector("#public-view")) {
    player("GET", `/campaigns/${id}`).then((view) => {
      root.querySelector("#public-view").textContent = JSON.stringify(view, null, 2);
    }).catch((error) => { result.textContent = error.message; });
  }

  // Checkin, cards, referral and flash_sale: draw the view the API answers (GET /campaigns/<id>), play an
  // action from a button, say what it answered, and draw the view again. Every number comes from the API.
  function gameView(game) {
    const words = JSON.parse(document.getElementById("preview-text").textContent);
    const {yuan} = Huodong;
    const find = (testid) => root.querySelector(`[data-testid="${testid}"]`);
    let view = null;
    let timer = null;  // {until, label, element}: a countdown the page ticks; at zero it asks the API again
    let asked = null;

    const format = (template, values) => template.replace(/\{(\w+)\}/g, (_, name) => String(values[name]));
    function el(tag, className = "", content = "") {
      const element = document.createElement(tag);
      element.className = className;
      element.textContent = content;  // textContent: names are data, never HTML
      return element;
    }
    function reward(given) {
      if (!given) return "—";
      if (given.amount_fen !== undefined) return `¥${yuan(given.amount_fen)}`;
      if (given.type === "points") return format(words.points, {amount: given.amount});
      return given.title || given.name || given.type;
    }
    function duration(ms) {
      const s = Math.max(0, Math.floor(ms / 1000));
      const clock = [Math.floor(s / 3600) % 24, Math.floor(s / 60) % 60, s % 60]
        .map((n) => String(n).padStart(2, "0")).join(":");
      return s >= 86400 ? `${format(words.days, {days: Math.floor(s / 86400)})} ${clock}` : clock;
    }

    async function refresh() {
      try {
        view = await player("GET", `/campaigns/${id}`);
        timer = null;
        draw[game](view);
        tick();
      } catch (error) { result.textContent = error.message; }
    }
    async function act(action, body, said) {
      result.textContent = "…";
      try {
        const answer = await player("POST", `/campaigns/${id}/actions/${action}`, body);
        result.textContent = said(answer.outcome);
      } catch (error) { result.textContent = `${text.failed} ${error.message}`; }
      await refresh();
    }
    function tick() {
      if (!timer) return;
      const left = timer.until - Date.now();
      timer.element.textContent = format(timer.label, {time: duration(left)});
      // The sale has started or the packet has run out: the API says what that changed (once per instant,
      // in case this browser's clock runs ahead of the server's).
      if (left <= 0 && asked !== timer.until) {
        asked = timer.until;
        setTimeout(refresh, 1000);
      }
    }
    setInterval(tick, 1000);

    const draw = {
      checkin({me, rules}) {
        const [year, month, today] = me.today.split("-").map(Number);  // the business day, in the campaign's zone
        const checked = new Set(me.calendar[me.today.slice(0, 7)] || []);
        const blanks = (new Date(Date.UTC(year, month - 1, 1)).getUTCDay() + 6) % 7;  // weeks start on Monday
        const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
        const rows = [];
        for (let cell = 0; cell < blanks + days; cell++) {
          if (cell % 7 === 0) rows.push(el("tr"));
          const day = cell - blanks + 1;
          const td = rows.at(-1).appendChild(el("td", "", day > 0 ? String(day) : ""));
          if (day < 1) continue;
          td.dataset.day = String(day);
          td.classList.toggle("checked", checked.has(day));
          td.classList.toggle("today", day === today);
        }
        find("calendar").tBodies[0].replaceChildren(...rows);
        find("month").textContent = me.today.slice(0, 7);
        find("streak").textContent = format(words.streak, {days: me.streak});
        const bonuses = me.next.bonus_days.map((days) => format(words.bonus,
          {days, reward: reward((rules.streak_bonuses.find((b) => b.days === days) || {}).reward)}));
        find("next-reward").textContent = [format(words.next, {date: me.next.date, streak: me.next.streak,
          reward: reward(me.next.reward)}), ...bonuses].join(" ");
        find("checkin").disabled = me.checked_in_today;
        find("checkin").textContent = me.checked_in_today ? words.checked_today : words.checkin;
      },
      cards({me, rules}) {
        find("album").replaceChildren(...rules.cards.map((card) => {
          const count = me.cards[card.card] || 0;
          const item = el("li", count ? "" : "missing");
          item.dataset.card = card.card;
          const held = el("b", "count", `×${count}`);
          held.dataset.testid = "count";
          item.append(el("span", "name", card.name), held, el("small", "", `${(card.probability * 100).toFixed(2)} %`));
          if (card.card in me.stock_left) item.append(el("small", "", format(words.left, {count: me.stock_left[card.card]})));
          return item;
        }));
        find("chances").textContent = format(words.chances, me.chances);
      },
      referral({me, rules}) {
        const packet = me.packet;
        find("open").disabled = !me.can_open;
        find("packet").hidden = !packet;
        find("packet-intro").hidden = Boolean(packet);
        if (!packet) return;
        // The bar fills as the packet does: by friends in count mode, by fen in amount mode.
        const share = rules.mode === "assists" ? packet.assists / packet.needed_assists
          : packet.progress_fen / packet.target_fen;
        find("progress-fill").style.width = `${Math.min(100, share * 100).toFixed(1)}%`;  // CSSOM, not a style attribute
        find("progress-label").textContent = format(words.progress, {progress: yuan(packet.progress_fen),
          target: yuan(packet.target_fen), assists: packet.assists, needed: packet.needed_assists});
        find("packet-status").textContent = words.packet[packet.status] || packet.status;
        find("share-code").textContent = packet.share_code;
        find("time-left").textContent = "";
        if (packet.status === "open") {
          timer = {until: Date.parse(packet.deadline), label: words.time_left, element: find("time-left")};
        }
      },
      flash_sale({me, rules, eligibility, ends_at: endsAt, starts_at: startsAt}) {
        const countdown = find("countdown");
        if (eligibility.reason === "not_started") {
          timer = {until: Date.parse(startsAt), label: words.starts_in, element: countdown};
        } else if (eligibility.reason === "ended") {
          countdown.textContent = words.ended;
        } else if (endsAt) {
          timer = {until: Date.parse(endsAt), label: words.ends_in, element: countdown};
        } else {
          countdown.textContent = words.on_sale;
        }
        find("skus").replaceChildren(...rules.skus.map((sku) => {
          const item = el("li");
          item.dataset.sku = sku.sku;
          const price = el("p", "price");
          price.append(el("b", "", `¥${yuan(sku.price_fen)}`));
          if (sku.original_price_fen !== null) price.append(" ", el("s", "", `¥${yuan(sku.original_price_fen)}`));
          const left = el("small", "", format(words.left, {count: me.skus[sku.sku].stock_left}));
          left.dataset.testid = "stock-left";
          const buy = el("button", "primary", words.buy);
          buy.dataset.action = "buy";
          buy.addEventListener("click", () => act("buy", {sku: sku.sku, quantity: 1}, ({order}) => {
            const values = {name: sku.name, order: order.id, amount: yuan(order.amount_fen),
              time: order.pay_before && new Date(order.pay_before).toLocaleTimeString()};
            return format(order.status === "held" ? words.held : words.confirmed, values);
          }));
          item.append(el("span", "name", sku.name), price, left, buy);
          return item;
        }));
      },
    };

    find("checkin")?.addEventListener("click", () => act("checkin", {}, (outcome) => format(words.checked_in,
      {streak: outcome.streak, reward: reward(outcome.reward)})));
    find("draw")?.addEventListener("click", () => act("draw", {}, (outcome) => {
      const drawn = find("drawn");
      drawn.replaceChildren(el("span", "name", outcome.name));
      drawn.dataset.card = outcome.card;
      drawn.hidden = false;
      drawn.classList.remove("flip");
      void drawn.offsetWidth;  // restart the flip animation for the next card
      drawn.classList.add("flip");
      const from = outcome.fallback_from && view.rules.cards.find((c) => c.card === outcome.fallback_from);
      return [format(words.drew, {name: outcome.name}), from ? format(words.fallback, {name: from.name}) : "",
        outcome.completed ? words.completed : ""].filter(Boolean).join(" ");
    }));
    find("open")?.addEventListener("click", () => act("open", {}, () => words.opened));
    refresh();
  }
})();
