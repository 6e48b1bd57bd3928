// chatgate demo chat page: the wire contract (docs/wire-contract.md) driven by
// the real socket.io-client, which /socket.io-client.js serves.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const TYPING_IDLE_MS = 2000;
  const TYPING_SHOWN_MS = 6000;
  const ERROR_SHOWN_MS = 8000;

  /** One joined channel: its members, who of them is online, its messages. */
  function newChannel(channelId) {
    return {
      channelId,
      members: new Set(),
      online: new Map(), // userId -> status
      messages: [],
      unread: 0,
      typing: new Map(), // userId -> timer
    };
  }

  const state = {
    socket: null,
    me: null,
    active: null,
    channels: new Map(), // channelId -> channel
    typingSent: false,
    typingTimer: null,
  };

  // ---- errors ---------------------------------------------------------------

  /** Shows a failure object `{code, message}` (or a connect_error) to the user. */
  function showError(failure) {
    const code = (failure && failure.code) || "ERROR";
    const message = (failure && failure.message) || "something went wrong";
    const item = document.createElement("div");
    item.className = "error";
    item.dataset.code = code;
    const codeEl = document.createElement("span");
    codeEl.className = "code";
    codeEl.textContent = code;
    const text = document.createElement("span");
    text.textContent = message;
    item.append(codeEl, text);
    $("errors").append(item);
    setTimeout(() => item.remove(), ERROR_SHOWN_MS);
  }

  /** Emits with an ack; resolves with the ack object, shows failures. */
  function request(event, payload) {
    return new Promise((resolve) => {
      const done = (reply) => {
        if (!reply || reply.status !== "ok") {
          showError(reply);
        }
        resolve(reply || { status: "error" });
      };
      if (payload === undefined) {
        state.socket.emit(event, done);
      } else {
        state.socket.emit(event, payload, done);
      }
    });
  }

  // ---- rendering --------------------------------------------------------------

  function setConnState(kind, text) {
    const badge = $("conn-state");
    badge.dataset.state = kind;
    badge.textContent = text;
  }

  function formatTime(ts) {
    const d = new Date(ts);
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function renderChannels() {
    const list = $("channels");
    list.replaceChildren();
    for (const channel of state.channels.values()) {
      const item = document.createElement("li");
      item.dataset.channel = channel.channelId;
      item.className = channel.channelId === state.active ? "active" : "";
      const name = document.createElement("span");
      name.textContent = `# ${channel.channelId}`;
      item.append(name);
      if (channel.unread > 0) {
        const badge = document.createElement("span");
        badge.className = "unread";
        badge.textContent = String(channel.unread);
        item.append(badge);
      }
      item.addEventListener("click", () => switchTo(channel.channelId));
      list.append(item);
    }
  }

  function renderOnline() {
    const list = $("online");
    list.replaceChildren();
    const channel = state.channels.get(state.active);
    if (!channel) {
      $("online-count").textContent = "";
      return;
    }
    const users = [...channel.online.entries()].sort(([a], [b]) => a.localeCompare(b));
    $("online-count").textContent = `(${users.length})`;
    for (const [userId, status] of users) {
      const item = document.createElement("li");
      item.dataset.user = userId;
      item.dataset.status = status;
      const dot = document.createElement("span");
      dot.className = "dot";
      const name = document.createElement("span");
      name.textContent = userId === state.me ? `${userId} (you)` : userId;
      const note = document.createElement("span");
      note.className = "muted small";
      note.textContent = status === "online" ? "" : status;
      item.append(dot, name, note);
      list.append(item);
    }
  }

  function messageElement(message) {
    const item = document.createElement("li");
    const mine = message.userId === state.me;
    item.className = "message" + (mine ? " mine" : "") + (message.userId === "system" ? " system" : "");
    item.dataset.id = String(message.id);
    item.dataset.user = message.userId;
    const meta = document.createElement("div");
    meta.className = "meta";
    const author = document.createElement("span");
    author.className = "author";
    author.textContent = message.userId;
    const time = document.createElement("span");
    time.textContent = formatTime(message.ts);
    meta.append(author, time);
    const text = document.createElement("div");
    text.className = "text";
    text.textContent = message.text;
    item.append(meta, text);
    return item;
  }

  function renderMessages() {
    const list = $("messages");
    list.replaceChildren();
    const channel = state.channels.get(state.active);
    $("active-channel").textContent = channel ? `# ${channel.channelId}` : "No channel yet";
    $("leave").hidden = !channel;
    $("message-input").disabled = !channel;
    $("send").disabled = !channel;
    if (!channel) {
      return;
    }
    for (const message of channel.messages) {
      list.append(messageElement(message));
    }
    list.scrollTop = list.scrollHeight;
  }

  function renderTyping() {
    const channel = state.channels.get(state.active);
    const who = channel ? [...channel.typing.keys()] : [];
    const line = $("typing");
    if (who.length === 0) {
      line.textContent = "";
    } else if (who.length === 1) {
      line.textContent = `${who[0]} is typing…`;
    } else {
      line.textContent = `${who.join(", ")} are typing…`;
    }
  }

  function renderAll() {
    renderChannels();
    renderOnline();
    renderMessages();
    renderTyping();
  }

  function activate(channelId) {
    stopTyping();
    state.active = channelId;
    const channel = state.channels.get(channelId);
    if (channel) {
      channel.unread = 0;
    }
    renderAll();
  }

  function switchTo(channelId) {
    activate(channelId);
    refreshOnline(channelId);
  }

  // ---- channel state ------------------------------------------------------------

  function ensureChannel(channelId) {
    let channel = state.channels.get(channelId);
    if (!channel) {
      channel = newChannel(channelId);
      state.channels.set(channelId, channel);
    }
    return channel;
  }

  /** Loads members and online users of a channel from a join ack. */
  function applyMembers(channel, members, online) {
    channel.members = new Set(members);
    const previous = channel.online;
    channel.online = new Map();
    for (const userId of online) {
      channel.online.set(userId, previous.get(userId) || "online");
    }
  }

  async function refreshOnline(channelId) {
    const reply = await request("users:online", { channelId });
    const channel = state.channels.get(channelId);
    if (reply.status !== "ok" || !channel) {
      return;
    }
    channel.online = new Map(reply.users.map((u) => [u.userId, u.status]));
    if (channelId === state.active) {
      renderOnline();
    }
  }

  function addMessage(message) {
    const channel = ensureChannel(message.channelId);
    if (channel.messages.some((m) => m.id === message.id)) {
      return;
    }
    channel.messages.push(message);
    channel.typing.delete(message.userId);
    if (message.channelId === state.active) {
      $("messages").append(messageElement(message));
      $("messages").scrollTop = $("messages").scrollHeight;
      renderTyping();
    } else {
      channel.unread += 1;
      renderChannels();
    }
  }

  // ---- actions --------------------------------------------------------------------

  async function join(channelId) {
    const reply = await request("channel:join", channelId);
    if (reply.status !== "ok") {
      return;
    }
    const channel = ensureChannel(reply.channelId);
    applyMembers(channel, reply.members, reply.online);
    activate(reply.channelId);
    // Statuses other than "online" come with users:online.
    refreshOnline(reply.channelId);
  }

  async function leave() {
    const channelId = state.active;
    if (!channelId) {
      return;
    }
    const reply = await request("channel:leave", channelId);
    if (reply.status === "ok") {
      forgetChannel(channelId);
    }
  }

  function forgetChannel(channelId) {
    state.channels.delete(channelId);
    if (state.active === channelId) {
      const next = state.channels.keys().next();
      state.active = next.done ? null : next.value;
    }
    renderAll();
  }

  async function send(text) {
    const channelId = state.active;
    stopTyping();
    const clientMsgId = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const reply = await request("message:send", { channelId, text, clientMsgId });
    if (reply.status === "ok") {
      // The server does not echo a message to the connection that sent it.
      addMessage({ id: reply.id, channelId, userId: state.me, text, ts: reply.ts, clientMsgId });
      return true;
    }
    return false;
  }

  function startTyping() {
    if (!state.active || !state.socket) {
      return;
    }
    if (!state.typingSent) {
      state.typingSent = true;
      state.socket.emit("typing", { channelId: state.active, typing: true });
    }
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
  }

  function stopTyping() {
    clearTimeout(state.typingTimer);
    if (state.typingSent && state.socket && state.active) {
      state.socket.emit("typing", { channelId: state.active, typing: false });
    }
    state.typingSent = false;
  }

  async function loadChannels() {
    const reply = await request("channel:list");
    if (reply.status !== "ok") {
      return;
    }
    for (const summary of reply.channels) {
      ensureChannel(summary.channelId);
    }
    if (!state.active && reply.channels.length > 0) {
      state.active = reply.channels[0].channelId;
    }
    renderAll();
    if (state.active) {
      refreshOnline(state.active);
    }
  }

  // ---- the connection ----------------------------------------------------------------

  function connect(auth, label) {
    if (state.socket) {
      state.socket.disconnect();
    }
    setConnState("connecting", "connecting…");
    const socket = io({ auth });
    state.socket = socket;
    state.me = label;

    socket.on("connect", () => {
      setConnState("online", `connected as ${state.me}`);
      $("login").hidden = true;
      $("chat").hidden = false;
      $("presence").hidden = false;
      $("logout").hidden = false;
      state.channels.clear();
      state.active = null;
      loadChannels();
    });

    socket.on("connect_error", (err) => {
      setConnState("offline", "not connected");
      showError({
        code: err.message,
        message: (err.data && err.data.message) || "the server refused the connection",
      });
      if (!socket.active) {
        showLogin();
      }
    });

    socket.on("disconnect", (reason) => {
      if (reason === "io server disconnect" || reason === "io client disconnect") {
        setConnState("offline", "not connected");
        if (reason === "io server disconnect") {
          showError({ code: "DISCONNECTED", message: "the server closed this connection" });
        }
        showLogin();
      } else {
        setConnState("connecting", "reconnecting…");
      }
    });

    socket.on("message:new", (message) => addMessage(message));

    socket.on("channel:member-joined", ({ channelId, userId }) => {
      if (userId === state.me && !state.channels.has(channelId)) {
        // Added by the app backend: a new channel for us.
        join(channelId);
        return;
      }
      const channel = state.channels.get(channelId);
      if (channel) {
        channel.members.add(userId);
        refreshOnline(channelId);
      }
    });

    socket.on("channel:member-left", ({ channelId, userId }) => {
      if (userId === state.me) {
        forgetChannel(channelId);
        return;
      }
      const channel = state.channels.get(channelId);
      if (channel) {
        channel.members.delete(userId);
        channel.online.delete(userId);
        if (channelId === state.active) {
          renderOnline();
        }
      }
    });

    socket.on("presence:update", ({ userId, status }) => {
      let unknown = false;
      for (const channel of state.channels.values()) {
        if (status === "offline") {
          channel.online.delete(userId);
        } else if (channel.online.has(userId) || channel.members.has(userId)) {
          channel.online.set(userId, status);
        } else if (channel.channelId === state.active) {
          unknown = true;
        }
      }
      renderOnline();
      if (unknown) {
        // A member we did not know of (joined before this page loaded).
        refreshOnline(state.active);
      }
    });

    socket.on("typing", ({ channelId, userId, typing }) => {
      const channel = state.channels.get(channelId);
      if (!channel) {
        return;
      }
      clearTimeout(channel.typing.get(userId));
      if (typing) {
        channel.typing.set(
          userId,
          setTimeout(() => {
            channel.typing.delete(userId);
            renderTyping();
          }, TYPING_SHOWN_MS),
        );
      } else {
        channel.typing.delete(userId);
      }
      if (channelId === state.active) {
        renderTyping();
      }
    });

    // Failures of events sent without an ack (typing).
    socket.on("error", (failure) => showError(failure));
  }

  function showLogin() {
    $("login").hidden = false;
    $("chat").hidden = true;
    $("presence").hidden = true;
    $("logout").hidden = true;
  }

  // ---- wiring ---------------------------------------------------------------------------

  async function start() {
    let config = { devMode: true, clientBundled: true };
    try {
      const response = await fetch("/demo/config.json");
      config = await response.json();
    } catch (_) {
      // Keep the defaults: the form shows both ways in.
    }
    $("user-field").hidden = !config.devMode;
    const missing = window.CHATGATE_CLIENT_MISSING || (typeof io === "undefined" ? "socket.io-client did not load" : null);
    if (missing) {
      const note = $("client-missing");
      note.textContent = missing;
      note.hidden = false;
      $("connect").disabled = true;
      return;
    }

    $("login-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const token = $("login-token").value.trim();
      const user = $("login-user").value.trim();
      if (token) {
        connect({ token }, "token user");
        // The user id is the token's `sub`: read it for display only.
        try {
          const claims = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
          if (claims.sub) {
            state.me = String(claims.sub);
          }
        } catch (_) {
          // Not a JWT we can read: the server will say so.
        }
      } else if (user) {
        connect({ userId: user }, user);
      } else {
        showError({ code: "INVALID_PAYLOAD", message: config.devMode ? "enter a user name or a token" : "paste a token" });
      }
    });

    $("join-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const channelId = $("join-input").value.trim();
      if (channelId) {
        join(channelId);
      }
    });

    $("send-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = $("message-input");
      const text = input.value;
      if (!text.trim() || !state.active) {
        return;
      }
      if (await send(text)) {
        input.value = "";
      }
    });

    $("message-input").addEventListener("input", () => {
      if ($("message-input").value) {
        startTyping();
      } else {
        stopTyping();
      }
    });

    $("leave").addEventListener("click", () => leave());

    $("presence").addEventListener("change", () => {
      request("presence:update", { status: $("presence").value });
    });

    $("logout").addEventListener("click", () => {
      if (state.socket) {
        state.socket.disconnect();
        state.socket = null;
      }
    });
  }

  start();
})();
