import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { BENCH_DIR } from './processes.js';

const run = promisify(execFile);

/** Debian's interpreter, where apt installs its python3-* packages (not whatever python3 is first on PATH). */
export const DEBIAN_PYTHON = '/usr/bin/python3';
export const FASTAPI_SEED_DIR = path.join(BENCH_DIR, 'baselines', 'fastapi_seed');

/** Module imported → its distribution's name (for its version). */
const IMPORTS: Record<string, string> = {
  fastapi: 'fastapi',
  starlette: 'starlette',
  pydantic: 'pydantic',
  jose: 'python-jose',
  passlib: 'passlib',
  uvicorn: 'uvicorn',
  sqlalchemy: 'SQLAlchemy',
  email_validator: 'email-validator',
  dotenv: 'python-dotenv',
};

function debianPackages(): string[] {
  return readFileSync(path.join(FASTAPI_SEED_DIR, 'requirements-debian.txt'), 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

async function importedVersions(): Promise<Record<string, string> | undefined> {
  const script = [
    'import importlib, importlib.metadata, json, sys',
    `names = ${JSON.stringify(IMPORTS)}`,
    'def version(module, dist):',
    '    try:',
    '        return importlib.metadata.version(dist)',
    '    except Exception:',
    '        return str(getattr(module, "__version__", "?"))',
    'out = {dist: version(importlib.import_module(name), dist) for name, dist in names.items()}',
    'out["python"] = sys.version.split()[0]',
    'print(json.dumps(out))',
  ].join('\n');
  try {
    const { stdout } = await run(DEBIAN_PYTHON, ['-c', script], { timeout: 60_000 });
    return JSON.parse(stdout.trim()) as Record<string, string>;
  } catch {
    return undefined;
  }
}

export type PythonStatus =
  { available: true; versions: Record<string, string>; installed: string[] } | { available: false; reason: string };

/**
 * Makes the seeds' FastAPI system runnable with Debian's packages: when an import is missing, runs
 * `apt-get update` and `apt-get install -y` for the packages listed in requirements-debian.txt.
 * Without apt (or root), it reports why, and the FastAPI baseline is skipped.
 */
export async function ensureFastapiSeed(log: (message: string) => void): Promise<PythonStatus> {
  if (!existsSync(DEBIAN_PYTHON)) return { available: false, reason: `${DEBIAN_PYTHON} not found` };
  const present = await importedVersions();
  if (present !== undefined) return { available: true, versions: present, installed: [] };

  const packages = debianPackages();
  if (!existsSync('/usr/bin/apt-get')) return { available: false, reason: `apt-get is not available to install ${packages.join(' ')}` };
  if (process.getuid?.() !== 0) return { available: false, reason: `not root, so cannot apt-get install ${packages.join(' ')}` };
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    log("  installing the FastAPI seed's Debian packages: apt-get update");
    await run('apt-get', ['update'], { timeout: 300_000, env, maxBuffer: 16 * 1024 * 1024 });
    log(`  apt-get install -y ${packages.join(' ')}`);
    await run('apt-get', ['install', '-y', ...packages], { timeout: 600_000, env, maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    const detail = error instanceof Error ? error.message.split('\n').slice(-3).join(' ') : String(error);
    return { available: false, reason: `apt-get failed: ${detail}` };
  }
  const installed = await importedVersions();
  if (installed === undefined)
    return { available: false, reason: `after apt-get install, ${DEBIAN_PYTHON} still cannot import ${Object.keys(IMPORTS).join(', ')}` };
  return { available: true, versions: installed, installed: packages };
}

/** Runs the seed's bench-only seeding module (create_all + users sharing one bcrypt hash). */
export async function seedFastapiDatabase(databaseUrl: string, users: number, password: string): Promise<void> {
  await run(DEBIAN_PYTHON, ['-m', 'app.bench_seed'], {
    cwd: FASTAPI_SEED_DIR,
    timeout: 120_000,
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      SEED_USERS: String(users),
      SEED_PASSWORD: password,
      JWT_SECRET: 'unused-while-seeding',
      PYTHONDONTWRITEBYTECODE: '1',
    },
  });
}
