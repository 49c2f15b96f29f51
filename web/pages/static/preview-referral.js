// The referral preview (裂变红包): open a red packet, let friends (dev players) assist it, cash it out. The fraud
// gate judges the friends' assists as it judges any: its answer (held, refused, a challenge) is shown as it is.
"use strict";
(() => {
  const {words, find, format, el, yuan, reward, play, player, playerOf, device} = Preview;
  // Each click is another friend, with a device of their own: an established account, as the marketer's own player.
  // (The account's age feeds the fraud gate's rules; the welcome reward reads the imported registered_at attribute,
  // which a dev player has not.)
  const FRIEND_REGISTERED_DAYS_AGO = 30;
  const page = Date.now().toString(36);  // friends of an earlier visit of the page have assisted already
  let friends = 0;

  function draw({me, rules}) {
    const packet = me.packet;
    find("open").disabled = !me.can_open;
    find("packet").hidden = !packet;
    find("packet-intro").hidden = Boolean(packet);
    find("cashout").hidden = !(packet && packet.can_cashout);
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
      Preview.countdown(find("time-left"), Date.parse(packet.deadline), words.time_left, {again: true});
    }
  }

  async function friendAssists() {
    friends += 1;
    const friend = playerOf(`${player.id}-f${page}-${friends}`, `${device}-friend-${page}-${friends}`,
      FRIEND_REGISTERED_DAYS_AGO);
    const code = Preview.view().me.packet.share_code;
    await play("assist", {share_code: code}, (outcome) => [
      format(words.assisted, {friend: friends, amount: yuan(outcome.amount_fen)}),
      outcome.welcome ? words.welcomed : "", outcome.full ? words.packet.full : ""].filter(Boolean).join(" "), friend);
    const line = el("li", "", find("result").textContent);
    line.dataset.friend = String(friends);
    find("assists").append(line);
  }

  function cashout() {
    play("cashout", {packet_id: Preview.view().me.packet.id}, (outcome, answer) => format(words.cashed_out,
      {status: words.packet[outcome.paid] || outcome.paid, reward: answer.grants.map((g) => reward(g.reward)).join(", ")}));
  }

  find("open").addEventListener("click", () => play("open", {}, () => words.opened));
  find("assist").addEventListener("click", friendAssists);
  find("cashout").addEventListener("click", cashout);
  Preview.start(draw);
})();
