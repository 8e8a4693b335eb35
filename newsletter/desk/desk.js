// The editor's desk: collect the form, show the email and the checks as the editor types, save, test.
(function () {
  'use strict';
  var main = document.querySelector('main.desk');
  var form = document.getElementById('issue');
  var csrf = document.querySelector('meta[name=csrf]').content;
  var base = '/issues/' + main.dataset.date;
  var frame = document.getElementById('email');
  var status = document.getElementById('status');
  var banner = document.getElementById('banner');
  var readOnly = main.dataset.state === 'sent';
  var PARTS = {items: 'item', meetings: 'meeting', resources: 'resource'};
  var timer = null, sequence = 0, lastHtml = null;
  var linkProblems = [], lastChecks = {};  // the last Check links' finds, shown with each render's checks

  function post(path, body) {
    return fetch(base + path, {
      method: 'POST', credentials: 'same-origin',
      headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf},
      body: JSON.stringify(body)
    }).then(function (r) { return r.json().then(function (data) { data.status = r.status; return data; }); });
  }

  // the form as data ------------------------------------------------------------------------
  function value(scope, key) {
    var el = scope.querySelector(':scope > .field [data-key="' + key + '"], :scope > .row .field [data-key="' + key + '"]');
    return el ? el.value : '';
  }
  function origin(el) { return el.dataset.origin === '' ? null : Number(el.dataset.origin); }
  function entries(part, keys) {
    return Array.prototype.map.call(document.querySelectorAll('#' + part + ' > fieldset'), function (fs) {
      var out = {origin: origin(fs)};
      keys.forEach(function (k) { out[k] = value(fs, k); });
      if (part === 'items') {
        out.networks = Array.prototype.filter.call(fs.querySelectorAll('.networks input'), function (c) { return c.checked; })
          .map(function (c) { return c.value; });
      }
      return out;
    });
  }
  function collect() {
    return {
      subject: document.getElementById('subject').value,
      preheader: document.getElementById('preheader').value,
      intro: document.getElementById('intro').value,
      items: entries('items', ['programme', 'update', 'action', 'links', 'remind_until']),
      meetings: entries('meetings', ['network', 'title', 'date', 'start', 'end', 'location', 'contact']),
      resources: entries('resources', ['title', 'publisher', 'published', 'url'])
    };
  }

  // adding, removing, reordering ------------------------------------------------------------
  function renumber(part) {
    var word = PARTS[part];
    var idRe = new RegExp('^' + part + '-(\\d+|N)-');
    var fieldRe = new RegExp('^' + part + '\\[(\\d+|N)\\]');
    var labelRe = new RegExp('(' + word + ') (\\d+|N)\\b', 'i');
    document.querySelectorAll('#' + part + ' > fieldset').forEach(function (fs, i) {
      var n = String(i + 1);
      fs.querySelector('legend .n').textContent = n;
      fs.querySelectorAll('[id]').forEach(function (el) { el.id = el.id.replace(idRe, part + '-' + n + '-'); });
      fs.querySelectorAll('label[for]').forEach(function (el) { el.htmlFor = el.htmlFor.replace(idRe, part + '-' + n + '-'); });
      fs.querySelectorAll('[aria-describedby]').forEach(function (el) {
        el.setAttribute('aria-describedby', el.getAttribute('aria-describedby').replace(idRe, part + '-' + n + '-'));
      });
      fs.querySelectorAll('[data-field]').forEach(function (el) { el.dataset.field = el.dataset.field.replace(fieldRe, part + '[' + n + ']'); });
      fs.querySelectorAll('[data-for]').forEach(function (el) { el.dataset.for = el.dataset.for.replace(fieldRe, part + '[' + n + ']'); });
      fs.querySelectorAll('[aria-label]').forEach(function (el) {
        el.setAttribute('aria-label', el.getAttribute('aria-label').replace(labelRe, '$1 ' + n));
      });
    });
  }
  function add(part) {
    var template = document.getElementById(PARTS[part] + '-template');
    var node = template.content.firstElementChild.cloneNode(true);
    document.getElementById(part).appendChild(node);
    renumber(part);
    var first = node.querySelector('input:not([type=checkbox]), select, textarea');
    if (first) first.focus();
    changed();
  }
  form.addEventListener('click', function (event) {
    var button = event.target.closest('button');
    if (!button) return;
    var fs = button.closest('#items > fieldset, #meetings > fieldset, #resources > fieldset');
    if (button.id === 'add-item') add('items');
    else if (button.id === 'add-meeting') add('meetings');
    else if (button.id === 'add-resource') add('resources');
    else if (button.id === 'send-test') sendTest();
    else if (button.id === 'show-reader') showReader();
    else if (button.id === 'check-links') checkLinks();
    else if (fs) {
      var part = fs.parentElement.id;
      if (button.classList.contains('remove')) {
        var next = fs.nextElementSibling || fs.previousElementSibling;
        fs.remove();
        (next ? next.querySelector('.remove') : document.getElementById('add-' + PARTS[part])).focus();
      } else if (button.classList.contains('up') && fs.previousElementSibling) {
        fs.parentElement.insertBefore(fs, fs.previousElementSibling);
      } else if (button.classList.contains('down') && fs.nextElementSibling) {
        fs.parentElement.insertBefore(fs.nextElementSibling, fs);
      } else return;
      renumber(part);
      if (!button.classList.contains('remove')) button.focus();
      changed();
    }
  });

  // the checks at their fields --------------------------------------------------------------
  function placeFor(field) {
    var path = field;
    while (path) {
      var msg = form.querySelector('.msg[data-for="' + CSS.escape(path) + '"]');
      if (msg) return msg;
      var cut = Math.max(path.lastIndexOf('.'), path.lastIndexOf('['));
      path = cut > 0 ? path.slice(0, cut) : '';
    }
    return null;
  }
  function controlFor(msg) {
    return form.querySelector('[data-field="' + CSS.escape(msg.dataset.for) + '"]');
  }
  function showProblems(data) {
    form.querySelectorAll('.msg').forEach(function (m) { m.textContent = ''; m.className = 'msg'; });
    form.querySelectorAll('[aria-invalid]').forEach(function (c) { c.removeAttribute('aria-invalid'); });
    var list = document.querySelector('#problems ul');
    list.innerHTML = '';
    var all = (data.errors || []).concat(data.warnings || [], linkProblems);
    all.forEach(function (p) {
      var msg = p.field ? placeFor(p.field) : null;
      var control = msg ? controlFor(msg) : null;
      if (msg) {
        msg.textContent = (msg.textContent ? msg.textContent + ' ' : '') + p.message;
        msg.className = 'msg ' + p.severity;
        if (control && p.severity === 'error') control.setAttribute('aria-invalid', 'true');
      }
      var li = document.createElement('li');
      li.className = p.severity;
      var label = (p.severity === 'error' ? 'Error' : 'Warning') + (p.field ? ' at ' + p.field : '') + ': ' + p.message;
      if (control) {
        var go = document.createElement('button');
        go.type = 'button'; go.className = 'link'; go.textContent = label;
        go.addEventListener('click', function () { (control.querySelector ? control.querySelector('input') || control : control).focus(); });
        li.appendChild(go);
      } else li.textContent = label;
      list.appendChild(li);
    });
    document.getElementById('problems').hidden = all.length === 0;
    var errors = (data.errors || []).length, warnings = (data.warnings || []).length + linkProblems.length;
    status.textContent = errors ? errors + ' error' + (errors > 1 ? 's' : '') :
      warnings ? warnings + ' warning' + (warnings > 1 ? 's' : '') : 'No problems';
    status.className = 'status ' + (errors ? 'bad' : warnings ? 'warn' : 'good');
    main.dataset.errors = String(errors);
  }

  // the email beside ------------------------------------------------------------------------
  function show(html) {
    if (html && html !== lastHtml) { lastHtml = html; frame.srcdoc = html; }
    frame.classList.toggle('stale', !html);
  }
  var wrap = frame.parentElement, width = 800;
  function fit() {  // the chosen width, scaled down to the pane when the pane is narrower
    var height = 600;
    try { height = frame.contentDocument.documentElement.scrollHeight; } catch (e) { /* not loaded yet */ }
    var scale = Math.min(1, wrap.clientWidth / width);
    frame.style.width = width + 'px';
    frame.style.height = height + 'px';
    frame.style.transform = scale < 1 ? 'scale(' + scale + ')' : '';
    frame.parentElement.style.height = (height * scale) + 'px';
    document.getElementById('scale').textContent = scale < 1 ? 'shown at ' + Math.round(scale * 100) + '%' : '';
  }
  frame.addEventListener('load', fit);
  window.addEventListener('resize', fit);
  function render() {
    var mine = ++sequence;
    main.dataset.rendering = '1';
    return post('/render', {form: collect(), network: document.getElementById('network').value}).then(function (data) {
      if (mine !== sequence) return;
      lastChecks = data;
      showProblems(data);
      show(data.html);
      document.getElementById('reader-note').hidden = true;
      main.dataset.rendering = '';
      main.dataset.rendered = String(mine);
    });
  }
  var dirty = false;  // typed since the last save: leaving the page asks first
  window.addEventListener('beforeunload', function (e) { if (dirty) { e.preventDefault(); e.returnValue = ''; } });
  function changed() {
    if (!readOnly) dirty = true;
    clearTimeout(timer);
    main.dataset.rendering = '1';
    timer = setTimeout(render, 350);
  }
  form.addEventListener('input', changed);
  form.addEventListener('submit', function (e) { e.preventDefault(); });
  document.getElementById('network').addEventListener('change', render);
  document.querySelectorAll('input[name=width]').forEach(function (radio) {
    radio.addEventListener('change', function () { width = Number(radio.value); fit(); });
  });

  // save, test, a reader's view -------------------------------------------------------------
  function say(text, kind) { banner.textContent = text; banner.className = 'banner ' + (kind || ''); banner.hidden = !text; }
  function save() {
    if (readOnly) return;
    clearTimeout(timer);
    say('');
    post('/save', {form: collect(), sha256: main.dataset.sha256}).then(function (data) {
      if (data.status === 200) {
        main.dataset.sha256 = data.sha256;
        dirty = false;
        ['items', 'meetings', 'resources'].forEach(function (part) {
          document.querySelectorAll('#' + part + ' > fieldset').forEach(function (fs, i) { fs.dataset.origin = String(i); });
        });
        showProblems(data);
        say('Saved at ' + new Date().toLocaleTimeString() + '.', 'good');
      } else {
        if (data.errors) showProblems(data);
        say(data.message || 'Not saved.', 'bad');
      }
    });
  }
  var saveButton = document.getElementById('save');
  if (saveButton) saveButton.addEventListener('click', save);
  document.addEventListener('keydown', function (e) {
    if ((e.ctrlKey || e.metaKey) && e.key === 's') { e.preventDefault(); save(); }
  });
  var result = document.getElementById('try-result');
  function sendTest() {
    result.textContent = 'Sending…';
    post('/test', {form: collect(), address: document.getElementById('test-address').value}).then(function (data) {
      result.textContent = data.message;
    });
  }
  function checkLinks() {
    var button = document.getElementById('check-links');
    button.disabled = true;
    result.textContent = 'Following the links…';
    post('/links', {form: collect()}).then(function (data) {
      button.disabled = false;
      result.textContent = data.message;
      linkProblems = data.links || [];
      showProblems(data.links ? lastChecks : data);
      main.dataset.linksChecked = String(linkProblems.length);
    });
  }
  function showReader() {
    var address = document.getElementById('reader-address').value;
    post('/reader', {form: collect(), email: address}).then(function (data) {
      result.textContent = data.message;
      var note = document.getElementById('reader-note');
      if (data.html) {
        show(data.html);
        note.textContent = 'Showing ' + address + '’s email. Type in the form to return to the editor’s view.';
        note.hidden = false;
      }
    });
  }
  render();
})();
