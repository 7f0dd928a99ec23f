'use strict';
/*
 * buzon ui: the page's script. It talks to `buzon ui` through the API in docs/ui-api.md and
 * re-renders from the state object that every changing call answers with.
 *
 * The access key arrives in the address (`/?token=...`). It goes in the X-Buzon-Token header
 * of every fetch, and in `?token=` for the event stream and the download links, which cannot
 * carry headers.
 *
 * Element ids, for browser tests:
 *   page:       #no-token #page-error #app #dir
 *   server:     #server-host #server-port #server-tls #server-user #server-password
 *               #server-password-note #server-password-forget #server-insecure #server-test
 *               #server-error #server-test-result
 *   recipients: #csv-file #csv-path #csv-path-load #recipients-error #recipients-summary
 *               #recipients-table
 *   message:    #msg-from #msg-subject #msg-text #msg-html-enabled #msg-html-wrap #msg-html
 *               #fields #attach-file #attachments-list #attach-column #message-error
 *               (per file: #attach-every-N checkboxes, N = position in the list)
 *   check:      #check-run #check-error #check-result #check-problems-table
 *               #preview-row #preview-run #preview-error #preview #preview-raw-toggle
 *               #preview-body #preview-html #preview-raw
 *   test:       #self-address #test-row #test-send #test-error #test-result #test-mode
 *   send:       #concurrency #rate #retries #test-mode-banner #send-summary #send-start
 *               #send-pause #send-resume #send-stop #send-error #interrupted-note
 *               #campaign-test-note #progress #campaign-state #progress-text
 *               #campaign-message #events-note #results-table #results-empty
 *               #download-results #download-failed
 */

// ---------- small helpers ----------

const $ = (id) => document.getElementById(id);

