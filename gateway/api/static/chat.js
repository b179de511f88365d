// The web chat: talks to /v1/chat/completions (streaming) with the login cookie.
// Answers arrive as text deltas and, because we ask for them (X-Hermes-Events: tools, html), as the
// agent's tool steps while they run (shown as the terminal shows them: "⚙ list_files(...)") and as the
// answer so far rendered from Markdown by the server (markdown-it with raw HTML off, then sanitized by
// nh3): only that server-made HTML is ever put into the page as HTML; everything else is set as text.
"use strict";
const log = document.getElementById("log"), text = document.getElementById("text");
let user = localStorage.getItem("hermes-web-user");
if (!user) { user = "web-" + crypto.getRandomValues(new Uint32Array(2)).join(""); localStorage.setItem("hermes-web-user", user); }
// the conversation is kept on the server under this id (X-Hermes-Session-Id); the API is stateless without it
let session = localStorage.getItem("hermes-web-session");
if (!session) { session = "web-" + crypto.getRandomValues(new Uint32Array(4)).join(""); localStorage.setItem("hermes-web-session", session); }
function bubble(kind, content) {
  const div = document.createElement("div"); div.className = "msg " + kind; div.textContent = content;
  log.appendChild(div); log.scrollTop = log.scrollHeight; return div;
}
// an answer: the tool steps (a list, empty until the agent uses a tool), then the text
function answerBubble() {
  const div = bubble("bot", ""), steps = document.createElement("ol"), body = document.createElement("div");
  steps.className = "steps"; body.className = "body"; body.textContent = "…"; div.append(steps, body);
  return {div, steps, body};
}
const MARKS = {running: " …", ok: " ✓", error: " ✗"};
function showStep(steps, data) {  // one tool call: added when it starts, marked when it ends
  let item = Array.from(steps.children).find(li => li.dataset.id === data.id);
  if (!item) { item = document.createElement("li"); item.dataset.id = data.id; steps.appendChild(item); }
  item.className = "step is-" + data.status;
  item.textContent = "⚙ " + data.name + "(" + (data.arguments || "") + ")" + (MARKS[data.status] || "");
}
// an answer being streamed: the last rendering from the server, then the text that came after it
function paint(out, answer) {
  if (answer.html === null) { out.textContent = answer.tail || "…"; return; }
  out.innerHTML = answer.html;  // sanitized HTML made by the server from the answer's Markdown
  if (answer.tail) { const span = document.createElement("span"); span.className = "tail"; span.textContent = answer.tail; out.appendChild(span); }
}
let seen = Number(localStorage.getItem("hermes-web-learned") || 0), polling = 0;
async function learned() {  // what the background review learned from this conversation, after the answer
  const response = await fetch("/learning?limit=20&user=" + encodeURIComponent(user) + "&after=" + seen,
    {credentials: "same-origin", headers: {"Accept": "application/json"}});
  if (!response.ok) return false;
  const data = await response.json();
  for (const n of data.notices || []) { bubble("note", n.text); seen = Math.max(seen, n.id); }
  for (const e of data.entries || []) seen = Math.max(seen, e.id);
  localStorage.setItem("hermes-web-learned", String(seen));
  return (data.queue && (data.queue.queued || data.queue.running)) > 0;
}
function watchLearning() {  // poll for a minute after each answer, while reviews are queued or running
  const mine = ++polling; let rounds = 0;
  const tick = async () => { if (mine !== polling || rounds++ > 20) return;
    try { if (await learned() || rounds < 3) setTimeout(tick, 3000); } catch (err) { /* offline: try later */ } };
  setTimeout(tick, 1500);
}
async function ask(message, show) {
  if (show) bubble("user", message);
  const shown = answerBubble(), out = shown.body;
  const answer = {html: null, tail: ""};
  document.body.classList.add("busy");
  try {
    const response = await fetch("/v1/chat/completions", {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-Hermes-Session-Id": session, "X-Hermes-Events": "tools, html"},
      body: JSON.stringify({model: "hermes", stream: true, user: user, messages: [{role: "user", content: message}]})});
    if (response.status === 401) { location.reload(); return; }
    if (!response.ok) { shown.div.className = "msg bot error"; out.textContent = "Error " + response.status + ": " + await response.text(); return; }
    const reader = response.body.getReader(), decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, {stream: true});
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const line = buffer.slice(0, cut).trim(); buffer = buffer.slice(cut + 2);
        if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
        const data = JSON.parse(line.slice(6));
        if (data.error) { shown.div.className = "msg bot error"; answer.html = null; answer.tail = (answer.tail ? answer.tail + "\n" : "") + data.error.message; }
        else if (data.object === "hermes.tool") { showStep(shown.steps, data); continue; }
        else if (data.object === "hermes.html") { answer.html = data.html; answer.tail = ""; }
        else if (data.choices && data.choices[0] && data.choices[0].delta.content) answer.tail += data.choices[0].delta.content;
        paint(out, answer); log.scrollTop = log.scrollHeight;
      }
    }
  } catch (err) { shown.div.className = "msg bot error"; out.textContent = String(err); }
  finally { document.body.classList.remove("busy"); }
  if (show) watchLearning();
}
document.getElementById("send").addEventListener("submit", e => {
  e.preventDefault(); const message = text.value.trim(); if (!message) return; text.value = ""; ask(message, true);
});
text.addEventListener("keydown", e => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); document.getElementById("send").requestSubmit(); } });
document.getElementById("new").addEventListener("click", () => { log.textContent = ""; ask("/new", false); });
document.getElementById("stop").addEventListener("click", () => ask("/stop", false));
