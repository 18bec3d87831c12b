// rnnviz play control: heatmap panels on one step scale, a step frame moved by Play/Stop or the slider.
// Runs in the Streamlit page (st.components.v2, shadow root); draws on canvas; fetches nothing.
// Data (built by rnnviz_app/play.py): {sig, panels: [{title, rows, steps, values (base64 float32,
// row-major rows x steps), lo, hi, signed, labels, marks, group}], max_step, cell_w, cell_h, fps, start}.

const DIVERGING = [  // ColorBrewer RdBu, blue (low) .. white .. red (high)
  [5, 48, 97], [33, 102, 172], [67, 147, 195], [146, 197, 222], [209, 229, 240], [247, 247, 247],
  [253, 219, 199], [244, 165, 130], [214, 96, 77], [178, 24, 43], [103, 0, 31]];
const NEUTRAL = [[247, 247, 247], [204, 204, 204], [150, 150, 150], [99, 99, 99], [37, 37, 37]];  // greys
const LEFT = 64, PAD_TOP = 6, AXIS_H = 22, TITLE_H = 20, GAP = 10, MARK_H = 8;
const WORD_PX = 56;  // the least room for a word label on a strip of narrow columns

function decode(b64) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Float32Array(bytes.buffer);
}

function ramp(stops, f) {
  if (!(f >= 0)) f = 0;
  if (f > 1) f = 1;
  const x = f * (stops.length - 1), i = Math.min(Math.floor(x), stops.length - 2), w = x - i;
  const a = stops[i], b = stops[i + 1];
  return [a[0] + (b[0] - a[0]) * w, a[1] + (b[1] - a[1]) * w, a[2] + (b[2] - a[2]) * w];
}

function bitmap(p) {
  // one pixel per cell, scaled up with smoothing off: a frame costs one drawImage per panel
  const c = document.createElement("canvas");
  c.width = Math.max(p.steps, 1); c.height = Math.max(p.rows, 1);
  const ctx = c.getContext("2d");
  const img = ctx.createImageData(c.width, c.height);
  const stops = p.signed ? DIVERGING : NEUTRAL, span = p.hi - p.lo || 1;
  for (let r = 0; r < p.rows; r++) {
    for (let t = 0; t < p.steps; t++) {
      const v = p.vals[r * p.steps + t], o = 4 * (r * c.width + t);
      if (Number.isFinite(v)) {
        const rgb = ramp(stops, (v - p.lo) / span);
        img.data[o] = rgb[0]; img.data[o + 1] = rgb[1]; img.data[o + 2] = rgb[2]; img.data[o + 3] = 255;
      }  // NaN: transparent
    }
  }
  ctx.putImageData(img, 0, 0);
  return c;
}

function fit(ctx, text, px) {
  // text trimmed to px with an ellipsis (never cut without one); the hover shows it whole
  let w = String(text);
  if (ctx.measureText(w).width <= px) return w;
  while (w.length > 1 && ctx.measureText(w + "\u2026").width > px) w = w.slice(0, -1);
  return w.length > 1 || ctx.measureText(w + "\u2026").width <= px ? w + "\u2026" : "";
}

function stepOf(d, col) {
  // the first step of a column (columns hold k steps from step0 on)
  return (d.step0 || 0) + col * (d.k || 1);
}

function colText(d, col) {
  const s = stepOf(d, col), k = d.k || 1;
  if (k <= 1) return `step ${s}`;
  const e = Math.min(s + k - 1, d.last_step === undefined ? s + k - 1 : d.last_step);
  return `steps ${s}\u2013${e}`;
}

function niceStep(span, px, minPx) {
  // integer tick spacing (1, 2, 5, 10, ...) with at least minPx pixels between ticks
  const raw = Math.max(1, (minPx * span) / Math.max(px, 1));
  const e = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (m * e >= raw) return Math.max(1, Math.round(m * e));
  return Math.max(1, Math.round(10 * e));
}

function layout(state) {
  const d = state.data;
  let y = PAD_TOP;
  for (const p of state.panels) {
    p.top = y + TITLE_H + (p.marks && p.marks.length ? MARK_H : 0);
    p.h = p.tokens ? 18 : Math.max(p.rows * p.cellH, 4);
    p.w = p.steps * d.cell_w;
    y = p.top + p.h + AXIS_H + GAP;
  }
  state.height = y;
  state.width = LEFT + (d.max_step + 1) * d.cell_w + 12;
}

