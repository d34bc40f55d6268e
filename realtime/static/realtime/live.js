// The page's side of /ws/notifications/: live notices and sync status, no framework.
//
// Reconnects with jittered exponential backoff capped at 30 s (the attempt counter is reset
// when a connection opens); never after a normal close (1000) or when the credentials are
// no longer good (4401 signed out, 4403 disabled): the page's next load decides then.
// Heartbeats at the interval the server's welcome announces.
(() => {
  "use strict";
  const root = document.getElementById("live");
  if (!root || !("WebSocket" in window)) return;
  const log = document.getElementById("live-notices");
  const BASE_MS = 1000;
  const CAP_MS = 30000;
  const FINAL = new Set([1000, 4401, 4403]);
  let socket = null;
  let attempt = 0;
  let heartbeat = null;
  let leaving = false;

  const state = (value) => { root.dataset.state = value; };

  const delay = (n) => Math.random() * Math.min(CAP_MS, BASE_MS * 2 ** n); // "full jitter"

  const show = (text, kind) => {
    const item = document.createElement("p");
    item.className = `live-item live-${kind}`;
    item.textContent = text;
    log.prepend(item);
    while (log.children.length > 5) log.lastElementChild.remove();
  };

  const beatEvery = (seconds) => {
    clearInterval(heartbeat);
    let id = 0;
    heartbeat = setInterval(() => {
      if (socket && socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify({ type: "heartbeat", id: ++id }));
      }
    }, Math.max(1, seconds) * 1000);
  };

  const handle = (message) => {
    switch (message.type) {
      case "welcome":
        beatEvery(message.heartbeat_interval_s);
        break;
      case "notice":
        show(message.text, "notice");
        break;
      case "github_sync":
        show(`GitHub sync of project ${message.project_id}: ${message.status}`, "sync");
        break;
      case "profile_synced":
        show("Your profile was updated from your directory.", "profile");
        break;
      default: // heartbeat_ack, and what a newer server sends
    }
  };

  const connect = () => {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(`${scheme}//${location.host}${root.dataset.url}`, ["platform.v1"]);
    state("connecting");
    socket.onopen = () => { attempt = 0; state("live"); };
    socket.onmessage = (event) => {
      try { handle(JSON.parse(event.data)); } catch (error) { /* not ours: ignore */ }
    };
    socket.onclose = (event) => {
      clearInterval(heartbeat);
      socket = null;
      if (leaving || FINAL.has(event.code)) { state("closed"); return; }
      state("reconnecting");
      setTimeout(connect, delay(attempt++));
    };
  };

  window.addEventListener("pagehide", () => { leaving = true; if (socket) socket.close(1000); });
  connect();
})();
