// Lifecycle admin: live rule checks, previews, saving and the action buttons. Everything
// else on the pages is rendered by the server and works without this script.
(function () {
  'use strict';

  // Inside the Shopify admin every call carries a fresh App Bridge session token; outside it
  // the session cookie (same origin) serves.
  async function headers(json) {
    var h = { Accept: 'application/json' };
    if (json) h['Content-Type'] = 'application/json';
    if (typeof window.lifecycleToken === 'function') {
      h.Authorization = 'Bearer ' + (await window.lifecycleToken());
    }
    return h;
  }

  async function api(method, path, body) {
    // Every change is a JSON request: the server refuses cookie-authenticated changes that
    // are not (a cross-site form cannot send JSON).
    var change = method !== 'GET';
    if (change && body === undefined) body = {};
    var r = await fetch(path, {
      method: method,
      headers: await headers(change),
      credentials: 'same-origin',
      body: change ? JSON.stringify(body) : undefined
    });
    var data = null;
    try { data = await r.json(); } catch (e) { /* an empty body */ }
    if (!r.ok) {
      var err = new Error((data && data.error) || ('request failed: HTTP ' + r.status));
      err.status = r.status;
      throw err;
    }
    return data;
  }

  function $(s) { return document.querySelector(s); }
  function status(el, text, kind) { if (el) { el.textContent = text; el.className = 'status ' + (kind || ''); } }
  function debounce(fn, ms) { var t; return function () { clearTimeout(t); t = setTimeout(fn, ms); }; }
  function cell(tr, text) { var td = document.createElement('td'); td.textContent = text; tr.appendChild(td); }

  // ---- rule editor (Segments)
  var rule = $('#rule-input');
  if (rule) {
    var marker = $('#rule-marker'), errEl = $('#rule-error'), okEl = $('#rule-ok');
    var seq = 0;
    var clear = function () {
      marker.textContent = ''; delete marker.dataset.column;
      errEl.textContent = ''; errEl.hidden = true; delete errEl.dataset.column;
      okEl.hidden = true; rule.removeAttribute('aria-invalid');
    };
    var show = function (res, text) {
      if (res.valid) { clear(); okEl.hidden = false; okEl.textContent = 'Valid: ' + res.canonical; return; }
      var e = res.error;
      okEl.hidden = true;
      var end = Math.max(e.start + 1, Math.min(e.end, text.length + 1));
      // A caret line under the input, in the same monospace font, points at the error.
      marker.textContent = ' '.repeat(e.start) + '^'.repeat(end - e.start);
      marker.dataset.column = e.column;
      errEl.hidden = false;
      errEl.dataset.column = e.column;
      errEl.textContent = 'Column ' + e.column + ': ' + e.message;
      rule.setAttribute('aria-invalid', 'true');
    };
    var check = debounce(async function () {
      var my = ++seq, text = rule.value;
      if (!text.trim()) { clear(); return; }
      try {
        var res = await api('POST', '/api/segments/validate', { rule: text });
        if (my === seq) show(res, text);
      } catch (e) { errEl.hidden = false; errEl.textContent = e.message; }
    }, 150);
    rule.addEventListener('input', check);

    $('#preview-btn').addEventListener('click', async function () {
      var box = $('#preview'), count = $('#preview-count'), body = $('#preview-sample tbody');
      status($('#segment-status'), 'Evaluating…');
      try {
        var p = await api('POST', '/api/segments/preview', { rule: rule.value });
        box.hidden = false;
        count.textContent = p.analysed
          ? p.count + ' of ' + p.total + ' customers match'
          : 'No analysis yet: nothing to evaluate the rule over.';
        count.dataset.count = p.count;
        body.innerHTML = '';
        p.sample.forEach(function (c) {
          var tr = document.createElement('tr');
          cell(tr, c.email || c.platform_id);
          cell(tr, c.number_of_orders); cell(tr, c.amount_spent.toFixed(2));
          cell(tr, c.rfm_group); cell(tr, c.churn_risk);
          body.appendChild(tr);
        });
        status($('#segment-status'), '');
      } catch (e) { box.hidden = true; status($('#segment-status'), e.message, 'error'); }
    });

    $('#save-segment').addEventListener('click', async function () {
      var key = $('#segment-key').value.trim();
      try {
        await api('POST', '/api/segments', { key: key, rule: rule.value });
        status($('#segment-status'), 'Saved segment ' + key + '.', 'ok');
        setTimeout(function () { location.reload(); }, 600);
      } catch (e) { status($('#segment-status'), e.message, 'error'); }
    });
  }

  document.querySelectorAll('.delete-segment').forEach(function (b) {
    b.addEventListener('click', async function () {
      if (!confirm('Delete segment ' + b.dataset.key + '?')) return;
      try { await api('DELETE', '/api/segments/' + encodeURIComponent(b.dataset.key)); location.reload(); }
      catch (e) { alert(e.message); }
    });
  });

  // ---- settings (Offers & tags, or the platform's word for labels)
  var form = $('#settings-form');
  if (form) {
    var base = JSON.parse($('#settings-data').textContent);
    var exp = Number(form.dataset.exponent || 2);
    var num = function (el) { return el.value.trim() === '' ? null : Number(el.value); };
    var collect = function () {
      var offers = {};
      form.querySelectorAll('fieldset.offer').forEach(function (fs) {
        var f = function (n) { return fs.querySelector('[name=' + n + ']'); };
        var amount = num(f('value'));
        var value = f('value_type').value === 'fixed_amount'
          ? { type: 'fixed_amount', amount_minor: Math.round((amount || 0) * Math.pow(10, exp)), currency: form.dataset.currency }
          : { type: 'percentage', percent: amount };
        offers[fs.dataset.offer] = {
          enabled: f('enabled').checked, value: value,
          expiry_days: num(f('expiry_days')), cooldown_days: num(f('cooldown_days')),
          budget_per_run: num(f('budget_per_run')),
          control_percent: num(f('control_percent')),
          min_days_since_trigger: num(f('min_days_since_trigger')),
          max_days_since_trigger: num(f('max_days_since_trigger')),
          segments: f('segments').value.split(',').map(function (s) { return s.trim(); }).filter(Boolean),
          title: f('title').value
        };
      });
      offers.priority = base.offers.priority;
      var segments = base.segments;
      var tiers = segments.thresholds.tiers;
      tiers.basis = $('#tier-basis').value;
      ['bronze', 'silver', 'gold', 'platinum'].forEach(function (t) {
        tiers[t + '_min'] = num(form.querySelector('[name=tier_' + t + ']'));
      });
      var schedule = $('#schedule').value.trim();
      var settings = {
        offers: offers, segments: segments,
        tag_prefix: $('#tag-prefix').value,
        dry_run: $('#dry-run-toggle').checked,
        schedule: schedule === '' ? null : schedule,
        cac: num($('#cac'))
      };
      // Offered only where a customer has one group.
      var groupLabel = $('#group-label');
      if (groupLabel) settings.group_label = groupLabel.value;
      return settings;
    };
    $('#save-settings').addEventListener('click', async function () {
      var btn = this;
      btn.disabled = true;
      status($('#settings-status'), 'Saving…');
      try {
        var res = await api('PUT', '/api/settings', collect());
        base = res.effective;
        status($('#settings-status'), 'Settings saved.', 'ok');
      } catch (e) { status($('#settings-status'), e.message, 'error'); }
      btn.disabled = false;
    });
  }

  var dry = $('#dry-run-btn');
  if (dry) {
    dry.addEventListener('click', async function () {
      dry.disabled = true;
      status($('#dry-run-status'), 'Analysing and planning… nothing is sent.');
      try {
        // The run is a job: follow it until it is done.
        var req = await api('POST', '/api/dry-run');
        var st = await api('GET', req.status_url);
        while (st.state === 'queued' || st.state === 'running') {
          await new Promise(function (ok) { setTimeout(ok, 1000); });
          st = await api('GET', req.status_url);
        }
        if (st.state !== 'done') throw new Error('The dry run failed: ' + (st.error || st.state));
        var sum = st.result.summary;
        // The platform's word for labels ("tags", "customer groups"), from the page.
        var labels = $('#plan-card').dataset.labels || 'tags';
        status($('#dry-run-status'), 'Planned ' + sum.tag_changes + ' change(s) of ' + labels + ' and ' +
          sum.codes_planned + ' code(s).', 'ok');
        setTimeout(function () { location.reload(); }, 400);
      } catch (e) { status($('#dry-run-status'), e.message, 'error'); dry.disabled = false; }
    });
  }

  // ---- activity
  document.querySelectorAll('.retry-job').forEach(function (b) {
    b.addEventListener('click', async function () {
      b.disabled = true;
      try { await api('POST', '/api/jobs/' + b.dataset.id + '/retry'); location.reload(); }
      catch (e) { status($('#jobs-status'), e.message, 'error'); b.disabled = false; }
    });
  });
})();
