// bookcast studio: the page. Plain JS over the JSON API in flows/studio/server.py.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const state = { book: null, chapter: null, data: null, current: 0, picture: null };
const clip = $("#clip");
const chapterAudio = $("#chapter-audio");

function say(text, ok = false) {
  const box = $("#message");
  box.textContent = text;
  box.className = ok ? "ok" : "";
  box.hidden = !text;
}

async function api(path, body) {
  $("#busy").hidden = false;
  try {
    const reply = await fetch(path, body === undefined ? {} : {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const data = await reply.json();
    if (!reply.ok) throw new Error(data.error || `${reply.status}`);
    return data;
  } finally {
    $("#busy").hidden = true;
  }
}

async function guard(work) {
  try { return await work(); } catch (err) { say(err.message); return null; }
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

// ---- chapters ----------------------------------------------------------------------------------

function renderChapters() {
  const list = $("#chapter-list");
  list.replaceChildren();
  for (const c of state.book.chapters) {
    const li = el("li", { "data-index": c.index, text: c.title || `Chapter ${c.index}` });
    if (c.index === state.chapter) li.classList.add("active");
    if (c.status !== "ok") li.append(el("span", { class: "badge fail", text: c.status }));
    else if (!c.qc_passed) li.append(el("span", { class: "badge fail", text: "QC" }));
    if (c.flags) li.append(el("span", { class: "badge fail", text: `${c.flags} flagged` }));
    li.addEventListener("click", () => openChapter(c.index));
    list.append(li);
  }
}

async function loadBook() {
  const book = await guard(() => api("/api/book"));
  if (!book) return;
  state.book = book;
  $("#book-title").textContent = book.title;
  $("#book-meta").textContent = `${book.author} · ${book.preset} · ${book.out}`;
  renderChapters();
}

async function openChapter(index, line = 1) {
  const data = await guard(() => api(`/api/chapter/${index}`));
  if (!data) return;
  state.chapter = index;
  show(data, line);
  renderChapters();
  state.picture = null;
  drawPicture();
  if (data.files.length) {
    const pic = await guard(() => api(`/api/picture/${index}`));
    if (pic && state.chapter === index) { state.picture = pic; drawPicture(); }
  }
}

function show(data, line) {
  state.data = data;
  $("#chapter-title").textContent = `${data.index}. ${data.title}`;
  $("#chapter-status").textContent = data.changed
    ? "Changed since the last export: re-export to deliver it." : (data.files.length ? `Delivered: ${data.files.join(", ")}` : "");
  const src = data.files.length ? `/api/audio/${encodeURIComponent(data.files[0])}` : "";
  if (chapterAudio.getAttribute("src") !== src) { if (src) chapterAudio.src = src; else chapterAudio.removeAttribute("src"); }
  renderMeasures(data);
  renderSentences();
  select(Math.min(line, data.sentences.length) - 1, false);
}

function renderMeasures(data) {
  const box = $("#measures");
  box.replaceChildren();
  const m = data.measures || {};
  const fmt = (v) => (v === null || v === undefined ? "–" : Number(v).toFixed(1));
  box.append(el("span", { text: `LUFS ${fmt(m.lufs)}` }), el("span", { text: `RMS ${fmt(m.rms_db)} dB` }),
    el("span", { text: `peak ${fmt(m.sample_peak_db)} dBFS` }), el("span", { text: `noise floor ${fmt(m.noise_floor_db)} dB` }));
  const qc = data.qc || {};
  if (qc.rules) {
    const failed = qc.rules.filter((r) => !r.passed);
    box.append(el("span", { class: failed.length ? "fail" : "pass",
      text: failed.length ? `QC fails: ${failed.map((r) => r.rule).join(", ")}` : `QC passes ${data.preset}` }));
  }
}

// ---- sentences ---------------------------------------------------------------------------------

function renderSentences() {
  const body = $("#sentences tbody");
  body.replaceChildren();
  state.data.sentences.forEach((s, i) => body.append(sentenceRow(s, i)));
}

function sentenceRow(s, i) {
  const spoken = el("div", { class: "spoken" });
  for (const [lang, text] of s.runs) spoken.append(el("span", { class: "run", "data-lang": lang, title: lang, text }), " ");
  const info = el("div");
  for (const f of s.flags) info.append(el("span", { class: "flag", title: f.detail, text: f.reason }));
  if (s.edited) info.append(el("span", { class: "edited", text: "edited" }));
  const takes = el("select", { class: "take", title: "Takes of this sentence: choosing one keeps it" });
  for (const t of s.takes) {
    const opt = el("option", { value: t.take, text: `take ${t.take + 1}${t.duration_s ? ` (${t.duration_s.toFixed(1)} s)` : ""}` });
    if (t.take === s.take) opt.selected = true;
    takes.append(opt);
  }
  takes.addEventListener("change", () => choose(i, Number(takes.value)));
  const pause = el("input", { class: "pause", type: "number", min: "0", max: "30", step: "0.1", value: s.pause_s });
  const editor = el("div", { class: "editor", hidden: "" },
    el("input", { class: "edit-text", value: s.edited || s.spoken }),
    el("button", { class: "save-edit", text: "Save" }), el("button", { class: "revert-edit", text: "Book text" }),
    el("button", { class: "cancel-edit", text: "Cancel" }));
  const row = el("tr", { "data-line": s.line },
    el("td", { text: s.line }),
    el("td", {}, el("div", { class: "text", text: s.text }), spoken, info, editor),
    el("td", {}, takes, " ", el("button", { class: "play", title: "Play (space)", text: "▶" }), " ",
      el("button", { class: "retake", title: "Synthesize a new take (r)", text: "Re-take" })),
    el("td", {}, pause, " s ", el("button", { class: "set-pause", text: "Set" })),
    el("td", {}, el("button", { class: "edit", text: "Edit" }), " ",
      el("span", { class: "dur", text: s.duration_s ? `${s.duration_s.toFixed(1)} s` : "" })));
  if (s.flags.length) row.classList.add("flagged");
  row.addEventListener("click", () => select(i, false));
  $(".play", row).addEventListener("click", (e) => { e.stopPropagation(); select(i, false); play(s.key); });
  $(".retake", row).addEventListener("click", () => retake(i));
  $(".set-pause", row).addEventListener("click", () => setPause(i, pause.value));
  $(".edit", row).addEventListener("click", () => { editor.hidden = false; $(".edit-text", editor).focus(); });
  $(".cancel-edit", row).addEventListener("click", () => { editor.hidden = true; });
  $(".save-edit", row).addEventListener("click", () => edit(i, $(".edit-text", editor).value));
  $(".revert-edit", row).addEventListener("click", () => edit(i, null));
  return row;
}

function rows() { return document.querySelectorAll("#sentences tbody tr"); }

function select(i, scroll = true) {
  const all = rows();
  if (!all.length) return;
  state.current = Math.max(0, Math.min(i, all.length - 1));
  all.forEach((r, k) => r.classList.toggle("current", k === state.current));
  if (scroll) all[state.current].scrollIntoView({ block: "nearest" });
}

function play(key) {
  chapterAudio.pause();
  clip.src = `/api/clip/${key}`;
  clip.play().catch((err) => say(`cannot play: ${err.message}`));
}

function togglePlay() {
  if (!clip.paused) { clip.pause(); return; }
  const s = state.data && state.data.sentences[state.current];
  if (s) play(s.key);
}

const where = (i) => ({ chapter: state.chapter, line: state.data.sentences[i].line });

async function retake(i) {
  const reply = await guard(() => api("/api/retake", where(i)));
  if (!reply) return;
  const s = state.data.sentences[i];
  s.takes = reply.takes;
  const row = rows()[i];
  row.replaceWith(sentenceRow(s, i));
  select(i);
  say(`Take ${reply.take + 1} of sentence ${s.line} is ready: choose it in the list to keep it.`, true);
  play(reply.key);
}

async function changed(work, message, i) {
  const data = await guard(work);
  if (!data) return;
  show(data, data.sentences[i] ? data.sentences[i].line : 1);
  say(message, true);
  await loadBook();
}

function choose(i, take) {
  return changed(() => api("/api/choose", { ...where(i), take }), `Take ${take + 1} kept for sentence ${i + 1}.`, i);
}

function edit(i, text) {
  return changed(() => api("/api/edit", { ...where(i), text }),
    text ? `Sentence ${i + 1} will be spoken as edited.` : `Sentence ${i + 1} is read from the book again.`, i);
}

function setPause(i, value) {
  const seconds = value === "" ? null : Number(value);
  return changed(() => api("/api/pause", { ...where(i), seconds }), `Pause after sentence ${i + 1} set.`, i);
}

function nextFlagged() {
  if (!state.data) return;
  const s = state.data.sentences;
  for (let k = 1; k <= s.length; k++) {
    const i = (state.current + k) % s.length;
    if (s[i].flags.length) { select(i); return; }
  }
  const other = state.book.chapters.find((c) => c.flags && c.index > state.chapter);
  if (other) openChapter(other.index); else say("No flagged sentence left.", true);
}

// ---- pronunciations and re-export ---------------------------------------------------------------

async function findWord(apply) {
  const word = $("#word").value.trim();
  const pronunciation = $("#phones").value.trim();
  const reply = await guard(() => api("/api/pronounce", { word, pronunciation, apply }));
  if (!reply) return;
  const list = $("#word-sentences");
  list.replaceChildren(...reply.sentences.map((s) => el("li", { text: `ch. ${s.chapter}, #${s.line}: ${s.text}` })));
  if (apply) {
    say(`"${reply.word}" added to ${reply.lexicon}; ${reply.sentences.length} sentence(s) re-synthesized.`, true);
    if (state.chapter) await openChapter(state.chapter, state.current + 1);
    await loadBook();
  } else {
    say(`${reply.sentences.length} sentence(s) contain "${reply.word}".`, true);
  }
}

async function reexport() {
  say("Re-exporting the changed chapters…", true);
  const reply = await guard(() => api("/api/reexport", {}));
  if (!reply) return;
  say(reply.status === 0 ? `Re-exported: ${reply.message}` : `Re-export ended with status ${reply.status}: ${reply.message}`,
    reply.status === 0);
  await loadBook();
  if (state.chapter) await openChapter(state.chapter, state.current + 1);
}

// ---- the chapter picture -----------------------------------------------------------------------

function drawPicture() {
  const canvas = $("#picture");
  const g = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, mid = h * 0.38, amp = h * 0.36;
  g.clearRect(0, 0, w, h);
  const p = state.picture;
  if (!p) { g.fillStyle = "#888"; g.fillText("No delivered file for this chapter yet", 10, 20); return; }
  const n = p.high.length;
  g.fillStyle = "#6d8fb8";
  for (let x = 0; x < n; x++) {
    const top = mid - p.high[x] * amp, bottom = mid - p.low[x] * amp;
    g.fillRect(x * w / n, top, Math.max(1, w / n), Math.max(1, bottom - top));
  }
  // level over time against the preset's rule (dB scale at the bottom: -50..0)
  const y = (db) => h - 4 - (Math.max(-50, Math.min(0, db)) + 50) / 50 * (h * 0.22);
  const r = p.rules;
  const band = p.level === "LUFS" ? [r.target_lufs - (r.lufs_tolerance_lu || 0), r.target_lufs + (r.lufs_tolerance_lu || 0)]
    : [r.rms_min_db, r.rms_max_db];
  g.fillStyle = "rgba(40,160,80,.15)";
  g.fillRect(0, y(band[1]), w, Math.max(1, y(band[0]) - y(band[1])));
  g.strokeStyle = "#c0392b"; g.beginPath();
  p.level_db.forEach((v, x) => { if (v !== null) { if (x === 0 || p.level_db[x - 1] === null) g.moveTo(x * w / n, y(v)); else g.lineTo(x * w / n, y(v)); } });
  g.stroke();
  const ceiling = r.sample_peak_ceiling_db ?? r.true_peak_ceiling_db;
  if (ceiling !== null && ceiling !== undefined) {
    const lin = Math.pow(10, ceiling / 20);
    g.strokeStyle = "rgba(192,57,43,.6)"; g.setLineDash([4, 4]); g.beginPath();
    g.moveTo(0, mid - lin * amp); g.lineTo(w, mid - lin * amp); g.moveTo(0, mid + lin * amp); g.lineTo(w, mid + lin * amp);
    g.stroke(); g.setLineDash([]);
  }
  g.fillStyle = "#333";
  g.fillText(`${p.level} per ${p.window_s.toFixed(1)} s (band: the ${state.data.preset} rule); dashed: peak ceiling`, 6, h - 6 - h * 0.22);
  if (!chapterAudio.paused || chapterAudio.currentTime > 0) {
    g.fillStyle = "#2f6fd6";
    g.fillRect(chapterAudio.currentTime / p.duration_s * w, 0, 2, h);
  }
}

$("#picture").addEventListener("click", (e) => {
  if (!state.picture) return;
  const box = e.target.getBoundingClientRect();
  clip.pause();
  chapterAudio.currentTime = (e.clientX - box.left) / box.width * state.picture.duration_s;
  chapterAudio.play().catch((err) => say(`cannot play: ${err.message}`));
});

chapterAudio.addEventListener("timeupdate", () => {
  drawPicture();
  if (!state.data) return;
  const t = chapterAudio.currentTime;
  const i = state.data.sentences.findIndex((s) => s.span && s.span[0] <= t && t < s.span[1]);
  rows().forEach((r, k) => r.classList.toggle("speaking", k === i));
});

// ---- keys --------------------------------------------------------------------------------------

document.addEventListener("keydown", (e) => {
  if (e.target.closest("input, select, textarea") || e.ctrlKey || e.metaKey || e.altKey || !state.data) return;
  const keys = { " ": togglePlay, j: () => select(state.current + 1), k: () => select(state.current - 1),
    r: () => retake(state.current), n: nextFlagged };
  if (keys[e.key]) { e.preventDefault(); keys[e.key](); }
});

$("#next-flagged").addEventListener("click", nextFlagged);
$("#reexport").addEventListener("click", reexport);
$("#find-word").addEventListener("click", () => findWord(false));
$("#add-word").addEventListener("click", () => findWord(true));

loadBook().then(() => { if (state.book && state.book.chapters.length) openChapter(state.book.chapters[0].index); });
