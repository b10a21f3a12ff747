// Ad Monster web console: a thin client of POST /v1/tools/facebook and POST /v1/chat.
// Every piece of data is put on the page with textContent / createTextNode, never as HTML.
"use strict";

(() => {
  const KEY_STORAGE = "admonster.apiKey";
  const THREAD_STORAGE = "admonster.thread.";  // + the workspace id, in localStorage: history survives a reload
  const SVG = "http://www.w3.org/2000/svg";
  const OFFLINE_TEXT = "The Ad Monster server did not answer. Check that `admonster serve` is running, then try again.";
  const CONNECT_POLL_MS = 2000;
  const CONNECT_POLL_LIMIT_MS = 10 * 60 * 1000;

  const $ = (id) => document.getElementById(id);
  const state = { key: null, connected: false, tokenStamp: "", pages: [], selectedPage: null, pollTimer: null, poll: null,
    workspace: null, zeroDecimal: new Set(["JPY"]), campaigns: [], currency: "USD" };

  // ---------------------------------------------------------------- DOM helpers (text only)

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  function say(id, text, kind) {
    const node = $(id);
    node.textContent = text || "";
    node.classList.toggle("error", kind === "error");
    node.classList.toggle("ok", kind === "ok");
  }

  // The first line of an op's answer: errors are "ERROR kind: what. Fix: what to do." on one line.
  function firstLine(text) {
    return String(text || "").split("\n")[0];
  }

  // ---------------------------------------------------------------- the API

  class SignedOut extends Error {}

  // The POST both post() and postStream() send; null when the server did not answer.
  async function send(path, body) {
    try {
      const response = await fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/json", "Authorization": "Bearer " + state.key },
        body: JSON.stringify(body),
      });
      offline(false);
      return response;
    } catch (error) {
      offline(true);
      return null;
    }
  }

  // A whole JSON answer; a refused key signs out.
  async function answerOf(response) {
    let parsed = null;
    try {
      parsed = await response.json();
    } catch (error) {
      parsed = { ok: false, text: `ERROR server: HTTP ${response.status} without a JSON answer.` };
    }
    if (response.status === 401) {
      signOut(parsed && parsed.text ? parsed.text : "ERROR auth: the API key was refused.");
      throw new SignedOut(parsed.text);
    }
    return { status: response.status, body: parsed || {} };
  }

  async function post(path, body) {
    const response = await send(path, body);
    return response ? answerOf(response) : { status: 0, body: { ok: false, text: OFFLINE_TEXT } };
  }

  // POST whose answer comes as JSON lines while the server works (/v1/chat/stream): `onText` gets each {"text"} piece;
  // the last line, {"done": true, …}, is the answer. A refusal (JSON, not lines) reads as post() reads it.
  async function postStream(path, body, onText) {
    const response = await send(path, body);
    if (!response) return { status: 0, body: { ok: false, text: OFFLINE_TEXT } };
    if (!/ndjson/.test(response.headers.get("Content-Type") || "") || !response.body) return answerOf(response);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffered = "";
    let done = null;
    const take = (line) => {
      if (!line.trim()) return;
      const piece = JSON.parse(line);
      if (piece.done) done = piece;
      else if (typeof piece.text === "string") onText(piece.text);
    };
    for (;;) {
      const { value, done: finished } = await reader.read();
      buffered += decoder.decode(value || new Uint8Array(), { stream: !finished });
      const complete = buffered.split("\n");
      buffered = complete.pop();
      complete.forEach(take);
      if (finished) break;
    }
    take(buffered);
    return { status: response.status, body: done || { ok: false, text: "ERROR server: the answer ended early." } };
  }

  async function get(path) {
    let response;
    try {
      response = await fetch(path, { headers: { "Authorization": "Bearer " + state.key } });
    } catch (error) {
      offline(true);
      return { status: 0, body: null };
    }
    offline(false);
    let parsed = null;
    try {
      parsed = await response.json();
    } catch (error) {
      parsed = null;
    }
    if (response.status === 401) {
      signOut(parsed && parsed.text ? parsed.text : "ERROR auth: the API key was refused.");
      throw new SignedOut("refused");
    }
    return { status: response.status, body: parsed };
  }

  function offline(down) {
    const banner = $("offline");
    if (banner) banner.hidden = !down;
  }

  // One op of the facebook tool; resolves to {ok, held, text, data}.
  async function op(name, args) {
    const { body } = await post("/v1/tools/facebook", { op: name, args: args || {} });
    return { ok: Boolean(body.ok), held: Boolean(body.held), text: body.text || "", data: body.data || {} };
  }

  // ---------------------------------------------------------------- money (minor units, as Facebook counts them)

  function fractionDigits(currency) {
    return state.zeroDecimal.has(String(currency || "").toUpperCase()) ? 0 : 2;
  }

  function money(minor, currency) {
    const code = String(currency || state.currency || "USD").toUpperCase();
    const digits = fractionDigits(code);
    const amount = Number(minor || 0) / (digits ? 100 : 1);
    try {
      return new Intl.NumberFormat("en-US", { style: "currency", currency: code, minimumFractionDigits: digits,
        maximumFractionDigits: digits }).format(amount);
    } catch (error) {
      return amount.toFixed(digits) + " " + code;
    }
  }

  function count(value) {
    return Number(value || 0).toLocaleString("en-US");
  }

  // ---------------------------------------------------------------- Markdown (a small subset), built with DOM methods

  // Inline: `code`, **bold**, *emphasis*. Everything else stays text.
  function inline(parent, text) {
    const pattern = /(`[^`]+`)|(\*\*[^*]+\*\*)|(\*[^*\s][^*]*\*)/g;
    let last = 0;
    let match;
    while ((match = pattern.exec(text)) !== null) {
      if (match.index > last) parent.appendChild(document.createTextNode(text.slice(last, match.index)));
      const token = match[0];
      if (match[1]) parent.appendChild(el("code", { text: token.slice(1, -1) }));
      else if (match[2]) parent.appendChild(el("strong", { text: token.slice(2, -2) }));
      else parent.appendChild(el("em", { text: token.slice(1, -1) }));
      last = match.index + token.length;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
    return parent;
  }

  function tableCells(line) {
    return line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((cell) => cell.trim());
  }

  const TABLE_RULE = /^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$/;
  const LIST_ITEM = /^(\s*)([-*•]|\d+[.)])\s+(.*)$/;
  // Columns lined up with runs of spaces (help, tables printed as text): kept in a fixed-width font.
  const ALIGNED = /\S {2,}\S/;

  function renderMarkdown(text) {
    const box = el("div", { class: "md" });
    const lines = String(text || "").replace(/\r\n/g, "\n").split("\n");
    let para = [];
    const flush = () => {
      if (!para.length) return;
      const aligned = para.filter((line) => ALIGNED.test(line)).length >= 2;
      const node = el(aligned ? "pre" : "p", { class: aligned ? "aligned" : "" });
      para.forEach((line, index) => {
        if (aligned) {
          if (index) node.appendChild(document.createTextNode("\n"));
          node.appendChild(document.createTextNode(line));
          return;
        }
        // One block per line, its leading spaces as an indent that wrapped lines keep (a hanging indent).
        const depth = Math.min(4, Math.floor((/^ */.exec(line)[0].length) / 2));
        node.appendChild(inline(el("span", { class: "line indent-" + depth }), line.replace(/^ +/, "")));
      });
      box.appendChild(node);
      para = [];
    };
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      if (/^\s*```/.test(line)) {
        flush();
        const code = [];
        i += 1;
        while (i < lines.length && !/^\s*```/.test(lines[i])) code.push(lines[i++]);
        i += 1;
        box.appendChild(el("pre", {}, el("code", { text: code.join("\n") })));
        continue;
      }
      if (/^\s*\|.*\|\s*$/.test(line) && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1])) {
        flush();
        // "---:" right-aligns a column, ":---:" centres it
        const align = tableCells(lines[i + 1]).map((rule) => (/^:.*:$/.test(rule) ? "center" : /:$/.test(rule) ? "num" : ""));
        const head = el("tr", {});
        tableCells(line).forEach((cell, k) => head.appendChild(inline(el("th", { scope: "col", class: align[k] || "" }), cell)));
        const body = el("tbody", {});
        i += 2;
        while (i < lines.length && /^\s*\|.*\|\s*$/.test(lines[i])) {
          const row = el("tr", {});
          tableCells(lines[i]).forEach((cell, k) => row.appendChild(inline(el("td", { class: align[k] || "" }), cell)));
          body.appendChild(row);
          i += 1;
        }
        box.appendChild(el("div", { class: "table-scroll" }, el("table", {}, el("thead", {}, head), body)));
        continue;
      }
      const heading = /^(#{1,6})\s+(.*)$/.exec(line);
      if (heading) {
        flush();
        box.appendChild(inline(el("h" + Math.min(6, heading[1].length + 2), { class: "md-heading" }), heading[2]));
        i += 1;
        continue;
      }
      const item = LIST_ITEM.exec(line);
      if (item && !(para.length && /^\s/.test(line))) {
        flush();
        const ordered = /\d/.test(item[2]);
        const list = el(ordered ? "ol" : "ul", {});
        while (i < lines.length) {
          const next = LIST_ITEM.exec(lines[i]);
          if (!next || /\d/.test(next[2]) !== ordered) break;
          list.appendChild(inline(el("li", { class: next[1].length >= 2 ? "nested" : "" }), next[3]));
          i += 1;
        }
        box.appendChild(list);
        continue;
      }
      if (!line.trim()) flush();
      else para.push(line);
      i += 1;
    }
    flush();
    return box;
  }

  // ---------------------------------------------------------------- files ops wrote (charts, exports, previews)

  // A file URL is /v1/files/<id>/<name>: it needs the key in the Authorization header, which <img> and <a> cannot
  // send, so the bytes are fetched here and shown through a blob: URL.
  const IMAGE_NAME = /\.(png|jpe?g)$/i;

  // A file's name as the person gave it: the server's unguessable prefix (24 hex digits and "-") is left out.
  function fileName(url) {
    const last = (String(url).split("/").pop() || "file").replace(/^[0-9a-f]{24}-/, "");
    try {
      return decodeURIComponent(last);
    } catch (error) {
      return last;
    }
  }

  async function fetchFile(url) {
    const response = await fetch(url, { headers: { "Authorization": "Bearer " + state.key } });
    if (response.status === 401) {
      signOut("ERROR auth: the API key was refused.");
      throw new SignedOut("refused");
    }
    if (!response.ok) throw new Error(response.status === 404 ? "this link has expired: run the op again" : `HTTP ${response.status}`);
    return response.blob();
  }

  async function download(url, name, note) {
    note.textContent = "";
    try {
      const blobUrl = URL.createObjectURL(await fetchFile(url));
      const link = el("a", { href: blobUrl, download: name, hidden: true });
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(blobUrl), 60_000);
    } catch (error) {
      if (!(error instanceof SignedOut)) note.textContent = ` (${name}: ${error.message})`;
    }
  }

  // Pictures inline, every file also as a download link with its name.
  function showFiles(item, urls) {
    const list = (urls || []).filter((url) => typeof url === "string" && url.startsWith("/v1/files/"));
    if (!list.length) return;
    const box = el("div", { class: "files" });
    for (const url of list) {
      const name = fileName(url);
      const note = el("span", { class: "error" });
      const link = el("a", { href: "#", class: "file-link", download: name, title: "Download " + name,
        onclick: (event) => { event.preventDefault(); download(url, name, note); } }, name);
      if (IMAGE_NAME.test(name)) {
        const img = el("img", { alt: name, class: "file-image", title: "Click to enlarge or shrink",
          onclick: () => img.classList.toggle("large") });
        const figure = el("figure", {}, img, el("figcaption", {}, link, note));
        box.appendChild(figure);
        fetchFile(url).then((blob) => {
          img.src = URL.createObjectURL(blob);
          const log = $("chat-log");
          img.addEventListener("load", () => { log.scrollTop = log.scrollHeight; }, { once: true });
        }).catch((error) => {
          if (!(error instanceof SignedOut)) note.textContent = ` (the picture could not be shown: ${error.message})`;
        });
      } else {
        box.appendChild(el("p", { class: "file" }, link, note));
      }
    }
    item.appendChild(box);
  }

  // ---------------------------------------------------------------- sign in / out

  async function signIn(key) {
    state.key = key;
    say("login-error", "");
    let status;
    try {
      status = await op("token_status");
    } catch (error) {
      if (error instanceof SignedOut) return;
      throw error;
    }
    sessionStorage.setItem(KEY_STORAGE, key);
    $("login").hidden = true;
    $("console").hidden = false;
    $("sign-out").hidden = false;
    $("jump").hidden = false;
    // Busy until every section has loaded: screen readers wait, and so can a script (sections grow as they load).
    $("console").setAttribute("aria-busy", "true");
    try {
      await loadMe();
      showToken(status);
      await loadHistory();
      await refreshAll(status);
    } finally {
      $("console").removeAttribute("aria-busy");
    }
  }

  // The workspace this key belongs to (GET /v1/me): its name in the header, and the currencies without cents.
  async function loadMe() {
    const { status, body } = await get("/v1/me");
    const badge = $("workspace");
    if (status !== 200 || !body || !body.workspace) {
      badge.hidden = true;
      return;
    }
    state.workspace = body.workspace;
    if (Array.isArray(body.zero_decimal_currencies)) state.zeroDecimal = new Set(body.zero_decimal_currencies);
    clear(badge);
    badge.appendChild(document.createTextNode("Workspace "));
    badge.appendChild(el("strong", { text: body.workspace.name }));
    badge.hidden = false;
  }

  function signOut(reason) {
    stopPolling();
    sessionStorage.removeItem(KEY_STORAGE);
    state.key = null;
    $("console").hidden = true;
    $("sign-out").hidden = true;
    $("jump").hidden = true;
    $("workspace").hidden = true;
    clear($("chat-log"));
    $("login").hidden = false;
    $("api-key").value = "";
    if (reason) {
      say("login-error", "Sign-in failed: " + firstLine(reason).replace(/^ERROR auth: /, "") +
        " Check that you pasted the whole workspace API key.", "error");
    } else {
      say("login-error", "");
    }
    $("api-key").focus();
  }

  // ---------------------------------------------------------------- connection

  function showToken(result) {
    const data = result.data || {};
    const line = $("token-status");
    const details = clear($("token-details"));
    clear(line);
    state.connected = Boolean(data.connected && data.valid);
    state.tokenStamp = tokenStamp(data);
    if (!data.connected) {
      line.appendChild(el("strong", { class: "bad", text: "Not connected" }));
      line.appendChild(document.createTextNode(": connect Facebook to use your ad accounts and pages."));
    } else if (data.valid) {
      line.appendChild(el("strong", { class: "ok", text: "Token valid" }));
      line.appendChild(document.createTextNode(` · ${data.user_name || data.user_id || "unknown user"} (${data.kind || "user"} token)`));
    } else {
      line.appendChild(el("strong", { class: "bad", text: "Token not valid" }));
      line.appendChild(document.createTextNode(`: ${data.reason || "Facebook refused it"}. Connect again.`));
    }
    if (data.connected) {
      details.appendChild(el("li", { text: data.expires_at ? `Expires ${data.expires_at.replace("T", " ").slice(0, 16)} UTC` : "Does not expire" }));
      details.appendChild(el("li", { text: "Scopes: " + ((data.scopes || []).join(", ") || "none") }));
      if ((data.missing_scopes || []).length) {
        details.appendChild(el("li", { class: "error", text: "Missing scopes: " + data.missing_scopes.join(", ") + " (connect again and allow them)" }));
      }
    } else if (!result.ok && result.text && !/not connected/i.test(result.text)) {
      details.appendChild(el("li", { class: "error", text: firstLine(result.text) }));
    }
    $("connect").textContent = data.connected ? "Connect again" : "Connect Facebook";
    $("connect-switch").hidden = !data.connected;
    $("disconnect").disabled = !data.connected;
    for (const id of ["ad-account", "instagram-account", "choose-page"]) $(id).disabled = !state.connected;
  }

  // The link works in this browser only: the answer sets an HttpOnly sign-in cookie that the callback checks.
  // `switchUser` lets the sign-in move this workspace to another Facebook user (else such a sign-in is refused).
  async function connect(switchUser) {
    say("connection-message", "");
    clear($("connect-link"));
    const result = await op("connect", switchUser === true ? { switch: true } : {});
    if (!result.ok || !result.data.url) {
      say("connection-message", firstLine(result.text), "error");
      return;
    }
    const url = result.data.url;
    const opened = window.open(url, "admonster-connect");
    const link = el("a", { href: url, target: "_blank", rel: "noopener", text: "Open the Facebook sign-in page" });
    $("connect-link").appendChild(document.createTextNode(opened ? "A sign-in window opened. If it did not, " : "Your browser blocked the window: "));
    $("connect-link").appendChild(link);
    $("connect-link").appendChild(document.createTextNode(". This page updates when you are back."));
    say("connection-message", "Waiting for Facebook sign-in…");
    startPolling();
  }

  // After Connect: ask for the token's health every few seconds until a new valid token is there (the sign-in
  // window lands on this server's callback page, which stores it), then reload every section.
  function tokenStamp(data) {
    return data && data.connected && data.valid ? [data.user_id, data.expires_at, (data.scopes || []).join(",")].join("|") : "";
  }

  function startPolling() {
    stopPolling();
    const started = Date.now();
    const before = state.tokenStamp || "";
    const tick = async () => {
      state.pollTimer = null;
      let status;
      try {
        status = await op("token_status");
      } catch (error) {
        return;
      }
      const stamp = tokenStamp(status.data);
      if (stamp && stamp !== before) {
        showToken(status);
        clear($("connect-link"));
        say("connection-message", "Facebook connected.", "ok");
        await refreshAll(status);
        return;
      }
      if (!state.key) return;
      if (Date.now() - started < CONNECT_POLL_LIMIT_MS) {
        state.pollTimer = setTimeout(tick, CONNECT_POLL_MS);
      } else {
        say("connection-message", "Still not connected. Press Connect Facebook to get a fresh link.", "error");
      }
    };
    state.poll = tick;
    state.pollTimer = setTimeout(tick, CONNECT_POLL_MS);
  }

  function stopPolling() {
    if (state.pollTimer) clearTimeout(state.pollTimer);
    state.pollTimer = null;
    state.poll = null;
  }

  async function disconnect() {
    if (!window.confirm("Disconnect Facebook from this workspace? Ad Monster deletes this workspace's token, and asks Facebook to revoke the app only when no other workspace uses the same Facebook user.")) return;
    stopPolling();
    const result = await op("disconnect");
    say("connection-message", firstLine(result.text), result.ok ? "ok" : "error");
    await refreshAll();
  }

  // ---------------------------------------------------------------- ad account

  async function loadAdAccounts() {
    const select = clear($("ad-account"));
    if (!state.connected) {
      select.appendChild(el("option", { value: "", text: "Connect Facebook first" }));
      return;
    }
    const result = await op("list_ad_accounts");
    if (!result.ok) {
      say("ad-account-message", firstLine(result.text), "error");
      return;
    }
    const accounts = result.data.accounts || [];
    if (!result.data.selected) select.appendChild(el("option", { value: "", text: "Choose an ad account…" }));
    for (const account of accounts) {
      select.appendChild(el("option", { value: account.id, selected: account.id === result.data.selected,
        text: `${account.name || account.id} · ${account.currency || ""} · ${account.id}` }));
    }
    const chosen = accounts.find((a) => a.id === result.data.selected);
    $("ad-account-id").textContent = chosen ? `${chosen.id} · ${chosen.currency || ""}` : "";
    if (chosen && chosen.currency) state.currency = chosen.currency;
    if (!accounts.length) say("ad-account-message", firstLine(result.text), "error");
  }

  async function selectAdAccount() {
    const value = $("ad-account").value;
    if (!value) return;
    say("ad-account-message", "Selecting…");
    const result = await op("select_ad_account", { ad_account_id: value });
    say("ad-account-message", firstLine(result.text), result.ok ? "ok" : "error");
    await loadAdAccounts();
    await loadInstagram();
    await loadOverview();
  }

  // ---------------------------------------------------------------- pages (the page selection modal)

  async function loadPages() {
    const current = clear($("page-current"));
    if (!state.connected) {
      current.textContent = "Connect Facebook first.";
      state.pages = [];
      return;
    }
    const result = await op("list_pages");
    if (!result.ok) {
      current.textContent = "No page selected.";
      say("page-message", firstLine(result.text), "error");
      return;
    }
    state.pages = result.data.pages || [];
    state.selectedPage = result.data.selected || null;
    const page = state.pages.find((p) => p.id === state.selectedPage);
    if (page) {
      current.appendChild(el("strong", { text: page.name }));
      current.appendChild(document.createTextNode(` (${page.id})`));
      if (state.pages.length === 1) current.appendChild(el("span", { class: "badge ok", text: "selected automatically: your only page" }));
      current.appendChild(el("br"));
      current.appendChild(document.createTextNode(page.instagram_account_id ? `Instagram ${page.instagram_account_id}` : "No Instagram account linked"));
    } else if (!state.pages.length) {
      current.textContent = "You manage no Facebook page.";
    } else {
      current.textContent = "No page selected: choose the page ads run for.";
    }
    $("choose-page").textContent = page ? "Change page" : "Choose page";
    renderPageCards();
  }

  function renderPageCards() {
    const list = clear($("page-cards"));
    if (!state.pages.length) {
      list.appendChild(el("li", { text: "You manage no Facebook page. Create one or get a role on one, then connect again." }));
      return;
    }
    for (const page of state.pages) {
      const selected = page.id === state.selectedPage;
      const tasks = page.tasks || [];
      const titleId = "page-card-title-" + page.id;
      const card = el("li", { class: "page-card" + (selected ? " selected" : ""), "aria-labelledby": titleId },
        el("h3", { id: titleId }, page.name || page.id, selected ? el("span", { class: "badge ok", text: "Selected" }) : null),
        el("p", { class: "hint", text: [page.category, page.id].filter(Boolean).join(" · ") }),
        el("p", { text: "Your tasks: " + (tasks.join(", ") || "none") }),
        tasks.includes("ADVERTISE") ? null : el("p", { class: "warn", text: "You lack the ADVERTISE task: ads for this page will be refused." }),
        el("p", { text: page.instagram_account_id ? "Instagram account: " + page.instagram_account_id : "No Instagram account linked" }),
        el("button", { type: "button", "aria-label": "Select page " + (page.name || page.id), onclick: () => selectPage(page.id) },
          selected ? "Select again" : "Select"));
      list.appendChild(card);
    }
  }

  async function openPageDialog() {
    say("page-dialog-message", "");
    const dialog = $("page-dialog");
    if (!dialog.open) dialog.showModal();
    say("page-dialog-message", "Loading your pages…");
    await loadPages();
    say("page-dialog-message", "");
  }

  async function selectPage(pageId) {
    say("page-dialog-message", "Selecting…");
    const result = await op("select_page", { page_id: pageId });
    if (!result.ok) {
      say("page-dialog-message", firstLine(result.text), "error");
      return;
    }
    say("page-dialog-message", "");
    $("page-dialog").close();
    say("page-message", firstLine(result.text), "ok");
    await loadPages();
    await loadInstagram();
  }

  // ---------------------------------------------------------------- Instagram

  async function loadInstagram() {
    const select = clear($("instagram-account"));
    const current = clear($("instagram-current"));
    if (!state.connected) {
      select.appendChild(el("option", { value: "", text: "Connect Facebook first" }));
      return;
    }
    const result = await op("list_instagram_accounts");
    if (!result.ok) {
      say("instagram-message", firstLine(result.text), "error");
      return;
    }
    const items = result.data.instagram_accounts || [];
    if (!result.data.selected) select.appendChild(el("option", { value: "", text: items.length ? "Choose an Instagram account…" : "None linked" }));
    for (const item of items) {
      select.appendChild(el("option", { value: item.id, selected: item.selected,
        text: `${item.username ? "@" + item.username : "(username not readable)"} · ${item.id}` }));
    }
    const chosen = items.find((i) => i.selected);
    $("instagram-id").textContent = chosen ? chosen.id : "";
    if (chosen) {
      current.appendChild(document.createTextNode("Ads run on Instagram as "));
      current.appendChild(el("strong", { text: chosen.username ? "@" + chosen.username : chosen.id }));
      if (chosen.name) current.appendChild(document.createTextNode(` (${chosen.name})`));
      current.appendChild(document.createTextNode("."));
    } else if (!items.length) {
      current.textContent = firstLine(result.text);
    }
  }

  async function selectInstagram() {
    const value = $("instagram-account").value;
    if (!value) return;
    const result = await op("select_instagram_account", { instagram_account_id: value });
    say("instagram-message", firstLine(result.text), result.ok ? "ok" : "error");
    await loadInstagram();
  }

  // ---------------------------------------------------------------- chat

  function threadKey() {
    return THREAD_STORAGE + (state.workspace ? state.workspace.id : "default");
  }

  function newThreadId() {
    const bytes = new Uint8Array(8);
    crypto.getRandomValues(bytes);
    const id = "console-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    localStorage.setItem(threadKey(), id);
    return id;
  }

  function threadId() {
    return localStorage.getItem(threadKey()) || newThreadId();
  }

  // The thread's turns as the server keeps them (GET /v1/threads/{id}): what was said survives a reload.
  async function loadHistory() {
    const log = clear($("chat-log"));
    const { status, body } = await get("/v1/threads/" + encodeURIComponent(threadId()));
    if (status !== 200 || !body) {
      if (status) say("chat-message-status", "The earlier messages could not be loaded (HTTP " + status + ").", "error");
      return;
    }
    const turns = (body.messages || []).filter((m) => (m.role === "user" || m.role === "assistant") &&
      typeof m.content === "string" && m.content.trim());
    const items = turns.map((m) => chatLine(m.role === "user" ? "you" : "bot", m.content));
    if (!turns.length) {
      log.appendChild(el("li", { class: "empty", text: "No messages yet. Type /status, /campaigns or /help, or ask in your own words." }));
      return;
    }
    const pending = await pendingConfirmations();
    turns.forEach((m, index) => { if (m.role === "assistant") attachCards(items[index], m.content, pending); });
  }

  function newConversation() {
    newThreadId();
    clear($("chat-log"));
    $("chat-log").appendChild(el("li", { class: "empty", text: "A new conversation. The earlier one stays on the server." }));
    say("chat-message-status", "");
    $("chat-message").focus();
  }

  function chatLine(kind, text, tools, fileUrls) {
    const log = $("chat-log");
    for (const empty of log.querySelectorAll("li.empty")) empty.remove();
    const who = el("span", { class: "who", text: kind === "you" ? "You: " : kind.startsWith("bot") ? "Ad Monster: " : "" });
    const item = kind === "bot" ? el("li", { class: kind }, who, renderMarkdown(text))
      : kind === "bot streaming" ? el("li", { class: kind, "aria-busy": "true" }, who, el("span", { class: "md" }))
      : el("li", { class: kind }, who, text);
    if (tools && tools.length) {
      const names = tools.map((t) => (t && (t.op || t.name || (t.function && t.function.name) ||
        (t.arguments && t.arguments.op) || (t.args && t.args.op))) || "tool").join(", ");
      item.appendChild(el("span", { class: "tools", text: "Tools used: " + names }));
    }
    showFiles(item, fileUrls);
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
    return item;
  }

  async function sendChat(event) {
    event.preventDefault();
    const box = $("chat-message");
    const message = box.value.trim();
    if (!message) return;
    box.value = "";
    chatLine("you", message);
    $("chat-send").disabled = true;
    say("chat-message-status", "Ad Monster is working…");
    try {
      // Free text goes to the LLM: its words appear as they come; commands answer at once, whole.
      let streaming = null;
      const onText = (piece) => {
        if (!streaming) streaming = chatLine("bot streaming", "");
        streaming.lastChild.textContent += piece;
        $("chat-log").scrollTop = $("chat-log").scrollHeight;
      };
      const { status, body } = message.startsWith("/")
        ? await post("/v1/chat", { thread_id: threadId(), message })
        : await postStream("/v1/chat/stream", { thread_id: threadId(), message }, onText);
      if (streaming) streaming.remove();  // replaced by the whole answer, rendered
      if (status === 404 || status === 405) {
        chatLine("note", "Chat needs an LLM (ADMONSTER_LLM_BASE_URL): this server has no chat endpoint yet. " +
          "The sections above still do everything.");
      } else if (typeof body.reply === "string") {
        const fileUrls = body.file_urls || (body.tool_calls || []).flatMap((t) => (t && t.file_urls) || []);
        const item = chatLine("bot", body.reply, body.tool_calls, fileUrls);
        attachCards(item, body.reply, await pendingConfirmations());
      } else {
        chatLine("note", firstLine(body.text) || `The chat answered HTTP ${status} without a reply.`);
      }
      say("chat-message-status", "");
      if (status) await Promise.all([loadAudit(), loadConfirmations()]);
      if (status && (body.tool_calls || []).some((t) => t && t.ok && WRITES_CAMPAIGNS.test(String(t.name || "")))) await loadOverview();
    } catch (error) {
      if (!(error instanceof SignedOut)) say("chat-message-status", String(error), "error");
    } finally {
      $("chat-send").disabled = false;
    }
  }

  // ---------------------------------------------------------------- confirmations and audit log

  // ---------------------------------------------------------------- confirmation cards (the same gate as /confirm)

  const CONFIRMATION_ID = /\bc-[0-9a-f]{4,}\b/g;
  const WRITES_CAMPAIGNS = /campaign|confirm|reject|undo|budget|adset/;

  async function pendingConfirmations() {
    const result = await op("list_confirmations");
    return result.ok ? (result.data.confirmations || []) : [];
  }

  // A card for every confirmation id the answer names that is still waiting (used or rejected ones get none).
  function attachCards(item, text, pending) {
    const ids = new Set(String(text || "").match(CONFIRMATION_ID) || []);
    const cards = pending.filter((c) => ids.has(c.id)).map((c) => confirmationCard(c));
    if (!cards.length) return;
    const body = item.querySelector(".md");
    if (body && /^Waiting for your confirmation/.test(String(text).trim()) && ids.size === 1) body.hidden = true;
    item.appendChild(el("ul", { class: "confirm-cards" }, ...cards));
  }

  function sentence(preview) {
    const text = String(preview || "").trim();
    return (/^would /.test(text) ? "This " + text : text).replace(/[.]?$/, ".");
  }

  function settleCard(card, name) {
    const actions = card.querySelector(".actions");
    if (actions) actions.remove();
    card.querySelector(".confirm-title strong").textContent = name === "confirm" ? "Confirmed" : "Rejected";
  }

  function confirmationCard(pending) {
    const status = el("p", { class: "message", role: "status" });
    const confirm = el("button", { type: "button", class: "confirm", "aria-label": "Confirm " + pending.id }, "Confirm");
    const reject = el("button", { type: "button", class: "secondary reject", "aria-label": "Reject " + pending.id }, "Reject");
    const card = el("li", { class: "confirm-card", "data-confirmation": pending.id, "aria-label": "Confirmation " + pending.id },
      el("p", { class: "confirm-title" }, el("strong", { text: "Waiting for your confirmation" }), " ",
        el("code", { text: pending.id })),
      el("p", { text: sentence(pending.preview) }),
      el("div", { class: "actions" }, confirm, reject),
      status);
    const decide = (name) => guard(async () => {
      confirm.disabled = reject.disabled = true;
      status.textContent = name === "confirm" ? "Running…" : "Cancelling…";
      const result = await op(name, { confirm: pending.id });
      status.textContent = firstLine(result.text);
      status.classList.toggle("ok", result.ok);
      status.classList.toggle("error", !result.ok);
      card.classList.add(result.ok ? (name === "confirm" ? "done" : "dropped") : "failed");
      if (result.ok) settleCard(card, name);
      else confirm.disabled = reject.disabled = false;
      await Promise.all([loadConfirmations(), loadAudit(), loadOverview()]);
    }, "confirmations-message");
    confirm.addEventListener("click", decide("confirm"));
    reject.addEventListener("click", decide("reject"));
    return card;
  }

  async function loadConfirmations() {
    const list = clear($("confirmations"));
    const result = await op("list_confirmations");
    if (!result.ok) {
      say("confirmations-message", firstLine(result.text), "error");
      return;
    }
    const pending = result.data.confirmations || [];
    // Cards of calls decided elsewhere (a typed /confirm, another tab, expiry) lose their buttons.
    const waitingIds = new Set(pending.map((item) => item.id));
    for (const card of document.querySelectorAll(".confirm-card")) {
      const actions = card.querySelector(".actions");
      if (actions && !waitingIds.has(card.dataset.confirmation)) {
        actions.remove();
        card.querySelector(".confirm-title strong").textContent = "No longer waiting";
        card.classList.add("dropped");
      }
    }
    $("jump-confirmations").textContent = pending.length ? `Confirmations (${pending.length} waiting)` : "Confirmations";
    $("jump-confirmations").classList.toggle("waiting", pending.length > 0);
    if (!pending.length) {
      list.appendChild(el("li", { text: "Nothing is waiting for confirmation." }));
      return;
    }
    for (const item of pending) {
      list.appendChild(el("li", {},
        el("code", { text: item.id }),
        el("span", { text: sentence(item.preview) }),
        el("button", { type: "button", "aria-label": "Confirm " + item.id, onclick: guard(() => decideCall("confirm", item.id), "confirmations-message") }, "Confirm"),
        el("button", { type: "button", class: "secondary", "aria-label": "Reject " + item.id, onclick: guard(() => decideCall("reject", item.id), "confirmations-message") }, "Reject")));
    }
  }

  async function decideCall(name, id) {
    say("confirmations-message", (name === "confirm" ? "Running " : "Cancelling ") + id + "…");
    const result = await op(name, { confirm: id });
    say("confirmations-message", firstLine(result.text), result.ok ? "ok" : "error");
    for (const card of document.querySelectorAll(`.confirm-card[data-confirmation="${id}"]`)) {
      if (result.ok) settleCard(card, name);
      card.querySelector(".message").textContent = firstLine(result.text);
    }
    await Promise.all([loadConfirmations(), loadAudit(), loadOverview()]);
  }


  // A stored UTC time in the viewer's own time zone, the zone named: "Sun 06 Dec 2026, 11:18 PST".
  function viewerTime(iso) {
    const moment = new Date(String(iso || ""));
    if (Number.isNaN(moment.getTime())) return String(iso || "");
    return new Intl.DateTimeFormat(undefined, { weekday: "short", day: "2-digit", month: "short", year: "numeric",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short" }).format(moment);
  }
  async function loadAudit() {
    const rows = clear($("audit-rows"));
    const result = await op("audit_log", { limit: 20 });
    if (!result.ok) {
      say("audit-message", firstLine(result.text), "error");
      return;
    }
    const entries = result.data.entries || [];
    if (!entries.length) {
      rows.appendChild(el("tr", {}, el("td", { colspan: 6, text: "Nothing has been written yet." })));
      return;
    }
    for (const entry of entries) {
      rows.appendChild(el("tr", {},
        el("td", { "data-label": "#", text: "#" + entry.id }),
        el("td", { "data-label": "When", text: viewerTime(entry.created_at) }),
        el("td", { "data-label": "Via", text: entry.interface || "" }),
        el("td", { "data-label": "Op" }, el("code", { text: entry.op || "" })),
        el("td", { "data-label": "Outcome", class: entry.outcome === "ok" ? "" : "error", text: entry.outcome + (entry.undone_by ? " (undone)" : "") }),
        el("td", { "data-label": "Summary", class: "summary", text: entry.summary || entry.error || "" })));
    }
  }

  // ---------------------------------------------------------------- campaigns (like Ads Manager's table) and the chart

  // What counts as a result, by the campaign's objective (fields of fb_insights' rows). Ads Manager's "Results" follow
  // each ad set's optimization goal ("based on the objective and ad delivery optimization selected"); this per-objective
  // default is our approximation, UNVERIFIED against Ads Manager for mixed goals. Awareness: cost per 1,000, as CPM.
  const RESULTS = {
    OUTCOME_SALES: ["purchases", "purchase", "purchases"],
    OUTCOME_LEADS: ["leads", "lead", "leads"],
    OUTCOME_TRAFFIC: ["link_clicks", "link click", "link clicks"],
    OUTCOME_ENGAGEMENT: ["clicks", "click", "clicks"],
    OUTCOME_AWARENESS: ["impressions", "impression", "impressions", 1000],
  };
  const DELIVERY = { ACTIVE: "Active", PAUSED: "Off", CAMPAIGN_PAUSED: "Off", WITH_ISSUES: "With issues",
    IN_PROCESS: "In process", PENDING_REVIEW: "In review", DISAPPROVED: "Not approved", ARCHIVED: "Archived",
    DELETED: "Deleted", ADSET_PAUSED: "Ad sets off" };
  const PERIODS = { today: "Today", yesterday: "Yesterday", last_7d: "Last 7 days", last_30d: "Last 30 days" };

  function resultOf(campaign, row) {
    const [field, one, many, per] = RESULTS[campaign.objective] || ["link_clicks", "link click", "link clicks"];
    const value = row ? Number(row[field] || 0) : 0;
    return { value, noun: value === 1 ? one : many, per: per || 1 };
  }

  function budgetText(campaign, currency) {
    if (campaign.daily_budget) return money(campaign.daily_budget, currency) + "/day";
    if (campaign.lifetime_budget) return money(campaign.lifetime_budget, currency) + " lifetime";
    return "On ad sets";
  }

  async function loadOverview() {
    if (!state.connected) {
      clear($("campaign-rows")).appendChild(el("tr", {}, el("td", { colspan: 7, text: "Connect Facebook to see your campaigns." })));
      clear($("campaign-totals"));
      clear($("chart"));
      $("chart-caption").textContent = "";
      state.chart = null;
      return;
    }
    await Promise.all([loadCampaigns(), loadChart()]);
  }

  async function loadCampaigns() {
    const rows = clear($("campaign-rows"));
    const totals = clear($("campaign-totals"));
    if (!state.connected) return;
    const period = $("period").value;
    $("campaign-table").setAttribute("aria-busy", "true");
    const [list, insights] = await Promise.all([op("list_campaigns", { all_pages: true }),
      op("get_insights", { level: "campaign", date_preset: period })]);
    if (!list.ok) {
      $("campaign-table").removeAttribute("aria-busy");
      say("campaigns-message", firstLine(list.text), "error");
      return;
    }
    const currency = list.data.currency || state.currency;
    state.currency = currency;
    const byCampaign = new Map(((insights.ok && insights.data.rows) || []).map((row) => [row.campaign_id, row]));
    state.campaigns = list.data.campaigns || [];
    if (!state.campaigns.length) {
      rows.appendChild(el("tr", {}, el("td", { colspan: 7, text: "No campaigns in this ad account yet." })));
    }
    let spend = 0;
    for (const campaign of state.campaigns) {
      const row = byCampaign.get(campaign.id);
      const spent = row ? Number(row.spend_minor || 0) : 0;
      spend += spent;
      const result = resultOf(campaign, row);
      const delivery = campaign.effective_status || campaign.status || "";
      const name = campaign.name || campaign.id;
      const actions = el("td", { class: "row-actions" });
      if (campaign.status === "ACTIVE") {
        actions.appendChild(el("button", { type: "button", class: "secondary", "aria-label": "Pause " + name,
          onclick: guard(() => campaignAction("pause_campaign", { campaign_id: campaign.id }), "campaigns-message") }, "Pause"));
      } else if (campaign.status === "PAUSED") {
        actions.appendChild(el("button", { type: "button", class: "secondary", "aria-label": "Resume " + name,
          onclick: guard(() => campaignAction("resume_campaign", { campaign_id: campaign.id }), "campaigns-message") }, "Resume"));
      }
      const budgetCell = el("td", { class: "budget", "data-label": "Budget" }, budgetText(campaign, currency));
      if (campaign.daily_budget || campaign.lifetime_budget) {
        actions.appendChild(el("button", { type: "button", class: "secondary", "aria-label": "Edit budget of " + name,
          onclick: (event) => editBudget(campaign, budgetCell, currency, event.currentTarget) }, "Edit budget"));
      } else {  // the budgets live on the ad sets: list them in the chat, where /tool update_adset changes one
        actions.appendChild(el("button", { type: "button", class: "secondary", "aria-label": "Ad sets of " + name,
          onclick: () => askChat("/adsets " + campaign.id) }, "Ad sets"));
      }
      rows.appendChild(el("tr", { "data-campaign": campaign.id },
        el("th", { scope: "row" }, el("span", { class: "name", text: name }), el("span", { class: "hint id-line", text: campaign.id })),
        el("td", { "data-label": "Delivery" }, el("span", { class: "delivery " + delivery.toLowerCase(), text: DELIVERY[delivery] ||
          delivery.toLowerCase().replace(/_/g, " ") })),
        budgetCell,
        el("td", { class: "num", "data-label": "Results" }, el("span", {}, row ? count(result.value) : "—",
          el("span", { class: "hint unit", text: row ? " " + result.noun : "" }))),
        el("td", { class: "num", "data-label": "Cost per result", text: row && result.value ?
          money(spent * result.per / result.value, currency) + (result.per > 1 ? ` per ${count(result.per)}` : "") : "—" }),
        el("td", { class: "num", "data-label": "Amount spent", text: row ? money(spent, currency) : money(0, currency) }),
        actions));
    }
    if (state.campaigns.length) {
      totals.appendChild(el("tr", {}, el("th", { scope: "row", colspan: 5, text: `Total · ${PERIODS[period] || period}` }),
        el("td", { class: "num", text: money(spend, currency) }), el("td", {})));
    }
    $("campaign-table").removeAttribute("aria-busy");
    say("campaigns-message", insights.ok ? "" : "Spend and results could not be read: " + firstLine(insights.text),
      insights.ok ? "" : "error");
  }

  // Pause, resume and budget changes go through the same gate as everywhere: a held change shows its card here.
  async function campaignAction(name, args) {
    say("campaigns-message", "Working…");
    const result = await op(name, args);
    if (result.held && result.data.confirmation_id) {
      say("campaigns-message", "");
      $("campaign-cards").appendChild(confirmationCard({ id: result.data.confirmation_id, op: result.data.op || name,
        preview: result.data.preview || result.text }));
      await loadConfirmations();
      return;
    }
    if (result.ok) await Promise.all([loadCampaigns(), loadAudit()]);
    say("campaigns-message", firstLine(result.text), result.ok ? "ok" : "error");
  }

  function askChat(line) {
    const box = $("chat-message");
    box.value = line;
    $("chat-section").scrollIntoView({ block: "start" });
    box.focus();
    $("chat-form").requestSubmit();
  }

  function editBudget(campaign, cell, currency, opener) {
    if (cell.querySelector("form")) return;
    const field = campaign.daily_budget ? "daily_budget" : "lifetime_budget";
    const digits = fractionDigits(currency);
    const current = Number(campaign[field]) / (digits ? 100 : 1);
    const label = `New ${field === "daily_budget" ? "daily" : "lifetime"} budget of ${campaign.name || campaign.id} (${currency})`;
    const input = el("input", { type: "number", min: 0, step: digits ? "0.01" : "1", value: current.toFixed(digits),
      "aria-label": label, inputmode: "decimal", required: true });
    const restore = () => {  // back to the amount, the focus back on the button that opened the edit
      clear(cell).appendChild(document.createTextNode(budgetText(campaign, currency)));
      if (opener && opener.isConnected) opener.focus();
    };
    const form = el("form", { class: "budget-form" }, input,
      el("button", { type: "submit", "aria-label": "Save budget of " + (campaign.name || campaign.id) }, "Save"),
      el("button", { type: "button", class: "secondary", onclick: restore }, "Cancel"));
    form.addEventListener("keydown", (event) => { if (event.key === "Escape") restore(); });
    form.addEventListener("submit", guard(async (event) => {
      event.preventDefault();
      const minor = Math.round(Number(input.value) * (digits ? 100 : 1));
      if (!Number.isFinite(minor) || minor <= 0) {
        say("campaigns-message", `Give the budget in ${currency}, more than zero.`, "error");
        return;
      }
      await campaignAction("update_campaign", { campaign_id: campaign.id, [field]: minor });
    }, "campaigns-message"));
    clear(cell).appendChild(form);
    input.focus();
    input.select();
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    for (const child of children) node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    return node;
  }

  // Daily spend as bars and results (purchases, else leads, else link clicks) as a line, drawn as SVG.
  async function loadChart() {
    const box = clear($("chart"));
    const chosen = $("period").value;
    const period = chosen === "last_30d" ? "last_30d" : "last_7d";
    const result = await op("get_insights", { date_preset: period, time_increment: 1 });
    if (!result.ok) {
      say("chart-message", firstLine(result.text), "error");
      $("chart-caption").textContent = "";
      return;
    }
    say("chart-message", "");
    state.chart = { result, period, chosen };
    drawChart();
  }

  function drawChart() {
    if (!state.chart) return;
    const { result, period, chosen } = state.chart;
    const box = clear($("chart"));
    const currency = result.data.currency || state.currency;
    const rows = (result.data.rows || []).slice().sort((a, b) => String(a.date_start).localeCompare(String(b.date_start)));
    const totals = result.data.totals || {};
    const metric = totals.purchases ? ["purchases", "Purchases"] : totals.leads ? ["leads", "Leads"] : ["link_clicks", "Link clicks"];
    $("chart-caption").textContent = `${PERIODS[period]}${chosen !== period ? " (the chart shows at least a week)" : ""}: ` +
      `${money(totals.spend_minor || 0, currency)} spent · ${count(totals[metric[0]] || 0)} ${metric[1].toLowerCase()}`;
    if (!rows.length) {
      box.appendChild(el("p", { class: "hint", text: "No spend in this period." }));
      return;
    }
    const W = Math.max(280, Math.round(box.clientWidth || 720)), H = W < 500 ? 200 : 240, left = 58, right = 34, top = 16, bottom = 28;
    const plotW = W - left - right, plotH = H - top - bottom;
    // Axis tops rounded up to a round number (1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten).
    const nice = (value) => {
      const power = 10 ** Math.floor(Math.log10(Math.max(value, 1)));
      return [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].map((m) => m * power).find((top) => top >= value);
    };
    const unit = fractionDigits(currency) ? 100 : 1;
    const maxSpend = nice(Math.max(1, ...rows.map((r) => Number(r.spend_minor || 0))) / unit) * unit;
    const maxResult = Math.max(2, nice(Math.max(1, ...rows.map((r) => Number(r[metric[0]] || 0)))));
    const step = plotW / rows.length;
    const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "chart-svg",
      "aria-label": `Daily spend and ${metric[1].toLowerCase()}, ${PERIODS[period]}` });
    chart.appendChild(svg("title", {}, `Daily spend (bars) and ${metric[1].toLowerCase()} (line), ${PERIODS[period]}`));
    for (const fraction of [0, 0.5, 1]) {
      const y = top + plotH - fraction * plotH;
      chart.appendChild(svg("line", { x1: left, x2: W - right, y1: y, y2: y, class: "grid" }));
      chart.appendChild(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", class: "axis spend" }, money(maxSpend * fraction, currency)));
      chart.appendChild(svg("text", { x: W - right + 6, y: y + 4, "text-anchor": "start", class: "axis result" },
        count(Math.round(maxResult * fraction))));
    }
    const points = [];
    const labelEvery = Math.ceil(rows.length / Math.max(3, Math.floor(plotW / 64)));
    rows.forEach((row, index) => {
      const spent = Number(row.spend_minor || 0);
      const height = (spent / maxSpend) * plotH;
      const x = left + index * step;
      const bar = svg("rect", { x: x + step * 0.15, y: top + plotH - height, width: step * 0.7, height: Math.max(height, 0.5), class: "bar" });
      bar.appendChild(svg("title", {}, `${row.date_start}: ${money(spent, currency)} spent, ${count(row[metric[0]] || 0)} ${metric[1].toLowerCase()}`));
      chart.appendChild(bar);
      points.push(`${(x + step / 2).toFixed(1)},${(top + plotH - (Number(row[metric[0]] || 0) / maxResult) * plotH).toFixed(1)}`);
      if (index % labelEvery === 0) {
        chart.appendChild(svg("text", { x: x + step / 2, y: H - 8, "text-anchor": "middle", class: "axis" }, String(row.date_start).slice(5)));
      }
    });
    chart.appendChild(svg("polyline", { points: points.join(" "), class: "line" }));
    box.appendChild(chart);
    box.appendChild(el("p", { class: "legend" }, el("span", { class: "key bar-key", "aria-hidden": "true" }), " Spend (left axis)  ",
      el("span", { class: "key line-key", "aria-hidden": "true" }), ` ${metric[1]} (right axis)`));
  }

  // ---------------------------------------------------------------- everything

  async function refreshAll(status) {
    try {
      if (!status) showToken(await op("token_status"));
      await loadAdAccounts();
      await loadPages();
      await loadInstagram();
      await Promise.all([loadConfirmations(), loadAudit(), loadOverview()]);
    } catch (error) {
      if (!(error instanceof SignedOut)) throw error;
    }
  }

  // Buttons run one action at a time and show what failed instead of leaving a silent promise rejection.
  function guard(fn, messageId) {
    return async (...args) => {
      try {
        await fn(...args);
      } catch (error) {
        if (!(error instanceof SignedOut)) say(messageId, String(error), "error");
      }
    };
  }

  async function showMode() {
    try {
      const response = await fetch("/healthz");
      const body = await response.json();
      $("mode").textContent = body.mode === "SANDBOX" ? "Sandbox mode: the embedded Graph API, no real money" : "Live mode: real Facebook";
      $("mode").className = "badge " + (body.mode === "SANDBOX" ? "ok" : "bad");
    } catch (error) {
      $("mode").textContent = "";
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    showMode();
    $("login-form").addEventListener("submit", guard(async (event) => {
      event.preventDefault();
      const key = $("api-key").value.trim();
      if (!key) return say("login-error", "Paste your workspace API key first.", "error");
      await signIn(key);
    }, "login-error"));
    $("sign-out").addEventListener("click", () => signOut());
    $("connect").addEventListener("click", guard(() => connect(false), "connection-message"));
    $("connect-switch").addEventListener("click", guard(() => connect(true), "connection-message"));
    $("disconnect").addEventListener("click", guard(disconnect, "connection-message"));
    $("refresh-token").addEventListener("click", guard(() => refreshAll(), "connection-message"));
    $("ad-account").addEventListener("change", guard(selectAdAccount, "ad-account-message"));
    $("choose-page").addEventListener("click", guard(openPageDialog, "page-message"));
    $("page-dialog-close").addEventListener("click", () => $("page-dialog").close());
    $("instagram-account").addEventListener("change", guard(selectInstagram, "instagram-message"));
    $("chat-form").addEventListener("submit", sendChat);
    $("chat-message").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        $("chat-form").requestSubmit();
      }
    });
    $("refresh-confirmations").addEventListener("click", guard(loadConfirmations, "confirmations-message"));
    $("refresh-audit").addEventListener("click", guard(loadAudit, "audit-message"));
    $("new-chat").addEventListener("click", newConversation);
    let resizeTimer = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(drawChart, 150);
    });
    $("period").addEventListener("change", guard(loadOverview, "campaigns-message"));
    $("refresh-campaigns").addEventListener("click", guard(loadOverview, "campaigns-message"));
    window.addEventListener("focus", () => {  // back from the sign-in window: look at once
      if (state.key && state.pollTimer && state.poll) {
        clearTimeout(state.pollTimer);
        state.poll();
      }
    });
    const saved = sessionStorage.getItem(KEY_STORAGE);
    if (saved) guard(signIn, "login-error")(saved);
  });
})();
