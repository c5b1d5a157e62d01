// The results page's timeline: two uPlot charts (visitors per day, cumulative conversion rate)
// drawn from the JSON the page carries, the same numbers as the table, which stays for screen
// readers (and shows with "Show the numbers"). Without uPlot or JavaScript, the table is all.
(() => {
  const figure = document.getElementById("timeline");
  const source = document.getElementById("timeline-data");
  if (!figure || !source || typeof uPlot === "undefined") return;
  const data = JSON.parse(source.textContent);
  const days = data.dates.map((_, i) => i); // one x step per UTC day; labels come from the dates
  const dayLabel = (i) => (Number.isInteger(i) && data.dates[i] ? data.dates[i].slice(5) : "");
  const formats = {
    visitors: { tick: (t) => t.toLocaleString(), value: (v) => v.toLocaleString() },
    rate: { tick: (t) => `${+t.toFixed(2)} %`, value: (v) => `${v.toFixed(2)} %` },
  };
  const HEIGHT = 220;
  const width = (box) => Math.max(box.clientWidth, 200);
  for (const box of figure.querySelectorAll("[data-chart]")) {
    const metric = box.dataset.chart;
    const show = formats[metric];
    const options = {
      width: width(box),
      height: HEIGHT,
      scales: {
        x: { time: false, range: (u, min, max) => (min === max ? [min - 0.5, max + 0.5] : [min, max]) },
        y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] },
      },
      axes: [
        { incrs: [1, 2, 7, 14, 28], values: (u, ticks) => ticks.map(dayLabel) },
        { size: 64, values: (u, ticks) => ticks.map(show.tick) },
      ],
      series: [
        { label: "Day", value: (u, i) => (i == null ? "–" : data.dates[i]) },
        ...data.series.map((s) => ({
          label: s.name,
          stroke: s.color,
          width: 2,
          points: { show: days.length < 40 },
          value: (u, v) => (v == null ? "–" : show.value(v)),
        })),
      ],
    };
    const plot = new uPlot(options, [days, ...data.series.map((s) => s[metric])], box);
    new ResizeObserver(() => plot.setSize({ width: width(box), height: HEIGHT })).observe(box);
  }
  figure.classList.add("drawn");
  const toggle = figure.querySelector(".chart-toggle");
  toggle.hidden = false;
  toggle.addEventListener("click", () => {
    const open = figure.classList.toggle("show-table");
    toggle.setAttribute("aria-expanded", String(open));
    toggle.textContent = open ? "Hide the numbers" : "Show the numbers";
  });
})();