function drawStatic(state) {
  // everything but the step frame: drawn once per data change
  const d = state.data, cv = state.base, ctx = cv.getContext("2d");
  const dpr = window.devicePixelRatio || 1;
  for (const c of [state.base, state.over]) {
    c.width = Math.ceil(state.width * dpr); c.height = Math.ceil(state.height * dpr);
    c.style.width = state.width + "px"; c.style.height = state.height + "px";
    c.getContext("2d").setTransform(dpr, 0, 0, dpr, 0, 0);
  }
  ctx.clearRect(0, 0, state.width, state.height);
  ctx.font = "12px sans-serif"; ctx.fillStyle = "#31333f"; ctx.textBaseline = "middle";
  let wordLabels = 0;
  for (const p of state.panels) {
    // a word strip whose columns are too narrow for a word labels one column in `every` (its first
    // word, trimmed with an ellipsis), ticked at the column's left edge; the title says so
    const wordEvery = p.tokens && d.cell_w < 8 ? Math.ceil(WORD_PX / Math.max(d.cell_w, 0.1)) : 1;
    const title = wordEvery > 1 ? `${p.title} (one column in ${wordEvery} shows its first word; hover for a column's words)`
                            : p.title;
    ctx.font = "bold 13px sans-serif"; ctx.textAlign = "left";
    ctx.fillText(fit(ctx, title, Math.max(state.width - LEFT - 12, 40)), LEFT,
                 p.top - TITLE_H / 2 - (p.marks && p.marks.length ? MARK_H : 0));
    ctx.font = "11px sans-serif";
    ctx.imageSmoothingEnabled = false;
    if (p.tokens && wordEvery === 1) {
      // a text model's words, one per column, cut to the column's width (the hover shows each whole)
      ctx.save(); ctx.textAlign = "center"; ctx.fillStyle = "#31333f";
      for (let t = 0; t < p.steps; t++) {
        const w = fit(ctx, p.tokens[t], d.cell_w - 2);
        if (w) { ctx.fillText(w, LEFT + (t + 0.5) * d.cell_w, p.top + p.h / 2); wordLabels++; }
      }
      ctx.restore();
    } else if (p.tokens) {
      ctx.save(); ctx.textAlign = "left"; ctx.fillStyle = "#31333f"; ctx.strokeStyle = "#9a9a9a"; ctx.lineWidth = 1;
      for (let t = 0; t < p.steps; t += wordEvery) {
        const x = LEFT + t * d.cell_w;
        ctx.beginPath(); ctx.moveTo(Math.round(x) + 0.5, p.top + 2); ctx.lineTo(Math.round(x) + 0.5, p.top + p.h - 2);
        ctx.stroke();
        const w = fit(ctx, p.tokens[t], Math.min(wordEvery * d.cell_w, LEFT + p.w - x) - 6);
        if (w) { ctx.fillText(w, x + 3, p.top + p.h / 2); wordLabels++; }
      }
      ctx.restore();
    } else {
      ctx.drawImage(p.bmp, LEFT, p.top, p.w, p.h);
    }
    ctx.strokeStyle = "#c0c0c0"; ctx.lineWidth = 1; ctx.strokeRect(LEFT - 0.5, p.top - 0.5, p.w + 1, p.h + 1);
    // row labels: as many as fit 12 px apart
    const every = Math.max(1, Math.ceil(12 / p.cellH));
    ctx.textAlign = "right"; ctx.fillStyle = "#31333f";
    const shown = p.short || p.labels;
    for (let r = 0; r < p.rows; r += every) ctx.fillText(fit(ctx, shown[r], LEFT - 6), LEFT - 4, p.top + (r + 0.5) * p.cellH);
    // integer step ticks under the panel, at least 36 px apart
    const tick = niceStep(p.steps, p.w, 36 + 6 * String(stepOf(d, p.steps)).length);
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    for (let t = 0; t < p.steps; t += tick) {
      const x = LEFT + (t + 0.5) * d.cell_w;
      ctx.fillRect(x - 0.5, p.top + p.h + 1, 1, 3);
      ctx.fillText(String(stepOf(d, t)), x, p.top + p.h + 5);
    }
    ctx.textBaseline = "middle";
    // marked steps (e.g. the marker demo's true steps): small triangles above the panel
    ctx.fillStyle = "#e07b00";
    for (const t of p.marks || []) {
      const x = LEFT + (t + 0.5) * d.cell_w;
      ctx.beginPath(); ctx.moveTo(x - 4, p.top - MARK_H); ctx.lineTo(x + 4, p.top - MARK_H); ctx.lineTo(x, p.top - 1);
      ctx.closePath(); ctx.fill();
    }
    ctx.fillStyle = "#31333f";
  }
  state.root.dataset.wordLabels = String(wordLabels);  // words drawn on the strips (0: none)
}

