// The admin page's only script of its own (served from 'self'; the page has no inline script):
// sends the CSRF token with every htmx request, keeps "updated N s ago" and reset countdowns
// current, and draws the usage charts (uPlot) from the data the server put in data-chart.
/* global document, window, htmx, uPlot */
'use strict';

const csrf = document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') ?? '';

document.body.addEventListener('htmx:configRequest', (event) => {
  event.detail.headers['x-csrf-token'] = csrf;
});

function span(seconds) {
  const s = Math.abs(Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

function tick() {
  const now = Date.now();
  for (const el of document.querySelectorAll('[data-updated-at]')) {
    const at = Date.parse(el.getAttribute('data-updated-at'));
    if (!Number.isNaN(at)) el.textContent = `updated ${span((now - at) / 1000)} ago`;
  }
  for (const el of document.querySelectorAll('[data-countdown]')) {
    const at = Date.parse(el.getAttribute('data-countdown'));
    if (Number.isNaN(at)) continue;
    el.textContent = at > now ? `in ${span((at - now) / 1000)}` : `${span((now - at) / 1000)} ago`;
  }
}

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#4d7c0f', '#be185d'];

function drawChart(el) {
  if (el.dataset.drawn) return;
  const data = JSON.parse(el.getAttribute('data-chart'));
  const width = Math.max(320, el.clientWidth || 720);
  const series = [{}].concat(
    data.series.map((s, i) => ({ label: s.label, stroke: COLORS[i % COLORS.length], width: 2, points: { show: true } })),
  );
  new uPlot(
    { title: data.title, width, height: 260, series, axes: [{}, { label: data.unit, size: 70 }] },
    [data.x].concat(data.series.map((s) => s.values)),
    el,
  );
  el.dataset.drawn = 'yes';
}

htmx.onLoad((content) => {
  for (const el of content.querySelectorAll('[data-chart]')) drawChart(el);
  tick();
});
window.setInterval(tick, 1000);
