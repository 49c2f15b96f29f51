// The checkin preview: this month's calendar, the streak, make-up days (补签) and the task wall that pays for them.
"use strict";
(() => {
  const {words, find, format, count, el, button, reward, play} = Preview;

  function price(cost) {
    return cost.chances !== undefined ? count(cost.chances, words.chance, words.chances_n)
      : format(words.points, {amount: cost.points});
  }

  function makeup(date) {
    play("makeup", {date}, (outcome) => format(words.made_up,
      {date: outcome.date, streak: outcome.streak, cost: price(outcome.paid)}));
  }

  // The weeks of a month ("YYYY-MM"): checked days stamped, today ringed, a day the API offers to make up a
  // button (me.makeup.days lists them).
  function weeks(month, me, missed) {
    const [year, number] = month.split("-").map(Number);
    const checked = new Set(me.calendar[month] || []);
    const blanks = (new Date(Date.UTC(year, number - 1, 1)).getUTCDay() + 6) % 7;  // weeks start on Monday
    const days = new Date(Date.UTC(year, number, 0)).getUTCDate();
    const rows = [];
    for (let cell = 0; cell < blanks + days; cell++) {
      if (cell % 7 === 0) rows.push(el("tr"));
      const day = cell - blanks + 1;
      const td = rows.at(-1).appendChild(el("td", "", day > 0 ? String(day) : ""));
      if (day < 1) continue;
      const date = `${month}-${String(day).padStart(2, "0")}`;
      td.dataset.day = String(day);
      td.dataset.date = date;
      td.classList.toggle("checked", checked.has(day));
      td.classList.toggle("today", date === me.today);
      if (missed.has(date)) {
        td.classList.add("missed");
        td.replaceChildren(button(String(day), "makeup", () => makeup(date), "day"));
      }
    }
    return rows;
  }

  // The calendar of today's month and, when a day that can be made up lies in it, of the month before.
  function drawCalendars(me) {
    const missed = new Set(me.makeup ? me.makeup.days : []);
    const month = me.today.slice(0, 7);
    find("calendar").tBodies[0].replaceChildren(...weeks(month, me, missed));
    find("month").textContent = month;
    const earlier = [...missed].map((date) => date.slice(0, 7)).find((other) => other < month);
    const previous = find("calendar-previous");
    previous.hidden = !earlier;
    if (earlier) {
      previous.caption.textContent = earlier;
      previous.tBodies[0].replaceChildren(...weeks(earlier, me, missed));
    }
  }

  function drawMakeup(makeup) {
    find("makeup").hidden = !makeup;
    if (!makeup) return;
    const used = makeup.max_per_month === null ? format(words.makeup_used, {used: makeup.used_this_month})
      : format(words.makeup_used_of, {used: makeup.used_this_month, max: makeup.max_per_month});
    const how = makeup.days.length ? words.makeup_how : format(words.makeup_none, {days: makeup.window_days});
    find("makeup-rules").textContent = [format(words.makeup_cost, {cost: price(makeup.cost)}), used, how].join(" ");
  }

  function draw({me, rules}) {
    drawCalendars(me);
    find("streak").textContent = format(words.streak, {days: me.streak});
    const bonuses = me.next.bonus_days.map((days) => format(words.bonus,
      {days, reward: reward((rules.streak_bonuses.find((b) => b.days === days) || {}).reward)}));
    find("next-reward").textContent = [format(words.next, {date: me.next.date, streak: me.next.streak,
      reward: reward(me.next.reward)}), ...bonuses].join(" ");
    find("checkin").disabled = me.checked_in_today;
    find("checkin").textContent = me.checked_in_today ? words.checked_today : words.checkin;
    find("chances").textContent = format(words.chances, me.chances);
    drawMakeup(me.makeup);
    PreviewTasks.draw(me.tasks);
  }

  find("checkin").addEventListener("click", () => play("checkin", {}, (outcome) => format(words.checked_in,
    {streak: outcome.streak, reward: reward(outcome.reward)})));
  Preview.start(draw);
})();
