// The admin page's scripts. Every page works without them, except the live tail;
// they show times in the viewer's zone, refresh live figures, ask before buttons
// that change things, move the time-travel slider and follow the log as it grows.
"use strict";

(function () {
  const pad = (n) => String(n).padStart(2, "0");

  function localTimes(root) {
    for (const node of root.querySelectorAll("time[datetime]")) {
      const moment = new Date(node.getAttribute("datetime"));
      if (Number.isNaN(moment.getTime())) continue;
      node.textContent = moment.toLocaleString(undefined, {
        year: "numeric", month: "short", day: "numeric",
        hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
      });
    }
  }

  function refreshers() {
    for (const region of document.querySelectorAll("[data-refresh]")) {
      const every = Number(region.dataset.every || 2000);
      const url = region.dataset.refresh;
      let busy = false;
      setInterval(async () => {
        if (busy || document.hidden || region.contains(document.activeElement)) return;
        busy = true;
        try {
          const answer = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
          if (answer.ok && !answer.redirected) {
            region.innerHTML = await answer.text();
            localTimes(region);
            confirmations(region);
          }
        } catch (error) {
          // the server is restarting, say: the next tick tries again
        } finally {
          busy = false;
        }
      }, every);
    }
  }

  function confirmations(root) {
    for (const form of root.querySelectorAll("form[data-confirm]")) {
      if (form.dataset.bound) continue;
      form.dataset.bound = "1";
      form.addEventListener("submit", (event) => {
        if (!window.confirm(form.dataset.confirm)) {
          event.preventDefault();
          return;
        }
        if (!form.querySelector("input[name=confirm]")) {
          const yes = document.createElement("input");
          yes.type = "hidden"; yes.name = "confirm"; yes.value = "yes";
          form.appendChild(yes);
        }
      });
    }
  }

  function timeTravel() {
    const form = document.querySelector("form[data-travel]");
    if (!form) return;
    const slider = form.querySelector("input[type=range]");
    const shown = form.querySelector("output");
    const result = document.getElementById("travel-result");
    let timer = null;
    async function show(version) {
      const url = `${form.action}?version=${version}`;
      const answer = await fetch(`${url}&fragment=1`, { credentials: "same-origin" });
      if (!answer.ok) return;
      result.innerHTML = await answer.text();
      localTimes(result);
      history.replaceState(null, "", url);
    }
    slider.addEventListener("input", () => {
      shown.textContent = slider.value;
      clearTimeout(timer);
      timer = setTimeout(() => show(slider.value), 120);
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      show(slider.value);
    });
    const when = document.querySelector("form[data-when]");
    if (when) {
      when.addEventListener("submit", () => {
        const picked = new Date(when.querySelector("input[name=when]").value);
        const east = Number.isNaN(picked.getTime()) ? 0 : -picked.getTimezoneOffset();
        when.querySelector("input[name=tz]").value = String(east + 14 * 60);
      });
    }
  }

  function cell(row, text, href, numeric) {
    const td = document.createElement(numeric === "th" ? "th" : "td");
    if (numeric === "th") td.scope = "row";
    if (numeric === true) td.className = "num";
    if (href) {
      const a = document.createElement("a");
      a.href = href; a.textContent = text;
      td.appendChild(a);
    } else {
      td.textContent = text;
    }
    row.appendChild(td);
    return td;
  }

  function liveTail() {
    const box = document.getElementById("live");
    if (!box) return;
    box.hidden = false;
    const rows = document.getElementById("live-rows");
    const status = document.getElementById("live-status");
    const toggle = document.getElementById("live-toggle");
    const keep = 200;
    let paused = false;
    let waiting = [];
    let seen = 0;
    let after = null;

    function add(event) {
      const row = document.createElement("tr");
      row.className = "fresh";
      cell(row, String(event.position), `/admin/events/${event.id}`, true);
      cell(row, event.type, null, "th");
      cell(row, event.stream_id, `/admin/streams/${encodeURIComponent(event.stream_id)}`);
      cell(row, String(event.version), null, true);
      const td = cell(row, "");
      const time = document.createElement("time");
      time.setAttribute("datetime", event.recorded_at);
      time.title = event.recorded_at;
      time.textContent = event.recorded_at;
      td.appendChild(time);
      localTimes(row);
      rows.insertBefore(row, rows.firstChild);
      while (rows.children.length > keep) rows.removeChild(rows.lastChild);
    }

    function say() {
      status.textContent = paused
        ? `Paused: ${waiting.length} new event${waiting.length === 1 ? "" : "s"} waiting.`
        : `Following the log: ${seen} event${seen === 1 ? "" : "s"} so far.`;
    }

    toggle.addEventListener("click", () => {
      paused = !paused;
      toggle.textContent = paused ? "Resume" : "Pause";
      toggle.setAttribute("aria-pressed", String(paused));
      if (!paused) {
        for (const event of waiting.slice(-keep)) add(event);
        waiting = [];
      }
      say();
    });

    async function follow() {
      const query = new URLSearchParams();
      if (box.dataset.types) query.set("types", box.dataset.types);
      if (box.dataset.categories) query.set("categories", box.dataset.categories);
      if (after !== null) query.set("after", String(after));
      try {
        const answer = await fetch(`${box.dataset.feed}?${query}`, {
          credentials: "same-origin", headers: { Accept: "text/event-stream" },
        });
        if (!answer.ok) {
          status.textContent = `The feed answered ${answer.status}; trying again.`;
        } else {
          say();
          const reader = answer.body.getReader();
          const decoder = new TextDecoder();
          let buffer = "";
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buffer += decoder.decode(value, { stream: true });
            let end;
            while ((end = buffer.indexOf("\n\n")) >= 0) {
              const message = buffer.slice(0, end);
              buffer = buffer.slice(end + 2);
              let data = null, id = null;
              for (const line of message.split("\n")) {
                if (line.startsWith("data: ")) data = line.slice(6);
                else if (line.startsWith("id: ")) id = line.slice(4);
              }
              if (data === null) continue;
              const event = JSON.parse(data);
              after = id === null ? event.position : Number(id);
              seen += 1;
              if (paused) {
                waiting.push(event);
                if (waiting.length > keep) waiting.shift();
              } else {
                add(event);
              }
              say();
            }
          }
          status.textContent = "The feed ended; reconnecting.";
        }
      } catch (error) {
        status.textContent = "Lost the connection; reconnecting.";
      }
      setTimeout(follow, 2000);
    }
    follow();
  }

  document.addEventListener("DOMContentLoaded", () => {
    localTimes(document);
    refreshers();
    confirmations(document);
    timeTravel();
    liveTail();
  });
})();
