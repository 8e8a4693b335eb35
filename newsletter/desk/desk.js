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
  var timer = null, sequence = 0, lastHtml = null;
  var linkProblems = [], lastChecks = {};  // the last Check links' finds, shown with each render's checks

  function post(path, body) { return send(base + path, body); }
  function send(url, body) {
    return fetch(url, {
      method: 'POST', credentials: 'same-origin',
      headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf},
      body: JSON.stringify(body)
    }).then(function (r) { return r.json().then(function (data) { data.status = r.status; return data; }); });
  }

  // the form as data ------------------------------------------------------------------------
  var KEYS = {
    items: ['programme', 'update', 'action', 'links', 'remind_until'],
    articles: ['title', 'body', 'links'],
    sections: ['section', 'title', 'intro'],
    meetings: ['network', 'title', 'date', 'start', 'end', 'location', 'contact'],
    resources: ['title', 'publisher', 'published', 'url']
  };
  function value(scope, key) {
    var el = scope.querySelector(':scope > .field [data-key="' + key + '"], :scope > .row .field [data-key="' + key + '"]');
    return el ? el.value : '';
  }
  function origin(el) { return el.dataset.origin === '' ? null : Number(el.dataset.origin); }
  function picture(fs) {  // the picture's src: a file chosen, or the address typed
    var box = fs.querySelector(':scope > .picture');
    if (!box) return {};
    var file = box.querySelector('.image-file').value;
    var src = file === 'url' ? box.querySelector('[data-key=image_url]').value : file;
    return {image_src: src, image_alt: file === '' ? '' : box.querySelector('[data-key=image_alt]').value};
  }
  function entries(list) {
    if (!list) return [];
    return Array.prototype.map.call(list.querySelectorAll(':scope > fieldset'), function (fs) {
      var part = fs.dataset.part, out = {origin: origin(fs)};
      KEYS[part].forEach(function (k) { out[k] = value(fs, k); });
      var ticks = fs.querySelector(':scope > .networks');
      if (ticks) {
        out.networks = Array.prototype.filter.call(ticks.querySelectorAll('input'), function (c) { return c.checked; })
          .map(function (c) { return c.value; });
      }
      Object.assign(out, picture(fs));
      if (part === 'sections') {
        out.articles = entries(fs.querySelector(':scope > .list[data-part=articles]'));
        out.items = entries(fs.querySelector(':scope > .list[data-part=items]'));
      }
      return out;
    });
  }
  function collect() {
    var out = {
      subject: document.getElementById('subject').value,
      preheader: document.getElementById('preheader').value,
      intro: document.getElementById('intro').value
    };
    ['items', 'sections', 'meetings', 'resources'].forEach(function (part) { out[part] = entries(document.getElementById(part)); });
    return out;
  }
  form.addEventListener('change', function (event) {  // a picture on the web: show its address field
    var file = event.target.closest('.image-file');
    if (!file) return;
    var box = file.closest('.picture');
    box.querySelector('.image-url').hidden = file.value !== 'url';
    box.querySelector('.image-alt').hidden = file.value === '';
  });

  // adding, removing, reordering ------------------------------------------------------------
  function idOf(field) { return field.replace(/\]\./g, '-').replace(/\[/g, '-').replace(/\]/g, '').replace(/\./g, '-'); }
  function swap(text, from, to) {  // `from` at the start of `text` (followed by . [ - or the end) becomes `to`
    if (text === from) return to;
    var next = text.charAt(from.length);
    return text.indexOf(from) === 0 && (next === '.' || next === '[' || next === '-') ? to + text.slice(from.length) : text;
  }
  function renumber() {  // every repeated part's path, ids and labels from where it now stands
    form.querySelectorAll('fieldset[data-part]').forEach(function (fs) {
      var list = fs.parentElement, n = Array.prototype.indexOf.call(list.children, fs) + 1;
      var parent = list.closest('fieldset[data-part]');
      var prefix = (parent ? parent.dataset.prefix + '.' : '') + fs.dataset.part + '[' + n + ']';
      var label = (parent ? parent.dataset.label + ', ' : '') + fs.dataset.word + ' ' + n;
      var old = fs.dataset.prefix;
      fs.dataset.label = label;
      fs.querySelector(':scope > legend .n').textContent = String(n);
      fs.querySelectorAll(':scope > .item-tools button').forEach(function (b) {
        b.setAttribute('aria-label', b.dataset.label.replace('%', label));
      });
      fs.querySelector(':scope > .item-tools').setAttribute('aria-label', 'Move or remove ' + label);
      if (old === prefix) return;
      var oldId = idOf(old), newId = idOf(prefix);
      [fs].concat(Array.prototype.slice.call(fs.querySelectorAll('*'))).forEach(function (el) {
        if (el.dataset.prefix) el.dataset.prefix = swap(el.dataset.prefix, old, prefix);
        if (el.dataset.field) el.dataset.field = swap(el.dataset.field, old, prefix);
        if (el.dataset.for) el.dataset.for = swap(el.dataset.for, old, prefix);
        if (el.id) el.id = swap(el.id, oldId, newId);
        if (el.htmlFor) el.htmlFor = swap(el.htmlFor, oldId, newId);
        var described = el.getAttribute('aria-describedby');
        if (described) el.setAttribute('aria-describedby', swap(described, oldId, newId));
      });
    });
  }
  function add(button) {
    var list = button.previousElementSibling;
    var node = document.getElementById(button.dataset.part + '-template').content.firstElementChild.cloneNode(true);
    list.appendChild(node);
    renumber();
    var first = node.querySelector('input:not([type=checkbox]), select, textarea');
    if (first) first.focus();
    changed();
  }
  form.addEventListener('click', function (event) {
    var button = event.target.closest('button');
    if (!button) return;
    var fs = button.parentElement.classList.contains('item-tools') ? button.closest('fieldset[data-part]') : null;
    if (button.classList.contains('add')) add(button);
    else if (button.id === 'send-test') sendTest();
    else if (button.id === 'show-reader') showReader();
    else if (button.id === 'check-links') checkLinks();
    else if (fs) {
      if (button.classList.contains('remove')) {
        var next = fs.nextElementSibling || fs.previousElementSibling, addButton = fs.parentElement.nextElementSibling;
        fs.remove();
        (next ? next.querySelector('.remove') : addButton).focus();
      } else if (button.classList.contains('up') && fs.previousElementSibling) {
        fs.parentElement.insertBefore(fs, fs.previousElementSibling);
      } else if (button.classList.contains('down') && fs.nextElementSibling) {
        fs.parentElement.insertBefore(fs.nextElementSibling, fs);
      } else return;
      renumber();
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
    timer = null;
    main.dataset.rendering = '1';
    return post('/render', {form: collect(), network: document.getElementById('network').value}).then(function (data) {
      if (mine !== sequence) return;
      lastChecks = data;
      showProblems(data);
      show(data.html);
      document.getElementById('reader-note').hidden = true;
      main.dataset.rendering = timer ? '1' : '';  // a change typed since this render began is still to come
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
  form.addEventListener('input', function (event) {
    if (event.target.matches('textarea[data-markdown]')) previewSoon(event.target);
    changed();
  });
  form.addEventListener('submit', function (e) { e.preventDefault(); });
  document.getElementById('network').addEventListener('change', render);
  document.querySelectorAll('input[name=width]').forEach(function (radio) {
    radio.addEventListener('change', function () { width = Number(radio.value); fit(); });
  });

  // markdown fields with their text as the email shows it -----------------------------------
  function preview(areas) {
    if (!areas.length) return;
    send('/markdown', {texts: areas.map(function (a) { return a.value; })}).then(function (data) {
      (data.html || []).forEach(function (html, i) {
        var box = areas[i].parentElement.querySelector('.rendered');
        box.innerHTML = html;  // escaped by the renderer: raw HTML in content is never passed through
        box.querySelectorAll('a').forEach(function (a) { a.target = '_blank'; a.rel = 'noopener'; });
      });
    });
  }
  function previewSoon(area) {
    clearTimeout(area.previewTimer);
    area.previewTimer = setTimeout(function () { preview([area]); }, 250);
  }

  // save, test, a reader's view -------------------------------------------------------------
  function say(text, kind) { banner.textContent = text; banner.className = 'banner ' + (kind || ''); banner.hidden = !text; }
  function save() {
    if (readOnly) return;
    clearTimeout(timer);
    timer = null;
    say('');
    post('/save', {form: collect(), sha256: main.dataset.sha256}).then(function (data) {
      if (data.status === 200) {
        main.dataset.sha256 = data.sha256;
        dirty = false;
        form.querySelectorAll('.list').forEach(function (list) {  // the file now holds the form's order
          list.querySelectorAll(':scope > fieldset').forEach(function (fs, i) { fs.dataset.origin = String(i); });
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
  renumber();
  render();
  preview(Array.prototype.slice.call(form.querySelectorAll('textarea[data-markdown]')));
})();
