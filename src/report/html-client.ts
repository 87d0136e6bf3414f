// The report page's scripts: Chart.js, inlined from node_modules, and the plain ES2017 that draws every
// chart from the page's #report-data (html-charts.ts says what each holds). Colours come with the
// data, one per column label for the whole page; nothing is fetched.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

/** The Chart.js UMD build, read from node_modules (its package exports do not list it, so resolve beside the main file). */
export function chartJsSource(): string {
  const require = createRequire(import.meta.url);
  const main = require.resolve('chart.js');
  const umd = path.join(path.dirname(main), 'chart.umd.min.js');
  return readFileSync(umd, 'utf8').replace(/<\/script/gi, '<\\/script');
}

// Runs in the page: draws every chart from #report-data. Plain ES2017, no imports.
export const CLIENT_SCRIPT = `
'use strict';
(function () {
  var data = JSON.parse(document.getElementById('report-data').textContent);
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  var number = function (v) { return Math.round(v).toLocaleString('en-US'); };
  // 1/(1-p) = 10^k is labelled with its percentile: 1 -> 0%, 10 -> 90%, 1000 -> 99.9%.
  function percentileLabel(x) {
    var k = Math.log10(x);
    if (Math.abs(k - Math.round(k)) > 1e-9) return '';
    k = Math.round(k);
    return k === 0 ? '0%' : (100 - 100 / x).toFixed(Math.max(0, k - 2)) + '%';
  }
  // A log axis labels 1, 2 and 5 × 10^k only (all its ticks when none of them is one of those).
  function logTick(value, index, ticks) {
    var nice = function (v) { var m = v / Math.pow(10, Math.floor(Math.log10(v) + 1e-9)); return [1, 2, 5].some(function (n) { return Math.abs(m - n) < 1e-6; }); };
    return !ticks.some(function (t) { return nice(t.value); }) || nice(value) ? Number(value.toPrecision(3)).toLocaleString('en-US') : '';
  }
  function axis(log, title, extra) {
    var out = { type: log ? 'logarithmic' : 'linear', title: { display: true, text: title }, ticks: log ? { callback: logTick } : { precision: 0 } };
    for (var key in extra || {}) out[key] = extra[key];
    return out;
  }

  var latencyCharts = [];
  data.lineCharts.forEach(function (spec) {
    var percentile = spec.kind === 'percentile';
    var chart = new Chart(document.getElementById(spec.id), {
      type: 'line',
      data: {
        datasets: spec.series.map(function (s) {
          return {
            label: s.label, broker: s.label,
            data: s.points.map(function (p) { return { x: p[0], y: p[1] }; }),
            borderColor: s.colour, backgroundColor: s.colour, borderWidth: 2, tension: 0,
            pointRadius: percentile ? 0 : 4,
            pointStyle: s.held ? s.held.map(function (h) { return h ? 'circle' : 'crossRot'; }) : 'circle'
          };
        })
      },
      options: {
        responsive: true, interaction: { mode: 'nearest', intersect: false },
        scales: {
          x: percentile
            ? axis(true, spec.xTitle, { min: 1, max: 100000, ticks: { autoSkip: false, maxRotation: 0, callback: function (v) { return percentileLabel(v); } } })
            : axis(spec.xLog, spec.xTitle),
          y: axis(spec.yLog, spec.yTitle, spec.yLog ? {} : { beginAtZero: true })
        },
        plugins: { tooltip: { callbacks: percentile ? {
          title: function (items) { return 'p' + (100 - 100 / items[0].parsed.x).toFixed(3); },
          label: function (item) { return item.dataset.label + ': ' + item.parsed.y.toPrecision(4) + ' ms'; }
        } : {
          title: function (items) { return spec.xTitle + ': ' + number(items[0].parsed.x); },
          label: function (item) { return item.dataset.label + ': ' + (spec.yLog ? item.parsed.y.toPrecision(4) : number(item.parsed.y)); }
        } } }
      }
    });
    if (percentile) latencyCharts.push(chart);
  });
  var logY = document.getElementById('log-y');
  if (logY) logY.addEventListener('change', function (event) {
    latencyCharts.forEach(function (chart) {
      chart.options.scales.y.type = event.target.checked ? 'logarithmic' : 'linear';
      chart.options.scales.y.ticks.callback = event.target.checked ? logTick : Chart.Ticks.formatters.numeric;
      chart.update();
    });
  });

  // min … max of the runs, drawn over each bar.
  var whiskers = {
    id: 'whiskers',
    afterDatasetsDraw: function (chart, args, options) {
      var meta = chart.getDatasetMeta(0), x = chart.scales.x, ctx = chart.ctx;
      ctx.save();
      ctx.strokeStyle = '#222';
      ctx.lineWidth = 1.5;
      (options.range || []).forEach(function (range, i) {
        var bar = meta.data[i];
        if (!range || !bar) return;
        var y = bar.y, half = bar.height / 4, from = x.getPixelForValue(range[0]), to = x.getPixelForValue(range[1]);
        ctx.beginPath();
        ctx.moveTo(from, y); ctx.lineTo(to, y);
        ctx.moveTo(from, y - half); ctx.lineTo(from, y + half);
        ctx.moveTo(to, y - half); ctx.lineTo(to, y + half);
        ctx.stroke();
      });
      ctx.restore();
    }
  };
  data.barCharts.forEach(function (spec) {
    new Chart(document.getElementById(spec.id), {
      type: 'bar',
      data: { labels: spec.labels, datasets: [{ label: 'completed per second', data: spec.median, backgroundColor: spec.colours, borderColor: spec.colours }] },
      options: {
        indexAxis: 'y', responsive: true,
        scales: { x: { beginAtZero: true, title: { display: true, text: 'completed per second (median of the runs)' } } },
        plugins: {
          legend: { display: false },
          whiskers: { range: spec.range },
          tooltip: { callbacks: { label: function (item) {
            var range = spec.range[item.dataIndex], runs = spec.runs[item.dataIndex];
            return number(item.parsed.x) + '/s' + (range ? ' (' + number(range[0]) + ' … ' + number(range[1]) + '/s over ' + runs + ' runs)' : ' (1 run)');
          } } }
        }
      },
      plugins: [whiskers]
    });
  });

  data.timelineCharts.forEach(function (spec) {
    var points = function (values) { return values.map(function (y, i) { return { x: spec.seconds[i], y: y }; }); };
    var line = function (label, values, dash, width) {
      return { label: label, broker: spec.label, data: points(values), borderColor: spec.colour, backgroundColor: spec.colour, yAxisID: 'y',
               borderWidth: width, borderDash: dash, pointRadius: values.length < 30 ? 3 : 0 };
    };
    var datasets = [
      line('completed/s', spec.completed, [], 2.5),
      line('received/s', spec.received, [6, 3], 1.5),
      line('published/s', spec.published, [2, 3], 1.5)
    ];
    if (spec.depth) datasets.push({ label: 'queue depth', data: points(spec.depth), borderColor: '#555', backgroundColor: '#555', yAxisID: 'y1',
                                    borderWidth: 1, borderDash: [10, 4], pointRadius: 0, spanGaps: true });
    new Chart(document.getElementById(spec.id), {
      type: 'line',
      data: { datasets: datasets },
      options: {
        responsive: true, interaction: { mode: 'index', intersect: false },
        plugins: { legend: { labels: { usePointStyle: true, pointStyle: 'line' } } },
        scales: {
          x: { type: 'linear', min: 0, title: { display: true, text: 'seconds since the first publish (buckets of ' + (spec.bucketMs < 1000 ? spec.bucketMs + ' ms' : spec.bucketMs / 1000 + ' s') + ')' } },
          y: { beginAtZero: true, title: { display: true, text: 'messages per second' } },
          y1: { display: !!spec.depth, position: 'right', beginAtZero: true, grid: { drawOnChartArea: false },
                title: { display: true, text: 'queue depth (messages)' } }
        }
      }
    });
  });
  document.body.dataset.chartsDrawn = String(Object.keys(Chart.instances).length);
})();
`;
