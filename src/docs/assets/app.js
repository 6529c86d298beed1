// dp docs: search, one page per node, and a lineage graph of the selected
// node's neighbourhood only (so it stays fast on 10,000-model projects).
// Data: window.DP_INDEX (data/index.js) and detail shards data/d<k>.js,
// loaded on demand. Routes live in the hash: #q=<search>&node=<unique_id>.
(function () {
  'use strict';
  var IDX = window.DP_INDEX;
  var N = IDX.nodes; // [uid, name, type, group, materialized, parents[], description]
  var SHARD = IDX.shard;
  var pos = new Map();
  var children = [];
  var hay = [];
  for (var i = 0; i < N.length; i++) {
    pos.set(N[i][0], i);
    children.push([]);
    hay.push((N[i][1] + ' ' + N[i][3] + '.' + N[i][1] + ' ' + N[i][2]).toLowerCase());
  }
  for (var j = 0; j < N.length; j++) {
    var ps = N[j][5];
    for (var k = 0; k < ps.length; k++) children[ps[k]].push(j);
  }

  var $ = function (id) { return document.getElementById(id); };
  var searchBox = $('search');
  var results = $('results');
  var page = $('page');
  var body = document.body;
  $('project').textContent = IDX.project;

  function esc(s) {
    return String(s == null ? '' : s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }
  function route() {
    var p = new URLSearchParams(location.hash.replace(/^#!?\/?/, ''));
    return { q: p.get('q') || '', node: p.get('node') || '', depth: parseInt(p.get('depth') || '', 10) };
  }
  function href(node, q) {
    var p = new URLSearchParams();
    if (q) p.set('q', q);
    if (node) p.set('node', node);
    return '#' + p.toString();
  }

  // --- detail shards -------------------------------------------------------
  var shards = {};
  var waiting = {};
  window.DP_SHARD = function (k, data) {
    shards[k] = data;
    var cbs = waiting[k] || [];
    delete waiting[k];
    cbs.forEach(function (cb) { cb(data); });
  };
  function detail(i, cb) {
    var k = Math.floor(i / SHARD);
    if (shards[k]) return cb(shards[k][i]);
    if (waiting[k]) { waiting[k].push(function (d) { cb(d[i]); }); return; }
    waiting[k] = [function (d) { cb(d[i]); }];
    var s = document.createElement('script');
    s.src = 'data/d' + k + '.js';
    s.onerror = function () { delete waiting[k]; cb(null); };
    document.head.appendChild(s);
  }

  // --- search --------------------------------------------------------------
  function search(q) {
    var t0 = performance.now();
    var terms = q.toLowerCase().split(/\s+/).filter(Boolean);
    var out = [];
    for (var i = 0; i < N.length; i++) {
      var h = hay[i];
      var ok = true;
      for (var t = 0; t < terms.length; t++) if (h.indexOf(terms[t]) < 0) { ok = false; break; }
      if (ok) out.push(i);
    }
    var q0 = terms[0] || '';
    var rank = function (i) {
      var n = N[i][1].toLowerCase();
      return n === q0 ? 0 : n.indexOf(q0) === 0 ? 1 : 2;
    };
    out.sort(function (a, b) {
      return rank(a) - rank(b) || N[a][1].length - N[b][1].length || (N[a][1] < N[b][1] ? -1 : N[a][1] > N[b][1] ? 1 : 0);
    });
    body.dataset.searchMs = (performance.now() - t0).toFixed(1);
    return out;
  }
  function renderResults(q, current) {
    var list = search(q);
    var shown = list.slice(0, 200);
    var html = '<div class="count">' + (q ? list.length + ' match' + (list.length === 1 ? '' : 'es') + ' for “' + esc(q) + '”' : N.length + ' nodes') +
      (list.length > shown.length ? ' (first ' + shown.length + ')' : '') + '</div>';
    for (var i = 0; i < shown.length; i++) {
      var n = N[shown[i]];
      html += '<a class="result' + (n[0] === current ? ' sel' : '') + '" href="' + esc(href(n[0], q)) + '" title="' + esc(n[0]) + '">' +
        '<span class="badge ' + esc(n[2]) + '">' + esc(n[2]) + '</span>' + esc(n[1]) + ' <span class="muted">' + esc(n[3]) + '</span></a>';
    }
    results.innerHTML = html;
  }

  // --- lineage graph: the selected node's neighbourhood ---------------------
  var graphDepth = 2;
  // Nodes of other systems: a mark before the name (and a shape and colour, style.css).
  var MARKS = { postgres_table: '⛁ ', landing: '⇣ ', bronze: '▤ ', superset_dataset: '◫ ', superset_chart: '◔ ', superset_dashboard: '▦ ' };
  var graphCap = 25;
  function neighbourhood(c, depth) {
    var level = new Map([[c, 0]]);
    var walk = function (next, sign) {
      var frontier = [c];
      for (var d = 1; d <= depth && frontier.length; d++) {
        var nf = [];
        for (var f = 0; f < frontier.length; f++) {
          var xs = next(frontier[f]);
          for (var x = 0; x < xs.length; x++) if (!level.has(xs[x])) { level.set(xs[x], sign * d); nf.push(xs[x]); }
        }
        frontier = nf;
      }
    };
    walk(function (i) { return N[i][5]; }, -1);
    walk(function (i) { return children[i]; }, 1);
    return level;
  }
  function renderGraph(c) {
    var level = neighbourhood(c, graphDepth);
    var cols = {};
    level.forEach(function (l, i) { (cols[l] = cols[l] || []).push(i); });
    var W = 200, H = 26, GX = 70, GY = 10;
    var xy = new Map();
    var boxes = '';
    var maxRows = 1;
    var more = [];
    for (var l = -graphDepth; l <= graphDepth; l++) {
      var col = (cols[l] || []).sort(function (a, b) { return N[a][1] < N[b][1] ? -1 : 1; });
      var shown = col.slice(0, graphCap);
      var x = (l + graphDepth) * (W + GX) + 10;
      shown.forEach(function (i, r) { xy.set(i, [x, 10 + r * (H + GY)]); });
      if (col.length > shown.length) more.push([x, 10 + shown.length * (H + GY), col.length - shown.length]);
      maxRows = Math.max(maxRows, shown.length + (col.length > shown.length ? 1 : 0));
    }
    var edges = '';
    xy.forEach(function (p, i) {
      var ps = N[i][5];
      for (var k = 0; k < ps.length; k++) {
        var q = xy.get(ps[k]);
        if (!q) continue;
        var x1 = q[0] + W, y1 = q[1] + H / 2, x2 = p[0], y2 = p[1] + H / 2, mx = (x1 + x2) / 2;
        edges += '<path class="gedge" d="M' + x1 + ',' + y1 + ' C' + mx + ',' + y1 + ' ' + mx + ',' + y2 + ' ' + x2 + ',' + y2 + '"/>';
      }
    });
    xy.forEach(function (p, i) {
      var n = N[i];
      var mark = MARKS[n[2]] || '';
      var max = mark ? 23 : 26;
      var name = mark + (n[1].length > max ? n[1].slice(0, max - 1) + '…' : n[1]);
      boxes += '<g class="gnode ' + esc(n[2]) + (i === c ? ' cur' : '') + '" data-uid="' + esc(n[0]) + '" transform="translate(' + p[0] + ',' + p[1] + ')">' +
        '<title>' + esc(n[0]) + '</title><rect width="' + W + '" height="' + H + '"></rect><text x="8" y="17">' + esc(name) + '</text></g>';
    });
    more.forEach(function (m) {
      boxes += '<g class="gnode more" data-more="1" transform="translate(' + m[0] + ',' + m[1] + ')"><rect width="' + W + '" height="' + H + '"></rect><text x="8" y="17">+' + m[2] + ' more</text></g>';
    });
    var width = (2 * graphDepth + 1) * (W + GX) + 20, height = maxRows * (H + GY) + 20;
    var el = $('graph');
    el.innerHTML = '<svg xmlns="http://www.w3.org/2000/svg" width="' + width + '" height="' + height + '">' + edges + boxes + '</svg>';
    $('gcount').textContent = level.size + ' nodes within ' + graphDepth + ' hops';
    el.onclick = function (ev) {
      var g = ev.target.closest('.gnode');
      if (!g) return;
      if (g.dataset.more) { graphCap *= 4; renderGraph(c); return; }
      location.hash = href(g.dataset.uid, route().q);
    };
  }

  // --- pages ----------------------------------------------------------------
  function link(i) {
    var n = N[i];
    return '<a href="' + esc(href(n[0], route().q)) + '">' + esc(n[1]) + '</a>';
  }
  function links(list) {
    if (!list.length) return '<span class="muted">none</span>';
    var shown = list.slice(0, 100).map(link).join('');
    return shown + (list.length > 100 ? ' <span class="muted">+' + (list.length - 100) + ' more</span>' : '');
  }
  function inputs(list) {
    return list.map(function (x) {
      var target = pos.has(x[0]) ? '<a href="' + esc(href(x[0], route().q)) + '">' + esc(x[1]) + '</a>' : esc(x[1]);
      return '<div>' + target + '.' + esc(x[2]) + ' <span class="muted">' + esc(x[3]) + '</span></div>';
    }).join('');
  }
  var SYSTEMS = { postgres: 'PostgreSQL', files: 'landing files', bronze: 'bronze (object store)', superset: 'Superset' };
  function fmt(n) { return typeof n === 'number' ? n.toLocaleString('en') : esc(n); }

  function home() {
    var counts = {};
    N.forEach(function (n) { counts[n[2]] = (counts[n[2]] || 0) + 1; });
    page.innerHTML = '<h1>' + esc(IDX.project) + '</h1><p class="muted">Generated ' + esc(IDX.generated_at) + '</p><p>' +
      Object.keys(counts).sort().map(function (k) { return '<span class="badge ' + esc(k) + '">' + esc(k) + '</span>' + fmt(counts[k]) + ' '; }).join(' ') +
      '</p><p class="muted">Search with the box above (press /), then open a node to see its columns, tests, SQL and lineage.</p>';
    body.dataset.ready = '1';
  }

  function nodePage(uid) {
    var i = pos.get(uid);
    if (i === undefined) { page.innerHTML = '<h1>Not found</h1><p class="muted">' + esc(uid) + ' is not in this project.</p>'; body.dataset.ready = '1'; return; }
    var n = N[i];
    var t0 = performance.now();
    body.dataset.ready = '';
    page.innerHTML = '<h1><span class="badge ' + esc(n[2]) + '">' + esc(n[2]) + '</span>' + esc(n[1]) + '</h1><p class="muted">' + esc(n[0]) + '</p><div id="summary"></div>' +
      '<h2>Lineage</h2><div class="controls"><span id="gcount"></span> · depth <button id="gless">−</button><button id="gmore">+</button></div><div id="graph"></div>' +
      '<div id="detail"><p class="muted">Loading details…</p></div>';
    var r = route();
    if (r.depth >= 1 && r.depth <= 6) graphDepth = r.depth;
    renderGraph(i);
    $('gless').onclick = function () { graphDepth = Math.max(1, graphDepth - 1); renderGraph(i); };
    $('gmore').onclick = function () { graphDepth = Math.min(6, graphDepth + 1); renderGraph(i); };
    detail(i, function (d) {
      if (route().node !== uid) return;
      var el = $('detail');
      if (!d) { el.innerHTML = '<p class="unknown">Could not load this node\'s details.</p>'; body.dataset.ready = '1'; return; }
      var h = '';
      if (d.description) h += '<p>' + esc(d.description) + '</p>';
      if (d.relation) h += '<div class="kv">' + (d.system ? 'in dp lineage' : 'relation') + ' <b>' + esc(d.relation) + '</b></div>';
      if (n[4] && n[2] !== 'source') h += '<div class="kv">materialized <b>' + esc(n[4]) + '</b></div>';
      if (d.path) h += '<div class="kv">file <b>' + esc(d.path) + '</b></div>';
      if (d.system) h += '<div class="kv">system <b>' + esc(SYSTEMS[d.system] || d.system) + '</b></div>';
      if (d.location) h += '<div class="kv">' + (d.system ? 'at' : 'files') + ' <b>' + esc(d.location) + '</b></div>';
      if (d.published) h += '<div class="kv">published to <b>' + esc(d.published.replace(/^postgres:/, 'PostgreSQL ')) + '</b></div>';
      if (d.tags && d.tags.length) h += '<div class="kv">tags <b>' + d.tags.map(esc).join(', ') + '</b></div>';
      if (d.stats && d.stats.row_count) h += '<div class="kv">rows <b>' + fmt(d.stats.row_count.value) + '</b>' + (d.stats.bytes ? ' · size <b>' + fmt(d.stats.bytes.value) + ' bytes</b>' : '') + '</div>';
      $('summary').innerHTML = h;
      h = '<h2>Depends on</h2><div class="deps">' + links(n[5]) + '</div>';
      h += '<h2>Referenced by</h2><div class="deps">' + links(children[i]) + '</div>';
      h += '<h2>Columns</h2>';
      if (d.lineage_note) h += '<p class="unknown">' + esc(d.lineage_note) + '</p>';
      if (d.columns.length) {
        h += '<table id="columns"><thead><tr><th>column</th><th>type</th><th>description</th><th>tests</th><th>derived from</th></tr></thead><tbody>';
        d.columns.forEach(function (c) {
          h += '<tr><td><b>' + esc(c.name) + '</b></td><td class="type">' + esc(c.type) + '</td><td>' + esc(c.description) + '</td><td>' +
            c.tests.map(function (t) { return '<span class="test">' + esc(t) + '</span>'; }).join('') + '</td><td class="lin">' + inputs(c.inputs) +
            (c.unknown ? '<div class="unknown">unknown: ' + esc(c.unknown) + '</div>' : '') + '</td></tr>';
        });
        h += '</tbody></table>';
      } else {
        h += '<p class="muted">No columns known (not built yet and not documented).</p>';
      }
      if (d.objects && d.objects.length) {
        h += '<h2>Objects ingested</h2><table id="objects"><thead><tr><th>object</th><th>rows</th><th>bytes</th><th>ingested at</th><th>from</th></tr></thead><tbody>';
        d.objects.forEach(function (o) {
          h += '<tr><td>' + esc(o.key) + '</td><td>' + fmt(o.rows) + '</td><td>' + fmt(o.bytes) + '</td><td>' + esc(o.ingested_at) + '</td><td>' + esc(o.from || '') + '</td></tr>';
        });
        h += '</tbody></table>';
      }
      if (d.tests.length) h += '<h2>Tests</h2>' + d.tests.map(function (t) { return '<span class="test">' + esc(t) + '</span>'; }).join('');
      if (d.dataset && d.dataset.length) h += '<h2>All rows depend on</h2><div class="lin">' + inputs(d.dataset) + '</div>';
      if (d.raw) h += '<h2>SQL</h2><details open><summary>source</summary><pre>' + esc(d.raw) + '</pre></details>';
      if (d.compiled) h += '<details><summary>compiled</summary><pre>' + esc(d.compiled) + '</pre></details>';
      el.innerHTML = h;
      body.dataset.nodeMs = (performance.now() - t0).toFixed(1);
      body.dataset.ready = '1';
    });
  }

  function render() {
    var r = route();
    if (searchBox.value !== r.q && document.activeElement !== searchBox) searchBox.value = r.q;
    renderResults(r.q, r.node);
    if (r.node) nodePage(r.node); else home();
  }

  searchBox.addEventListener('input', function () {
    var r = route();
    history.replaceState(null, '', href(r.node, searchBox.value));
    renderResults(searchBox.value, r.node);
  });
  searchBox.addEventListener('keydown', function (ev) {
    if (ev.key === 'Enter') {
      var first = results.querySelector('a.result');
      if (first) location.hash = first.getAttribute('href');
    }
  });
  document.addEventListener('keydown', function (ev) {
    if (ev.key === '/' && document.activeElement !== searchBox) { ev.preventDefault(); searchBox.focus(); }
  });
  window.addEventListener('hashchange', render);
  render();
  body.dataset.loadMs = performance.now().toFixed(0);
})();
