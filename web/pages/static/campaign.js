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
        if (!window.confirm(`${text.confirm_publish}\n\n${text.changes}:\n${lines.join("\n") || text.no_changes}`)) return;
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

  let forecastChart = null;
  async function simulate() {
    try {
      const forecast = await api("POST", `/campaigns/${id}/simulate`, {});
      const cost = forecast.cost_fen;
      const labels = ["mean", "p50", "p95", "p99", "max"];
      const data = {labels, datasets: [{label: text.forecast_cost, data: labels.map((k) => cost[k] / 100)}]};
      if (forecast.budget_fen) {
        data.datasets.push({label: text.budget, type: "line", data: labels.map(() => forecast.budget_fen / 100)});
      }
      forecastChart && forecastChart.destroy();
      forecastChart = new Chart(document.getElementById("forecast-chart"), {type: "bar", data});
      const table = document.getElementById("forecast-numbers");
      table.replaceChildren();
      for (const [prize, out] of Object.entries(forecast.stockout_day || {})) {
        const row = table.insertRow();
        row.insertCell().textContent = prize;
        row.insertCell().textContent = `${Math.round(out.share_of_runs * 100)} % → ${out.median_day ?? "–"}`;
      }
      say(forecast.notes.join(" "));
    } catch (error) { refused(error); }
  }

  const liveChart = new Chart(document.getElementById("live-chart"), {
    type: "line",
    data: {labels: [], datasets: [{label: text.plays, data: []}, {label: text.wins, data: []},
                                  {label: text.cost, data: [], yAxisID: "y1"}]},
    options: {animation: false, scales: {y: {beginAtZero: true}, y1: {beginAtZero: true, position: "right"}}},
  });

  function fill(table, rows) {
    table.replaceChildren();
    for (const [name, value] of rows) {
      const row = table.insertRow();
      row.insertCell().textContent = name;
      row.insertCell().textContent = value;
    }
  }

  async function refresh() {
    try {
      const activity = await api("GET", `/campaigns/${id}/activity?minutes=30`);
      liveChart.data.labels = activity.minutes.map((m) => m.at.slice(11, 16));
      liveChart.data.datasets[0].data = activity.minutes.map((m) => m.plays);
      liveChart.data.datasets[1].data = activity.minutes.map((m) => m.wins);
      liveChart.data.datasets[2].data = activity.minutes.map((m) => m.cost_fen / 100);
      liveChart.update();
      const live = activity.live;
      const stock = Object.entries(live.stock || {}).map(([item, s]) => [`${text.stock_left} ${item}`, `${s.left} / ${s.total}`]);
      fill(document.getElementById("live-numbers"), [
        [text.spent, yuan(live.spent_fen || 0) + (live.budget_fen ? ` / ${yuan(live.budget_fen)}` : "")],
        [text.plays, activity.minutes.reduce((n, m) => n + m.plays, 0)], ...stock]);
      const fraud = activity.fraud;
      fill(document.getElementById("fraud-numbers"), [
        ...Object.entries(fraud.blocked).map(([rule, n]) => [rule, n]),
        ...Object.entries(fraud.shadow).map(([rule, n]) => [`shadow ${rule}`, n]),
        ...Object.entries(fraud.held).map(([rule, n]) => [`held ${rule}`, n])]);
    } catch (error) { refused(error); }
  }
  refresh();
  setInterval(refresh, 5000);
})();