/** Builds an element; attributes set with setAttribute (true = present, false/null = absent). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === 'class') node.className = value;
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  // Strings become text nodes: nothing from the server is ever parsed as HTML.
  fill(node, children);
  return node;
}

function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** Replaces a node's children; null entries (parts left out) are skipped. */
function fill(node, ...children) {
  node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

/** One "term: value" pair of a <dl class="facts">. */
function fact(term, value) {
  return [el('dt', {}, term), el('dd', {}, value)];
}

/**
 * Runs `draw` only when `value` differs from what was last drawn under `key`: every save
 * answers with the whole state, and rebuilding an unchanged list would lose focus and scroll.
 */
const drawn = {};
function redraw(key, value, draw) {
  const json = JSON.stringify(value);
  if (drawn[key] === json) return;
  drawn[key] = json;
  draw();
}

/** Rebuilds inside `container` and puts the focus back on the element with the same id. */
function keepFocus(container, rebuild) {
  const focused = container.contains(document.activeElement) ? document.activeElement.id : '';
  rebuild();
  if (focused && $(focused)) $(focused).focus();
}

function labelOf(input) {
  const label = document.querySelector(`label[for="${input.id}"]`);
  return label ? label.textContent.trim() : input.id;
}

// ---------- the token and the API ----------

const token = new URLSearchParams(location.search).get('token') || '';

/** For URLs that cannot carry the header: the event stream and the downloads. */
function withToken(path) {
  return `${path}${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
}

/** A failed call, in the API's own words: `error` and, when given, `hint`. */
class ApiError extends Error {
  constructor(message, hint) {
    super(message);
    this.hint = hint || '';
  }
}

// Hints for the answers that may come without one.
const STATUS_HINTS = {
  403: 'Open the address that buzon ui printed: it includes the access key.',
  413: 'Files over 10 MB cannot be uploaded.',
};

/** Calls the API. `body`: a File/Blob is sent as it is, anything else as JSON. */
async function api(method, path, body) {
  const headers = { 'X-Buzon-Token': token };
  let payload;
  if (body instanceof Blob) {
    payload = body;
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body: payload, cache: 'no-store' });
  } catch {
    throw new ApiError('buzon ui is not answering.',
      'Check that it is still running in its terminal, then reload this page.');
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    // Not JSON: only possible for an error from something other than buzon; handled below.
  }
  if (!response.ok || data === null) {
    throw new ApiError((data && data.error) || `The request failed (HTTP ${response.status}).`,
      (data && data.hint) || STATUS_HINTS[response.status]);
  }
  return data;
}

// ---------- errors, shown next to what caused them ----------

/**
 * Fills a section's role="alert" box. `source` names who put the message there, so that a
 * later success of the same thing can clear it without wiping someone else's message.
 */
function showError(box, err, source = '') {
  box.dataset.source = source;
  box.replaceChildren();
  if (!err) return;
  box.append(el('strong', {}, `✘ ${err.message}`));
  if (err.hint) box.append(' ', el('span', {}, err.hint));
}

function clearError(box, source) {
  if (box.dataset.source === source) showError(box, null);
}

/** The alert box of the section an element is in: #server-error, #message-error... */
function alertFor(node) {
  return $(`${node.closest('section').id}-error`);
}

/**
 * Runs a control's work: pending settings are saved first (so the server uses what is on
 * screen), a second click meanwhile is ignored, and a failure lands in `box`. The control is
 * marked aria-disabled rather than disabled: disabling it would drop the keyboard focus.
 */
async function action(control, box, work) {
  if (control.getAttribute('aria-disabled') === 'true') return;
  showError(box, null);
  control.setAttribute('aria-disabled', 'true');
  try {
    await flushSettings();
    await work();
  } catch (err) {
    showError(box, err);
  } finally {
    control.removeAttribute('aria-disabled');
  }
}

// ---------- settings: each field saved as a partial PUT ----------

// [element id, settings section, key, kind]. The password is apart: it is never sent back.
const BOUND = [
  ['server-host', 'server', 'host', 'text'],
  ['server-port', 'server', 'port', 'int'],
  ['server-tls', 'server', 'tls', 'text'],
  ['server-user', 'server', 'user', 'text'],
  ['server-insecure', 'server', 'insecure', 'bool'],
  ['msg-from', 'message', 'from', 'text'],
  ['msg-subject', 'message', 'subject', 'text'],
  ['msg-text', 'message', 'text', 'text'],
  ['msg-html-enabled', 'message', 'html_enabled', 'bool'],
  ['msg-html', 'message', 'html', 'text'],
  ['attach-column', 'message', 'attach_column', 'text'],
  ['self-address', 'sending', 'self_address', 'text'],
  ['test-mode', 'sending', 'test_mode', 'bool'],
  ['concurrency', 'sending', 'concurrency', 'int'],
  ['rate', 'sending', 'rate', 'text'],
  ['retries', 'sending', 'retries', 'int'],
];

let pending = {}; // the partial settings object not sent yet
const pendingAlerts = new Set(); // where to say so if sending it fails
let saveTimer = 0;
let saving = Promise.resolve(); // the last save; saves are chained so they never cross

function isPending(section, key) {
  return Boolean(pending[section]) && key in pending[section];
}

function queueSetting(section, key, value, box) {
  pending[section] = { ...pending[section], [key]: value };
  pendingAlerts.add(box);
}

function scheduleSave() {
  clearTimeout(saveTimer);
  saveTimer = setTimeout(flushSettings, 400);
}

/** Sends what is pending now; the promise settles when every save so far is done. */
function flushSettings() {
  clearTimeout(saveTimer);
  if (Object.keys(pending).length === 0) return saving;
  const body = pending;
  const boxes = [...pendingAlerts];
  pending = {};
  pendingAlerts.clear();
  saving = saving
    .then(() => callState('PUT', 'api/settings', body))
    .then(() => boxes.forEach((box) => clearError(box, 'save')))
    .catch((err) => boxes.forEach((box) => showError(box, err, 'save')));
  return saving;
}

/**
 * A bound field changed. On `input` the save waits for a pause in typing; on `change` it
 * goes now. A value the browser calls invalid is not sent; it is explained on `change` only,
 * so half-typed values do not flash errors.
 */
function onBoundEdit(input, section, key, kind, now) {
  const box = alertFor(input);
  if (!input.checkValidity()) {
    if (now) {
      input.setAttribute('aria-invalid', 'true');
      showError(box, new Error(`${labelOf(input)}: ${input.validationMessage}`), input.id);
    }
    return;
  }
  input.removeAttribute('aria-invalid');
  clearError(box, input.id);
  const value = kind === 'bool' ? input.checked : kind === 'int' ? Number(input.value) : input.value;
  // `change` after typing usually repeats what the debounced save already sent.
  if (!isPending(section, key) && state && state.settings[section][key] === value) return;
  queueSetting(section, key, value, box);
  if (now) flushSettings();
  else scheduleSave();
}

function bindSettings() {
  for (const [id, section, key, kind] of BOUND) {
    const input = $(id);
    input.addEventListener('input', () => onBoundEdit(input, section, key, kind, false));
    input.addEventListener('change', () => onBoundEdit(input, section, key, kind, true));
  }
  const password = $('server-password');
  password.addEventListener('input', () => {
    queueSetting('server', 'password', password.value, $('server-error'));
    scheduleSave();
  });
  password.addEventListener('change', () => flushSettings());
  $('server-password-forget').addEventListener('click', () => {
    password.value = '';
    password.focus(); // the button hides once the password is gone
    queueSetting('server', 'password', '', $('server-error')); // "" forgets it
    flushSettings();
  });
  // Reveal the HTML field at once, before the save comes back.
  $('msg-html-enabled').addEventListener('input', () => {
    $('msg-html-wrap').hidden = !$('msg-html-enabled').checked;
  });
  $('server-insecure').addEventListener('input', () => {
    $('server-insecure-warning').hidden = !$('server-insecure').checked;
  });
}

/** Puts the saved settings into the fields, except one being edited or not saved yet. */
function renderSettings(settings) {
  for (const [id, section, key, kind] of BOUND) {
    const input = $(id);
    if (input === document.activeElement || isPending(section, key)) continue;
    const value = settings[section][key];
    if (kind === 'bool') input.checked = Boolean(value);
    else input.value = value ?? '';
  }
  $('msg-html-wrap').hidden = !$('msg-html-enabled').checked;
  // The warning matters once the check is off; shown always, it would be read as noise.
  $('server-insecure-warning').hidden = !$('server-insecure').checked;
  const held = settings.server.password_set;
  $('server-password-note').textContent = held
    ? 'A password is held for this session, in memory only, never saved. Type a new one to replace it.'
    : 'Kept in memory only, never saved.';
  $('server-password-forget').hidden = !held;
  $('test-mode-banner').hidden = !settings.sending.test_mode;
}

// ---------- the whole state ----------

let state = null; // the last state received (its campaign may be older than `campaign`)

/** Renders a state; its campaign only when `campaignIsCurrent` (see callState). */
function render(s, campaignIsCurrent) {
  state = s;
  renderRecipients(s.recipients);
  renderFieldButtons(s.recipients);
  renderAttachments(s.attachments,
    isPending('message', 'attach') ? pending.message.attach : s.settings.message.attach);
  renderAttachColumn(s.recipients, s.settings.message.attach_column);
  renderSettings(s.settings);
  if (campaignIsCurrent && showCampaign(s.campaign)) clearResults();
  // Merged, not swapped in: results the stream delivered while this answer was on its way
  // are newer than it, and must stay.
  s.campaign.results.forEach(upsertResult);
  renderSendSummary();
  $('dir').textContent = s.dir;
}

/**
 * Calls the API for the state (every changing call answers with it) and renders it. While
 * the event stream is open it is the ordered account of the campaign: if a campaign event
 * came during the call, the answer's campaign may be older (a finished run shown as still
 * running), so the stream keeps the last word.
 */
async function callState(method, path, body) {
  const seen = campaignEvents;
  const s = await api(method, path, body);
  render(s, !eventsOpen || campaignEvents === seen);
}

const refreshState = () => callState('GET', 'api/state');

// ---------- 1. server ----------

const STEP_WORDS = {
  connect: 'Connect', greeting: 'Greeting', ehlo: 'Introduction (EHLO)', tls: 'Encryption (TLS)', login: 'Log in',
};

function renderServerTest(answer) {
  const steps = el('ul', { class: 'steps' }, answer.steps.map((s) =>
    el('li', { class: s.ok ? 'ok' : 'bad' },
      `${s.ok ? '✔' : '✘'} ${STEP_WORDS[s.step] || s.step}: `, s.detail)));
  const verdict = answer.ok
    ? el('p', { class: 'ok' }, '✔ The server works with these settings.')
    : el('p', { class: 'bad' }, '✘ The connection failed at the step marked ✘.');
  const offered = answer.offered
    ? renderOffered(answer.offered)
    : el('p', { class: 'help' }, 'The server did not get as far as saying what it offers.');
  $('server-test-result').replaceChildren(verdict, steps, offered);
}

function renderOffered(o) {
  const tls = o.tls_in_use ? 'in use' : o.starttls ? 'offered (STARTTLS) but not in use' : 'not offered';
  const auth = o.auth && o.auth.length ? o.auth.join(', ') : 'none offered';
  // SIZE 0 means the server states no fixed limit (RFC 1870).
  const size = o.size ? `${(o.size / 1024 / 1024).toFixed(1)} MB` : o.size === 0 ? 'no fixed limit' : 'not stated';
  const extras = [o.pipelining && 'PIPELINING', o.smtputf8 && 'SMTPUTF8'].filter(Boolean);
  return el('dl', { class: 'facts' },
    fact('Encryption (TLS)', tls),
    fact('Login methods (AUTH)', auth),
    fact('Largest message (SIZE)', size),
    extras.length ? fact('Also offered', extras.join(', ')) : null);
}

function bindServer() {
  const button = $('server-test');
  button.addEventListener('click', () => action(button, $('server-error'), async () => {
    $('server-test-result').replaceChildren(el('p', { class: 'help' }, 'Connecting…'));
    const answer = await api('POST', 'api/server/test').finally(() => $('server-test-result').replaceChildren());
    renderServerTest(answer);
  }));
}

// ---------- 2. recipients ----------

let checkProblems = new Map(); // row n -> problems found by the last check

const DELIMITERS = { ',': 'comma (,)', ';': 'semicolon (;)', '\t': 'tab', '|': 'bar (|)' };

function renderRecipients(r) {
  redraw('recipients', r, () => {
    // A different list: the last check was about the old one.
    checkProblems = new Map();
    $('check-result').replaceChildren();
    renderRecipientsSummary(r);
    renderRecipientsTable(r);
  });
}

function renderRecipientsSummary(r) {
  const box = $('recipients-summary');
  if (!r) {
    box.replaceChildren(el('p', { class: 'help' }, 'No recipients yet: choose a CSV file.'));
    return;
  }
  const listed = r.rows.length < r.total
    ? el('p', { class: 'help' }, `The table lists ${r.rows.length} of the ${r.total} rows: the first 1000 and every row with a problem.`)
    : null;
  const warnings = r.warnings.length
    ? el('ul', { class: 'warning' }, r.warnings.map((w) => el('li', {}, `⚠ ${w}`)))
    : null;
  fill(box, el('dl', { class: 'facts' },
    fact('File', r.file),
    fact('Rows', String(r.total)),
    fact('Columns', r.columns.join(', ')),
    fact('Address column', r.email_column),
    fact('Name column', r.name_column || 'none'),
    fact('Encoding', r.encoding),
    fact('Delimiter', DELIMITERS[r.delimiter] || r.delimiter)), warnings, listed);
}

/** n, email, name, the other columns, problems; problem rows say so in words. */
function renderRecipientsTable(r) {
  const table = $('recipients-table');
  table.hidden = !r;
  if (!r) return;
  const others = r.columns.filter((c) => c !== r.email_column && c !== r.name_column);
  table.tHead.replaceChildren(el('tr', {},
    ['#', 'Email', 'Name', ...others, 'Problems'].map((h) => el('th', { scope: 'col' }, h))));
  table.tBodies[0].replaceChildren(...r.rows.map((row) => {
    const problems = [...new Set([...row.problems, ...(checkProblems.get(row.n) || [])])];
    return el('tr', { class: problems.length ? 'has-problem' : false },
      el('th', { scope: 'row' }, String(row.n)),
      el('td', {}, row.email),
      el('td', {}, row.name || ''),
      others.map((c) => el('td', {}, row.fields[c] ?? '')),
      el('td', {}, problems.length
        ? [el('strong', {}, '⚠ problem: '), problems.join('; ')]
        : 'none'));
  }));
}

function bindRecipients() {
  const file = $('csv-file');
  file.addEventListener('change', () => {
    const chosen = file.files[0];
    if (!chosen) return;
    action(file, $('recipients-error'), async () => {
      await callState('POST', `api/recipients?name=${encodeURIComponent(chosen.name)}`, chosen);
    }).then(() => { file.value = ''; }); // so choosing the same file again reloads it
  });
  const load = $('csv-path-load');
  const loadPath = () => action(load, $('recipients-error'), async () => {
    await callState('POST', 'api/recipients/path', { path: $('csv-path').value.trim() });
  });
  load.addEventListener('click', loadPath);
  $('csv-path').addEventListener('keydown', (e) => e.key === 'Enter' && loadPath());
}

// ---------- 3. message ----------

const INSERT_TARGETS = ['msg-from', 'msg-subject', 'msg-text', 'msg-html'];
let insertTarget = 'msg-text';

/** The template name of a column, as the merge defines it (mailmerge's variable_name). */
function variableName(header) {
  const words = header.trim().toLowerCase().split(/[^\p{L}\p{N}]+/u).filter(Boolean);
  const name = words.join('_');
  return /^\p{N}/u.test(name) ? `_${name}` : name;
}

// Words minijinja reads as literals or operators, not as variables.
const JINJA_WORDS = new Set(['true', 'false', 'none', 'True', 'False', 'None',
  'and', 'or', 'not', 'in', 'is', 'if', 'else']);

/** What to write for a column: its plain name when it has one, else row["..."]. */
function columnTag(header) {
  const usable = (name) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) && !JINJA_WORDS.has(name);
  if (usable(header)) return `{{ ${header} }}`;
  if (usable(variableName(header))) return `{{ ${variableName(header)} }}`;
  return `{{ row[${JSON.stringify(header)}] }}`;
}

function renderFieldButtons(r) {
  const tags = [...new Set(['{{ email }}', '{{ name }}', ...(r ? r.columns.map(columnTag) : [])])];
  redraw('fields', tags, () => $('fields').replaceChildren(...tags.map((tag) =>
    el('button', { type: 'button', class: 'secondary small', 'data-tag': tag }, `Insert ${tag}`))));
}

function insertAtCursor(tag) {
  let field = $(insertTarget);
  if (field.closest('[hidden]')) field = $('msg-text'); // the HTML field is closed
  field.focus();
  const start = field.selectionStart ?? field.value.length;
  field.setRangeText(tag, start, field.selectionEnd ?? start, 'end');
  // The same path as typing: this saves it.
  field.dispatchEvent(new Event('input', { bubbles: true }));
}

function renderAttachments(files, attached) {
  const list = $('attachments-list');
  redraw('attachments', [files, attached], () => keepFocus(list, () => {
    list.replaceChildren(...(files.length ? files.map((f, i) => attachmentItem(f, i, attached))
      : [el('li', { class: 'help' }, 'No files uploaded yet.')]));
  }));
}

function attachmentItem(f, i, attached) {
  return el('li', {},
    el('span', { class: 'file-name' }, f.name), ' ',
    el('span', { class: 'help' }, `(${formatSize(f.size)})`),
    el('span', { class: 'check' },
      el('input', { id: `attach-every-${i}`, type: 'checkbox', 'data-name': f.name, checked: attached.includes(f.name) }),
      el('label', { for: `attach-every-${i}` },
        'attach ', el('span', { class: 'visually-hidden' }, `${f.name} `), 'to every message')),
    el('button', { type: 'button', class: 'secondary small', 'data-remove': f.name,
      'aria-label': `Remove ${f.name}` }, 'Remove'));
}

function renderAttachColumn(r, saved) {
  const select = $('attach-column');
  const columns = r ? r.columns : [];
  // A choice being saved wins over the saved one, as for the other fields.
  const value = select === document.activeElement || isPending('message', 'attach_column')
    ? select.value : saved;
  redraw('attach-column', [columns, value], () => {
    const options = [el('option', { value: '' }, 'none'),
      ...columns.map((c) => el('option', { value: c }, c))];
    if (value && !columns.includes(value)) {
      options.push(el('option', { value }, `${value} (not in this CSV)`));
    }
    select.replaceChildren(...options);
    select.value = value;
  });
}

async function uploadAttachments(files) {
  // One at a time: each answer is the whole state, and the last one is the one to show.
  for (const f of files) {
    await callState('POST', `api/attachments?name=${encodeURIComponent(f.name)}`, f);
  }
}

function bindMessage() {
  for (const id of INSERT_TARGETS) {
    $(id).addEventListener('focus', () => { insertTarget = id; });
  }
  $('fields').addEventListener('click', (e) => {
    const button = e.target.closest('button[data-tag]');
    if (button) insertAtCursor(button.dataset.tag);
  });
  const upload = $('attach-file');
  upload.addEventListener('change', () => {
    const files = [...upload.files];
    if (!files.length) return;
    action(upload, $('message-error'), () => uploadAttachments(files)).then(() => { upload.value = ''; });
  });
  const list = $('attachments-list');
  list.addEventListener('change', (e) => {
    if (!e.target.matches('input[type=checkbox]')) return;
    const attach = [...list.querySelectorAll('input[type=checkbox]:checked')].map((c) => c.dataset.name);
    queueSetting('message', 'attach', attach, $('message-error'));
    flushSettings();
  });
  list.addEventListener('click', (e) => {
    const button = e.target.closest('button[data-remove]');
    if (!button) return;
    action(button, $('message-error'), async () => {
      await callState('DELETE', `api/attachments?name=${encodeURIComponent(button.dataset.remove)}`);
    });
  });
}

// ---------- 4. check and preview ----------

function renderCheck(answer) {
  checkProblems = new Map();
  for (const p of answer.problems) {
    checkProblems.set(p.n, [...(checkProblems.get(p.n) || []), p.problem]);
  }
  const parts = [];
  if (answer.template_error) {
    parts.push(el('div', { class: 'template-error' },
      el('strong', {}, '✘ The message cannot be used: '), answer.template_error,
      el('p', {}, 'Every row would fail until this is fixed.')));
  }
  if (!answer.template_error || checkProblems.size) {
    parts.push(el('p', { class: answer.ok ? 'ok' : 'bad' }, answer.ok
      ? `✔ Every row is ready: ${answer.rows_ok} messages.`
      : `${answer.rows_ok} rows ready, ${checkProblems.size} with problems: fix them in the CSV and choose it again, or send without them (they go to the failed rows).`));
  }
  parts.push(el('p', { class: 'help' }, `Largest message the server takes: ${formatSize(answer.size_limit)}.`));
  if (answer.problems.length) parts.push(problemsTable(answer.problems));
  $('check-result').replaceChildren(...parts);
  renderRecipientsTable(state.recipients);
}

function problemsTable(problems) {
  return el('div', { class: 'table-wrap' }, el('table', { id: 'check-problems-table' },
    el('caption', {}, 'Rows with problems'),
    el('thead', {}, el('tr', {}, ['Row', 'Line', 'Email', 'Problem'].map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, problems.map((p) => el('tr', { class: 'has-problem' },
      el('th', { scope: 'row' }, String(p.n)),
      el('td', {}, String(p.line)),
      el('td', {}, p.email || ''),
      el('td', {}, el('strong', {}, '⚠ '), p.problem))))));
}

function renderPreview(p) {
  const h = p.headers;
  const headers = el('dl', { class: 'facts' },
    fact('From', h.from), fact('To', h.to), h.cc ? fact('Cc', h.cc) : null,
    fact('Subject', h.subject), fact('Date', h.date),
    fact('Sent to', p.envelope.to.join(', ')),
    fact('Size', formatSize(p.size)));
  const parts = [el('p', { class: 'help' }, `Row ${p.n} (line ${p.line} of the file), as its recipient sees it:`), headers];
  parts.push(el('h4', {}, 'Text'), el('pre', { class: 'body' }, p.text));
  if (p.html !== null && p.html !== undefined) {
    // No allow-scripts: the HTML is shown, never run. The page's CSP also applies inside.
    const frame = el('iframe', { id: 'preview-html', sandbox: '', title: 'HTML version of the message' });
    frame.srcdoc = p.html;
    parts.push(el('h4', {}, 'HTML'), frame,
      el('p', { class: 'help' }, 'Images from the internet are not loaded in the preview.'));
  }
  parts.push(el('h4', {}, 'Attachments'), p.attachments.length
    ? el('ul', {}, p.attachments.map((a) => el('li', {}, `${a.name} (${a.type}, ${formatSize(a.size)})`)))
    : el('p', { class: 'help' }, 'None.'));
  const seen = el('div', { id: 'preview-seen' }, parts);
  const raw = el('pre', { id: 'preview-raw', class: 'body', hidden: true }, p.raw);
  $('preview-body').replaceChildren(seen, raw);
  showRaw(false);
  $('preview').hidden = false;
}

/** Switches the preview between the recipient's view and the raw message. */
function showRaw(raw) {
  const toggle = $('preview-raw-toggle');
  toggle.setAttribute('aria-pressed', String(raw));
  toggle.textContent = raw ? 'Show as the recipient sees it' : 'Show raw message';
  $('preview-seen').hidden = raw;
  $('preview-raw').hidden = !raw;
}

/** A row number from an <input type=number>, or an error naming the field. */
function rowNumber(input) {
  const n = Number(input.value);
  if (!Number.isInteger(n) || n < 1) {
    throw new ApiError(`${labelOf(input)}: enter a row number, 1 or more.`, '1 is the first row after the header line.');
  }
  return n;
}

function bindCheck() {
  const check = $('check-run');
  check.addEventListener('click', () => action(check, $('check-error'), async () => {
    renderCheck(await api('POST', 'api/check'));
  }));
  const preview = $('preview-run');
  const run = () => action(preview, $('preview-error'), async () => {
    const n = rowNumber($('preview-row'));
    try {
      renderPreview(await api('GET', `api/preview?n=${n}`));
    } catch (err) {
      $('preview').hidden = true; // an old preview next to the error would mislead
      throw err;
    }
  });
  preview.addEventListener('click', run);
  $('preview-row').addEventListener('keydown', (e) => e.key === 'Enter' && run());
  $('preview-raw-toggle').addEventListener('click', () => {
    showRaw($('preview-raw-toggle').getAttribute('aria-pressed') !== 'true');
  });
}

// ---------- 5. test message ----------

function renderTestSend(answer) {
  const where = `through ${answer.server}${state.settings.sending.test_mode ? ' (test mode: the simulated server)' : ''}`;
  const parts = answer.ok
    ? [el('p', { class: 'ok' }, `✔ Sent to ${answer.to} ${where}.`)]
    : [el('p', { class: 'bad' }, `✘ Not sent to ${answer.to} ${where}.`),
      answer.meaning ? el('p', {}, answer.meaning) : null];
  parts.push(el('p', { class: 'help' }, "The server's reply: ", el('code', {}, answer.reply)));
  fill($('test-result'), parts);
}

function bindTest() {
  const button = $('test-send');
  button.addEventListener('click', () => action(button, $('test-error'), async () => {
    $('test-result').replaceChildren();
    const to = $('self-address').value.trim();
    if (!to) throw new ApiError('Your address is empty.', 'Type the address the test message should go to.');
    renderTestSend(await api('POST', 'api/test-send', { n: rowNumber($('test-row')), to }));
  }));
}

// ---------- 6. send ----------

const STATE_WORDS = {
  idle: 'Not started.',
  running: 'Sending…',
  pausing: 'Pausing: the messages on their way are finishing…',
  paused: 'Paused.',
  stopping: 'Stopping: the messages on their way are finishing…',
  stopped: 'Stopped.',
  done: 'Done.',
  interrupted: 'Interrupted.',
};

const COUNT_WORDS = {
  sent: 'sent', partial: 'partly sent', failed: 'failed',
  deferred: 'deferred', invalid: 'invalid', skipped: 'skipped',
};

// [icon, plain words] per result status: the icon and words carry it, colour only helps.
const STATUS_WORDS = {
  sent: ['✔', 'sent'],
  partial: ['⚠', 'partly sent (some recipients refused)'],
  failed: ['✘', 'refused (will not be retried)'],
  deferred: ['⚠', 'temporarily refused (try again later)'],
  invalid: ['✘', 'not sent: the message could not be made from this row'],
  skipped: ['–', 'not sent: row unusable'],
};

const CAMPAIGN_BUTTONS = ['send-start', 'send-pause', 'send-resume', 'send-stop'];

function renderButtons(s) {
  const focused = document.activeElement;
  $('send-start').disabled = !['idle', 'done'].includes(s);
  $('send-resume').disabled = !['paused', 'stopped', 'interrupted'].includes(s);
  $('send-pause').disabled = s !== 'running';
  $('send-stop').disabled = s !== 'running';
  // Send disables itself once the run starts: keep a keyboard user among these buttons
  // (on Pause, say) instead of sending the focus back to the top of the page.
  if (focused && CAMPAIGN_BUTTONS.includes(focused.id) && focused.disabled) {
    const next = CAMPAIGN_BUTTONS.map($).find((b) => !b.disabled);
    if (next) next.focus();
  }
}

let campaign = null; // the campaign on screen
let campaignEvents = 0; // campaign events received: tells whether an answer may be older
let eventsOpen = false;

/** Shows a campaign; says whether it is a new run (the results on screen are then stale). */
function showCampaign(c) {
  // Fewer settled rows, or a switch to or from test mode, means another run began (a test
  // run starts over from the first row each time).
  const newRun = campaign !== null && (c.test !== campaign.test || c.settled < campaign.settled);
  campaign = c;
  renderCampaign(c);
  return newRun;
}

function renderCampaign(c) {
  const counts = Object.entries(c.counts).filter(([, v]) => v > 0).map(([k, v]) => `${v} ${COUNT_WORDS[k] || k}`);
  const progress = $('progress');
  progress.max = Math.max(c.total, 1);
  progress.value = c.settled;
  $('campaign-state').textContent = STATE_WORDS[c.state] || c.state;
  $('progress-text').textContent = `${c.settled} of ${c.total} settled`
    + (counts.length ? ` — ${counts.join(', ')}` : '')
    + (c.pending ? `; ${c.pending} still to send.` : '.');
  $('campaign-message').textContent = c.message || '';
  $('interrupted-note').hidden = c.state !== 'interrupted';
  $('campaign-test-note').hidden = !c.test;
  renderButtons(c.state);
}

function renderSendSummary() {
  const { recipients, settings } = state;
  const through = settings.sending.test_mode
    ? 'the simulated server (test mode)'
    : `${settings.server.host}:${settings.server.port}`;
  $('send-summary').textContent = recipients
    ? `Send writes to every usable row of ${recipients.file} (${recipients.total} rows) through ${through}.`
    : 'Choose the recipients first.';
}

// ---------- results, filled live ----------

const resultRows = new Map(); // line -> {seq, tr}

function resultRow(r) {
  const [icon, words] = STATUS_WORDS[r.status] || ['', r.status];
  return el('tr', { class: `status-${r.status}` },
    el('th', { scope: 'row' }, String(r.line)),
    el('td', {}, r.email),
    el('td', { class: 'status' }, `${icon} ${words}`),
    el('td', { class: 'reply' }, r.reply || ''));
}

/** Adds a result, or replaces the row's older one in place. */
function upsertResult(r) {
  const known = resultRows.get(r.line);
  if (known && known.seq > r.seq) return; // an older outcome arriving late
  const tr = resultRow(r);
  if (known) known.tr.replaceWith(tr);
  else $('results-table').tBodies[0].append(tr);
  resultRows.set(r.line, { seq: r.seq, tr });
  $('results-empty').hidden = true;
}

function clearResults() {
  $('results-table').tBodies[0].replaceChildren();
  resultRows.clear();
  $('results-empty').hidden = false;
}

/** A `campaign` event: the campaign without its results. */
function onCampaignEvent(c) {
  campaignEvents += 1;
  if (showCampaign(c)) {
    // Another run: its earlier results, if any, come with the state.
    clearResults();
    refreshState().catch((err) => showError($('send-error'), err));
  }
}

function connectEvents() {
  // `since` skips what GET api/state already gave; on reconnecting the browser sends
  // Last-Event-ID itself.
  let last = 0;
  for (const known of resultRows.values()) last = Math.max(last, known.seq);
  const source = new EventSource(withToken('api/events') + (last ? `&since=${last}` : ''));
  const note = $('events-note');
  source.addEventListener('campaign', (e) => onCampaignEvent(JSON.parse(e.data)));
  source.addEventListener('result', (e) => upsertResult(JSON.parse(e.data)));
  source.addEventListener('open', () => {
    eventsOpen = true;
    note.textContent = '';
  });
  source.addEventListener('error', () => {
    eventsOpen = false;
    note.textContent = source.readyState === EventSource.CLOSED
      ? 'Live progress stopped. Reload the page to see it again.'
      : 'Lost contact with buzon ui; trying again…';
  });
}

function bindSend() {
  const box = $('send-error');
  const post = (button, path) => button.addEventListener('click', () =>
    action(button, box, () => callState('POST', path)));
  post($('send-start'), 'api/send');
  post($('send-resume'), 'api/send'); // the same call resumes: the journal skips sent rows
  post($('send-pause'), 'api/pause');
  post($('send-stop'), 'api/stop');
  $('download-results').href = withToken('api/results.csv');
  $('download-failed').href = withToken('api/failed.csv');
}

// ---------- start ----------

async function start() {
  if (!token) {
    $('no-token').hidden = false;
    return;
  }
  bindSettings();
  bindServer();
  bindRecipients();
  bindMessage();
  bindCheck();
  bindTest();
  bindSend();
  try {
    await refreshState();
  } catch (err) {
    showError($('page-error'), err);
    return;
  }
  $('app').hidden = false;
  connectEvents();
}

start();
