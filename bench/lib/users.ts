/** The accounts every bench server is seeded with: bench-user-000001@example.com, … */
export function benchEmail(index: number): string {
  return `bench-user-${String(index).padStart(6, '0')}@example.com`;
}

/** The one password of every seeded account. */
export const BENCH_PASSWORD = 'Correct-Horse-Battery-Staple-42';