function drawFrame(state) {
  const t0 = performance.now();
  const d = state.data, ctx = state.over.getContext("2d"), step = state.step;
  ctx.clearRect(0, 0, state.width, state.height);
  for (const p of state.panels) {
    const ended = step >= p.steps;
    const s = Math.min(step, p.steps - 1);
    if (s < 0) continue;
    const x = LEFT + s * d.cell_w;
    ctx.lineWidth = 2; ctx.strokeStyle = "#000";
    ctx.setLineDash(ended ? [4, 3] : []);
    ctx.strokeRect(x - 1, p.top - 1, Math.max(d.cell_w, 2) + 2, p.h + 2);
  }
  ctx.setLineDash([]);
  state.label.textContent = stepText(state);
  state.slider.value = String(step);
  state.root.dataset.step = String(step);
  state.draws += 1; state.drawMs += performance.now() - t0;
  state.root.dataset.draws = String(state.draws);
  state.root.dataset.drawMs = state.drawMs.toFixed(2);
}

function stepText(state) {
  const ended = [];
  for (const p of state.panels) if (p.group && state.step >= p.steps && !ended.includes(p.group)) ended.push(p.group);
  const d = state.data;
  let s = (d.k || 1) > 1 || d.step0 ? `${colText(d, state.step).replace(/^s/, "S")} (last step ${d.last_step})`
    : `Step ${state.step} (last step ${d.max_step})`;
  if (ended.length) s += ` (${ended.join(" and ")} ended at its last step: dashed frame)`;
  return s;
}

function stop(state) {
  state.playing = false;
  if (state.raf) cancelAnimationFrame(state.raf);
  state.raf = 0;
  state.button.textContent = "▶ Play";
  state.button.setAttribute("aria-label", "Play");
  state.root.dataset.playing = "false";
}

function play(state) {
  if (state.step >= state.data.max_step) state.step = 0;
  state.playing = true;
  state.button.textContent = "■ Stop";
  state.button.setAttribute("aria-label", "Stop");
  state.root.dataset.playing = "true";
  let last = performance.now(), acc = 0;
  const tickFn = (now) => {
    if (!state.playing) return;
    acc += now - last; last = now;
    const every = 1000 / state.fps;
    if (acc >= every) {
      const n = Math.floor(acc / every);
      acc -= n * every;
      state.step = Math.min(state.step + n, state.data.max_step);
      drawFrame(state);
      if (state.step >= state.data.max_step) { stop(state); return; }
    }
    state.raf = requestAnimationFrame(tickFn);
  };
  drawFrame(state);
  state.raf = requestAnimationFrame(tickFn);
}

function hover(state, ev) {
  const rect = state.over.getBoundingClientRect();
  const x = ev.clientX - rect.left, y = ev.clientY - rect.top, d = state.data;
  for (const p of state.panels) {
    if (y >= p.top && y < p.top + p.h && x >= LEFT && x < LEFT + p.w) {
      const t = Math.floor((x - LEFT) / d.cell_w), r = Math.floor((y - p.top) / p.cellH);
      const where = colText(d, t);
      if (p.tokens) { state.tip.textContent = `${p.title} · ${where}: ${(p.token_tips || p.tokens)[t]}`; return; }
      const v = p.tips[r * p.steps + t];
      const mean = (d.k || 1) > 1 ? " (mean)" : "";
      state.tip.textContent = `${p.title} · ${where} · ${p.labels[r]}${mean}: ${Number.isFinite(v) ? v.toPrecision(3) : "no value"}`;
      return;
    }
  }
  state.tip.textContent = "\u00a0";
}

