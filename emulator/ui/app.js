// wa-emulator inspector: plain JS over the /__emulator admin JSON. A server-sent event
// says "something changed"; the page then refetches what it shows.
'use strict';

(() => {
  // The default tenant's page is /__emulator/ui; a tenant's is /__emulator/tenants/{id}/ui,
  // and its admin routes are under /__emulator/tenants/{id}.
  const API = (location.pathname.match(/^\/__emulator\/tenants\/[^/]+/) || ['/__emulator'])[0];
  const GRAPH = '/v21.0';
  const token = new URLSearchParams(location.search).get('token');
  const PAGE_SIZE = 200;

  const st = {
    config: null,
    clock: null,
    clockAt: 0, // performance.now() when the clock was read, to run a real clock locally
    users: [],
    messages: [],
    calls: [],
    deliveries: new Map(), // seq → delivery
    lastSeq: 0,
    permissions: [],
    phone: '',
    shown: PAGE_SIZE,
    expanded: new Set(), // delivery ids whose attempts are open
    seen: null, // item keys already rendered; null until the first render
    json: null, // { key, title, value } shown in the JSON pane
    media: new Map(), // call id → its GET …/media report, polled while the call is on
  };

  const $ = (id) => document.getElementById(id);

  // ---- helpers ------------------------------------------------------------------

  // Builds elements without innerHTML: payloads and names come from the business's app.
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : String(c));
    }
    return el;
  }

  async function api(method, path, body, base = API, bearer = token) {
    const headers = {};
    if (bearer) headers.Authorization = 'Bearer ' + bearer;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const r = await fetch(base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    if (!r.ok) {
      const e = json && json.error;
      const why = e ? (e.error_data && e.error_data.details) || e.message : text;
      throw new Error(`${r.status}: ${why}`);
    }
    return json;
  }

  function pad(n) {
    return String(n).padStart(2, '0');
  }

  function fmtTime(ms) {
    if (ms === null || ms === undefined) return '';
    const d = new Date(ms);
    return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  }

  function fmtDateTime(ms) {
    const d = new Date(ms);
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${fmtTime(ms)} UTC`;
  }

  function fmtDur(secs) {
    secs = Math.max(0, Math.round(secs));
    if (secs < 60) return `${secs} s`;
    const d = Math.floor(secs / 86400);
    const hh = Math.floor((secs % 86400) / 3600);
    const m = Math.floor((secs % 3600) / 60);
    const s = secs % 60;
    if (d) return `${d} d ${hh} h`;
    if (hh) return `${hh} h ${m} min`;
    return s ? `${m} min ${s} s` : `${m} min`;
  }

  function short(id) {
    if (!id) return '';
    return id.length > 22 ? `${id.slice(0, 12)}…${id.slice(-6)}` : id;
  }

  function time(ms) {
    return h('time', { class: 'at', title: fmtDateTime(ms), datetime: new Date(ms).toISOString() }, fmtTime(ms));
  }

  // The right end of an item's head: when, and its JSON.
  function side(ms, button) {
    return h('span', { class: 'side' }, time(ms), button);
  }

  // An item's first line: what it is (wrapping if it must), then `side` kept at the right.
  function head(attrs, ...children) {
    const end = children.pop();
    return h('div', { ...attrs, class: 'head' }, h('span', { class: 'lead' }, ...children), end);
  }

  function badge(text, cls) {
    return h('span', { class: `badge ${cls || ''}` }, text);
  }

  // The emulator's clock now, in ms: the virtual clock stands still between reads.
  function now() {
    if (!st.clock) return Date.now();
    if (st.clock.mode === 'virtual') return st.clock.now_ms;
    return st.clock.now_ms + (performance.now() - st.clockAt);
  }

  let toastTimer = null;
  function toast(text, bad) {
    const t = $('toast');
    t.textContent = text;
    t.className = `toast ${bad ? 'bad' : ''}`;
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => (t.hidden = true), bad ? 9000 : 3000);
  }

  // Runs a user action, reports its answer or why it was refused, then refreshes.
  async function act(label, fn) {
    try {
      const r = (await fn()) || {};
      const bits = [];
      if (r.call_id) bits.push(short(r.call_id));
      if (r.status && typeof r.status === 'string') bits.push(r.status);
      if (r.duration !== undefined && r.duration !== null) bits.push(fmtDur(r.duration));
      toast(`${label}: ${bits.join(' · ') || 'done'}`);
    } catch (e) {
      toast(`${label}: ${e.message}`, true);
    }
    refresh();
  }

  // ---- loading ------------------------------------------------------------------

  // Deliveries still held or pending can change; finished ones cannot, so only the
  // tail from the oldest unfinished one is refetched.
  function deliveriesSince() {
    let since = st.lastSeq;
    for (const d of st.deliveries.values()) {
      if ((d.state === 'held' || d.state === 'pending') && d.seq - 1 < since) since = d.seq - 1;
    }
    return since;
  }

  async function loadDeliveries() {
    const since = deliveriesSince();
    let r = await api('GET', `/webhooks?since=${since}`);
    if (r.last_seq < st.lastSeq) {
      // The state was reset or replaced: start over.
      st.deliveries.clear();
      r = await api('GET', '/webhooks');
    }
    for (const d of r.deliveries) st.deliveries.set(d.seq, d);
    st.lastSeq = r.last_seq;
  }

  async function load() {
    const [config, clock, users, messages, calls, perms] = await Promise.all([
      st.config ? Promise.resolve(st.config) : api('GET', '/config'),
      api('GET', '/clock'),
      api('GET', '/users'),
      api('GET', '/messages'),
      api('GET', '/calls'),
      api('GET', '/ui/permissions'),
      loadDeliveries(),
    ]);
    st.config = config;
    st.clock = clock;
    st.clockAt = performance.now();
    st.users = users.users;
    st.messages = messages.messages;
    st.calls = calls.calls;
    st.permissions = perms.permissions;
  }

  let busy = false;
  let again = false;
  async function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      do {
        again = false;
        await load();
        render();
      } while (again);
    } catch (e) {
      toast(`Could not load the emulator's state: ${e.message}`, true);
    } finally {
      busy = false;
    }
  }

  function connect() {
    const q = token ? `?token=${encodeURIComponent(token)}` : '';
    const es = new EventSource(`${API}/events${q}`);
    const live = $('live');
    es.addEventListener('change', () => refresh());
    es.onopen = () => {
      live.textContent = 'live';
      live.className = 'live on';
    };
    // EventSource reconnects by itself (the stream asks for 1 s).
    es.onerror = () => {
      live.textContent = 'reconnecting…';
      live.className = 'live off';
    };
  }

  // ---- the model the timeline is drawn from ---------------------------------------

  function phoneOf(id) {
    const phones = (st.config && st.config.tenants.phone_numbers) || [];
    return phones.find((p) => p.id === id);
  }

  function deliveryValue(d) {
    const e = d.body && d.body.entry && d.body.entry[0];
    const c = e && e.changes && e.changes[0];
    return (c && c.value) || {};
  }

  function deliveryPhone(d) {
    const v = deliveryValue(d);
    return (v.metadata && v.metadata.phone_number_id) || null;
  }

  function deliveryUser(d, callsById, msgsById) {
    if (d.call_id && callsById.has(d.call_id)) return callsById.get(d.call_id).wa_id;
    if (d.message_id && msgsById.has(d.message_id)) return msgsById.get(d.message_id).to;
    const v = deliveryValue(d);
    if (v.contacts && v.contacts[0]) return v.contacts[0].wa_id;
    if (v.messages && v.messages[0]) return v.messages[0].from;
    if (v.statuses && v.statuses[0]) return v.statuses[0].recipient_id;
    if (v.calls && v.calls[0]) {
      const c = v.calls[0];
      return c.direction === 'BUSINESS_INITIATED' ? c.to : c.from;
    }
    return null;
  }

  function items() {
    const callsById = new Map(st.calls.map((c) => [c.id, c]));
    const msgsById = new Map(st.messages.map((m) => [m.id, m]));
    const children = new Map(); // "c:id" / "m:id" → deliveries
    const loose = [];
    for (const d of st.deliveries.values()) {
      const key = d.call_id && callsById.has(d.call_id) ? `c:${d.call_id}`
        : d.message_id && msgsById.has(d.message_id) ? `m:${d.message_id}` : null;
      if (key) {
        if (!children.has(key)) children.set(key, []);
        children.get(key).push(d);
      } else {
        loose.push(d);
      }
    }
    const all = [];
    st.messages.forEach((m, i) => all.push({
      kind: 'message', key: `m:${m.id}`, at: m.sent_at_ms, rank: 0, idx: i,
      phone: m.phone_number_id, wa: m.to, data: m, children: children.get(`m:${m.id}`) || [],
    }));
    st.calls.forEach((c, i) => all.push({
      kind: 'call', key: `c:${c.id}`, at: c.created_at_ms, rank: 1, idx: i,
      phone: c.phone_number_id, wa: c.wa_id, data: c, children: children.get(`c:${c.id}`) || [],
    }));
    for (const d of loose) {
      all.push({
        kind: 'delivery', key: `d:${d.seq}`, at: d.created_at_ms, rank: 2, idx: d.seq,
        phone: deliveryPhone(d), wa: deliveryUser(d, callsById, msgsById), data: d, children: [],
      });
    }
    const fUser = $('f-user').value;
    const fCall = $('f-call').value;
    const call = fCall && callsById.get(fCall);
    const show = { message: $('f-messages').checked, call: $('f-calls').checked, delivery: $('f-webhooks').checked };
    return all
      .filter((it) => !it.phone || !st.phone || it.phone === st.phone)
      .filter((it) => !fUser || it.wa === fUser)
      .filter((it) => !fCall || it.key === `c:${fCall}` || (call && it.key === `m:${call.message_id}`))
      .filter((it) => show[it.kind])
      .sort((a, b) => b.at - a.at || b.rank - a.rank || b.idx - a.idx);
  }

  // ---- rendering ----------------------------------------------------------------

  function render() {
    renderHeader();
    renderUsers();
    renderFilters();
    renderTimeline();
    renderJson();
    tick();
  }

  // What a number can do, from the config's `phone_numbers`: +1, +20, +84 and +234
  // numbers cannot call users or ask them for call permission (138013).
  function canCallUsers(id) {
    const p = ((st.config && st.config.phone_numbers) || []).find((n) => n.id === id);
    return !p || p.business_initiated_calling !== false;
  }

  function renderHeader() {
    const phones = (st.config && st.config.tenants.phone_numbers) || [];
    const sel = $('phone');
    if (sel.options.length !== phones.length) {
      sel.replaceChildren(...phones.map((p) => {
        const calls = canCallUsers(p.id);
        return h('option', {
          value: p.id,
          dataset: { businessInitiatedCalling: String(calls) },
          title: calls
            ? `phone number id ${p.id}: calls users and asks for call permission`
            : `phone number id ${p.id}: users can call it, but business-initiated calls and permission requests from it fail with 138013`,
        }, calls ? `+${p.display_phone_number}` : `+${p.display_phone_number} · user calls only`);
      }));
      if (!st.phone && phones[0]) st.phone = phones[0].id;
      sel.value = st.phone;
    }
    const virtual = st.clock && st.clock.mode === 'virtual';
    $('clock-mode').textContent = virtual ? 'virtual clock' : 'real clock';
    $('clock-mode').className = `badge ${virtual ? 'virtual' : ''}`;
    $('advance').hidden = !virtual;
    const link = $('act-link-url');
    const p = phoneOf(st.phone);
    if (p && !link.dataset.touched) link.value = `https://wa.me/call/${p.display_phone_number}?biz_payload=from-link`;
  }

  function permissionFor(wa) {
    return st.permissions.find((p) => p.wa_id === wa && p.phone_number_id === st.phone);
  }

  function permBadge(p) {
    if (!p) return badge('no permission', 'muted');
    switch (p.status) {
      case 'permanent':
        return badge('permanent permission', 'ok');
      case 'temporary':
        return h('span', { class: 'badge ok' }, 'temporary permission · ', h('span', { dataset: { until: p.expires_at * 1000 } }, ''));
      case 'expired':
        return badge('permission expired', 'muted');
      default:
        return badge('no permission', 'muted');
    }
  }

  function renderUsers() {
    const fUser = $('f-user').value;
    const list = st.users.map((u) => {
      const p = permissionFor(u.wa_id);
      const facts = [];
      if (p) {
        facts.push(`requests ${p.requests_24h}/1 a day, ${p.requests_7d}/2 a week`);
        if (p.consecutive_unanswered) facts.push(`${p.consecutive_unanswered} unanswered in a row`);
        if (p.connected_calls_24h) facts.push(`${p.connected_calls_24h} business calls today`);
      }
      return h('li', {
        class: `user ${fUser === u.wa_id ? 'selected' : ''}`,
        dataset: { wa: u.wa_id },
        title: 'show only this user',
        onclick: () => {
          $('f-user').value = fUser === u.wa_id ? '' : u.wa_id;
          if ($('f-user').value) $('act-user').value = u.wa_id;
          st.shown = PAGE_SIZE;
          render();
        },
      },
      h('div', { class: 'user-head' }, h('strong', {}, `+${u.wa_id}`), ' ', h('span', { class: 'muted' }, u.name)),
      h('div', { class: 'user-client' }, `${u.platform} ${u.version}`,
        p && p.receives_business_calls === false ? badge('cannot receive business calls', 'warn') : null),
      h('div', { class: 'user-perm' }, permBadge(p),
        p && p.window_open
          ? h('span', { class: 'badge' }, 'window open · ', h('span', { dataset: { until: p.window_expires_at * 1000 } }, ''))
          : badge('window closed', 'muted')),
      facts.length ? h('div', { class: 'user-facts muted' }, facts.join(' · ')) : null);
    });
    $('users').replaceChildren(...(list.length ? list : [h('li', { class: 'muted' }, 'No users yet: they appear on first message.')]));
  }

  function syncSelect(sel, options, placeholder) {
    const keep = sel.value;
    sel.replaceChildren(h('option', { value: '' }, placeholder), ...options.map(([v, label]) => h('option', { value: v }, label)));
    sel.value = options.some(([v]) => v === keep) ? keep : '';
  }

  function renderFilters() {
    const users = st.users.map((u) => [u.wa_id, `+${u.wa_id} ${u.name}`]);
    syncSelect($('f-user'), users, 'all users');
    const calls = st.calls
      .filter((c) => !st.phone || c.phone_number_id === st.phone)
      .map((c) => [c.id, `${fmtTime(c.created_at_ms)} +${c.wa_id} ${c.source} · ${c.status}`]);
    syncSelect($('f-call'), calls.reverse(), 'all calls');
    const act = $('act-user');
    const keep = act.value || $('f-user').value;
    act.replaceChildren(...st.users.map((u) => h('option', { value: u.wa_id }, `+${u.wa_id}`)));
    if (st.users.some((u) => u.wa_id === keep)) act.value = keep;
  }

  function renderTimeline() {
    const list = items();
    const fresh = st.seen;
    st.seen = new Set(list.map((it) => it.key));
    const lis = list.slice(0, st.shown).map((it) => {
      const li = it.kind === 'message' ? messageItem(it) : it.kind === 'call' ? callItem(it) : deliveryItem(it.data, true);
      if (fresh && !fresh.has(it.key)) li.classList.add('fresh');
      if (st.json && st.json.key === it.key) li.classList.add('selected');
      return li;
    });
    if (list.length > st.shown) {
      lis.push(h('li', { class: 'more' }, h('button', {
        type: 'button',
        onclick: () => {
          st.shown += PAGE_SIZE;
          render();
        },
      }, `Show older (${list.length - st.shown} more)`)));
    }
    $('timeline').replaceChildren(...lis);
    $('empty').hidden = list.length > 0;
  }

  function jsonButton(key, title, value) {
    return h('button', {
      type: 'button', class: 'small', title: 'show as JSON', dataset: { action: 'json' },
      onclick: (ev) => {
        ev.stopPropagation();
        st.json = { key, title, value };
        render();
      },
    }, '{ }');
  }

  function actionButton(label, action, fn, cls) {
    return h('button', { type: 'button', class: `small ${cls || ''}`, dataset: { action }, onclick: (ev) => {
      ev.stopPropagation();
      act(label, fn);
    } }, label);
  }

  function messageText(m) {
    if (m.text) return m.text;
    const b = m.body || {};
    if (b.text && b.text.body) return b.text.body;
    if (b.interactive && b.interactive.body) return b.interactive.body.text;
    if (m.template) return `template ${m.template.name} (${m.template.language}, ${m.template.category})`;
    return '';
  }

  function messageItem(it) {
    const m = it.data;
    const userPath = `/users/${m.to}`;
    const actions = [];
    const btn = m.button;
    if (btn) actions.push(actionButton('Tap', 'tap', () => api('POST', `${userPath}/tap`, { message_id: m.id }), 'primary'));
    if (m.is_permission_request) {
      actions.push(actionButton('Allow 7 days', 'permission-accept', () => api('POST', `${userPath}/permission-reply`, { response: 'accept', message_id: m.id })));
      actions.push(actionButton('Always allow', 'permission-permanent', () => api('POST', `${userPath}/permission-reply`, { response: 'accept', permanent: true, message_id: m.id })));
      actions.push(actionButton('Decline', 'permission-reject', () => api('POST', `${userPath}/permission-reply`, { response: 'reject', message_id: m.id })));
    }
    if (m.status === 'sent' || m.status === 'delivered') {
      actions.push(actionButton('Read', 'read', () => api('POST', `${userPath}/read`, { message_id: m.id })));
    }
    let button = null;
    if (btn) {
      const exp = m.button_expires_at * 1000;
      button = h('div', { class: 'call-button' },
        h('span', { class: 'cta' }, `☎ ${btn.display_text}`),
        h('span', { class: 'muted' }, `ttl ${btn.ttl_minutes} min`),
        btn.payload !== null && btn.payload !== undefined ? h('span', { class: 'payload' }, `payload ${JSON.stringify(btn.payload)}`) : null,
        h('span', { class: 'ttl', dataset: { expires: exp } }, ''));
    }
    const status = m.error_code ? `${m.status} ${m.error_code}` : m.status;
    return h('li', { class: 'item message', dataset: { kind: 'message', id: m.id, status: m.status } },
      head({},
        h('span', { class: 'icon', 'aria-hidden': true }, '✉'),
        h('span', { class: 'what' }, `Message to +${m.to}`),
        badge(m.kind, 'kind'),
        badge(status, `status-${m.status}`),
        side(m.sent_at_ms, jsonButton(it.key, `message ${m.id}`, m))),
      messageText(m) ? h('p', { class: 'text' }, messageText(m)) : null,
      button,
      h('div', { class: 'ids muted' }, m.id),
      actions.length ? h('div', { class: 'actions' }, ...actions) : null,
      deliveries(it.children));
  }

  const SOURCE = { button: 'call button', deep_link: 'deep link', native: 'call icon', business: 'business call' };

  function callItem(it) {
    const c = it.data;
    const userInitiated = c.direction === 'UserInitiated';
    const ongoing = ['ringing', 'pre_accepted', 'active'].includes(c.status);
    const actions = [];
    if (ongoing) actions.push(actionButton('Hang up', 'hangup', () => api('POST', `/calls/${c.id}/hangup`), 'danger'));
    if (!userInitiated && c.status === 'ringing') {
      actions.push(actionButton('Answer', 'answer', () => api('POST', `/calls/${c.id}/answer`, {}), 'primary'));
      actions.push(actionButton('Decline', 'decline', () => api('POST', `/calls/${c.id}/decline`)));
    }
    // The business's side, for a manual test with no app behind the emulator.
    if (userInitiated && !c.via_sip && st.config) {
      const biz = (action, extra) => () => api('POST', `/${c.phone_number_id}/calls`,
        { messaging_product: 'whatsapp', call_id: c.id, action, ...extra }, GRAPH, st.config.access_token);
      const sdp = { sdp_type: 'answer', sdp: 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=fingerprint:sha-256 AA:BB\r\n' };
      if (c.status === 'ringing' || c.status === 'pre_accepted') {
        actions.push(actionButton('Accept as business', 'biz-accept', biz('accept', { session: c.answer_sdp ? { sdp_type: 'answer', sdp: c.answer_sdp } : sdp }), 'business'));
        actions.push(actionButton('Reject as business', 'biz-reject', biz('reject'), 'business'));
      }
      if (c.status === 'active') actions.push(actionButton('Terminate as business', 'biz-terminate', biz('terminate'), 'business'));
    }
    const fCall = $('f-call').value;
    actions.push(h('button', { type: 'button', class: 'small link', dataset: { action: 'only-call' }, onclick: () => {
      $('f-call').value = fCall === c.id ? '' : c.id;
      render();
    } }, fCall === c.id ? 'all calls' : 'only this call'));

    const facts = [];
    const payload = c.cta_payload ?? c.deeplink_payload;
    if (c.cta_payload !== null && c.cta_payload !== undefined) facts.push(['cta_payload', JSON.stringify(c.cta_payload)]);
    if (c.deeplink_payload !== null && c.deeplink_payload !== undefined) facts.push(['deeplink_payload', JSON.stringify(c.deeplink_payload)]);
    if (c.payload_sent !== null && c.payload_sent !== undefined && (payload === null || payload === undefined)) {
      facts.push(['payload', `${JSON.stringify(c.payload_sent)} not passed on: the client is older than the payload needs`]);
    }
    if (c.biz_opaque_callback_data) facts.push(['biz_opaque_callback_data', JSON.stringify(c.biz_opaque_callback_data)]);
    if (c.message_id) facts.push(['from message', c.message_id]);
    if (c.answered_at_ms) facts.push(['picked up', fmtTime(c.answered_at_ms)]);
    if (c.ended_at_ms) facts.push(['ended', `${fmtTime(c.ended_at_ms)}${c.end_reason ? ` (${typeof c.end_reason === 'string' ? c.end_reason : JSON.stringify(c.end_reason)})` : ''}`]);
    if (c.via_sip) facts.push(['signalling', 'SIP (no calls webhooks)']);

    let duration = null;
    if (c.duration !== null && c.duration !== undefined) duration = badge(`${fmtDur(c.duration)}`, 'duration');
    else if (c.status === 'active' && c.answered_at_ms) duration = h('span', { class: 'badge duration', dataset: { since: c.answered_at_ms } }, '');

    return h('li', { class: `item call ${ongoing ? 'ongoing' : ''}`, dataset: { kind: 'call', id: c.id, status: c.status } },
      head({},
        h('span', { class: 'icon', 'aria-hidden': true }, userInitiated ? '↘' : '↗'),
        h('span', { class: 'what' }, userInitiated ? `Call from +${c.wa_id}` : `Call to +${c.wa_id}`),
        badge(userInitiated ? 'user-initiated' : 'business-initiated', 'kind'),
        badge(SOURCE[c.source] || c.source, 'source'),
        badge(c.status.replace('_', ' '), `status-${c.status}`),
        duration,
        side(c.created_at_ms, jsonButton(it.key, `call ${c.id}`, c))),
      facts.length ? h('dl', { class: 'facts' }, ...facts.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])) : null,
      mediaBox(c.id),
      h('div', { class: 'ids muted' }, c.id),
      h('div', { class: 'actions' }, ...actions),
      deliveries(it.children));
  }

  // ---- the user's media (GET …/media): state, a level meter, the keys each way --------

  const keysText = (k) => (k ? `"${k}"` : 'none');

  function mediaBox(id) {
    const m = st.media.get(id);
    if (!m) return h('div', { class: 'media', dataset: { media: id } });
    if (m.state === 'none') {
      return h('div', { class: 'media muted', dataset: { media: id, state: 'none' } },
        'media: signalling only (no ICE candidate in the business\'s SDP)');
    }
    const rx = m.received;
    const db = rx.audio_level_dbfs;
    return h('div', { class: 'media', dataset: { media: id, state: m.state } },
      h('div', {}, badge(`media ${m.state}`, `media-${m.state}`), ` ICE ${m.ice} · DTLS ${m.dtls} · the user says ${m.playing}`,
        m.failure ? h('span', { class: 'media-failure' }, ` · ${m.failure}`) : null),
      h('div', { class: 'media-row' }, h('span', { class: 'muted' }, 'heard'),
        h('meter', { class: 'level', min: -90, max: 0, low: -50, high: -6, optimum: -20, value: db ?? -90, title: db === null ? 'no audio yet' : `${db} dBFS` }),
        h('span', { class: 'level-db' }, db === null ? 'no audio' : `${db.toFixed(1)} dBFS`),
        ` · ${rx.packets} packets · keys `, h('span', { class: 'dtmf-received mono' }, keysText(rx.dtmf))),
      h('div', { class: 'media-row' }, h('span', { class: 'muted' }, 'said'),
        ` ${m.sent.packets} packets · keys `, h('span', { class: 'dtmf-sent mono' }, keysText(m.sent.dtmf))));
  }

  // Ongoing calls are polled (media counts change without a state change, so the event
  // stream does not say); an ended call once more, for its final counts.
  let polling = false;
  async function pollMedia() {
    if (polling) return;
    polling = true;
    try {
      for (const c of st.calls) {
        const ongoing = ['ringing', 'pre_accepted', 'active'].includes(c.status);
        const known = st.media.get(c.id);
        if (!ongoing && known && known.final) continue;
        if (!document.querySelector(`[data-media="${CSS.escape(c.id)}"]`)) continue;
        let m;
        try {
          m = await api('GET', `/calls/${encodeURIComponent(c.id)}/media`);
        } catch {
          continue;
        }
        m.final = !ongoing;
        st.media.set(c.id, m);
        const el = document.querySelector(`[data-media="${CSS.escape(c.id)}"]`);
        if (el) el.replaceWith(mediaBox(c.id));
      }
    } finally {
      polling = false;
    }
  }

  function deliveries(list) {
    if (!list.length) return null;
    return h('ul', { class: 'deliveries' }, ...list.sort((a, b) => a.seq - b.seq).map((d) => deliveryItem(d, false)));
  }

  function receiverStatus(d) {
    const a = d.attempts[d.attempts.length - 1];
    if (!a) return d.state === 'held' ? 'no callback URL yet' : 'not sent yet';
    if (a.status) return `HTTP ${a.status}`;
    return a.error || 'no answer';
  }

  function deliveryItem(d, standalone) {
    const key = `d:${d.seq}`;
    const open = st.expanded.has(d.id);
    const toggle = () => {
      if (open) st.expanded.delete(d.id);
      else st.expanded.add(d.id);
      render();
    };
    const last = d.attempts[d.attempts.length - 1];
    const ok = last && last.status >= 200 && last.status < 300;
    const details = open ? h('div', { class: 'delivery-details' },
      h('dl', { class: 'facts' },
        h('dt', {}, 'to'), h('dd', {}, d.url || '(no callback URL: held until one is set)'),
        h('dt', {}, 'X-Hub-Signature-256'), h('dd', { class: 'mono' }, d.signature),
        d.next_attempt_at_ms ? [h('dt', {}, 'next attempt'), h('dd', {}, fmtDateTime(d.next_attempt_at_ms))] : null),
      d.attempts.length
        ? h('table', { class: 'attempts' },
          h('thead', {}, h('tr', {}, h('th', {}, '#'), h('th', {}, 'at'), h('th', {}, 'receiver'), h('th', {}, 'response body'))),
          h('tbody', {}, ...d.attempts.map((a, i) => h('tr', { class: a.status >= 200 && a.status < 300 ? 'ok' : 'bad' },
            h('td', {}, i + 1), h('td', {}, time(a.at_ms)),
            h('td', {}, a.status ? `HTTP ${a.status}` : a.error || ''),
            h('td', { class: 'mono' }, a.response_body || '')))))
        : h('p', { class: 'muted' }, 'No attempt yet.')) : null;
    const attrs = {
      class: `delivery ${standalone ? 'item standalone' : ''} state-${d.state} ${!standalone && st.json && st.json.key === key ? 'selected' : ''}`,
      dataset: { kind: 'delivery', id: d.id, field: d.field, event: d.event, state: d.state },
    };
    return h('li', attrs,
      head({ onclick: toggle, title: 'attempts and signature' },
        h('span', { class: 'icon', 'aria-hidden': true }, open ? '▾' : '▸'),
        h('span', { class: 'what' }, standalone ? `Webhook ${d.field} · ${d.event}` : `${d.field} · ${d.event}`),
        badge(d.state, `state-${d.state}`),
        h('span', { class: `receiver ${last ? (ok ? 'ok' : 'bad') : 'muted'}` }, receiverStatus(d)),
        h('span', { class: 'muted' }, `${d.attempts.length} attempt${d.attempts.length === 1 ? '' : 's'}`),
        h('span', { class: 'sig mono muted', title: d.signature }, d.signature.slice(0, 15) + '…'),
        side(d.created_at_ms, jsonButton(key, `webhook ${d.id} · ${d.field} ${d.event}`, d))),
      details);
  }

  function renderJson() {
    const pane = $('json-pane');
    if (!st.json) {
      pane.hidden = true;
      return;
    }
    // Show the latest version of the item, not the one from when it was opened.
    const [kind, id] = [st.json.key.slice(0, 1), st.json.key.slice(2)];
    const fresh = kind === 'm' ? st.messages.find((m) => m.id === id)
      : kind === 'c' ? st.calls.find((c) => c.id === id)
        : st.deliveries.get(Number(id));
    if (fresh) st.json.value = fresh;
    pane.hidden = false;
    $('json-title').textContent = st.json.title;
    $('json').textContent = JSON.stringify(st.json.value, null, 2);
  }

  // Once a second: the real clock, TTL countdowns, open windows, running calls.
  function tick() {
    const t = now();
    if (st.clock) $('clock-now').textContent = fmtDateTime(t);
    for (const el of document.querySelectorAll('[data-expires]')) {
      const left = (Number(el.dataset.expires) - t) / 1000;
      el.textContent = left > 0 ? `expires in ${fmtDur(left)}` : `expired at ${fmtTime(Number(el.dataset.expires))}`;
      el.classList.toggle('expired', left <= 0);
    }
    for (const el of document.querySelectorAll('[data-until]')) {
      const left = (Number(el.dataset.until) - t) / 1000;
      el.textContent = left > 0 ? `${fmtDur(left)} left` : 'ended';
    }
    for (const el of document.querySelectorAll('[data-since]')) {
      el.textContent = fmtDur((t - Number(el.dataset.since)) / 1000);
    }
  }

  // ---- controls -----------------------------------------------------------------

  function wire() {
    $('phone').addEventListener('change', (e) => {
      st.phone = e.target.value;
      delete $('act-link-url').dataset.touched;
      render();
    });
    for (const id of ['f-user', 'f-call', 'f-messages', 'f-calls', 'f-webhooks']) {
      $(id).addEventListener('change', () => {
        st.shown = PAGE_SIZE;
        if (id === 'f-user' && $('f-user').value) $('act-user').value = $('f-user').value;
        render();
      });
    }
    $('clear-filters').addEventListener('click', () => {
      $('f-user').value = '';
      $('f-call').value = '';
      for (const id of ['f-messages', 'f-calls', 'f-webhooks']) $(id).checked = true;
      render();
    });
    const advance = (secs) => act(`Advance ${fmtDur(secs)}`, () => api('POST', '/clock/advance', { seconds: secs }));
    for (const b of document.querySelectorAll('#advance [data-secs]')) {
      b.addEventListener('click', () => advance(Number(b.dataset.secs)));
    }
    $('advance').addEventListener('submit', (e) => {
      e.preventDefault();
      advance(Number($('advance-secs').value));
    });
    const actingUser = () => $('act-user').value;
    $('act-call').addEventListener('click', () => {
      const wa = actingUser();
      if (!wa) return toast('Add a user first.', true);
      act('Call', () => api('POST', `/users/${wa}/call`, { phone_number_id: st.phone }));
    });
    $('act-link-url').addEventListener('input', (e) => (e.target.dataset.touched = '1'));
    $('act-link').addEventListener('submit', (e) => {
      e.preventDefault();
      const wa = actingUser();
      if (!wa) return toast('Add a user first.', true);
      act('Open link', () => api('POST', `/users/${wa}/open-link`, { url: $('act-link-url').value }));
    });
    $('act-text').addEventListener('submit', (e) => {
      e.preventDefault();
      const wa = actingUser();
      const text = $('act-text-body').value;
      if (!wa) return toast('Add a user first.', true);
      if (!text) return toast('Type a text first.', true);
      act('Text', () => api('POST', `/users/${wa}/messages`, { text, phone_number_id: st.phone }));
      $('act-text-body').value = '';
    });
    $('user-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const f = new FormData(e.target);
      const body = { wa_id: f.get('wa_id'), platform: f.get('platform') };
      if (f.get('name')) body.name = f.get('name');
      if (f.get('version')) body.version = f.get('version');
      act(`User +${body.wa_id}`, () => api('POST', '/users', body));
    });
    $('json-close').addEventListener('click', () => {
      st.json = null;
      render();
    });
    $('json-copy').addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText($('json').textContent);
        toast('Copied.');
      } catch {
        toast('The browser refused the clipboard; select the text instead.', true);
      }
    });
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && st.json) {
        st.json = null;
        render();
      }
    });
  }

  wire();
  refresh();
  connect();
  setInterval(tick, 1000);
  setInterval(pollMedia, 500);
})();
