// The flash_sale preview (秒杀): the countdown, the SKUs and their stock, and the orders a purchase reserved. An
// order is paid with Alipay in the mini-program, which the preview cannot do: it can only cancel it.
"use strict";
(() => {
  const {words, find, format, el, button, yuan, play} = Preview;
  // The held orders of this page, as the buy answered them: the player's view does not list orders.
  const orders = new Map();

  function buy(sku) {
    play("buy", {sku: sku.sku, quantity: 1}, ({order}) => {
      const values = {name: sku.name, order: order.id, amount: yuan(order.amount_fen),
        time: order.pay_before && new Date(order.pay_before).toLocaleTimeString()};
      if (order.status === "held") orders.set(order.id, {...order, name: sku.name});
      return format(order.status === "held" ? words.held : words.confirmed, values);
    });
  }

  function cancel(order) {
    play("cancel", {order_id: order.id}, (outcome) => {
      orders.delete(order.id);
      return format(words.order_status, {order: outcome.order.id,
        status: words.order_states[outcome.order.status] || outcome.order.status});
    });
  }

  function drawOrder(order) {
    const item = el("li");
    item.dataset.order = order.id;
    const left = el("small", "pay-left");
    left.dataset.testid = "pay-left";
    item.append(el("span", "name", format(words.order, {order: order.id, name: order.name,
      amount: yuan(order.amount_fen)})), el("small", "", format(words.pay_before,
      {time: new Date(order.pay_before).toLocaleTimeString()})), left,
    button(words.cancel, "cancel", () => cancel(order)));
    Preview.countdown(left, Date.parse(order.pay_before), words.pay_within, {done: words.pay_window_over});
    return item;
  }

  function drawSku(sku, me) {
    const item = el("li");
    item.dataset.sku = sku.sku;
    const price = el("p", "price");
    price.append(el("b", "", `¥${yuan(sku.price_fen)}`));
    if (sku.original_price_fen !== null) price.append(" ", el("s", "", `¥${yuan(sku.original_price_fen)}`));
    const left = el("small", "", format(words.left, {count: me.skus[sku.sku].stock_left}));
    left.dataset.testid = "stock-left";
    item.append(el("span", "name", sku.name), price, left, button(words.buy, "buy", () => buy(sku), "primary"));
    return item;
  }

  function draw({me, rules, eligibility, ends_at: endsAt, starts_at: startsAt}) {
    const countdown = find("countdown");
    if (eligibility.reason === "not_started") {
      Preview.countdown(countdown, Date.parse(startsAt), words.starts_in, {again: true});
    } else if (eligibility.reason === "ended") {
      countdown.textContent = words.ended;
    } else if (endsAt) {
      Preview.countdown(countdown, Date.parse(endsAt), words.ends_in, {again: true});
    } else {
      countdown.textContent = words.on_sale;
    }
    find("skus").replaceChildren(...rules.skus.map((sku) => drawSku(sku, me)));
    find("orders-box").hidden = !orders.size;
    find("orders").replaceChildren(...[...orders.values()].map(drawOrder));
  }

  Preview.start(draw);
})();
