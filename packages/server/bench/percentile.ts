// The p-th percentile of samples sorted ascending (nearest rank), for the benchmarks' figures.
export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}
