// Renders a run's timeline as SVG with Vega-Lite, headless: throughput on top, publish latency
// below, and every fault window shaded and labelled across both.

import { parse, View } from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import type { Timeline } from "./timeline.ts";

export interface PlotOptions {
  readonly title?: string;
  readonly subtitle?: string;
  readonly width?: number;
}

const PANEL_HEIGHT = 180;
const FAULT_LANE_HEIGHT = 20;
/** Latencies are drawn on a log scale, which has no zero. */
const MIN_LATENCY_MS = 0.1;

/** The Vega-Lite spec of the plot; exposed so a harness can also save it for an interactive view. */
export function timelineSpec(timeline: Timeline, options: PlotOptions = {}): TopLevelSpec {
  const width = options.width ?? 900;
  const throughput = timeline.buckets.flatMap((b) => [
    { t: b.t, series: "confirmed publishes/s", rate: b.confirmedPerSec },
    { t: b.t, series: "deliveries/s", rate: b.deliveredPerSec },
  ]);
  // Intervals without confirms have no latency: left out, so the line shows a gap there.
  const latency = timeline.buckets.flatMap((b) => [
    ...(b.p50Ms === null ? [] : [{ t: b.t, series: "p50", ms: Math.max(b.p50Ms, MIN_LATENCY_MS) }]),
    ...(b.p99Ms === null ? [] : [{ t: b.t, series: "p99", ms: Math.max(b.p99Ms, MIN_LATENCY_MS) }]),
  ]);
  const faults = timeline.faults.map((w) => {
    const kind = w.f.replace(/^start-/, "");
    return {
      kind,
      start: w.start / 1000,
      // A fault shorter than a pixel still shows.
      end: Math.max(w.end, w.start + 1) / 1000,
      label: w.healed ? w.value : `${w.value} (never healed)`,
    };
  });
  const kinds = [...new Set(faults.map((w) => w.kind))];
  const xDomain = [0, Math.max(timeline.durationMs / 1000, 1)];
  const x = {
    field: "t",
    type: "quantitative" as const,
    title: "seconds since start",
    scale: { domain: xDomain, nice: false, zero: true },
  };
  const faultColor = {
    field: "kind",
    type: "nominal" as const,
    title: "fault",
    scale: { domain: kinds, scheme: "set2" },
  };
  const faultShading = {
    data: { values: faults },
    mark: { type: "rect" as const, opacity: 0.2 },
    encoding: {
      x: { field: "start", type: "quantitative" as const, scale: { domain: xDomain }, title: "seconds since start" },
      x2: { field: "end" },
      // The lanes above carry the legend.
      color: { ...faultColor, legend: null },
    },
  };
  // One lane per kind of fault, each window a bar with its description.
  const faultLanes = {
    width,
    height: Math.max(1, kinds.length) * FAULT_LANE_HEIGHT,
    data: { values: faults },
    encoding: {
      x: {
        field: "start",
        type: "quantitative" as const,
        scale: { domain: xDomain, nice: false },
        axis: { title: null, labels: false, ticks: false },
      },
      y: { field: "kind", type: "nominal" as const, title: null, scale: { domain: kinds }, axis: { grid: false } },
    },
    layer: [
      { mark: { type: "rect" as const, opacity: 0.7, height: FAULT_LANE_HEIGHT - 4 }, encoding: { x2: { field: "end" }, color: faultColor } },
      {
        mark: { type: "text" as const, align: "left" as const, dx: 3, fontSize: 10, limit: 400, color: "#222" },
        encoding: { text: { field: "label" } },
      },
    ],
  };

  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: options.title ?? "chaos run timeline",
      ...(options.subtitle === undefined ? {} : { subtitle: options.subtitle }),
      anchor: "start",
    },
    background: "white",
    padding: 12,
    config: {
      view: { stroke: "#ddd" },
      axis: { grid: true, gridColor: "#eee" },
      legend: { labelLimit: 300 },
    },
    vconcat: [
      ...(faults.length === 0 ? [] : [faultLanes]),
      {
        width,
        height: PANEL_HEIGHT,
        layer: [
          faultShading,
          {
            data: { values: throughput },
            mark: { type: "line", strokeWidth: 1.5, interpolate: "step-after" },
            encoding: {
              x,
              y: { field: "rate", type: "quantitative", title: "per second" },
              color: { field: "series", type: "nominal", title: "throughput", scale: { range: ["#1f77b4", "#2ca02c"] } },
            },
          },
        ],
        resolve: { scale: { color: "independent", y: "independent" } },
      },
      {
        width,
        height: PANEL_HEIGHT,
        layer: [
          faultShading,
          {
            data: { values: latency },
            mark: { type: "line", strokeWidth: 1.5, point: { size: 12 } },
            encoding: {
              x,
              y: { field: "ms", type: "quantitative", title: "publish latency (ms, log)", scale: { type: "log" } },
              color: { field: "series", type: "nominal", title: "latency", scale: { range: ["#9467bd", "#d62728"] } },
            },
          },
        ],
        resolve: { scale: { color: "independent" } },
      },
    ],
    resolve: { scale: { color: "independent" } },
  } as TopLevelSpec;
}

/** Renders the timeline to an SVG document. */
export async function renderTimelineSvg(timeline: Timeline, options: PlotOptions = {}): Promise<string> {
  const vegaSpec = compile(timelineSpec(timeline, options)).spec;
  const view = new View(parse(vegaSpec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
