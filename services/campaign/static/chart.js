// The open campaign's sends, failures and rate over time, live: every
// snapshot of a campaign the live channel brings is a sample (kept while
// the page is open, the last MAX_SAMPLES of each campaign), and the
// detail panel plots those of its campaign with uPlot (vendor/, served
// from the project). Loaded before dashboard.js, which calls
// chartSample for each snapshot and drawChart when the panel shows.
const MAX_SAMPLES = 3600;
const samples = new Map();

// Keeps campaign c's figures at this moment (a snapshot that changes
// nothing adds no sample).
function chartSample(c) {
  const series = samples.get(c.id) ?? { t: [], sent: [], notSent: [], rate: [] };
  samples.set(c.id, series);
  const p = c.progress, t = Date.now() / 1000;
  const sent = p.sent, notSent = p.failed + p.dead_lettered + p.suppressed + p.cancelled;
  const n = series.t.length;
  if (n && series.sent[n - 1] === sent && series.notSent[n - 1] === notSent) return;
  const rate = n ? ((sent + notSent) - (series.sent[n - 1] + series.notSent[n - 1])) / (t - series.t[n - 1]) : 0;
  series.t.push(t); series.sent.push(sent); series.notSent.push(notSent); series.rate.push(Math.max(0, rate));
  if (series.t.length > MAX_SAMPLES) for (const values of Object.values(series)) values.shift();
}

let chart = null, chartOf = null;
// Plots campaign id's samples in the detail panel's #detail-chart.
function drawChart(id) {
  const series = samples.get(id) ?? { t: [], sent: [], notSent: [], rate: [] };
  const box = $('#detail-chart');
  box.dataset.points = series.t.length;
  const data = [series.t, series.sent, series.notSent, series.rate];
  if (chart && chartOf === id) { chart.setData(data); return; }
  chart?.destroy();
  chartOf = id;
  chart = new uPlot({
    width: 640, height: 220,
    series: [
      {},
      { label: 'sent', stroke: '#2a7', scale: 'n' },
      { label: 'not sent', stroke: '#c33', scale: 'n' },
      { label: 'emails/s', stroke: '#36c', scale: 'rate' },
    ],
    axes: [{}, { scale: 'n', size: 70 }, { scale: 'rate', side: 1, size: 60, grid: { show: false } }],
  }, data, box);
}
