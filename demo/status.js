// chatgate status page: polls GET /status every 2 s.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const POLL_MS = 2000;
  const KEY_STORAGE = "chatgate-status-key";

  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = String(text);
    row.append(td);
  }

  function render(status) {
    $("nodes-alive").textContent = status.nodesAlive;
    $("users-online").textContent = status.usersOnline;
    const rates = status.eventRates;
    $("events-rate").textContent = rates ? rates.eventsPerSecond : "…";
    $("messages-rate").textContent = rates ? rates.messagesPerSecond : "…";
    $("refused-rate").textContent = rates ? rates.refusedPerSecond : "…";
    const nodes = $("nodes");
    nodes.replaceChildren();
    for (const node of status.nodes) {
      const row = document.createElement("tr");
      cell(row, node.nodeId + (node.self ? " (this node)" : ""));
      cell(row, node.engineConnections);
      cell(row, node.sockets);
      cell(row, node.usersConnected);
      cell(row, node.channelsWithSubscribers);
      nodes.append(row);
    }
    const channels = $("channels");
    channels.replaceChildren();
    for (const channel of status.topChannels) {
      const row = document.createElement("tr");
      cell(row, channel.channelId);
      cell(row, channel.subscribers);
      cell(row, channel.members);
      cell(row, channel.lastActivity ? new Date(channel.lastActivity).toLocaleString() : "–");
      channels.append(row);
    }
    const badge = $("updated");
    badge.dataset.state = "online";
    badge.textContent = `updated ${new Date().toLocaleTimeString()} · up ${status.uptimeSeconds} s`;
  }

  async function poll() {
    const key = sessionStorage.getItem(KEY_STORAGE);
    const headers = key ? { Authorization: `Bearer ${key}` } : {};
    try {
      const response = await fetch("/status", { headers, cache: "no-store" });
      if (response.status === 401) {
        $("key-form").hidden = false;
        $("updated").textContent = "API key needed";
        return;
      }
      render(await response.json());
    } catch (err) {
      const badge = $("updated");
      badge.dataset.state = "offline";
      badge.textContent = "server unreachable";
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }

  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORAGE, $("key").value.trim());
    $("key-form").hidden = true;
  });

  poll();
})();
