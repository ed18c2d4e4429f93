/** The middle value (mean of the two middle ones for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? Number.NaN) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

/** Nearest-rank percentile (0 < p ≤ 100) of values already sorted in ascending order. */
export function percentileOfSorted(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] ?? Number.NaN;
}

/** A growable list of samples kept as doubles, so a long run costs 8 bytes per sample. */
export class SampleRecorder {
  private values = new Float64Array(4096);
  private length = 0;

  constructor(private readonly capacity: number) {}

  /** Returns false once `capacity` samples are held (the caller should stop). */
  add(value: number): boolean {
    if (this.length >= this.capacity) return false;
    if (this.length === this.values.length) {
      const grown = new Float64Array(Math.min(this.capacity, this.values.length * 2));
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.length++] = value;
    return true;
  }

  get count(): number {
    return this.length;
  }

  sorted(): Float64Array {
    return this.values.slice(0, this.length).sort();
  }
}

/** `value` with at most `digits` significant decimals, for tables. */
export function round(value: number, digits = 1): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
