// Draws "incidents over time" from the JSON data block the page carries (no inline script,
// so the Content-Security-Policy can forbid them).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const days = JSON.parse(document.getElementById("incidents-data").textContent);
  const x = days.map((d) => d.day);
  const bar = (action, color) => ({
    type: "bar", name: action, x, y: days.map((d) => d[action]), marker: { color },
  });
  const traces = [bar("warn", "#e0a800"), bar("hold", "#e06c00"), bar("reject", "#c0392b")];
  // Days are UTC days. automargin: the year plotly writes under the first day's label
  // must fit below the axis (a fixed margin cut it in half).
  const layout = {
    barmode: "stack", height: 300, margin: { l: 40, r: 10, t: 10, b: 10 },
    legend: { orientation: "h", y: -0.3 },
    xaxis: { type: "date", automargin: true, title: { text: "day (UTC)" } },
    yaxis: { rangemode: "tozero", automargin: true },
  };
  Plotly.newPlot("incidents-chart", traces, layout, { displayModeBar: false, responsive: true });
});
