// The page of `aiayn serve`: translate as you type, show the beam's alternatives and draw every
// attention head as a grid of DOM cells (each carries data-row, data-col and data-value).
// Plain JavaScript, no library and no build step.
"use strict";

(() => {
  const DEBOUNCE_MS = 300; // wait for a pause in typing before asking the server
  const ACCENT = "36, 87, 197"; // the colour of a weight of 1 (rgb), as in style.css
  const MAX_BEAM_CHOICE = 12; // the beam menu's longest entry (the server may allow more)

  const $ = (id) => document.getElementById(id);
  const state = {
    info: null, // GET /v1/info: the run's default search, model shape and limits
    attention: null, // the last /v1/attention answer
    kind: "cross", // which attention the heatmap shows
    matrix: null, // the weights drawn now: rows x cols
    seq: 0, // number of the latest request; answers to older ones are dropped
    timer: null,
  };

  async function postJSON(path, body) {
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || `${response.status} ${response.statusText}`);
    return data;
  }

  function option(select, value, text) {
    const o = document.createElement("option");
    o.value = String(value);
    o.textContent = text;
    select.append(o);
  }

  function setStatus(text, isError = false) {
    $("status").textContent = text;
    $("status").classList.toggle("error", isError);
  }

  // ---------------------------------------------------------------- translating

  function schedule() {
    clearTimeout(state.timer);
    state.timer = setTimeout(update, DEBOUNCE_MS);
  }

  async function update() {
    const text = $("source").value;
    const seq = ++state.seq;
    if (!text.trim()) {
      showTranslation(null);
      state.attention = null;
      drawHeatmap();
      setStatus("");
      return;
    }
    const beam = Number($("beam").value);
    const nBest = Math.min(beam, state.info.limits.max_n_best);
    setStatus("translating…");
    try {
      const [translated, attention] = await Promise.all([
        postJSON("/v1/translate", { text, beam, n_best: nBest }),
        // A backend without attention maps (CTranslate2) answers 501: not asked at all.
        state.info.attention_unavailable ? null : postJSON("/v1/attention", { text }),
      ]);
      if (seq !== state.seq) return; // the text changed while we waited
      showTranslation(translated.translations[0]);
      state.attention = attention;
      drawHeatmap();
      const t = translated.timings;
      setStatus(`decoded in ${t.decode_ms.toFixed(0)} ms (queued ${t.queue_ms.toFixed(0)} ms)`);
    } catch (error) {
      if (seq === state.seq) setStatus(error.message, true);
    }
  }

  function showTranslation(translation) {
    $("translation").textContent = translation ? translation.text : "";
    const list = $("alternatives");
    list.replaceChildren();
    if (!translation) return;
    for (const hyp of translation.n_best) {
      const li = document.createElement("li");
      li.textContent = hyp.text;
      const score = document.createElement("span");
      score.className = "score";
      score.textContent = hyp.score === null ? "greedy: no score" : hyp.score.toFixed(3);
      li.append(score);
      list.append(li);
    }
  }

  // ---------------------------------------------------------------- the heatmap

  function fillLayers() {
    const layers = state.info.layers[state.kind === "encoder" ? "encoder" : "decoder"];
    const select = $("layer");
    const previous = Number(select.value) || 0;
    select.replaceChildren();
    for (let i = 0; i < layers; i++) option(select, i, `${i + 1} of ${layers}`);
    select.value = String(Math.min(previous, layers - 1));
  }

  function averageOfHeads(heads) {
    return heads[0].map((row, i) =>
      row.map((_, j) => heads.reduce((sum, head) => sum + head[i][j], 0) / heads.length),
    );
  }

  const CAPTIONS = {
    cross: "Rows: the decoder at each target position (it predicts the next token) of the " +
      "translation with the run's own search settings; columns: the source subwords it attends to.",
    encoder: "Rows and columns: source subwords; each row attends over the whole source.",
    decoder_self: "Rows and columns: target positions; each attends to itself and earlier ones.",
  };

  // A row or column label of the grid: class row-label / col-label, data-row / data-col.
  function label(axis, index, text) {
    const el = document.createElement("div");
    el.className = `${axis}-label`;
    el.dataset[axis] = String(index);
    el.textContent = text;
    return el;
  }

  function drawHeatmap() {
    const grid = $("heatmap");
    grid.replaceChildren();
    $("caption").textContent = state.info.attention_unavailable
      ? `Not available for this backend: ${state.info.attention_unavailable}`
      : CAPTIONS[state.kind];
    const att = state.attention;
    if (!att) {
      state.matrix = null;
      grid.dataset.rows = grid.dataset.cols = "0";
      return;
    }
    const layer = Number($("layer").value);
    const head = $("head").value;
    const heads = att[state.kind][layer];
    const matrix = head === "average" ? averageOfHeads(heads) : heads[Number(head)];
    const rows = state.kind === "encoder" ? att.source : att.target;
    const cols = state.kind === "decoder_self" ? att.target : att.source;
    state.matrix = matrix;

    const cells = document.createDocumentFragment();
    const corner = document.createElement("div");
    corner.className = "corner";
    cells.append(corner);
    cols.forEach((piece, j) => cells.append(label("col", j, piece)));
    rows.forEach((piece, i) => {
      cells.append(label("row", i, piece));
      matrix[i].forEach((weight, j) => {
        const cell = document.createElement("div");
        cell.className = "cell";
        cell.dataset.row = String(i);
        cell.dataset.col = String(j);
        cell.dataset.value = weight.toFixed(4);
        cell.style.backgroundColor = `rgba(${ACCENT}, ${weight})`;
        cell.title = `${piece} → ${cols[j]}: ${weight.toFixed(3)}`;
        cells.append(cell);
      });
    });
    grid.style.gridTemplateColumns = `auto repeat(${cols.length}, var(--cell))`;
    grid.append(cells);
    Object.assign(grid.dataset, {
      rows: String(rows.length), cols: String(cols.length), kind: state.kind,
      layer: String(layer), head,
    });
  }

  // Hovering a row (its label or a cell) colours the column labels by that row's weights: what
  // this token attends to.
  function highlight(row) {
    const grid = $("heatmap");
    for (const el of grid.querySelectorAll(".label-on, .row-on, .attended")) {
      el.classList.remove("label-on", "row-on", "attended");
    }
    for (const el of grid.querySelectorAll(".col-label")) el.style.backgroundColor = "";
    if (row === null || !state.matrix) return;
    grid.querySelector(`.row-label[data-row="${row}"]`).classList.add("label-on");
    for (const el of grid.querySelectorAll(`.cell[data-row="${row}"]`)) el.classList.add("row-on");
    for (const el of grid.querySelectorAll(".col-label")) {
      const weight = state.matrix[row][Number(el.dataset.col)];
      el.style.backgroundColor = `rgba(${ACCENT}, ${weight})`;
      el.classList.toggle("attended", weight > 0.5);
    }
  }

  // ---------------------------------------------------------------- start

  async function init() {
    state.info = await (await fetch("/v1/info")).json();
    const beam = $("beam");
    const largest = Math.min(state.info.limits.max_beam, MAX_BEAM_CHOICE);
    for (let b = 1; b <= largest; b++) option(beam, b, b === 1 ? "1 (greedy)" : String(b));
    beam.value = String(Math.min(state.info.beam, largest));
    const head = $("head");
    option(head, "average", "average of heads");
    for (let h = 0; h < state.info.heads; h++) option(head, h, `${h + 1} of ${state.info.heads}`);
    fillLayers();
    // Without attention maps the section keeps only its caption, which says why.
    $("attention-section").classList.toggle("unavailable", !!state.info.attention_unavailable);
    drawHeatmap();

    $("source").addEventListener("input", schedule);
    beam.addEventListener("change", update);
    $("layer").addEventListener("change", drawHeatmap);
    head.addEventListener("change", drawHeatmap);
    for (const tab of document.querySelectorAll(".tabs button")) {
      tab.addEventListener("click", () => {
        state.kind = tab.dataset.kind;
        for (const t of document.querySelectorAll(".tabs button")) {
          t.setAttribute("aria-selected", String(t === tab));
        }
        fillLayers();
        drawHeatmap();
      });
    }
    const grid = $("heatmap");
    grid.addEventListener("mouseover", (event) => {
      const row = event.target.dataset ? event.target.dataset.row : undefined;
      if (row !== undefined) highlight(Number(row));
    });
    grid.addEventListener("mouseleave", () => highlight(null));
    if ($("source").value.trim()) update();
  }

  init().catch((error) => setStatus(`cannot reach the server: ${error.message}`, true));
})();
