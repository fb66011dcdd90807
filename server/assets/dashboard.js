// Muster coordinators' dashboard: a little vanilla JS, no framework.
//
// - Shows times in the reader's local time zone (the server writes UTC).
// - Live pages (<main data-live="/api/…" data-gen="N">) poll their JSON
//   endpoint every 1.5 s with the change counter they last saw; the server
//   answers "unchanged" until records change, then sends the new rows
//   (HTML the server escaped), which replace the table body without a
//   reload. Rows whose status changed flash briefly.
// - The duplicates page polls /api/duplicates and offers the newer list
//   when the background recomputation finishes.
(function () {
  'use strict';

  var POLL_MS = 1500;

  function localTimes(root) {
    var times = (root || document).querySelectorAll('time[data-ms]');
    for (var i = 0; i < times.length; i++) {
      var ms = Number(times[i].getAttribute('data-ms'));
      if (!isFinite(ms)) continue;
      try {
        times[i].textContent = new Date(ms).toLocaleString(undefined, {
          dateStyle: 'medium', timeStyle: 'short'
        });
      } catch (e) { /* keep the server's UTC text */ }
    }
  }

  function statuses(body) {
    var out = {};
    if (!body) return out;
    var rows = body.querySelectorAll('tr[data-contact], tr[data-event]');
    for (var i = 0; i < rows.length; i++) {
      var key = rows[i].getAttribute('data-contact') || rows[i].getAttribute('data-event');
      out[key] = rows[i].getAttribute('data-status') || rows[i].textContent;
    }
    return out;
  }

  function setDot(state) {
    var dot = document.getElementById('live-dot');
    if (!dot) return;
    dot.className = 'dot ' + state;
    dot.title = state === 'on' ? 'live' : 'not connected to the relay';
  }

  function apply(data) {
    var body = document.getElementById('live-rows');
    if (body && typeof data.rows_html === 'string') {
      var before = statuses(body);
      body.innerHTML = data.rows_html;
      var rows = body.querySelectorAll('tr[data-contact], tr[data-event]');
      for (var i = 0; i < rows.length; i++) {
        var key = rows[i].getAttribute('data-contact') || rows[i].getAttribute('data-event');
        var now = rows[i].getAttribute('data-status') || rows[i].textContent;
        if (before[key] !== now) rows[i].className = 'flash';
      }
      localTimes(body);
    }
    var counts = document.getElementById('live-counts');
    if (counts && typeof data.counts_html === 'string') {
      counts.innerHTML = data.counts_html;
    }
  }

  function live(main) {
    var url = main.getAttribute('data-live');
    var gen = main.getAttribute('data-gen') || '0';
    function poll() {
      fetch(url + '?since=' + encodeURIComponent(gen), {
        credentials: 'same-origin',
        headers: { 'Accept': 'application/json' },
        cache: 'no-store'
      }).then(function (r) {
        if (r.status === 401) { window.location.assign('/'); return null; }
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.json();
      }).then(function (data) {
        if (!data) return;
        if (!data.unchanged) apply(data);
        gen = String(data.gen);
        main.setAttribute('data-gen', gen);
        setDot('on');
        window.setTimeout(poll, POLL_MS);
      }).catch(function () {
        setDot('off');
        window.setTimeout(poll, POLL_MS * 2);
      });
    }
    setDot('on');
    window.setTimeout(poll, POLL_MS);
  }

  function duplicates(main) {
    var url = main.getAttribute('data-dup-state');
    var run = Number(main.getAttribute('data-dup-run') || '0');
    function poll() {
      fetch(url, { credentials: 'same-origin', cache: 'no-store' }).then(function (r) {
        if (r.status === 401) { window.location.assign('/'); return null; }
        return r.ok ? r.json() : null;
      }).then(function (s) {
        if (s && s.run > run) {
          if (run === 0) { window.location.reload(); return; }
          var newer = document.getElementById('dup-newer');
          if (newer) newer.classList.remove('hidden');
        }
        window.setTimeout(poll, 3000);
      }).catch(function () { window.setTimeout(poll, 6000); });
    }
    window.setTimeout(poll, run === 0 ? 700 : 3000);
  }

  function start() {
    localTimes(document);
    var main = document.getElementById('main');
    if (!main) return;
    if (main.hasAttribute('data-live')) live(main);
    if (main.hasAttribute('data-dup-state')) duplicates(main);
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
