// A campaign: lifecycle buttons, the forecast chart, the live chart refreshed every few seconds.
"use strict";
(() => {
  const root = document.getElementById("campaign");
  const id = root.dataset.campaign;
  const {api, say, refused, text, yuan} = Huodong;

  document.querySelectorAll("[data-action]").forEach((button) => {
    const action = button.dataset.action;
    if (action === "export") {
      const definition = document.getElementById("definition").textContent;
      button.href = "data:application/json;charset=utf-8," + encodeURIComponent(definition);
      return;
    }
    button.addEventListener("click", async () => {
      if (action === "simulate") return simulate();
      if (action === "publish") {
        // The confirmation lists what this publish changes against the live version (the server's diff).
        const changes = JSON.parse(document.getElementById("changes").textContent);
        const lines = changes.slice(0, 20).map((c) => `${c.op} ${c.path}` + ("value" in c ? ` = ${JSON.stringify(c.value).slice(0, 60)}` : ""));
        if (changes.length > 20) lines.push(`… +${changes.length - 20}`);
        // And warns when the draft's policy, tried in shadow mode, would have refused over 1 % of the last hour's plays.
        const warning = JSON.parse(document.getElementById("shadow-warning").textContent);
        const warned = warning ? "\n\n" + text.shadow_warning.replace("{policy}", warning.policy)
          .replace("{share}", percent(warning.share)).replace("{plays}", warning.plays) + "\n" +
          Object.entries(warning.rules).filter(([, r]) => r.would_refuse).map(([rule, r]) => `${rule}: ${percent(r.share)}`).join("\n") : "";
        if (!window.confirm(`${text.confirm_publish}${warned}\n\n${text.changes}:\n${lines.join("\n") || text.no_changes}`)) return;
      }
      if (action === "end" && !window.confirm(text.confirm_end)) return;
      try {
        await api("POST", `/campaigns/${id}/${action}`);
        window.location.reload();
      } catch (error) { refused(error); }
    });
  });

  // A readable diff between any two versions: each change with its path, the old and the new value.
  const compare = document.getElementById("compare");
  compare && compare.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const changes = await api("GET", `/campaigns/${id}/versions/diff?from=${compare.elements.from.value}&to=${compare.elements.to.value}`);
      const table = document.getElementById("diff");
      table.replaceChildren();
      for (const change of changes) {
        const row = table.insertRow();
        row.insertCell().textContent = change.op;
        row.insertCell().textContent = change.path;
        row.insertCell().textContent = "value" in change ? JSON.stringify(change.value) : "";
      }
      if (!changes.length) table.insertRow().insertCell().textContent = text.no_changes;
    } catch (error) { refused(error); }
  });

  // Rollout alone: the server publishes the live version again with this percentage and nothing else.
  const rollout = document.getElementById("rollout");
  rollout && rollout.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!window.confirm(`${text.confirm_rollout} ${rollout.elements.percent.value} %`)) return;
    try {
      await api("POST", `/campaigns/${id}/rollout`, {percent: Number(rollout.elements.percent.value)});
      window.location.reload();
    } catch (error) { refused(error); }
  });

  const charts = {};
  // One chart per canvas, drawn again with new data.
  function chart(canvasId, config) {
    charts[canvasId] && charts[canvasId].destroy();
    charts[canvasId] = new Chart(document.getElementById(canvasId), config);
    return charts[canvasId];
  }

  async function simulate() {
    try {
      const forecast = await api("POST", `/campaigns/${id}/simulate`, {});
      // The runs' cost spread, the bins past the budget in red: the budget's risk at a glance.
      const {edges_fen: edges, runs} = forecast.cost_histogram;
      const budget = forecast.budget_fen;
      chart("forecast-chart", {type: "bar", data: {
        labels: runs.map((_n, i) => `${yuan(edges[i])}–${yuan(edges[i + 1])}`),
        datasets: [{label: text.runs, data: runs,
                    backgroundColor: runs.map((_n, i) => budget !== null && edges[i + 1] > budget ? "#d9534f" : "#3d84c6")}]},
        options: {animation: false, scales: {x: {title: {display: true, text: text.forecast_cost}}}}});
      const cost = forecast.cost_fen;
      const rows = [["p50", yuan(cost.p50)], ["p95", yuan(cost.p95)], ["p99", yuan(cost.p99)]];
      if (budget !== null) rows.push([text.budget, yuan(budget)], [text.over_budget, `${(forecast.over_budget_share * 100).toFixed(1)} %`]);
      fill(document.getElementById("forecast-numbers"), rows);
      const prizes = Object.entries(forecast.stockout_day || {});
      chart("stockout-chart", {type: "bar", data: {labels: prizes.map(([prize]) => prize), datasets: [
        {label: text.median_stockout_day, data: prizes.map(([, out]) => out.median_day)},
        {label: text.stockout_share, data: prizes.map(([, out]) => Math.round(out.share_of_runs * 100)), yAxisID: "y1"}]},
        options: {animation: false, indexAxis: "x", scales: {y: {beginAtZero: true, suggestedMax: forecast.days},
                                                              y1: {beginAtZero: true, max: 100, position: "right"}}}});
      say(forecast.notes.join(" "));
    } catch (error) { refused(error); }
  }

  const TWO_AXES = {y: {beginAtZero: true}, y1: {beginAtZero: true, position: "right"}};

  // Live charts keep their canvas and only take new data (no flicker every refresh).
  function updateChart(canvasId, type, data, scales) {
    if (!charts[canvasId]) return chart(canvasId, {type, data, options: {animation: false, scales}});
    charts[canvasId].data = data;
    charts[canvasId].update();
    return charts[canvasId];
  }

  // A wait in seconds as people read it: "3.2 s", "4 min 10 s".
  function seconds(value) {
    return value < 60 ? `${value.toFixed(1)} s` : `${Math.floor(value / 60)} min ${Math.round(value % 60)} s`;
  }

  // Rows of cells as text (a name and its value, or a whole row).
  function percent(share) {
    return `${(share * 100).toFixed(share < 0.1 ? 2 : 1)} %`;
  }

  function fill(table, rows) {
    table.replaceChildren();
    for (const cells of rows) {
      const row = table.insertRow();
      for (const cell of cells) row.insertCell().textContent = cell;
    }
  }

  async function refresh() {
    try {
      const activity = await api("GET", `/campaigns/${id}/activity?minutes=30`);
      const minutes = activity.minutes;
      updateChart("live-chart", "line", {labels: minutes.map((m) => m.at.slice(11, 16)), datasets: [
        {label: text.plays, data: minutes.map((m) => m.plays)}, {label: text.wins, data: minutes.map((m) => m.wins)},
        {label: text.cost, data: minutes.map((m) => m.cost_fen / 100), yAxisID: "y1"}]}, TWO_AXES);
      const live = activity.live;
      const stock = Object.entries(live.stock || {}).map(([item, s]) => [`${text.stock_left} ${item}`, `${s.left} / ${s.total}`]);
      const lag = activity.settlement;
      fill(document.getElementById("live-numbers"), [
        [text.spent, yuan(live.spent_fen || 0) + (live.budget_fen ? ` / ${yuan(live.budget_fen)}` : "")],
        [text.plays, minutes.reduce((n, m) => n + m.plays, 0)], ...stock,
        [text.unissued, lag.unissued ? `${lag.unissued}, ${text.oldest_waiting} ${seconds(lag.age_seconds)}` : "0"],
        [text.outbox_lag, seconds(lag.outbox_lag_seconds)]]);
      const samples = activity.samples;
      const items = [...new Set(samples.flatMap((sample) => Object.keys(sample.stock)))];
      const burndown = {labels: samples.map((sample) => sample.at.slice(11, 16)), datasets: [
        ...items.map((item) => ({label: `${text.stock_left} ${item}`, data: samples.map((sample) => sample.stock[item] ?? null)})),
        {label: text.spent, data: samples.map((sample) => sample.spent_fen / 100), yAxisID: "y1"}]};
      if (live.budget_fen) burndown.datasets.push({label: text.budget, data: samples.map(() => live.budget_fen / 100), yAxisID: "y1"});
      updateChart("burndown-chart", "line", burndown, TWO_AXES);
      const variants = document.querySelector("#variant-numbers tbody");
      if (variants) {
        fill(variants, activity.variants.map((v) => [v.variant ?? "–", v.players, v.plays, v.wins, yuan(v.cost_fen)]));
      }
      const fraud = activity.fraud;
      const reasons = Object.entries(activity.refusals).sort((a, b) => b[1] - a[1]);
      updateChart("refusals-chart", "bar", {labels: reasons.map(([code]) => code),
                                            datasets: [{label: text.refusals, data: reasons.map(([, n]) => n)}]}, {});
      fill(document.getElementById("fraud-numbers"), [
        ...Object.entries(fraud.blocked).map(([rule, n]) => [rule, n]),
        ...Object.entries(fraud.shadow).map(([rule, n]) => [`shadow ${rule}`, n]),
        ...Object.entries(fraud.held).map(([rule, n]) => [`held ${rule}`, n]),
        ...Object.entries(fraud.challenges).map(([outcome, n]) => [`challenge ${outcome}`, n])]);
      const hour = fraud.last_hour;
      fill(document.querySelector("#gate-hour tbody"), [
        [text.plays_screened, hour.plays, "", ""],
        ...Object.entries(hour.rules).map(([rule, r]) => [rule, r.refused, r.would_refuse, percent(r.share)])]);
    } catch (error) { refused(error); }
  }
  refresh();
  setInterval(refresh, 5000);
})();
