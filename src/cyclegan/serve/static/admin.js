// Study admin page: results per method, participants and their links, CSV export. The admin token
// comes from the URL fragment (#token=..., never sent to the server in the URL) or the form.
"use strict";
const $ = (id) => document.getElementById(id);
let token = new URLSearchParams(location.hash.slice(1)).get("token") || "";

const pct = (v) => v === null ? "–" : `${(100 * v).toFixed(1)} %`;
const td = (text, cls) => Object.assign(document.createElement("td"), { textContent: text, className: cls || "" });

async function call(path, options) {
  const r = await fetch(path, { ...(options || {}), headers: { ...((options || {}).headers || {}), "X-Admin-Token": token } });
  if (!r.ok) {
    const body = await r.json().catch(() => ({}));
    throw Object.assign(new Error(body.detail || r.statusText), { status: r.status });
  }
  return r;
}

function linkOf(path) { return `${location.origin}${path}`; }

async function refresh() {
  const s = await (await call("/api/study/admin/results")).json();
  $("login").hidden = true;
  $("admin").hidden = false;
  $("error").textContent = "";
  $("title").textContent = `Perceptual study: ${s.study}`;
  const p = s.protocol;
  $("protocol").textContent = `${p.practice_trials} practice + ${p.scored_trials} scored trials per participant, ` +
    `images shown for ${p.display_seconds} s, seed ${p.seed}${p.pair_by_name ? ", fakes paired with the real image of the same name" : ""}.`;
  $("results").tBodies[0].replaceChildren(...s.methods.map((m) => {
    const row = document.createElement("tr");
    row.dataset.method = m.method;
    row.append(td(m.method), td(String(m.k), "num fooled"), td(String(m.n), "num trials"), td(pct(m.p), "num rate"),
      td(m.se === null ? "–" : pct(m.se), "num se"), td(m.low === null ? "–" : `${pct(m.low)} – ${pct(m.high)}`, "num ci"));
    return row;
  }));
  $("answer-count").textContent = `${s.answers.total} answers stored (${s.answers.scored} scored)`;
  $("participants").tBodies[0].replaceChildren(...s.participants.map((x) => {
    const row = document.createElement("tr");
    const a = Object.assign(document.createElement("a"), { href: x.url, textContent: linkOf(x.url), target: "_blank" });
    const cell = td(""); cell.className = "link"; cell.append(a);
    row.append(td(String(x.id)), td(x.label), td(`${x.answered} / ${x.trials}`, "num"), cell);
    return row;
  }));
}

function fail(e) {
  $("error").textContent = e.message;
  if (e.status === 403) { $("login").hidden = false; $("admin").hidden = true; }
}

$("login").addEventListener("submit", (e) => {
  e.preventDefault();
  token = $("token").value.trim();
  history.replaceState(null, "", `#token=${encodeURIComponent(token)}`);
  refresh().catch(fail);
});

$("new").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    const r = await call("/api/study/admin/participants", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ label: $("label").value }),
    });
    const p = await r.json();
    const a = Object.assign(document.createElement("a"), { href: p.url, textContent: linkOf(p.url), id: "new-link-a" });
    $("new-link").replaceChildren("New link: ", a);
    $("label").value = "";
    await refresh();
  } catch (err) { fail(err); }
});

$("csv").addEventListener("click", async () => {
  try {
    const blob = await (await call("/api/study/admin/answers.csv")).blob();
    const a = Object.assign(document.createElement("a"), { href: URL.createObjectURL(blob), download: "study_answers.csv" });
    document.body.append(a); a.click(); a.remove();
  } catch (err) { fail(err); }
});

if (token) refresh().catch(fail); else $("login").hidden = false;
setInterval(() => { if (token && !$("admin").hidden) refresh().catch(fail); }, 5000);
