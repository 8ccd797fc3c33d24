// Draws the sink's "traffic over time" from the JSON data block the page carries (no inline
// script, so the Content-Security-Policy can forbid them).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const days = JSON.parse(document.getElementById("sink-data").textContent);
  const x = days.map((d) => d.day);
  const bar = (outcome, name, color) => ({
    type: "bar", name, x, y: days.map((d) => d[outcome]), marker: { color },
  });
  const traces = [
    bar("hint", "refused with the address meant", "#c0392b"),
    bar("unknown", "refused, no likely typo", "#7f8c8d"),
    bar("forwarded", "forwarded", "#27ae60"),
    bar("other", "other", "#bdc3c7"),
  ];
  const layout = {
    barmode: "stack", height: 280, margin: { l: 40, r: 10, t: 10, b: 40 },
    legend: { orientation: "h" }, yaxis: { rangemode: "tozero" },
  };
  Plotly.newPlot("sink-chart", traces, layout, { displayModeBar: false, responsive: true });
});