function legend(data) {
  // colour bar of the heatmaps (first signed/unsigned scale found) and the marks' meaning
  const box = document.createElement("div"); box.className = "legend";
  const p = data.panels.find((q) => q.group && !q.strip) || data.panels[0];
  const lo = document.createElement("span"), hi = document.createElement("span");
  lo.textContent = Number(p.lo).toPrecision(2); hi.textContent = Number(p.hi).toPrecision(2);
  const c = document.createElement("canvas"); c.width = 160; c.height = 12; c.className = "ramp";
  const ctx = c.getContext("2d");
  for (let x = 0; x < c.width; x++) {
    const rgb = ramp(p.signed ? DIVERGING : NEUTRAL, x / (c.width - 1));
    ctx.fillStyle = `rgb(${rgb[0]},${rgb[1]},${rgb[2]})`; ctx.fillRect(x, 0, 1, c.height);
  }
  const name = document.createElement("span"); name.textContent = p.legend || "value";
  box.append(name, lo, c, hi);
  if (data.panels.some((q) => q.marks && q.marks.length)) {
    const m = document.createElement("span"); m.className = "mark"; m.textContent = "\u25BC " + (data.marks_legend || "marked step");
    box.append(m);
  }
  return box;
}

function build(root, data) {
  const state = {data, root, draws: 0, drawMs: 0, playing: false, raf: 0};
  root.innerHTML = "";
  root.dataset.testid = "rnnviz-play";
  const bar = document.createElement("div"); bar.className = "bar";
  state.button = document.createElement("button");
  state.button.type = "button"; state.button.className = "play";
  state.slider = document.createElement("input");
  state.slider.type = "range"; state.slider.min = "0"; state.slider.max = String(data.max_step); state.slider.step = "1";
  state.slider.setAttribute("aria-label", "Step");
  state.speed = document.createElement("select");
  state.speed.setAttribute("aria-label", "Speed");
  for (const [v, name] of [[Math.max(1, Math.round(data.fps / 3)), "slow"], [data.fps, "normal"], [data.fps * 3, "fast"]]) {
    const o = document.createElement("option"); o.value = String(v); o.textContent = name; state.speed.appendChild(o);
  }
  state.speed.value = String(data.fps);
  state.fps = data.fps;
  state.label = document.createElement("span"); state.label.className = "label";
  bar.append(state.button, state.slider, state.speed, state.label);
  root.append(bar, legend(data));
  const stack = document.createElement("div"); stack.className = "stack";
  state.base = document.createElement("canvas"); state.base.className = "base";
  state.over = document.createElement("canvas"); state.over.className = "over";
  stack.append(state.base, state.over);
  state.tip = document.createElement("div"); state.tip.className = "tip"; state.tip.textContent = "\u00a0";
  root.append(stack, state.tip);
  state.panels = data.panels.map((p) => {
    const q = Object.assign({}, p);
    q.vals = p.tokens ? new Float32Array(0) : decode(p.values);
    q.tips = p.raw ? decode(p.raw) : q.vals;
    q.cellH = p.cell_h || data.cell_h;
    q.bmp = p.tokens ? null : bitmap(q);
    return q;
  });
  state.step = Math.max(0, Math.min(data.start, data.max_step));
  // one step scale for every panel, fitted to the width Streamlit gives the element
  const avail = root.getBoundingClientRect().width || data.width || 800;
  data.cell_w = Math.max(0.5, Math.min(40, (avail - LEFT - 12) / (data.max_step + 1)));
  root.dataset.cellW = String(data.cell_w); root.dataset.left = String(LEFT);
  layout(state); drawStatic(state);
  root.dataset.geometry = JSON.stringify(state.panels.map((q) => ({title: q.title, top: q.top, h: q.h, w: q.w})));
  stop(state); drawFrame(state);
  state.button.addEventListener("click", () => (state.playing ? stop(state) : play(state)));
  state.slider.addEventListener("input", () => { stop(state); state.step = Number(state.slider.value); drawFrame(state); });
  state.speed.addEventListener("change", () => { state.fps = Number(state.speed.value); });
  state.over.addEventListener("mousemove", (ev) => hover(state, ev));
  state.over.addEventListener("mouseleave", () => { state.tip.textContent = "\u00a0"; });
  return state;
}

export default function (component) {
  const { data, parentElement } = component;
  let root = parentElement.querySelector(".rnnviz-play");
  if (!root) {
    root = document.createElement("div");
    root.className = "rnnviz-play";
    parentElement.appendChild(root);
  }
  // Streamlit calls this again on every script run: keep playing unless the data changed.
  if (!root._state || root._state.data.sig !== data.sig) {
    if (root._state) stop(root._state);
    root._state = build(root, data);
  }
  return () => { if (root._state) stop(root._state); };
}
