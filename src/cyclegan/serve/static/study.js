// Participant page of the real-vs-fake study: practice trials with feedback, then scored trials without.
// Both images are decoded before they appear, shown for the study's display time, then hidden; the
// answer is saved by the server before the next trial is fetched.
"use strict";
const $ = (id) => document.getElementById(id);
const token = location.pathname.split("/").filter(Boolean).pop();
const api = `/api/study/p/${encodeURIComponent(token)}`;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const nextPaint = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));
let lastPractice = null, pendingChoice = null;

function show(id) {
  for (const s of ["intro", "trial", "break", "done"]) $(s).hidden = s !== id;
}

async function getJson(url, options) {
  const r = await fetch(url, options);
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw Object.assign(new Error(body.detail || r.statusText), { status: r.status });
  return body;
}

async function loadImage(url) {
  const r = await fetch(url, { cache: "no-store" });
  if (!r.ok) throw new Error(`could not load an image (${r.status})`);
  const img = new Image();
  img.src = URL.createObjectURL(await r.blob());
  await img.decode();
  return img;
}

function choose() {
  return new Promise((resolve) => { pendingChoice = resolve; });
}

function answerWith(side) {
  if (!pendingChoice) return;
  const resolve = pendingChoice;
  pendingChoice = null;
  $("choose-left").disabled = $("choose-right").disabled = true;
  resolve(side);
}

$("choose-left").addEventListener("click", () => answerWith("left"));
$("choose-right").addEventListener("click", () => answerWith("right"));
document.addEventListener("keydown", (e) => {
  if (e.key === "ArrowLeft") answerWith("left");
  if (e.key === "ArrowRight") answerWith("right");
});

async function next() {
  const s = await getJson(`${api}/state`);
  if (s.done) { show("done"); return; }
  const t = s.trial;
  if (lastPractice === true && !t.practice) {
    lastPractice = false;
    $("break-count").textContent = s.scored_trials;
    show("break");
    return;
  }
  lastPractice = t.practice;
  show("trial");
  $("counter").textContent = `${t.practice ? "Practice" : "Trial"} ${t.number} of ${t.of}`;
  $("feedback").textContent = "";
  $("prompt").textContent = "\u00a0";
  const [left, right] = await Promise.all([loadImage(t.left), loadImage(t.right)]);
  $("slot-left").replaceChildren(left);
  $("slot-right").replaceChildren(right);
  await nextPaint();  // the display time counts from the frame that shows the pair
  await sleep(s.display_ms);
  $("slot-left").replaceChildren();
  $("slot-right").replaceChildren();
  URL.revokeObjectURL(left.src); URL.revokeObjectURL(right.src);
  $("prompt").textContent = "Which image was real?";
  $("choose-left").disabled = $("choose-right").disabled = false;
  const shown = performance.now();
  const choice = await choose();
  let reply;
  try {
    reply = await getJson(`${api}/answer`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ index: t.index, choice, response_ms: performance.now() - shown }),
    });
  } catch (e) {
    if (e.status !== 409) throw e;  // already saved (e.g. from another tab): just go on
    reply = {};
  }
  if (t.practice && reply.correct !== undefined) {
    $("feedback").textContent = reply.correct ? "Correct!" : `Wrong: the real one was on the ${reply.real_side}.`;
    $("feedback").className = reply.correct ? "ok" : "error";
    await sleep(1200);
  }
  return next();
}

function fail(e) {
  $("error").textContent = `${e.message} (reload the page to continue where you stopped)`;
}

$("start").addEventListener("click", () => next().catch(fail));
$("continue").addEventListener("click", () => { lastPractice = false; next().catch(fail); });

(async () => {
  const s = await getJson(`${api}/state`);
  document.title = s.study;
  $("title").textContent = s.study;
  $("display-time").textContent = s.display_ms === 1000 ? "1 second" : `${s.display_ms / 1000} seconds`;
  $("intro-blocks").textContent = s.practice_trials
    ? `First ${s.practice_trials} practice trials, where you are told whether you were right; then ${s.scored_trials} trials without feedback.`
    : `${s.scored_trials} trials.`;
  if (s.done) { show("done"); return; }
  if (s.answered) {
    $("resume").hidden = false;
    $("resume").textContent = `Welcome back: ${s.answered} answers are saved; you continue where you stopped.`;
    $("start").textContent = "Continue";
  }
  show("intro");
})().catch(fail);
