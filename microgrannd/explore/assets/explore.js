// microgrannd explorer: steps through a graph that microgrannd.explore computed.
// Every number multiplied here was computed in Python; this script orders the
// units of the current collapse state, adds the running sums (as
// microgrannd/explore/steps.py does, line for line), lays out the graph with
// Graphviz (WebAssembly) and shows the steps.
(function () {
  "use strict";

  const D = JSON.parse(document.getElementById("mg-data").textContent);
  const num = (x) => (x === "inf" ? Infinity : x === "-inf" ? -Infinity : x === "nan" ? NaN : x);
  for (const n of D.nodes) {
    n.data = num(n.data);
    n.grad = num(n.grad);
    n.locals = n.locals.map(num);
    n.flows = n.flows.map(num);
  }
  for (const s of D.scopes) {
    s.locals = s.locals.map((row) => row.map(num));
    s.flows = s.flows.map(num);
    s.outputSet = new Set(s.outputs);
  }
  D.upstream = num(D.upstream);
  const N = D.nodes;
  const S = D.scopes;
  const ROOT = N.length - 1;
  const BACKWARD_COLOR = "#b03a2e";
  // Graphviz takes seconds for 1,500 nodes and minutes for 10,000: a state that draws more is refused
  const MAX_DRAWN = D.maxDrawn;

  // ---------------------------------------------------------------- numbers

  // Python's format(x, ".4g"): 4 significant digits, correctly rounded, ties to even.
  function fmt(x) {
    if (Number.isNaN(x)) return "nan";
    if (x === Infinity) return "inf";
    if (x === -Infinity) return "-inf";
    const sign = x < 0 || Object.is(x, -0) ? "-" : "";
    if (x === 0) return sign + "0";
    const [m, e] = Math.abs(x).toExponential(20).split("e");
    let digits = m.replace(".", "");
    let exp = parseInt(e, 10);
    let head = parseInt(digits.slice(0, 4), 10);
    const rest = digits.slice(4);
    const half = "5" + "0".repeat(rest.length - 1);
    if (rest > half || (rest === half && head % 2 === 1)) head += 1;
    if (head === 10000) { head = 1000; exp += 1; }
    digits = String(head);
    let out;
    if (exp < -4 || exp >= 4) {
      let mant = digits[0] + "." + digits.slice(1);
      mant = mant.replace(/0+$/, "").replace(/\.$/, "");
      out = mant + "e" + (exp < 0 ? "-" : "+") + String(Math.abs(exp)).padStart(2, "0");
    } else if (exp >= 0) {
      out = digits.slice(0, exp + 1) + "." + digits.slice(exp + 1);
      out = out.replace(/0+$/, "").replace(/\.$/, "");
    } else {
      out = ("0." + "0".repeat(-exp - 1) + digits).replace(/0+$/, "").replace(/\.$/, "");
    }
    return sign + out;
  }

  // ---------------------------------------------------------------- units and steps (as steps.py)

  function outermost(i, col) {
    for (const s of N[i].path) if (col.has(s)) return s;
    return -1;
  }

  function units(col) {
    const found = [];
    const byScope = new Map();
    const producer = new Map();
    N.forEach((n, i) => {
      const c = outermost(i, col);
      if (c < 0) {
        if (n.parents.length) {
          producer.set(i, found.length);
          found.push({ key: i, node: i, scope: -1, inputs: n.parents.slice(), outputs: [i] });
        }
      } else if (!byScope.has(c)) {
        const s = S[c];
        byScope.set(c, { key: s.members[s.members.length - 1], node: -1, scope: c,
                         inputs: s.inputs.slice(), outputs: s.outputs.slice() });
      }
    });
    for (const u of byScope.values()) {
      for (const o of u.outputs) producer.set(o, found.length);
      found.push(u);
    }
    const readers = found.map(() => new Set());
    found.forEach((u, k) => {
      for (const i of u.inputs) if (producer.has(i)) readers[producer.get(i)].add(k);
    });
    const waiting = readers.map((r) => r.size);
    const ready = [];
    found.forEach((u, k) => { if (waiting[k] === 0) ready.push(k); });
    const out = [];
    while (ready.length) {
      let best = 0;  // the ready unit with the largest key (keys are unique)
      for (let j = 1; j < ready.length; j++) if (found[ready[j]].key > found[ready[best]].key) best = j;
      const k = ready[best];
      ready.splice(best, 1);
      out.push(found[k]);
      const done = new Set();
      for (const i of found[k].inputs) if (producer.has(i)) done.add(producer.get(i));
      for (const p of done) {
        waiting[p] -= 1;
        if (waiting[p] === 0) ready.push(p);
      }
    }
    if (out.length < found.length) throw new Error("these collapsed calls feed each other: collapse fewer of them");
    return out;
  }

  function walkthrough(col) {
    const order = units(col);
    const steps = order.slice().reverse().map((u, k) => ({ kind: "forward", number: k + 1, of: order.length, unit: u }));
    steps.push({ kind: "seed", number: 1, of: 1 });
    const running = new Map([[ROOT, [D.upstream]]]);
    const totals = new Map([[ROOT, D.upstream]]);
    const back = [];
    for (const u of order) {
      u.inputs.forEach((i, slot) => {
        if (N[i].kind === "constant") return;
        let local, c;
        if (u.node >= 0) {
          local = [N[u.node].locals[slot]];
          c = N[u.node].flows[slot];
        } else {
          const s = S[u.scope];
          local = s.outputs.map((_, j) => s.locals[j][slot]);
          c = s.flows[slot];
        }
        const up = u.outputs.map((o) => (totals.has(o) ? totals.get(o) : 0));
        if (c !== null) {
          if (!running.has(i)) running.set(i, []);
          running.get(i).push(c);
          totals.set(i, totals.has(i) ? totals.get(i) + c : c);
        }
        back.push({ kind: "backward", unit: u, input: i, upstream: up, local: local, contribution: c,
                    running: (running.get(i) || []).slice(), total: totals.has(i) ? totals.get(i) : 0 });
      });
    }
    back.forEach((st, k) => { st.number = k + 1; st.of = back.length; });
    return steps.concat(back);
  }

  function stepText(st) {
    if (st.kind === "seed") return `seed: ${N[ROOT].name}.grad = upstream = ${fmt(D.upstream)}`;
    const u = st.unit;
    const head = `${st.kind} ${st.number}/${st.of}: `;
    const outs = u.outputs.map((o) => N[o].name).join(", ");
    if (st.kind === "forward") {
      const args = u.inputs.map((i) => N[i].name).join(", ");
      const what = u.node >= 0 ? N[u.node].symbol : S[u.scope].name;
      const values = u.outputs.map((o) => fmt(N[o].data)).join(", ");
      return `${head}${outs} = ${what}(${args}) = ${values}`;
    }
    const name = N[st.input].name;
    const source = u.node >= 0 ? outs : `${S[u.scope].name}[${u.scope}]`;
    const terms = st.upstream.map((g, j) => `upstream ${fmt(g)} × local ${fmt(st.local[j])}`).join(" + ");
    if (st.contribution === null) return `${head}${source} -> ${name}: ${terms}: nothing flows (zero gradient)`;
    const sums = st.running.map(fmt).join(" + ");
    const total = st.running.length === 1 ? sums : `${sums} = ${fmt(st.total)}`;
    return `${head}${source} -> ${name}: ${terms} = ${fmt(st.contribution)}; ${name}.grad = ${total}`;
  }

  // ---------------------------------------------------------------- DOT for a state

  const esc = (t) => String(t).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  const q = (t) => '"' + String(t).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, " ") + '"';

  function visiblePath(i, col) {
    // where node i is drawn in state col (null: hidden inside a collapsed call)
    const c = outermost(i, col);
    const path = N[i].path;
    if (c < 0) return path;
    if (S[c].outputSet.has(i) && (S[c].parent < 0 || !hiddenScope(S[c].parent, col))) return path.slice(0, path.indexOf(c));
    return null;
  }

  function hiddenScope(s, col) {
    // s or one of its ancestors is collapsed
    for (let t = s; t >= 0; t = S[t].parent) if (col.has(t)) return true;
    return false;
  }

  function valueNode(i) {
    const n = N[i];
    const color = D.style.kinds[n.kind];
    if (n.kind === "constant") {
      const text = n.label ? `${n.label} = ${fmt(n.data)}` : fmt(n.data);
      return `v${i} [id="v${i}" label=${q(text)} shape=box style="rounded,dashed,filled" fillcolor="${color}" ` +
             `color="#888888" fontcolor="#555555" fontsize=10]`;
    }
    const rows = [];
    if (n.label) rows.push(`<B>${esc(n.label)}</B>`);
    rows.push("data " + esc(fmt(n.data)));
    rows.push("grad " + esc(fmt(n.grad)));
    const cells = rows.map((r) => `<TR><TD>${r}</TD></TR>`).join("");
    return `v${i} [id="v${i}" shape=plain label=<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="3" ` +
           `BGCOLOR="${color}">${cells}</TABLE>>]`;
  }

  function dot(col) {
    const tree = new Map([[-1, { items: [], children: [] }]]);
    const place = (path, stmt) => {
      let parent = -1;
      for (const s of path) {
        if (!tree.has(s)) {
          tree.set(s, { items: [], children: [] });
          tree.get(parent).children.push(s);
        }
        parent = s;
      }
      tree.get(parent).items.push(stmt);
    };
    const edges = [];
    const boxes = new Set();
    N.forEach((n, i) => {
      const path = visiblePath(i, col);
      if (path === null) return;
      place(path, valueNode(i));
      const c = outermost(i, col);
      if (c >= 0) {  // an output of a collapsed call
        if (!boxes.has(c)) {
          boxes.add(c);
          const s = S[c];
          place(path, `c${c} [id="c${c}" label=${q(s.name)} shape=box style="rounded,filled,bold" fillcolor="${D.style.call}"]`);
          s.inputs.forEach((p, k) => {
            const dashed = N[p].kind === "constant" ? ' style=dashed color="#999999"' : "";
            edges.push(`v${p} -> c${c} [id="e_s${c}_${k}"${dashed}]`);
          });
        }
        edges.push(`c${c} -> v${i} [id="f_v${i}"]`);
        return;
      }
      if (!n.parents.length) return;
      place(path, `o${i} [id="o${i}" label=${q(n.symbol)} shape=circle style=filled fillcolor="${D.style.op}" ` +
                  `fontsize=11 width=0.3 margin=0.02 ordering=in]`);
      n.parents.forEach((p, k) => {
        const dashed = N[p].kind === "constant" ? ' style=dashed color="#999999"' : "";
        edges.push(`v${p} -> o${i} [id="e_v${i}_${k}"${dashed}]`);
      });
      edges.push(`o${i} -> v${i} [id="f_v${i}"]`);
    });
    const out = ['digraph microgrannd {',
      'graph [rankdir=LR fontname="Helvetica" nodesep=0.25 ranksep=0.35]',
      'node [fontname="Helvetica" fontsize=11]',
      'edge [fontname="Helvetica" arrowsize=0.7]'];
    const emit = (key, depth) => {
      const t = tree.get(key);
      if (key >= 0) {
        const fill = D.style.clusters[(depth - 1) % D.style.clusters.length];
        out.push(`subgraph cluster_${key} {`, `id="s${key}" label=${q(S[key].name)} style="rounded,filled" ` +
                 `fillcolor="${fill}" color="#7a6fa8" fontcolor="#4b3f86" fontsize=11`);
      }
      out.push(...t.items);
      for (const c of t.children) emit(c, depth + 1);
      if (key >= 0) out.push("}");
    };
    emit(-1, 0);
    out.push(`upstream [id="upstream" label=${q("upstream\n" + fmt(D.upstream))} shape=plaintext fontcolor="${BACKWARD_COLOR}" fontsize=10]`);
    out.push(`v${ROOT} -> upstream [id="f_upstream" dir=back color="${BACKWARD_COLOR}"]`);
    out.push(...edges, "}");
    return out.join("\n");
  }

  // ---------------------------------------------------------------- the page

  const $ = (role) => document.querySelector(`[data-role="${role}"]`);
  const graphBox = $("graph");
  const slider = $("slider");
  let viz = null;
  let collapsed = new Set(D.collapsed);
  let steps = [];
  let pos = 0;
  let playing = null;
  let els = null;  // SVG elements of the current layout
  let selected = null;

  function message(text) {
    $("message").textContent = text || "";
  }

  function layout() {
    const t0 = performance.now();
    const svg = viz.renderSVGElement(dot(collapsed));
    svg.removeAttribute("width");  // scale with the page; the viewBox keeps the proportions
    svg.removeAttribute("height");
    const natural = svg.viewBox.baseVal;
    svg.dataset.width = String(natural.width);
    svg.dataset.height = String(natural.height);
    svg.setAttribute("preserveAspectRatio", "xMidYMin meet");
    els = { values: new Map(), ops: new Map(), calls: new Map(), edges: new Map(), texts: new Map() };
    for (const g of svg.querySelectorAll("g.node")) {
      const id = g.getAttribute("id");
      g.setAttribute("data-node-id", id);
      g.querySelector("title")?.remove();  // the record panel says more than a tooltip of the DOT name
      if (id[0] === "v") {
        const i = Number(id.slice(1));
        els.values.set(i, g);
        if (N[i].kind !== "constant") {
          const texts = [...g.querySelectorAll("text")];
          els.texts.set(i, { data: texts[texts.length - 2], grad: texts[texts.length - 1] });
        }
        g.addEventListener("click", () => showRecord(i));
      } else if (id[0] === "o") {
        const i = Number(id.slice(1));
        els.ops.set(i, g);
        g.addEventListener("click", () => showRecord(i));
      } else if (id[0] === "c") {
        const s = Number(id.slice(1));
        g.setAttribute("data-call", String(s));
        els.calls.set(s, g);
        g.addEventListener("click", () => setCollapsed(s, false));
      }
    }
    for (const g of svg.querySelectorAll("g.edge")) {
      g.querySelector("title")?.remove();
      els.edges.set(g.getAttribute("id"), g);
    }
    for (const g of svg.querySelectorAll("g.cluster")) {
      const s = Number(g.getAttribute("id").slice(1));
      g.setAttribute("data-scope", String(s));
      g.setAttribute("data-scope-name", S[s].name);
      g.querySelector("title")?.remove();
      const label = g.querySelector(":scope > text");
      if (label) label.addEventListener("click", (ev) => { ev.stopPropagation(); setCollapsed(s, true); });
    }
    graphBox.replaceChildren(svg);
    zoom(fitted);
    window.mgTimings = Object.assign(window.mgTimings || {}, { layout: performance.now() - t0 });
  }

  // fitted: the whole graph in the box (at most 1.5 times its natural size); else its natural size, scrolled
  let fitted = true;
  function zoom(fit) {
    fitted = fit;
    const svg = graphBox.querySelector("svg");
    if (!svg) return;
    const w = Number(svg.dataset.width);
    const h = Number(svg.dataset.height);
    const scale = fit ? Math.min(1.5, (graphBox.clientWidth - 16) / w, (graphBox.clientHeight - 16) / h) : 1;
    svg.style.width = Math.max(1, w * scale) + "px";
    svg.style.height = Math.max(1, h * scale) + "px";
    $("zoom").textContent = fit ? "actual size" : "fit";
  }

  function setCollapsed(s, on) {
    const next = new Set(collapsed);
    if (on) next.add(s); else next.delete(s);
    applyState(next);
  }

  function drawnCount(col) {
    // the value nodes, op nodes and collapsed calls a state draws
    let count = 0;
    const boxes = new Set();
    N.forEach((n, i) => {
      if (visiblePath(i, col) === null) return;
      count += 1;
      const c = outermost(i, col);
      if (c >= 0) boxes.add(c);
      else if (n.parents.length) count += 1;
    });
    return count + boxes.size;
  }

  function applyState(next) {
    let fresh;
    try {
      fresh = walkthrough(next);
    } catch (e) {
      message(e.message);
      return;
    }
    const drawn = drawnCount(next);
    if (drawn > MAX_DRAWN && els !== null) {  // (the opening state is checked in Python)
      message(`that would draw ${drawn} nodes, more than the page lays out (${MAX_DRAWN}): expand fewer calls`);
      return;
    }
    if (drawn <= MAX_DRAWN) message("");
    const atEnd = steps.length > 0 && pos === steps.length;
    collapsed = next;
    steps = fresh;
    pos = atEnd ? steps.length : Math.min(pos, forwardCount());
    slider.max = String(steps.length);
    layout();
    show();
  }

  function forwardCount() {
    return steps.filter((st) => st.kind === "forward").length;
  }

  function show() {
    // what is known after the first `pos` steps
    const known = new Set();
    const grads = new Map();
    N.forEach((n, i) => { if (!n.parents.length) known.add(i); });
    for (let k = 0; k < pos; k++) {
      const st = steps[k];
      if (st.kind === "forward") for (const o of st.unit.outputs) known.add(o);
      else if (st.kind === "seed") grads.set(ROOT, D.upstream);
      else if (st.contribution !== null) grads.set(st.input, st.total);
    }
    const cur = pos > 0 ? steps[pos - 1] : null;
    for (const g of graphBox.querySelectorAll(".cur, .cur-in, .changed")) g.classList.remove("cur", "cur-in", "changed");
    for (const [i, g] of els.values) {
      g.classList.toggle("pending", !known.has(i));
      const t = els.texts.get(i);
      if (!t) continue;
      t.data.textContent = "data " + (known.has(i) ? fmt(N[i].data) : "?");
      t.grad.textContent = "grad " + (grads.has(i) ? fmt(grads.get(i)) : "?");
    }
    if (cur) highlight(cur);
    $("counter").textContent = `${pos} / ${steps.length}`;
    slider.value = String(pos);
    $("step").innerHTML = panel(cur);
    document.body.dataset.pos = String(pos);
  }

  function unitElements(u) {
    if (u.scope >= 0) return [els.calls.get(u.scope)];
    return [els.ops.get(u.node), els.values.get(u.node)];
  }

  function highlight(st) {
    if (st.kind === "seed") {
      els.values.get(ROOT)?.classList.add("cur");
      els.texts.get(ROOT)?.grad.classList.add("changed");
      return;
    }
    for (const g of unitElements(st.unit)) g?.classList.add("cur");
    if (st.kind === "forward") {
      for (const o of st.unit.outputs) els.texts.get(o)?.data.classList.add("changed");
      return;
    }
    const slot = st.unit.inputs.indexOf(st.input);
    const edgeId = st.unit.scope >= 0 ? `e_s${st.unit.scope}_${slot}` : `e_v${st.unit.node}_${slot}`;
    els.edges.get(edgeId)?.classList.add("cur");
    els.values.get(st.input)?.classList.add("cur-in");
    els.texts.get(st.input)?.grad.classList.add("changed");
  }

  function panel(st) {
    if (!st) {
      const inputs = N.filter((n) => !n.parents.length && n.kind === "input");
      const shown = inputs.slice(0, 12).map((n) => `${n.name} = ${fmt(n.data)}`).join(", ");
      const more = inputs.length > 12 ? `, and ${inputs.length - 12} more` : "";
      return `<h3>start</h3><div class="line" data-role="step-text">inputs: ${esc(shown || "none")}${more}</div>` +
             `<p class="muted">Press &#x2192; to run the forward pass one node at a time, then the backward pass one edge at a time.</p>`;
    }
    const line = `<div class="line" data-role="step-text">${esc(stepText(st))}</div>`;
    if (st.kind === "forward") {
      return `<h3>forward pass</h3>${line}<p class="muted">Each node computes its value from its inputs.</p>`;
    }
    if (st.kind === "seed") {
      return `<h3>backward pass: the seed</h3>${line}<p>The output's gradient is the upstream gradient, d loss / d ${esc(N[ROOT].name)} = ${esc(fmt(D.upstream))}.</p>`;
    }
    const name = esc(N[st.input].name);
    const prods = st.upstream.map((g, j) => `${esc(fmt(g))} &#xD7; ${esc(fmt(st.local[j]))}`).join(" + ");
    const eq = st.contribution === null
      ? `<div class="eq">${prods}: nothing flows</div>`
      : `<div class="eq">${prods} = <b>${esc(fmt(st.contribution))}</b></div>`;
    const sum = st.contribution === null ? "" : st.running.length === 1
      ? `<div class="sum">${name}.grad = ${esc(fmt(st.total))}</div>`
      : `<div class="sum">${name}.grad = ${st.running.map((c) => esc(fmt(c))).join(" + ")} = <b>${esc(fmt(st.total))}</b> (running sum)</div>`;
    const terms = st.upstream.length > 1 ? ` (one term per output of ${esc(S[st.unit.scope].name)}[${st.unit.scope}])` : "";
    return `<h3>backward pass: chain rule</h3>${line}<p class="muted">upstream gradient &#xD7; local derivative = contribution to ${name}${terms}</p>${eq}${sum}`;
  }

  function showRecord(i) {
    const n = N[i];
    for (const g of graphBox.querySelectorAll(".selected")) g.classList.remove("selected");
    els.values.get(i)?.classList.add("selected");
    selected = i;
    const path = n.path.map((s) => `${S[s].name}[${s}]`).join(" &gt; ") || "(top level)";
    const inputs = n.parents.map((p) => `${esc(N[p].name)} = ${esc(String(N[p].data))}`).join("<br>") || "(a leaf)";
    const locals = n.parents.map((p, k) => `d ${esc(n.name)} / d ${esc(N[p].name)} = ${esc(String(n.locals[k]))}`).join("<br>") || "(none)";
    const rows = [
      ["node", esc(n.name)], ["kind", esc(n.kind)], ["op", n.op ? `${esc(n.op)} (${esc(n.symbol)})` : "(a leaf)"],
      ["inputs", inputs], ["data", esc(String(n.data))],
      ["grad", n.kind === "constant" ? "(a constant: no gradient)" : esc(String(n.grad))],
      ["local derivatives", locals], ["scope path", path],
    ];
    $("record").innerHTML = `<h3>record</h3><table data-node="${i}">` +
      rows.map(([k, v]) => `<tr><td>${k}</td><td data-field="${k}">${v}</td></tr>`).join("") + "</table>";
  }

  function go(k) {
    pos = Math.max(0, Math.min(steps.length, k));
    show();
  }

  function play() {
    if (playing) {
      clearInterval(playing);
      playing = null;
    } else {
      if (pos >= steps.length) pos = 0;
      playing = setInterval(() => {
        if (pos >= steps.length) { play(); return; }
        go(pos + 1);
      }, 700);
    }
    $("play").textContent = playing ? "pause" : "play";
    document.body.dataset.playing = playing ? "1" : "";
  }

  function expandLevel() {
    let depth = Infinity;
    for (const s of collapsed) if (!hiddenScope(S[s].parent, collapsed) || S[s].parent < 0) depth = Math.min(depth, S[s].depth);
    if (depth === Infinity) return;
    applyState(new Set([...collapsed].filter((s) => S[s].depth !== depth)));
  }

  document.addEventListener("keydown", (ev) => {
    if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
    const keys = { ArrowRight: () => go(pos + 1), ArrowLeft: () => go(pos - 1), Home: () => go(0),
                   End: () => go(steps.length), " ": play };
    const act = keys[ev.key];
    if (!act) return;
    ev.preventDefault();
    act();
  });
  slider.addEventListener("input", () => go(Number(slider.value)));
  $("first").addEventListener("click", () => go(0));
  $("prev").addEventListener("click", () => go(pos - 1));
  $("next").addEventListener("click", () => go(pos + 1));
  $("last").addEventListener("click", () => go(steps.length));
  $("play").addEventListener("click", play);
  $("collapse-all").addEventListener("click", () => applyState(new Set(S.map((_, k) => k))));
  $("expand-level").addEventListener("click", expandLevel);
  $("zoom").addEventListener("click", () => zoom(!fitted));
  window.addEventListener("resize", () => zoom(fitted));

  // for tests and the curious: the same functions the page uses
  window.microgrannd = { fmt, walkthrough, stepText, dot, state: () => [...collapsed].sort((a, b) => a - b),
                         setState: (list) => applyState(new Set(list)), go, steps: () => steps.map(stepText),
                         grads: () => { const g = {}; for (const st of steps) if (st.kind === "backward" && st.contribution !== null) g[st.input] = st.total; g[ROOT] = D.upstream; return g; } };

  const t0 = performance.now();
  Viz.instance().then((v) => {
    viz = v;
    window.mgTimings = { viz: performance.now() - t0 };
    applyState(collapsed);
    document.body.dataset.ready = "1";
  }).catch((e) => {
    message("could not lay out the graph: " + e);
    console.error(e);
  });
})();
