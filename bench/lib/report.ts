/**
 * A DESIGN.md target checked within this run: `value` compared with `threshold`. `within` means
 * |value − 1| ≤ threshold (a ratio that should be 1, e.g. two timings that should match); `info`
 * is a figure recorded beside the targets with no target of its own (threshold null, met null).
 */
export interface Ratio {
  section: string;
  name: string;
  /** e.g. "gatepass ns/op ÷ bare HMAC ns/op" */
  definition: string;
  value: number | null;
  comparator: '<=' | '>=' | '<' | 'within' | 'info';
  threshold: number | null;
  unit: string;
  /** null when a side could not be measured (the reason is in `note`). */
  met: boolean | null;
  note?: string;
}

export function ratio(fields: Omit<Ratio, 'met'>): Ratio {
  const { value, comparator, threshold } = fields;
  let met: boolean | null = null;
  if (value !== null && Number.isFinite(value) && threshold !== null && comparator !== 'info') {
    if (comparator === 'within') met = Math.abs(value - 1) <= threshold;
    else met = comparator === '<=' ? value <= threshold : comparator === '<' ? value < threshold : value >= threshold;
  }
  return { ...fields, met };
}

export interface SectionOutput {
  /** Markdown for RESULTS.md, without the section heading. */
  markdown: string[];
  /** Every figure, for results.json. */
  data: unknown;
  ratios: Ratio[];
  /** Versions of what this section ran (baselines, databases). */
  versions?: Record<string, string>;
}

export interface SectionOutcome extends SectionOutput {
  id: string;
  title: string;
  status: 'ok' | 'failed';
  error?: string;
  seconds: number;
}

/** Shared by every section of one run. */
export interface BenchContext {
  /** Scratch directory, removed at the end. */
  tmpRoot: string;
  /** Durations are cut short (for trying the harness out, never for recorded results). */
  quick: boolean;
  postgresUrl: string;
  /** GATEPASS_TEST_REDIS_URL, default redis://127.0.0.1:6379 (the scale-out section). */
  redisUrl: string;
  log: (message: string) => void;
}

/**
 * One numbered item of the suite. A new measurement is one more object in the list in run.ts: it
 * gets the context, starts what it needs (and stops it, also on failure), and returns its output.
 */
export interface Section {
  id: string;
  title: string;
  run(context: BenchContext): Promise<SectionOutput>;
}

/** A markdown table; the first `textColumns` columns are left-aligned, the rest (figures) right-aligned. */
export function table(header: string[], rows: (string | number)[][], textColumns = 1): string[] {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map((_, i) => (i < textColumns ? '---' : '---:')).join('|')}|`,
    ...rows.map((row) => `| ${row.map(String).join(' | ')} |`),
  ];
}

/** Thousands separators, `digits` decimals. */
export function fmt(value: number | null | undefined, digits = 0): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function fmtRatio(value: number | null): string {
  return value === null || !Number.isFinite(value) ? '—' : `${fmt(value, value < 10 ? 2 : 1)}×`;
}

export function verdict(r: Ratio): string {
  if (r.comparator === 'info') return r.value === null || !Number.isFinite(r.value) ? 'not measured' : 'information, no target';
  if (r.met === null) return 'not measured';
  return r.met ? 'met' : '**not met**';
}

function target(r: Ratio): string {
  if (r.comparator === 'info' || r.threshold === null) return '—';
  if (r.comparator === 'within') return `1× ± ${fmt(r.threshold * 100, 0)}%`;
  return `${r.comparator === '>=' ? '≥' : r.comparator === '<=' ? '≤' : '<'} ${r.unit === '×' ? `${r.threshold}×` : `${r.threshold} ${r.unit}`}`;
}

export function ratioTable(ratios: Ratio[]): string[] {
  return table(
    ['goal', 'definition', 'measured', 'target', 'verdict'],
    ratios.map((r) => [
      r.name,
      r.definition,
      r.unit === '×' ? fmtRatio(r.value) : `${fmt(r.value, r.unit === 'ms' ? 2 : 1)} ${r.unit}`,
      target(r),
      verdict(r) + (r.note !== undefined ? ` (${r.note})` : ''),
    ]),
    2,
  );
}
