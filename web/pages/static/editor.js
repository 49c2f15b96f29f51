// The campaign editor: a form for the lottery (prizes, weights and the probabilities they give) and the
// definition as JSON for every game. Both send the whole definition to the admin API, which validates it;
// its errors are shown beside their fields.
"use strict";
(() => {
  const root = document.getElementById("editor");
  const campaignId = root.dataset.campaign;
  const {api, refused, showFieldErrors} = Huodong;
  const base = JSON.parse(document.getElementById("definition").textContent);
  const OFFSET_MS = 8 * 3600 * 1000;  // the schedule is edited in Asia/Shanghai (UTC+8, no daylight saving)

  async function save(definition, form) {
    try {
      const saved = campaignId
        ? await api("PUT", `/campaigns/${campaignId}`, definition)
        : await api("POST", "/campaigns", definition);
      window.location.assign(`/admin/campaigns/${saved.id}`);
    } catch (error) {
      refused(error);
      if (error.body && error.body.details) showFieldErrors(form, error.body.details.fields);
    }
  }

  const jsonForm = document.getElementById("json-form");
  jsonForm.addEventListener("submit", (event) => {
    event.preventDefault();
    let definition;
    try { definition = JSON.parse(jsonForm.definition.value); } catch (error) {
      jsonForm.querySelector('[data-error-for="*"]').textContent = error.message;
      return;
    }
    save(definition, jsonForm);
  });
  jsonForm.querySelector("[data-action=import]").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (file) jsonForm.definition.value = await file.text();
  });

  const form = document.getElementById("lottery-form");
  if (!form) return;
  const body = form.querySelector("table.prizes tbody");
  const template = document.getElementById("prize-row");

  const toLocal = (iso) => iso ? new Date(Date.parse(iso) + OFFSET_MS).toISOString().slice(0, 16) : "";
  const fromLocal = (value) => value ? `${value}:00+08:00` : null;
  form.querySelectorAll("input[type=datetime-local]").forEach((input) => { input.value = toLocal(input.dataset.value); });

  function addRow(prize) {
    const row = template.content.firstElementChild.cloneNode(true);
    const index = body.rows.length;
    row.dataset.original = JSON.stringify(prize);
    for (const [name, value] of Object.entries({id: prize.id, name: prize.name, weight: prize.weight,
      stock: prize.stock, amount: prize.reward && prize.reward.amount, cost_fen: prize.reward && prize.reward.cost_fen})) {
      const input = row.querySelector(`[name=${name}]`);
      input.value = value ?? "";
      const field = {id: "id", name: "name", weight: "weight", stock: "stock"}[name];
      input.dataset.field = field ? `config.prizes.${index}.${field}` : `config.prizes.${index}.reward`;
    }
    row.querySelector("[data-action=remove-prize]").addEventListener("click", () => { row.remove(); probabilities(); });
    body.appendChild(row);
  }

  // Shown as the player's chance of each slot: its weight over all weights, 'thanks for playing' included.
  function probabilities() {
    const weights = [...body.rows].map((row) => Number(row.querySelector("[name=weight]").value) || 0);
    const total = weights.reduce((a, b) => a + b, 0) + (Number(form.miss_weight.value) || 0);
    [...body.rows].forEach((row, i) => {
      row.querySelector(".probability").textContent = total ? `${(weights[i] / total * 100).toFixed(2)} %` : "–";
    });
  }

  (base.config.prizes || []).forEach(addRow);
  probabilities();
  form.addEventListener("input", probabilities);
  form.querySelector("[data-action=add-prize]").addEventListener("click", () => {
    addRow({id: `P${body.rows.length + 1}`, name: "", weight: 1, stock: null,
            reward: {type: "points", amount: 10, cost_fen: 10}});
    probabilities();
  });

  // The audience rule is checked by the server as it is typed; its problems show at their line and column.
  const audience = form.querySelector("[data-field=audience]");
  const audienceProblems = form.querySelector("[data-error-for=audience]");
  let checking = null;
  audience.addEventListener("input", () => {
    clearTimeout(checking);
    checking = setTimeout(async () => {
      try {
        const checked = await api("POST", "/audience/check", {expression: audience.value});
        audienceProblems.textContent = checked.problems.map((p) => `${p.line}:${p.column} ${p.message}`).join("; ");
        audience.classList.toggle("invalid", !checked.ok);
      } catch (error) { refused(error); }
    }, 300);
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const prizes = [...body.rows].map((row) => {
      const value = (name) => row.querySelector(`[name=${name}]`).value;
      const number = (name) => value(name) === "" ? null : Number(value(name));
      const prize = {...JSON.parse(row.dataset.original || "{}"), id: value("id"), name: value("name"),
                     weight: number("weight") ?? 0, stock: number("stock")};
      prize.reward = number("amount") === null ? null
        : {...(prize.reward || {type: "points"}), amount: number("amount"), cost_fen: number("cost_fen") ?? 0};
      return prize;
    });
    const budget = form.budget.value === "" ? null : Math.round(Number(form.budget.value) * 100);
    const definition = {...base, name: form.querySelector("[data-field=name]").value, starts_at: fromLocal(form.starts_at.value),
                        ends_at: fromLocal(form.ends_at.value), budget_fen: budget, audience: audience.value.trim() || null,
                        config: {...base.config, prizes, miss_weight: Number(form.miss_weight.value) || 0}};
    const ids = new Set(prizes.map((p) => p.id));
    // Prizes the form removed must not stay named by the rest of the config (fallback, pity).
    if (definition.config.fallback && !ids.has(definition.config.fallback)) delete definition.config.fallback;
    if (definition.config.pity && !ids.has(definition.config.pity.prize)) delete definition.config.pity;
    save(definition, form);
  });
})();
