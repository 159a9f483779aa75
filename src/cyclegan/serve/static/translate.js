// Translate page: pick a model, a direction and an image (upload or test image); show input and output.
"use strict";
const $ = (id) => document.getElementById(id);
let models = [];
let outputUrl = null, inputUrl = null;

function status(text, cls) {
  $("status").textContent = text;
  $("status").className = cls || "muted";
}

async function errorText(response) {
  try { const body = await response.json(); return body.detail || response.statusText; }
  catch (e) { return response.statusText; }
}

function setInput(src) {
  if (inputUrl) { URL.revokeObjectURL(inputUrl); inputUrl = null; }
  $("input-img").src = src || "";
  $("input-size").textContent = "";
}

async function loadTestImages() {
  const model = $("model").value, direction = $("direction").value;
  const select = $("test-image");
  select.replaceChildren(new Option("(none)", ""));
  if (!model) return;
  const r = await fetch(`/api/models/${encodeURIComponent(model)}/test-images?direction=${direction}`);
  if (!r.ok) { status(await errorText(r), "error"); return; }
  for (const name of (await r.json()).images) select.add(new Option(name, name));
}

function fillDirections() {
  const m = models.find((x) => x.id === $("model").value);
  $("direction").replaceChildren(...(m ? m.directions : []).map((d) => new Option(d.replace("to", " → "), d)));
}

async function init() {
  const r = await fetch("/api/models");
  models = await r.json();
  if (!models.length) { status("No models: start the server with a run dir, a .pth file or a pretrained name.", "error"); }
  $("model").replaceChildren(...models.map((m) => new Option(`${m.label} (${m.kind})`, m.id)));
  fillDirections();
  await loadTestImages();
}

$("model").addEventListener("change", () => { fillDirections(); loadTestImages(); });
$("direction").addEventListener("change", loadTestImages);
$("file").addEventListener("change", () => {
  const f = $("file").files[0];
  $("test-image").value = "";
  setInput(null);
  if (f) { inputUrl = URL.createObjectURL(f); $("input-img").src = inputUrl; }
});
$("test-image").addEventListener("change", () => {
  const name = $("test-image").value;
  $("file").value = "";
  setInput(name ? `/api/models/${encodeURIComponent($("model").value)}/test-images/${$("direction").value}/` +
    name.split("/").map(encodeURIComponent).join("/") : null);
});
$("input-img").addEventListener("load", () => {
  const img = $("input-img");
  $("input-size").textContent = `${img.naturalWidth} × ${img.naturalHeight}`;
});

$("form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData();
  form.append("model", $("model").value);
  form.append("direction", $("direction").value);
  const f = $("file").files[0], test = $("test-image").value;
  if (f) form.append("file", f);
  else if (test) form.append("test_image", test);
  else { status("Choose an image file or a test image first.", "error"); return; }
  $("translate").disabled = true;
  status("Translating…");
  try {
    const r = await fetch("/api/translate", { method: "POST", body: form });
    if (!r.ok) { status(`Error ${r.status}: ${await errorText(r)}`, "error"); return; }
    const blob = await r.blob();
    if (outputUrl) URL.revokeObjectURL(outputUrl);
    outputUrl = URL.createObjectURL(blob);
    $("output-img").src = outputUrl;
    const link = $("download");
    link.href = outputUrl;
    const m = /filename="([^"]+)"/.exec(r.headers.get("Content-Disposition") || "");
    link.download = m ? m[1] : "translation.png";
    link.hidden = false;
    status(`Translated ${r.headers.get("X-Image-Size")} in ${r.headers.get("X-Translate-Seconds")} s.`, "ok");
  } catch (e) {
    status(`Error: ${e}`, "error");
  } finally {
    $("translate").disabled = false;
  }
});

init().catch((e) => status(`Error: ${e}`, "error"));
