// The preview: a phone-sized player view that plays the campaign through the real player API as a dev player.
// This file is what every game shares -- the API client, the view drawn from GET /campaigns/<id>, the
// countdowns -- and the lottery's wheel; preview-<game>.js draws its game's view and wires its buttons.
// Every number shown comes from the API: no business rule lives here.
"use strict";
const Preview = (() => {
  const root = document.getElementById("preview");
  const id = root.dataset.campaign;
  const {text, yuan} = Huodong;
  const words = JSON.parse(document.getElementById("preview-text").textContent);
  const result = root.querySelector("[data-testid=result]");
  const device = `preview-${root.dataset.player}`;

  // A refusal as the API answered it, its stable code first (the page shows it as it is).
  class Refusal extends Error {
    constructor({code, message, details}) {
      super(`${code}: ${message}`);
      this.code = code;
      this.details = details || {};
    }
  }

  async function send(method, path, body, headers) {
    const response = await fetch(`/api/v1${path}`, {method, body: body && JSON.stringify(body),
      headers: {"Content-Type": "application/json", ...headers}});
    const answer = await response.json();
    if (!response.ok) throw new Refusal(answer.error);
    return answer;
  }

  // A dev player: the marketer's own, or a friend with an id and a device of their own. It logs in on its first
  // call; a player the API has not seen before is registered `registeredDaysAgo` days ago.
  function playerOf(userId, deviceId, registeredDaysAgo = 30) {
    let token = null;
    async function call(method, path, body) {
      if (!token) {
        token = (await send("POST", "/auth/dev", {user_id: userId, registered_days_ago: registeredDaysAgo},
          {"X-Device-Id": deviceId})).token;
      }
      return send(method, path, body, {"Authorization": `Bearer ${token}`, "X-Device-Id": deviceId,
        "Idempotency-Key": crypto.randomUUID(), "X-Request-Timestamp": String(Date.now()),
        "X-Request-Nonce": crypto.randomUUID().replaceAll("-", "")});
    }
    return {
      id: userId,
      view: () => call("GET", `/campaigns/${id}`),
      act: (action, body) => call("POST", `/campaigns/${id}/actions/${action}`, body),
    };
  }
  const player = playerOf(root.dataset.player, device);

  const find = (testid) => root.querySelector(`[data-testid="${testid}"]`);
  const format = (template, values) => template.replace(/\{(\w+)\}/g, (_, name) => String(values[name]));
  const say = (message) => { result.textContent = message; };
  const count = (n, one, many) => format(n === 1 ? one : many, {count: n});
  function el(tag, className = "", content = "") {
    const element = document.createElement(tag);
    element.className = className;
    element.textContent = content;  // textContent: names are data, never HTML
    return element;
  }
  function button(label, action, onClick, className = "") {
    const element = el("button", className, label);
    element.type = "button";
    element.dataset.action = action;
    element.addEventListener("click", onClick);
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

  // -- checkin, cards, referral and flash_sale: the view the API answers, drawn by the game's file ------------------

  let draw = null;
  let view = null;
  let timers = [];  // {element, until, label, done, again}: countdowns the page ticks, made anew by each draw
  const asked = new Set();

  async function refresh() {
    try {
      view = await player.view();
      timers = [];
      draw(view);
      tick();
    } catch (error) { say(error.message); }
  }
  // Plays an action as `who` (the marketer's player unless a friend), says what the API answered and draws the
  // view again. Answers the play's answer, or null when it was refused (the refusal is said, code first).
  async function play(action, body, said, who = player) {
    say("…");
    let answer = null;
    try {
      answer = await who.act(action, body);
      // The fraud gate admitted the play but holds its rewards for a person to review.
      say([answer.outcome.held ? words.held_for_review : "", said(answer.outcome, answer)].filter(Boolean).join(" "));
    } catch (error) { say(`${text.failed} ${error.message}`); }
    await refresh();
    return answer;
  }
  // A countdown to `until` (ms) in `element`; at zero it shows `done`, or, with `again`, asks the API what that
  // changed (the sale has started, the packet has run out).
  function countdown(element, until, label, {done = null, again = false} = {}) {
    timers.push({element, until, label, done, again});
  }
  function tick() {
    for (const timer of timers) {
      const left = timer.until - Date.now();
      timer.element.textContent = left <= 0 && timer.done ? timer.done : format(timer.label, {time: duration(left)});
      // Once per instant, in case this browser's clock runs ahead of the server's.
      if (left <= 0 && timer.again && !asked.has(timer.until)) {
        asked.add(timer.until);
        setTimeout(refresh, 1000);
      }
    }
  }
  function start(drawGame) {
    draw = drawGame;
    setInterval(tick, 1000);
    refresh();
  }

  // -- lottery: the wheel ----------------------------------------------------------------------------------------

  function spinTheWheel(wheel) {
    const prizes = JSON.parse(document.getElementById("prizes").textContent);
    const slots = prizes.length || 1;
    const colours = ["#e8553e", "#f6b042", "#4aa96c", "#3d84c6", "#9b59b6", "#e67e22", "#16a085", "#c0392b"];
    const stops = prizes.map((p, i) => `${colours[i % colours.length]} ${i / slots * 360}deg ${(i + 1) / slots * 360}deg`);
    wheel.style.background = `conic-gradient(${stops.join(", ")})`;  // CSSOM: allowed by the page's CSP
    root.querySelectorAll(".legend li").forEach((li, i) => { li.style.borderLeftColor = colours[i % colours.length]; });
    let turns = 0;
    root.querySelector("[data-action=spin]").addEventListener("click", async () => {
      say("…");
      try {
        const answer = await player.act("draw", {times: 1});
        const given = answer.outcome.draws[0].given;
        const index = Math.max(0, prizes.findIndex((p) => p.id === given));
        turns += 5;
        // The pointer is at the top: turn so that the middle of the won slot ends under it.
        const angle = turns * 360 + (360 - (index + 0.5) * 360 / slots);
        wheel.style.transform = `rotate(${angle}deg)`;
        setTimeout(() => {
          const prize = prizes.find((p) => p.id === given);
          say(prize && prize.reward ? `${text.won}: ${prize.name}` : text.missed);
          result.dataset.prize = given || "";
        }, 1200);
      } catch (error) { say(error.message); }
    });
  }

  const wheel = document.getElementById("wheel");
  if (wheel) {
    spinTheWheel(wheel);
  } else if (root.querySelector("#public-view")) {
    player.view().then((answer) => {
      root.querySelector("#public-view").textContent = JSON.stringify(answer, null, 2);
    }).catch((error) => { say(error.message); });
  }

  return {words, text, yuan, device, player, playerOf, find, format, say, count, el, button, reward, duration,
    play, refresh, countdown, start, view: () => view};
})();
