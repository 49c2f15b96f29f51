// A form built from a JSON Schema (the API's /forms/...): objects become groups, lists of objects become
// items to add and remove, enums selects, booleans checkboxes, numbers number inputs, instants inputs in the
// document's time zone; a field marked x-reward picks its reward type and shows that type's params. The form
// edits one JSON document in place; the server validates it (nothing here decides what is allowed).
"use strict";

const SchemaForm = (() => {
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (key === "data") Object.assign(node.dataset, value);
      else node[key] = value;
    }
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

  const typeOf = (schema) => Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);

  // An instant shown and typed as wall-clock time in an IANA zone (the campaign's business zone).
  function wallClock(ms, zone) {
    const parts = Object.fromEntries(new Intl.DateTimeFormat("en-CA", {timeZone: zone, hourCycle: "h23",
      year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit"})
      .formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
    return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}`;
  }
  function toLocal(iso, zone) {
    if (!iso) return "";
    try { return wallClock(Date.parse(iso), zone); } catch (error) { return wallClock(Date.parse(iso), "UTC"); }
  }
  function fromLocal(local, zone) {
    if (!local) return null;
    const guess = Date.parse(`${local}:00Z`);
    let offset = 0;
    try {
      for (let i = 0; i < 2; i++) offset = Date.parse(`${wallClock(guess - offset, zone)}:00Z`) - (guess - offset);
    } catch (error) { offset = 0; }  // an unknown zone: the server refuses the timezone field itself
    return new Date(guess - offset).toISOString().replace(".000Z", "Z");
  }

  function build(root, options) {
    const {schema, rewards = {}, labels = {}, text = {}, onChange = () => {}} = options;
    const doc = {value: structuredClone(options.value)};
    const label = (name) => labels[name] || String(name).replaceAll("_", " ");
    const zone = () => doc.value.timezone || ((schema.properties || {}).timezone || {}).default || "UTC";

    const getIn = (path) => path.reduce((node, key) => (node == null ? undefined : node[key]), doc.value);
    function setIn(path, value) {
      let node = doc.value;
      path.slice(0, -1).forEach((key) => { if (!isObject(node[key]) && !Array.isArray(node[key])) node[key] = {}; node = node[key]; });
      if (value === undefined) delete node[path.at(-1)]; else node[path.at(-1)] = value;
      onChange(doc.value);
    }

    // What a new list item starts as: its required fields, empty.
    function skeleton(itemSchema) {
      if (itemSchema["x-reward"]) return {type: Object.keys(rewards)[0], cost_fen: 0};
      const item = {};
      for (const name of itemSchema.required || []) {
        const field = itemSchema.properties[name];
        const type = typeOf(field);
        item[name] = field.default ?? (field.enum ? field.enum[0] : type === "string" ? "" :
          type === "integer" || type === "number" ? (field.minimum ?? 0) : type === "array" ? [] : type === "object" ? {} : null);
      }
      return item;
    }

    function errorSlot(path) { return el("p", {className: "field-error", data: {errorFor: path.join(".")}}); }

    function scalar(fieldSchema, path) {
      const value = getIn(path);
      const type = typeOf(fieldSchema);
      const field = path.join(".");
      const nullable = fieldSchema.nullable;
      let input, hint = null;
      if (fieldSchema.enum) {
        input = el("select", {name: String(path.at(-1))});
        if (nullable || value === undefined) input.append(el("option", {value: "", textContent: "—"}));
        fieldSchema.enum.forEach((choice) => input.append(el("option", {value: choice, textContent: labels[choice] || choice})));
        input.value = value ?? fieldSchema.default ?? "";
        input.disabled = Boolean(fieldSchema.readOnly);
        input.addEventListener("change", () => setIn(path, input.value === "" ? (nullable ? null : undefined) : input.value));
      } else if (type === "boolean") {
        input = el("input", {type: "checkbox", checked: value ?? fieldSchema.default ?? false});
        input.addEventListener("change", () => setIn(path, input.checked));
      } else if (type === "integer" || type === "number") {
        input = el("input", {type: "number", step: type === "integer" ? "1" : "any", value: value ?? ""});
        if (fieldSchema.minimum !== undefined) input.min = fieldSchema.minimum;
        if (fieldSchema.maximum !== undefined) input.max = fieldSchema.maximum;
        if (fieldSchema.default !== undefined && fieldSchema.default !== null) input.placeholder = fieldSchema.default;
        // Amounts are kept in fen, as the API has them; the yuan they make is shown beside.
        hint = String(path.at(-1)).endsWith("_fen") ? el("small", {className: "hint"}) : null;
        const showYuan = () => { if (hint) hint.textContent = input.value === "" ? "" : `= ¥${(Number(input.value) / 100).toFixed(2)}`; };
        showYuan();
        input.addEventListener("input", () => {
          showYuan();
          setIn(path, input.value === "" ? (nullable ? null : undefined) : Number(input.value));
        });
      } else if (fieldSchema.format === "date-time") {
        input = el("input", {type: "datetime-local", value: toLocal(value, zone())});
        input.addEventListener("input", () => setIn(path, fromLocal(input.value, zone())));
      } else {
        input = el("input", {type: "text", value: value ?? ""});
        if (fieldSchema.maxLength) input.maxLength = fieldSchema.maxLength;
        if (fieldSchema.default) input.placeholder = fieldSchema.default;
        input.addEventListener("input", () => setIn(path, input.value === "" && nullable ? null : input.value));
      }
      input.name = String(path.at(-1));
      input.dataset.field = field;
      return wrap(fieldSchema, path, input, hint);
    }

    function wrap(fieldSchema, path, ...controls) {
      const title = fieldSchema.description || "";
      return el("label", {className: `field ${typeOf(fieldSchema) || "any"}`, title},
        el("span", {textContent: label(path.at(-1))}), ...controls, el("span", {className: "field-error"}));
    }

    // A list of strings (user ids, devices, addresses): one a line.
    function lines(fieldSchema, path) {
      const area = el("textarea", {rows: 3, value: (getIn(path) || []).join("\n"), name: String(path.at(-1))});
      area.dataset.field = path.join(".");
      area.addEventListener("input", () => setIn(path, area.value.split("\n").map((s) => s.trim()).filter(Boolean)));
      return wrap(fieldSchema, path, area);
    }

    // Free-form JSON (an object without a schema): parsed as typed, flagged while it is not JSON.
    function json(fieldSchema, path) {
      const area = el("textarea", {rows: 4, spellcheck: false, className: "code", value: JSON.stringify(getIn(path) ?? {}, null, 1)});
      area.dataset.field = path.join(".");
      area.addEventListener("input", () => {
        try { setIn(path, JSON.parse(area.value || "{}")); area.classList.remove("invalid"); }
        catch (error) { area.classList.add("invalid"); }
      });
      return wrap(fieldSchema, path, area);
    }

    // A part of the document a checkbox switches on (to `on()`) and off (to `off`), drawn by `render` while
    // `present()` (by default: while it holds something other than null).
    function switched(path, {className, on, off, render, present = () => getIn(path) != null}) {
      const toggle = el("input", {type: "checkbox", checked: present()});
      toggle.dataset.toggle = path.join(".");
      const body = el("div");
      const draw = () => body.replaceChildren(present() ? render() : "");
      toggle.addEventListener("change", () => { setIn(path, toggle.checked ? on() : off); draw(); });
      draw();
      return el("div", {className},
        el("label", {className: "switch"}, toggle, el("span", {textContent: label(path.at(-1))})), body);
    }

    // A variant's overrides of the document's `x-overrides` part (the game's config): each top-level setting is
    // either left to the base (unticked, absent from the overrides) or given whole here, starting from the base's
    // value -- the server merges objects key by key and replaces lists, so a whole setting is always a valid one.
    function overrides(fieldSchema, path) {
      const part = fieldSchema["x-overrides"];
      if (!isObject(getIn(path))) setInQuiet(path, {});
      const settings = Object.entries(schema.properties[part].properties).map(([name, settingSchema]) =>
        switched([...path, name], {className: "override", off: undefined, present: () => name in getIn(path),
          on: () => structuredClone((doc.value[part] || {})[name] ?? settingSchema.default ?? null),
          render: () => node(settingSchema, [...path, name])}));
      return el("fieldset", {className: "group overrides", data: {path: path.join(".")}},
        el("legend", {textContent: label(path.at(-1)), title: fieldSchema.description || ""}), ...settings,
        errorSlot(path));
    }

    // A group that can be absent (null): a checkbox switches it on (with its defaults) and off.
    function optional(fieldSchema, path, render) {
      return switched(path, {className: "optional", on: () => ({}), off: null, render});
    }

    function reward(fieldSchema, path) {
      const box = el("div", {className: "reward"});
      const draw = () => {
        const value = getIn(path);
        const select = el("select", {name: "type"});
        select.dataset.field = [...path, "type"].join(".");
        if (fieldSchema.nullable) select.append(el("option", {value: "", textContent: text.no_reward || "—"}));
        Object.keys(rewards).forEach((type) => select.append(el("option", {value: type, textContent: labels[type] || type})));
        select.value = value ? value.type : "";
        select.addEventListener("change", () => {
          const old = getIn(path);
          setIn(path, select.value ? {type: select.value, cost_fen: old ? old.cost_fen ?? 0 : 0} : null);
          draw();
        });
        const params = value && rewards[value.type]
          ? Object.entries(rewards[value.type].properties).map(([name, s]) => node(s, [...path, name])) : [];
        box.replaceChildren(el("span", {className: "legend", textContent: label(path.at(-1))}), select, ...params,
          errorSlot(path));
      };
      draw();
      return box;
    }

    function group(fieldSchema, path) {
      const children = Object.entries(fieldSchema.properties).map(([name, s]) => node(s, [...path, name]));
      if (!path.length) return el("div", {className: "fields"}, ...children);
      return el("fieldset", {className: "group", data: {path: path.join(".")}},
        el("legend", {textContent: label(path.at(-1)), title: fieldSchema.description || ""}), ...children, errorSlot(path));
    }

    function list(fieldSchema, path) {
      const box = el("fieldset", {className: "list", data: {path: path.join(".")}});
      const itemSchema = fieldSchema.items;
      const draw = () => {
        const items = getIn(path) || [];
        const rows = items.map((_item, index) => {
          const remove = el("button", {type: "button", textContent: "×", title: text.remove || "Remove"});
          remove.dataset.action = "remove-item";
          remove.addEventListener("click", () => { const now = [...getIn(path)]; now.splice(index, 1); setIn(path, now); draw(); });
          // Where the server's rules give this item a probability (a prize, a card), it shows here.
          const chance = itemSchema.properties && "weight" in itemSchema.properties
            ? el("output", {className: "probability", data: {testid: "probability", rules: `${path.at(-1)}.${index}`}}) : null;
          return el("div", {className: "item", data: {index: String(index)}},
            el("div", {className: "item-head"}, el("b", {textContent: `#${index + 1}`}), chance, remove),
            itemSchema.properties
              ? el("div", {className: "fields"}, ...Object.entries(itemSchema.properties).map(([name, s]) => node(s, [...path, index, name])))
              : node(itemSchema, [...path, index]));
        });
        const add = el("button", {type: "button", textContent: `+ ${label(path.at(-1))}`});
        add.dataset.action = "add-item";
        add.addEventListener("click", () => { setIn(path, [...(getIn(path) || []), skeleton(itemSchema)]); draw(); });
        box.replaceChildren(el("legend", {textContent: label(path.at(-1)), title: fieldSchema.description || ""}),
          ...rows, add, errorSlot(path));
      };
      draw();
      return box;
    }

    function node(fieldSchema, path) {
      const type = typeOf(fieldSchema);
      const value = getIn(path);
      if (fieldSchema["x-reward"]) return reward(fieldSchema, path);
      if (fieldSchema["x-overrides"] && schema.properties && schema.properties[fieldSchema["x-overrides"]]) {
        return overrides(fieldSchema, path);
      }
      if (type === "object" && !fieldSchema.properties) return json(fieldSchema, path);
      if (type === "object") {
        if (fieldSchema.nullable) return optional(fieldSchema, path, () => group(fieldSchema, path));
        if (!isObject(value) && path.length) setInQuiet(path, {});
        return group(fieldSchema, path);
      }
      if (type === "array") return typeOf(fieldSchema.items) === "object" ? list(fieldSchema, path) : lines(fieldSchema, path);
      return scalar(fieldSchema, path);
    }

    // A group the document leaves out is edited as an empty one (the server fills its defaults).
    function setInQuiet(path, value) {
      let node = doc.value;
      path.slice(0, -1).forEach((key) => { node = node[key]; });
      node[path.at(-1)] = value;
    }

    function render() { root.replaceChildren(node(schema, [])); }
    render();

    return {
      value: () => doc.value,
      // Load another document (an imported file) into the form.
      load(value) { doc.value = structuredClone(value); render(); onChange(doc.value); },
      render,
      // The rules the server derived (each prize's probability) beside the items they belong to.
      showRules(rules) {
        root.querySelectorAll("output[data-rules]").forEach((out) => {
          const [key, index] = out.dataset.rules.split(".");
          const found = rules && Array.isArray(rules[key]) ? rules[key][Number(index)] : null;
          out.textContent = found && typeof found.probability === "number" ? `${(found.probability * 100).toFixed(2)} %` : "";
        });
      },
    };
  }

  return {build, toLocal, fromLocal};
})();
