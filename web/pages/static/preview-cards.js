// The cards preview (集卡): the album, draws, the task wall that earns draws, and cards moving between players --
// an ask to a friend, and a friend (a second dev player) who draws the card you miss and gives it to you.
"use strict";
(() => {
  const {words, find, format, el, say, play, refresh, player, playerOf, device} = Preview;
  // The friend of the preview, one for the page: their own player, token and device.
  const friend = playerOf(`${player.id}-friend`, `${device}-friend`);
  // The friend stops when the API refuses a draw (their chances are out); this only bounds a runaway loop.
  const MOST_FRIEND_DRAWS = 100;

  const nameOf = (card) => (Preview.view().rules.cards.find((c) => c.card === card) || {}).name || card;

  function draw({me, rules}) {
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
    find("gifts-left").textContent = format(words.asks_gifts_left, {asks: me.asks_left_today, gifts: me.gifts_left_today});
    PreviewTasks.draw(me.tasks);
  }

  function drawn(outcome) {
    const card = find("drawn");
    card.replaceChildren(el("span", "name", outcome.name));
    card.dataset.card = outcome.card;
    card.hidden = false;
    card.classList.remove("flip");
    void card.offsetWidth;  // restart the flip animation for the next card
    card.classList.add("flip");
    const from = outcome.fallback_from && Preview.view().rules.cards.find((c) => c.card === outcome.fallback_from);
    return [format(words.drew, {name: outcome.name}), from ? format(words.fallback, {name: from.name}) : "",
      outcome.completed ? words.completed : ""].filter(Boolean).join(" ");
  }

  // Asks the friend for the first card the album misses; the friend answers it with their button.
  function ask() {
    const card = Preview.view().me.missing[0];
    if (!card) { say(words.nothing_missing); return; }
    play("ask", {card, from_user: friend.id}, (outcome) => format(words.asked,
      {name: nameOf(outcome.card), request: outcome.request_id, status: outcome.status}));
  }

  // The friend draws until they hold a wanted card (by their own view: a draw that completes their set redeems
  // cards); a refused draw (NO_CHANCES...) ends it as the API said.
  async function friendDraws(wanted, note) {
    for (let draws = 0; draws < MOST_FRIEND_DRAWS; draws++) {
      const {me} = await friend.view();
      const held = wanted.find((card) => me.cards[card] > 0);
      if (held) return held;
      const {outcome} = await friend.act("draw", {});
      note(format(words.friend_drew, {name: outcome.name}));
    }
    return null;
  }

  // The friend gives the card the album misses: the one asked for if the friend has that ask (they accept it),
  // else any missing card (they gift it).
  async function friendGives() {
    const log = find("friend-log");
    log.replaceChildren();
    const note = (message) => log.append(el("li", "", message));
    const {missing} = Preview.view().me;
    if (!missing.length) { say(words.nothing_missing); return; }
    say("…");
    try {
      const {me: theirs} = await friend.view();  // the asks waiting for the friend's answer
      const asked = theirs.asks.find((a) => a.from_user === player.id && missing.includes(a.card));
      const card = await friendDraws(asked ? [asked.card] : missing, note);
      if (!card) throw new Error(words.friend_gave_up);
      const answer = asked ? await friend.act("accept", {request_id: asked.request_id})
        : await friend.act("gift", {card, to_user: player.id});
      say(format(asked ? words.friend_accepted : words.friend_gave, {name: nameOf(answer.outcome.card)}));
    } catch (error) {
      say(`${words.friend_failed} ${error.message}`);
    }
    note(find("result").textContent);
    await refresh();
  }

  find("draw").addEventListener("click", () => play("draw", {}, drawn));
  find("ask").addEventListener("click", ask);
  find("friend-gives").addEventListener("click", friendGives);
  Preview.start(draw);
})();
