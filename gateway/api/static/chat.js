// The web chat: talks to /v1/chat/completions (streaming) with the login cookie.
// Answers arrive as text deltas and, because we ask for them (X-Hermes-Events: tools, html), as the
// agent's tool steps while they run (shown as the terminal shows them: "⚙ list_files(...)") and as the
// answer so far rendered from Markdown by the server (markdown-it with raw HTML off, then sanitized by
// nh3): only that server-made HTML is ever put into the page as HTML; everything else is set as text.
// Each conversation is kept on the server under its id (X-Hermes-Session-Id, "web-..."): a reload
// shows it again (/api/sessions/ID/messages?view=web), the list on the left is this browser's
// (`user`, kept in localStorage like the current id) from /api/sessions, by title;
// "New chat" (or typing /new) starts another id, and Stop asks /api/sessions/ID/stop.
"use strict";
const log = document.getElementById("log"), text = document.getElementById("text");
const list = document.getElementById("sessions"), stopButton = document.getElementById("stop");
const WELCOME = "Hello, I'm Hermes. Ask me anything: I can read and write the files in my workspace, " +
  "fetch web pages and learn your team's ways as we go. Type /help to see the commands.";
const newId = () => "web-" + crypto.getRandomValues(new Uint32Array(4)).join("");
let user = localStorage.getItem("hermes-web-user");
if (!user) { user = "web-" + crypto.getRandomValues(new Uint32Array(2)).join(""); localStorage.setItem("hermes-web-user", user); }
let session = localStorage.getItem("hermes-web-session") || newId();
localStorage.setItem("hermes-web-session", session);
let running = null, inFlight = 0;  // the session whose answer is streaming (what Stop stops), how many are
let shownAt = 0;  // bumped whenever the log starts showing something new: a late restore() must not wipe it

async function api(path, options) {
  const response = await fetch(path, {credentials: "same-origin", ...options});
  if (response.status === 401) { location.reload(); throw new Error("logged out"); }
  return response;
}
function bubble(kind, content) {
  const div = document.createElement("div"); div.className = "msg " + kind; div.textContent = content;
  log.appendChild(div); log.scrollTop = log.scrollHeight; return div;
}
function welcome() { if (!log.children.length) bubble("note welcome", WELCOME); }
function contentText(content) {  // a message's content as text (multi-part content: its text parts)
  if (typeof content === "string") return content;
  return (content || []).map(part => part.type === "text" ? part.text : "[" + part.type + "]").join("\n");
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
// an answer: the last rendering from the server, then the text that came after it
function paint(out, answer) {
  if (answer.html === null) { out.textContent = answer.tail || "…"; return; }
  out.innerHTML = answer.html;  // sanitized HTML made by the server from the answer's Markdown
  if (answer.tail) { const span = document.createElement("span"); span.className = "tail"; span.textContent = answer.tail; out.appendChild(span); }
}

// -- conversations ---------------------------------------------------------------------------------
async function restore() {  // the conversation of `session` as the server keeps it
  const wanted = session, mark = ++shownAt;
  const response = await api("/api/sessions/" + encodeURIComponent(wanted) + "/messages?view=web");
  if (wanted !== session || mark !== shownAt) return;
  log.textContent = "";
  if (response.ok) {
    for (const m of (await response.json()).data) {
      if (m.role === "user") { bubble("user", contentText(m.content)); continue; }
      const shown = answerBubble();
      for (const step of m.steps || []) showStep(shown.steps, step);
      paint(shown.body, {html: m.html || "", tail: ""});
    }
  }
  welcome();
  log.scrollTop = log.scrollHeight;
}
async function refreshSessions() {  // this browser's chats (web-<random>, with our user), newest first, by title
  const response = await api("/api/sessions");
  if (!response.ok) return;
  const chats = (await response.json()).data.filter(s => s.id.startsWith("web-") && s.user === user);
  if (!chats.some(s => s.id === session)) chats.unshift({id: session, title: ""});
  list.textContent = "";
  for (const chat of chats) {
    const item = document.createElement("li"), button = document.createElement("button");
    button.type = "button"; button.dataset.id = chat.id; button.className = chat.id === session ? "current" : "";
    if (chat.id === session) button.setAttribute("aria-current", "true");
    button.textContent = chat.title || "New chat"; button.title = chat.title || "";
    button.addEventListener("click", () => openChat(chat.id));
    item.appendChild(button); list.appendChild(item);
  }
}
function openChat(id) {
  if (id === session) return;
  session = id; localStorage.setItem("hermes-web-session", id);
  restore(); refreshSessions();
}
function startNew() {
  session = newId(); localStorage.setItem("hermes-web-session", session); shownAt++;
  log.textContent = ""; welcome(); refreshSessions(); text.focus();
}

// -- what the background review learned ----------------------------------------------------------
let seen = Number(localStorage.getItem("hermes-web-learned") || 0), polling = 0;
async function learned() {
  const response = await api("/learning?limit=20&user=" + encodeURIComponent(user) + "&after=" + seen,
    {headers: {"Accept": "application/json"}});
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

// -- asking ----------------------------------------------------------------------------------------
async function ask(message) {
  if (message.trim().toLowerCase() === "/new") { startNew(); return; }
  shownAt++;
  for (const note of log.querySelectorAll(".welcome")) note.remove();
  bubble("user", message);
  const shown = answerBubble(), out = shown.body, answer = {html: null, tail: ""};
  const asked = running = session;
  inFlight++; document.body.classList.add("busy"); stopButton.disabled = false;
  try {
    const response = await api("/v1/chat/completions", {method: "POST",
      headers: {"Content-Type": "application/json", "X-Hermes-Session-Id": asked, "X-Hermes-Events": "tools, html"},
      body: JSON.stringify({model: "hermes", stream: true, user: user, messages: [{role: "user", content: message}]})});
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
  finally {
    if (--inFlight === 0) { running = null; stopButton.disabled = true; document.body.classList.remove("busy"); }
  }
  refreshSessions();  // a new chat now has its title
  watchLearning();
}
stopButton.addEventListener("click", async () => {
  // the answer being streamed ends with "Stopped." (from the server); nothing else is said about it
  if (running === null) return;
  stopButton.disabled = true;
  try { await api("/api/sessions/" + encodeURIComponent(running) + "/stop", {method: "POST"}); } catch (err) { /* it ends anyway */ }
});
document.getElementById("send").addEventListener("submit", e => {
  e.preventDefault(); const message = text.value.trim(); if (!message) return; text.value = ""; ask(message);
});
text.addEventListener("keydown", e => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); document.getElementById("send").requestSubmit(); } });
document.getElementById("new").addEventListener("click", startNew);
// the box is disabled in the page until this script has bound Enter: a message typed before that
// would be lost (Enter only adds a line without us), so nobody can type one
text.placeholder = "Message Hermes (Enter to send, Shift+Enter for a new line)";
text.disabled = false; document.querySelector("#send button").disabled = false; text.focus();
restore(); refreshSessions();
