import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, loadSettings, type Settings } from '../../src/config/settings.js';

/** Loading settings from a given environment, as the settings' unit tests do. */

/** Valid development secrets, so that a test's environment only says what it is about. */
export const TEST_SECRETS = {
  JWT_SECRET: 'a'.repeat(16) + '0123456789abcdef0123456789',
  JWT_REFRESH_SECRET: 'b'.repeat(16) + '0123456789abcdef0123456789',
};

/** Settings from `env` (plus the test secrets), relative paths resolved in a fresh temporary directory. */
export function settingsLoader(): {
  load: (env: Record<string, string>) => Settings;
  problemsOf: (env: Record<string, string>) => string[];
} {
  const cwd = mkdtempSync(path.join(tmpdir(), 'gatepass-settings-'));
  const load = (env: Record<string, string>) => loadSettings({ ...TEST_SECRETS, ...env }, { cwd });
  /** The problems a ConfigError names for `env`; fails when the settings load. */
  const problemsOf = (env: Record<string, string>): string[] => {
    try {
      load(env);
    } catch (error) {
      assert.ok(error instanceof ConfigError, String(error));
      return error.problems;
    }
    assert.fail('expected a ConfigError');
  };
  return { load, problemsOf };
}
