// Ad Monster web console: a thin client of POST /v1/tools/facebook and POST /v1/chat.
// Every piece of data is put on the page with textContent / createTextNode, never as HTML.
"use strict";

(() => {
  const KEY_STORAGE = "admonster.apiKey";
  const THREAD_STORAGE = "admonster.threadId";
  const CONNECT_POLL_MS = 2000;
  const CONNECT_POLL_LIMIT_MS = 10 * 60 * 1000;

  const $ = (id) => document.getElementById(id);
  const state = { key: null, connected: false, tokenStamp: "", pages: [], selectedPage: null, pollTimer: null, poll: null };

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

  async function post(path, body) {
    let response;
    try {
      response = await fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/json", "Authorization": "Bearer " + state.key },
        body: JSON.stringify(body),
      });
    } catch (error) {
      return { status: 0, body: { ok: false, text: "ERROR network: the Ad Monster server did not answer. Fix: check that `admonster serve` is running." } };
    }
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

  // One op of the facebook tool; resolves to {ok, text, data}.
  async function op(name, args) {
    const { body } = await post("/v1/tools/facebook", { op: name, args: args || {} });
    return { ok: Boolean(body.ok), text: body.text || "", data: body.data || {} };
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
    showToken(status);
    await refreshAll(status);
  }

  function signOut(reason) {
    stopPolling();
    sessionStorage.removeItem(KEY_STORAGE);
    state.key = null;
    $("console").hidden = true;
    $("sign-out").hidden = true;
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

  function threadId() {
    let id = sessionStorage.getItem(THREAD_STORAGE);
    if (!id) {
      const bytes = new Uint8Array(8);
      crypto.getRandomValues(bytes);
      id = "console-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
      sessionStorage.setItem(THREAD_STORAGE, id);
    }
    return id;
  }

  function chatLine(kind, text, tools, fileUrls) {
    const log = $("chat-log");
    const item = el("li", { class: kind }, el("span", { class: "who", text: kind === "you" ? "You: " : kind === "bot" ? "Ad Monster: " : "" }), text);
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
      const { status, body } = await post("/v1/chat", { thread_id: threadId(), message });
      if (status === 404 || status === 405) {
        chatLine("note", "Chat needs an LLM (ADMONSTER_LLM_BASE_URL): this server has no chat endpoint yet. " +
          "The sections above still do everything.");
      } else if (typeof body.reply === "string") {
        const fileUrls = body.file_urls || (body.tool_calls || []).flatMap((t) => (t && t.file_urls) || []);
        chatLine("bot", body.reply, body.tool_calls, fileUrls);
      } else {
        chatLine("note", firstLine(body.text) || `The chat answered HTTP ${status} without a reply.`);
      }
      say("chat-message-status", "");
      await Promise.all([loadAudit(), loadConfirmations()]);
    } catch (error) {
      if (!(error instanceof SignedOut)) say("chat-message-status", String(error), "error");
    } finally {
      $("chat-send").disabled = false;
    }
  }

  // ---------------------------------------------------------------- confirmations and audit log

  async function loadConfirmations() {
    const list = clear($("confirmations"));
    const result = await op("list_confirmations");
    if (!result.ok) {
      say("confirmations-message", firstLine(result.text), "error");
      return;
    }
    const pending = result.data.confirmations || [];
    if (!pending.length) {
      list.appendChild(el("li", { text: "Nothing is waiting for confirmation." }));
      return;
    }
    for (const item of pending) {
      list.appendChild(el("li", {},
        el("code", { text: item.id }),
        el("span", { text: `${item.op}: ${item.preview}` }),
        el("button", { type: "button", "aria-label": "Confirm " + item.id, onclick: () => confirmCall(item.id) }, "Confirm")));
    }
  }

  async function confirmCall(id) {
    say("confirmations-message", "Running " + id + "…");
    const result = await op("confirm", { confirm: id });
    say("confirmations-message", firstLine(result.text), result.ok ? "ok" : "error");
    await Promise.all([loadConfirmations(), loadAudit()]);
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
        el("td", { text: "#" + entry.id }),
        el("td", { text: String(entry.created_at || "").replace("T", " ").slice(0, 19) }),
        el("td", { text: entry.interface || "" }),
        el("td", {}, el("code", { text: entry.op || "" })),
        el("td", { class: entry.outcome === "ok" ? "" : "error", text: entry.outcome + (entry.undone_by ? " (undone)" : "") }),
        el("td", { text: entry.summary || entry.error || "" })));
    }
  }

  // ---------------------------------------------------------------- everything

  async function refreshAll(status) {
    try {
      if (!status) showToken(await op("token_status"));
      await loadAdAccounts();
      await loadPages();
      await loadInstagram();
      await Promise.all([loadConfirmations(), loadAudit()]);
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
