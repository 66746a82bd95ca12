// The admin page's HTML: Eta templates with autoEscape on, so every `<%= %>` is escaped (a
// credential named `<img src=x onerror=…>` shows as text). Raw output (`<%~ %>`) is used only for
// the layout's body and for includes of these same templates. No inline script, no inline style,
// no on* attribute: the CSP forbids them and the page needs none. Every URL is relative (`it.base`
// leads back to the admin root), so the page works under any path prefix.
import { Eta } from 'eta';

const layout = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="<%= it.csrf %>">
<meta name="htmx-config" content='{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"selfRequestsOnly":true}'>
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title><%= it.title %> · Maestro admin</title>
<link rel="stylesheet" href="<%= it.base %>assets/<%= it.assets['uplot.css'] %>">
<link rel="stylesheet" href="<%= it.base %>assets/<%= it.assets['admin.css'] %>">
<script src="<%= it.base %>assets/<%= it.assets['htmx.js'] %>" defer></script>
<script src="<%= it.base %>assets/<%= it.assets['uplot.js'] %>" defer></script>
<script src="<%= it.base %>assets/<%= it.assets['admin.js'] %>" defer></script>
</head>
<body>
<header class="top">
<span class="brand">Maestro admin</span>
<% if (it.signedIn) { %>
<nav aria-label="admin sections">
<% for (const item of it.nav) { %><a href="<%= it.base %><%= item.href %>"<% if (item.current) { %> aria-current="page"<% } %>><%= item.label %></a>
<% } %>
</nav>
<form method="post" action="<%= it.base %>logout"><input type="hidden" name="_csrf" value="<%= it.csrf %>"><button class="secondary" type="submit">Sign out</button></form>
<% } %>
</header>
<main>
<% if (it.flash) { %><p class="flash" role="status"><%= it.flash %></p><% } %>
<% if (it.error) { %><p class="flash error" role="alert"><%= it.error %></p><% } %>
<%~ it.body %>
</main>
</body>
</html>
`;

const live = (inner: string) => `<div id="live" hx-get="<%= it.self %>" hx-trigger="every 5s" hx-select="#live" hx-swap="outerHTML">
<p class="updated" data-updated-at="<%= it.now %>">updated just now</p>
${inner}
</div>`;

const windows = `<% if (it.windows.length === 0) { %><span class="muted">none seen yet</span><% } %>
<% for (const w of it.windows) { %>
<div class="window">
<span><%= w.name %></span>
<% if (w.utilization !== undefined) { %><meter min="0" max="1" low="0.7" high="0.9" optimum="0" value="<%= w.utilization %>" aria-label="<%= w.name %> used"><%= w.percent %></meter><% } else { %><span class="muted">—</span><% } %>
<span><% if (w.utilization !== undefined) { %><%= w.percent %><% } %><% if (w.status) { %> · <%= w.status %><% } %><% if (w.reset) { %> · resets <span data-countdown="<%= w.reset %>"></span> (<%= w.resetText %>)<% } %><% if (w.source) { %> · <span class="muted"><%= w.source %><% if (w.observedAt) { %>, seen <span data-countdown="<%= w.observedAt %>"></span><% } %></span><% } %></span>
</div>
<% } %>`;

const login = `<% layout('@layout') %>
<section class="login card">
<h1>Sign in</h1>
<p>Paste an admin key (one of <code>MAESTRO_API_KEYS</code>, or an admin key made with <code>POST /v1/keys</code>). It is exchanged for a session here and not kept in this browser.</p>
<form method="post" action="<%= it.base %>login">
<label for="key">Admin key</label>
<input id="key" name="key" type="password" autocomplete="off" required size="40">
<p><button type="submit">Sign in</button></p>
</form>
</section>`;

const overview = `<% layout('@layout') %>
<h1>Overview</h1>
${live(`<div class="cards">
<div class="card"><div class="count"><%= it.counts.total %></div>credentials</div>
<div class="card"><div class="count"><%= it.counts.reauth %></div>need a new sign-in</div>
<div class="card"><div class="count"><%= it.counts.failing %></div>failing refreshes</div>
<div class="card"><div class="count"><%= it.counts.exhausted %></div>exhausted pools</div>
<div class="card"><div class="count"><%= it.counts.overage %></div>with overage seen</div>
</div>
<h2>Needs a person</h2>
<% if (it.needs.length === 0) { %><p>Nothing needs attention.</p><% } else { %>
<table><thead><tr><th scope="col">what</th><th scope="col">where</th><th scope="col">detail</th></tr></thead><tbody>
<% for (const n of it.needs) { %><tr><td><span class="status status-<%= n.kind %>"><%= n.what %></span></td><td><a href="<%= it.base %><%= n.href %>"><%= n.name %></a></td><td><%= n.detail %></td></tr>
<% } %></tbody></table><% } %>`)}`;

const credentialRows = `<table><thead><tr><th scope="col">name</th><th scope="col">provider</th><th scope="col">status</th><th scope="col">expires</th><th scope="col">next refresh</th><th scope="col">last refresh</th><th scope="col">rate limits</th><th scope="col">workflow</th></tr></thead><tbody>
<% for (const c of it.credentials) { %><tr>
<td><a href="<%= it.base %>credentials/<%= c.id %>"><%= c.name %></a><br><span class="muted"><%= c.authType %></span></td>
<td><%= c.provider %></td>
<td><span class="status status-<%= c.status %>"><%= c.status %></span><% if (c.lastError) { %><br><span class="muted"><%= c.lastError %></span><% } %></td>
<td><% if (c.expiresAt) { %><span data-countdown="<%= c.expiresAt %>"></span><br><span class="muted"><%= c.expiresText %></span><% } else { %><span class="muted">never</span><% } %></td>
<td><% if (c.nextRefreshAt) { %><span data-countdown="<%= c.nextRefreshAt %>"></span><br><span class="muted"><%= c.nextRefreshText %></span><% } else { %><span class="muted">—</span><% } %></td>
<td><% if (c.lastRefreshedAt) { %><span data-countdown="<%= c.lastRefreshedAt %>"></span><% } else { %><span class="muted">never</span><% } %></td>
<td><%~ include('@windows', { windows: c.windows }) %></td>
<td><% if (c.workflowUrl) { %><a href="<%= c.workflowUrl %>" rel="noopener noreferrer" target="_blank">credential:<%= c.id.slice(0, 8) %>…</a><% } else { %><span class="muted">—</span><% } %></td>
</tr><% } %>
</tbody></table>`;

const credentials = `<% layout('@layout') %>
<h1>Credentials</h1>
<p><a href="<%= it.base %>oauth">Sign in to a provider…</a></p>
${live(`<% if (it.credentials.length === 0) { %><p>No credentials yet.</p><% } else { %>${credentialRows}<% } %>
<% if (it.nextCursor) { %><p><a href="<%= it.base %>credentials?cursor=<%= it.nextCursor %>">next page</a></p><% } %>`)}`;

const credential = `<% layout('@layout') %>
<h1><%= it.c.name %> <span class="status status-<%= it.c.status %>"><%= it.c.status %></span></h1>
<p class="muted"><%= it.c.provider %> · <%= it.c.authType %> · <code><%= it.c.id %></code><% if (it.c.workflowUrl) { %> · <a href="<%= it.c.workflowUrl %>" rel="noopener noreferrer" target="_blank">workflow in Temporal</a><% } %></p>
<div class="card">
<% if (it.c.authType === 'oauth') { %><form class="inline" method="post" action="<%= it.c.id %>/refresh"><input type="hidden" name="_csrf" value="<%= it.csrf %>"><button type="submit">Refresh now</button></form>
<a href="<%= it.base %>oauth?provider=<%= it.c.provider %>&amp;name=<%= encodeURIComponent(it.c.name) %>">Sign in again</a> <% } %>
<% if (it.canReadQuota) { %><form class="inline" method="post" action="<%= it.c.id %>/quota"><input type="hidden" name="_csrf" value="<%= it.csrf %>"><button class="secondary" type="submit">Re-read quota</button></form><% } %>
<form class="inline" method="post" action="<%= it.c.id %>/<%= it.c.status === 'disabled' ? 'enable' : 'disable' %>"><input type="hidden" name="_csrf" value="<%= it.csrf %>"><button class="secondary" type="submit"><%= it.c.status === 'disabled' ? 'Enable' : 'Disable' %></button></form>
<a href="<%= it.c.id %>/delete">Delete…</a>
</div>
${live(`<table><tbody>
<tr><th scope="row">expires</th><td><% if (it.c.expiresAt) { %><span data-countdown="<%= it.c.expiresAt %>"></span> (<%= it.c.expiresText %>)<% } else { %>never<% } %></td></tr>
<tr><th scope="row">next refresh</th><td><% if (it.c.nextRefreshAt) { %><span data-countdown="<%= it.c.nextRefreshAt %>"></span> (<%= it.c.nextRefreshText %>)<% } else { %>—<% } %></td></tr>
<tr><th scope="row">last refresh</th><td><%= it.c.lastRefreshedText %> (<%= it.c.refreshCount %> so far)</td></tr>
<tr><th scope="row">last error</th><td><%= it.c.lastError ?? '—' %></td></tr>
<tr><th scope="row">rate limits</th><td><%~ include('@windows', { windows: it.c.windows }) %></td></tr>
</tbody></table>
<h2>Events</h2>
<% if (it.events.length === 0) { %><p>No events.</p><% } else { %>
<table><thead><tr><th scope="col">when</th><th scope="col">type</th><th scope="col">details</th></tr></thead><tbody>
<% for (const e of it.events) { %><tr><td><%= e.at %></td><td><%= e.type %></td><td><code><%= e.details %></code></td></tr><% } %>
</tbody></table><% } %>`)}`;

const credentialDelete = `<% layout('@layout') %>
<h1>Delete <%= it.c.name %>?</h1>
<p>This removes the stored secret of <strong><%= it.c.name %></strong> (<%= it.c.provider %>, <%= it.c.authType %>) and stops its refresh workflow. Its history stays. It cannot be undone: a new sign-in or import makes a new credential.</p>
<form method="post" action="../<%= it.c.id %>/delete"><input type="hidden" name="_csrf" value="<%= it.csrf %>">
<button class="danger" type="submit">Delete <%= it.c.name %></button> <a href="../<%= it.c.id %>">Cancel</a></form>`;

const keys = `<% layout('@layout') %>
<h1>Client keys</h1>
<% if (it.created) { %><section class="card" aria-labelledby="new-key"><h2 id="new-key">Key <%= it.created.name %> created</h2>
<p>Copy it now: it is shown this once and Maestro keeps only its hash.</p>
<p class="secret" id="created-key"><%= it.created.key %></p></section><% } %>
<details class="card"<% if (it.openForm) { %> open<% } %>><summary>Create a key</summary>
<form method="post" action="<%= it.base %>keys"><input type="hidden" name="_csrf" value="<%= it.csrf %>">
<label for="k-name">Name</label><input id="k-name" name="name" required maxlength="100">
<label for="k-role">Role</label><select id="k-role" name="role"><option value="client">client</option><option value="admin">admin</option></select>
<label for="k-credentials">Credentials (ids or names, comma-separated)</label><input id="k-credentials" name="credentials" size="50">
<label for="k-pools">Pools (ids or names, comma-separated)</label><input id="k-pools" name="pools" size="50">
<fieldset><legend>Providers</legend><% for (const p of it.providers) { %><label><input type="checkbox" name="providers" value="<%= p %>"> <%= p %></label><% } %></fieldset>
<label for="k-rpm">Requests per minute</label><input id="k-rpm" name="requestsPerMinute" inputmode="numeric" pattern="[0-9]*">
<label for="k-tpd">Tokens per day</label><input id="k-tpd" name="tokensPerDay" inputmode="numeric" pattern="[0-9]*">
<label for="k-cc">Concurrent calls</label><input id="k-cc" name="concurrentCalls" inputmode="numeric" pattern="[0-9]*">
<p><button type="submit">Create key</button></p>
</form></details>
${live(`<table><thead><tr><th scope="col">name</th><th scope="col">id</th><th scope="col">role</th><th scope="col">reaches</th><th scope="col">limits</th><th scope="col">last used</th><th scope="col">state</th><th scope="col"><span class="muted">action</span></th></tr></thead><tbody>
<% for (const k of it.keys) { %><tr>
<td><%= k.name %></td><td><code><%= k.id %></code></td><td><%= k.role %></td><td><%= k.reaches %></td><td><%= k.limits %></td>
<td><% if (k.lastUsedAt) { %><span data-countdown="<%= k.lastUsedAt %>"></span><% } else { %><span class="muted">never</span><% } %></td>
<td><% if (k.revokedAt) { %><span class="status status-disabled">revoked</span><% } else { %><span class="status status-active">active</span><% } %></td>
<td><% if (!k.revokedAt) { %><form method="post" action="<%= it.base %>keys/<%= k.id %>/revoke"><input type="hidden" name="_csrf" value="<%= it.csrf %>"><button class="danger" type="submit" aria-label="Revoke <%= k.name %>">Revoke</button></form><% } %></td>
</tr><% } %>
</tbody></table>
<% if (it.nextCursor) { %><p><a href="<%= it.base %>keys?cursor=<%= it.nextCursor %>">next page</a></p><% } %>`)}`;

const usage = `<% layout('@layout') %>
<h1>Usage</h1>
<form method="get" action="<%= it.base %>usage">
<label for="u-by">Per</label><select id="u-by" name="by"><% for (const d of it.dimensions) { %><option value="<%= d %>"<% if (d === it.by) { %> selected<% } %>><%= d %></option><% } %></select>
<label for="u-days">Over the last</label><select id="u-days" name="days"><% for (const d of [1, 7, 30]) { %><option value="<%= d %>"<% if (d === it.days) { %> selected<% } %>><%= d %> day<%= d > 1 ? 's' : '' %></option><% } %></select>
<button type="submit">Show</button></form>
<div class="chart" id="chart-tokens" data-chart="<%= JSON.stringify(it.tokensChart) %>" role="img" aria-label="tokens per hour by <%= it.by %>"></div>
<div class="chart" id="chart-requests" data-chart="<%= JSON.stringify(it.requestsChart) %>" role="img" aria-label="requests per hour by <%= it.by %>"></div>
<h2>Totals by <%= it.by %></h2>
<table id="usage-totals"><thead><tr><th scope="col"><%= it.by %></th><th scope="col">requests</th><th scope="col">errors</th><th scope="col">incomplete</th><th scope="col">input tokens</th><th scope="col">output tokens</th><th scope="col">cache read</th><th scope="col">cache write</th></tr></thead><tbody>
<% for (const r of it.rows) { %><tr><td><%= r.label %></td><td><%= r.requests %></td><td><%= r.errors %></td><td><%= r.incomplete %></td><td><%= r.inputTokens %></td><td><%= r.outputTokens %></td><td><%= r.cacheReadTokens %></td><td><%= r.cacheWriteTokens %></td></tr><% } %>
</tbody></table>
<% if (it.rows.length === 0) { %><p>No usage in this period.</p><% } %>`;

const oauth = `<% layout('@layout') %>
<h1>Sign in to a provider</h1>
<% if (!it.started) { %>
<form method="post" action="<%= it.base %>oauth/start" class="card"><input type="hidden" name="_csrf" value="<%= it.csrf %>">
<label for="o-provider">Provider</label><select id="o-provider" name="provider"><% for (const p of it.providers) { %><option value="<%= p %>"<% if (p === it.provider) { %> selected<% } %>><%= p %></option><% } %></select>
<label for="o-name">Credential name</label><input id="o-name" name="name" value="<%= it.name %>" maxlength="100">
<p><button type="submit">Start</button></p></form>
<% } else { %>
<ol class="card">
<li><a href="<%= it.started.authorizeUrl %>" rel="noopener noreferrer" target="_blank">Open the <%= it.started.provider %> sign-in page</a> and sign in (before <%= it.started.expiresText %>).</li>
<li>Paste the code it shows (or the address it sent you to):
<form method="post" action="<%= it.base %>oauth/complete"><input type="hidden" name="_csrf" value="<%= it.csrf %>">
<input type="hidden" name="provider" value="<%= it.started.provider %>"><input type="hidden" name="sessionId" value="<%= it.started.sessionId %>">
<label for="o-code">Code</label><input id="o-code" name="code" type="password" autocomplete="off" required size="50">
<p><button type="submit">Finish sign-in</button></p></form></li></ol>
<% } %>`;

const pools = `<% layout('@layout') %>
<h1>Pools</h1>
<% if (!it.configured) { %><p>Pools are not configured in this Maestro.</p><% } else { %>
${live(`<% if (it.pools.length === 0) { %><p>No pools yet (<code>POST /v1/pools</code>).</p><% } else { %>
<table><thead><tr><th scope="col">name</th><th scope="col">provider</th><th scope="col">strategy</th><th scope="col">routable</th><th scope="col">next available</th></tr></thead><tbody>
<% for (const p of it.pools) { %><tr><td><a href="<%= it.base %>pools/<%= p.id %>"><%= p.name %></a></td><td><%= p.provider %></td><td><%= p.strategy %></td><td><%= p.routable %> / <%= p.members.length %></td>
<td><% if (p.nextAvailableAt) { %><span data-countdown="<%= p.nextAvailableAt %>"></span><% } else { %><span class="muted">—</span><% } %></td></tr><% } %>
</tbody></table><% } %>`)}<% } %>`;

const pool = `<% layout('@layout') %>
<h1>Pool <%= it.pool.name %></h1>
<p class="muted"><%= it.pool.provider %> · <%= it.pool.strategy %> · when exhausted: <%= it.pool.onExhausted.mode %><% if (it.pool.onExhausted.mode === 'hold') { %> up to <%= it.pool.onExhausted.holdSeconds %> s<% } %><% if (it.pool.planLimitsOnly) { %> · plan limits only<% } %></p>
${live(`<table><thead><tr><th scope="col">member</th><th scope="col">state</th><th scope="col">until</th><th scope="col">windows</th><th scope="col">sessions</th><th scope="col">in flight</th><th scope="col"><span class="muted">actions</span></th></tr></thead><tbody>
<% for (const m of it.members) { %><tr>
<td><a href="<%= it.base %>credentials/<%= m.credentialId %>"><%= m.credentialName %></a><br><span class="muted">priority <%= m.priority %> · weight <%= m.weight %> · max <%= m.maxPercent %></span></td>
<td><span class="status status-<%= m.state %>"><%= m.state %></span><% if (m.paused) { %> <span class="status status-paused">paused</span><% } %><% if (m.reason) { %><br><span class="muted"><%= m.reason %></span><% } %>
<% for (const s of m.scope) { %><br><span class="muted"><%= s.scope %>: <%= s.reason %><% if (s.until) { %> until <%= s.until %><% } %></span><% } %></td>
<td><% if (m.until) { %><span data-countdown="<%= m.until %>"></span><br><span class="muted"><%= m.untilText %></span><% } else { %><span class="muted">—</span><% } %></td>
<td><%~ include('@windows', { windows: m.windows }) %></td>
<td><%= m.sessions %></td><td><%= m.inFlight %></td>
<td><% for (const a of m.actions) { %><form class="inline" method="post" action="<%= it.base %>pools/<%= it.pool.id %>/members/<%= m.credentialId %>/<%= a.action %>"><input type="hidden" name="_csrf" value="<%= it.csrf %>"><button class="secondary" type="submit" aria-label="<%= a.label %> <%= m.credentialName %>"><%= a.label %></button></form> <% } %></td>
</tr><% } %>
</tbody></table>
<h2>Events</h2>
<% if (it.events.length === 0) { %><p>No events.</p><% } else { %>
<table><thead><tr><th scope="col">when</th><th scope="col">type</th><th scope="col">member</th><th scope="col">reason</th><th scope="col">until</th><th scope="col">details</th></tr></thead><tbody>
<% for (const e of it.events) { %><tr><td><%= e.at %></td><td><%= e.type %></td><td><%= e.member %></td><td><%= e.reason ?? '' %></td><td><%= e.until ?? '' %></td><td><code><%= e.details %></code></td></tr><% } %>
</tbody></table><% } %>`)}`;

const message = `<% layout('@layout') %>
<h1><%= it.title %></h1>
<p><%= it.text %></p>
<p><a href="<%= it.base %>">Back to the overview</a></p>`;

export const eta = new Eta({ autoEscape: true, autoTrim: false, cache: true, useWith: false, varName: 'it' });
for (const [name, template] of Object.entries({
  layout,
  windows,
  login,
  overview,
  credentials,
  credential,
  credentialDelete,
  keys,
  usage,
  oauth,
  pools,
  pool,
  message,
})) {
  eta.loadTemplate(`@${name}`, template);
}

export type TemplateName =
  'login' | 'overview' | 'credentials' | 'credential' | 'credentialDelete' | 'keys' | 'usage' | 'oauth' | 'pools' | 'pool' | 'message';

export function render(name: TemplateName, data: object): string {
  return eta.render(`@${name}`, data);
}
