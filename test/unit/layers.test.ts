import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * The layer order of DESIGN.md, kept by reading every import of src/ (relative imports and
 * re-exports, `import type` included, static and dynamic).
 *
 * From the bottom: errors.ts and logging.ts (the Logger interface) → tokens → passwords → mail →
 * metrics → store → audit → sessions → limits → accounts → config → services.ts (the wiring) →
 * http → server.ts → cli → main.ts and migrate.ts. A file imports only from its own module or from a
 * module below its own. Each module owns its options type (tokens/ its JwtSettings, limits/ its
 * LockoutPolicy…); config/ reads the environment and assembles them, so it sits above the modules
 * whose options it assembles and below the wiring, and nothing below services.ts imports it.
 *
 * verify/ and client/ are installed by other services, apart from the server: verify/ imports
 * tokens/ and its own files alone (its whole import closure stays within the two, so a
 * verifying service never loads the server's code); client/ imports only its own files, since it
 * runs in browsers and tokens/ is Node code (node:crypto, Buffer).
 */
const LADDER: readonly string[] = [
  'errors.ts',
  'logging.ts',
  'tokens',
  'passwords',
  'mail',
  'metrics',
  'store',
  'audit',
  'sessions',
  'limits',
  'accounts',
  'config',
  'services.ts',
  'http',
  'server.ts',
  'cli',
  'main.ts',
  'migrate.ts',
];
/** Packages of their own: what each may import besides its own files. */
const STANDALONE: Readonly<Record<string, readonly string[]>> = { verify: ['tokens'], client: [] };

const SRC = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return sourceFiles(full);
    return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [full] : [];
  });
}

/** `import … from './x.js'`, `import type …`, `export … from`, `import './x.js'`, `import('./x.js')`. */
const IMPORT =
  /(?:^|[\n;])\s*(?:import|export)\s+(?:type\s+)?(?:[^'"`;]*?\sfrom\s*)?['"](\.{1,2}\/[^'"]+)['"]|\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

/** The relative imports of a file, as paths relative to src/. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const match of text.matchAll(IMPORT)) {
    const specifier = match[1] ?? match[2] ?? '';
    const resolved = path.resolve(path.dirname(file), specifier.replace(/\.js$/, '.ts'));
    found.push(path.relative(SRC, resolved).split(path.sep).join('/'));
  }
  return found;
}

/** A file's module: its directory under src/, or the file itself when it lies directly in src/. */
function moduleOf(file: string): string {
  return file.split('/')[0] ?? file;
}

function rankOf(module: string): number {
  return LADDER.indexOf(module);
}

const graph = new Map<string, string[]>(
  sourceFiles(SRC).map((full) => {
    const file = path.relative(SRC, full).split(path.sep).join('/');
    return [file, importsOf(full)];
  }),
);

/** Every cycle found by a depth-first walk, each as the path that closes it. */
function cycles(edges: Map<string, Iterable<string>>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string) => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of edges.get(node) ?? []) {
      if (state.get(next) === 'open') found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (state.get(next) === undefined) visit(next);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of [...edges.keys()].sort()) if (state.get(node) === undefined) visit(node);
  return found;
}

describe('layers (DESIGN.md): imports point down, never in a circle', () => {
  it('finds the imports it checks', () => {
    assert.ok(graph.size > 50, `read ${graph.size} files`);
    assert.ok((graph.get('services.ts') ?? []).includes('config/settings.ts'), 'services.ts imports config/settings.ts');
  });

  it('every import resolves to a file of src/', () => {
    const missing = [...graph].flatMap(([file, imports]) =>
      imports.filter((target) => !graph.has(target)).map((target) => `${file} → ${target}`),
    );
    assert.deepEqual(missing, []);
  });

  it('every module of src/ has its place in the layer order', () => {
    const modules = new Set([...graph.keys()].map(moduleOf));
    const unplaced = [...modules].filter((module) => rankOf(module) === -1 && !(module in STANDALONE));
    assert.deepEqual(unplaced, [], 'add each new module to LADDER (or STANDALONE) in test/unit/layers.test.ts, and to DESIGN.md');
  });

  it('no module imports from its own layer or one above it', () => {
    const upward = [...graph].flatMap(([file, imports]) => {
      const module = moduleOf(file);
      if (module in STANDALONE) return [];
      return imports
        .filter((target) => moduleOf(target) !== module && rankOf(moduleOf(target)) >= rankOf(module))
        .map((target) => `${file} → ${target}`);
    });
    assert.deepEqual(upward, []);
  });

  it('verify/ imports only tokens/ and its own files, all the way down; client/ only its own files', () => {
    const outside: string[] = [];
    for (const [standalone, allowed] of Object.entries(STANDALONE)) {
      const seen = new Set<string>();
      const pending = [...graph.keys()].filter((file) => moduleOf(file) === standalone);
      while (pending.length > 0) {
        const file = pending.pop() ?? '';
        if (seen.has(file)) continue;
        seen.add(file);
        for (const target of graph.get(file) ?? []) {
          if (moduleOf(target) !== standalone && !allowed.includes(moduleOf(target))) outside.push(`${file} → ${target}`);
          else pending.push(target);
        }
      }
    }
    assert.deepEqual(outside, []);
  });

  it('no two modules import each other, directly or around a circle', () => {
    const modules = new Map<string, Set<string>>();
    for (const [file, imports] of graph) {
      const targets = modules.get(moduleOf(file)) ?? new Set<string>();
      for (const target of imports) if (moduleOf(target) !== moduleOf(file)) targets.add(moduleOf(target));
      modules.set(moduleOf(file), targets);
    }
    assert.deepEqual(
      cycles(modules).map((cycle) => cycle.join(' → ')),
      [],
    );
  });

  it('no two files import each other, directly or around a circle', () => {
    assert.deepEqual(
      cycles(graph).map((cycle) => cycle.join(' → ')),
      [],
    );
  });
});
