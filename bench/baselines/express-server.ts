/**
 * Baseline: the stack of the seeds' TypeScript guide (seeds/guide-understanding-jwt.md) — Express,
 * jsonwebtoken with the secret as a string, bcryptjs with cost 10 — serving the same routes as the
 * bench asks of gatepass. The guide stores users with Prisma; here a synchronous better-sqlite3
 * table stands in for it (no ORM cost, so if anything this flatters Express), and its Redis copy of
 * the refresh token is left out (no route measured here reads it).
 *
 * Environment: PORT, DATABASE_PATH, JWT_SECRET, REFRESH_TOKEN_SECRET; SEED_USERS and
 * SEED_PASSWORD_HASH create bench-user-… accounts at start.
 */
import bcrypt from 'bcryptjs';
import SQLite from 'better-sqlite3';
import express, { type NextFunction, type Request, type Response } from 'express';
import jwt from 'jsonwebtoken';
import { READY_MARKER } from '../lib/processes.js';
import { benchEmail } from '../lib/users.js';

function required(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is required`);
  return value;
}

const JWT_SECRET = required('JWT_SECRET');
const REFRESH_TOKEN_SECRET = required('REFRESH_TOKEN_SECRET');
const db = new SQLite(required('DATABASE_PATH'));
db.pragma('journal_mode = WAL');
db.exec(`create table if not exists users (
  id integer primary key autoincrement,
  email text not null unique,
  password text not null,
  first_name text,
  last_name text,
  created_at text not null
)`);

interface UserRow {
  id: number;
  email: string;
  password: string;
  first_name: string | null;
  last_name: string | null;
  created_at: string;
}
const insertUser = db.prepare<[string, string, string | null, string | null, string]>(
  'insert into users (email, password, first_name, last_name, created_at) values (?, ?, ?, ?, ?)',
);
const userByEmail = db.prepare<[string], UserRow>('select * from users where email = ?');
const userById = db.prepare<[number], UserRow>('select * from users where id = ?');

const seedCount = Number(process.env.SEED_USERS ?? '0');
const seedHash = process.env.SEED_PASSWORD_HASH;
if (seedCount > 0 && seedHash !== undefined) {
  const now = new Date().toISOString();
  db.transaction(() => {
    for (let i = 1; i <= seedCount; i++) insertUser.run(benchEmail(i), seedHash, 'Bench', `User ${i}`, now);
  })();
}

interface TokenPayload {
  userId: number;
  email: string;
}

const generateAccessToken = (payload: TokenPayload): string => jwt.sign(payload, JWT_SECRET, { expiresIn: '15m' });
const generateRefreshToken = (payload: TokenPayload): string => jwt.sign(payload, REFRESH_TOKEN_SECRET, { expiresIn: '7d' });
const verifyAccessToken = (token: string): TokenPayload => {
  const decoded = jwt.verify(token, JWT_SECRET);
  if (typeof decoded === 'string' || typeof decoded.userId !== 'number' || typeof decoded.email !== 'string')
    throw new Error('bad payload');
  return { userId: decoded.userId, email: decoded.email };
};

const publicUser = (user: UserRow) => ({
  id: user.id,
  email: user.email,
  firstName: user.first_name,
  lastName: user.last_name,
  createdAt: user.created_at,
});

function authenticateToken(req: Request, res: Response, next: NextFunction): void {
  const authHeader = req.headers.authorization;
  const token = authHeader?.split(' ')[1];
  if (token === undefined) {
    res.status(401).json({ error: 'Access token required' });
    return;
  }
  try {
    res.locals.user = verifyAccessToken(token);
    next();
  } catch {
    res.status(401).json({ error: 'Invalid or expired token' });
  }
}

function caller(res: Response): TokenPayload {
  return res.locals.user as TokenPayload;
}

const app = express();
app.use(express.json());

app.get('/ping', (_req, res) => {
  res.json({ status: 'ok', message: 'pong' });
});

app.post('/register', async (req, res) => {
  const { email, password, firstName, lastName } = req.body as Record<string, string | undefined>;
  if (email === undefined || password === undefined) {
    res.status(400).json({ error: 'Email and password are required' });
    return;
  }
  if (userByEmail.get(email) !== undefined) {
    res.status(409).json({ error: 'User with this email already exists' });
    return;
  }
  const hashedPassword = await bcrypt.hash(password, 10);
  const info = insertUser.run(email, hashedPassword, firstName ?? null, lastName ?? null, new Date().toISOString());
  const user = userById.get(Number(info.lastInsertRowid));
  if (user === undefined) throw new Error('user vanished');
  const payload = { userId: user.id, email: user.email };
  res.status(201).json({ user: publicUser(user), accessToken: generateAccessToken(payload), refreshToken: generateRefreshToken(payload) });
});

app.post('/login', async (req, res) => {
  const { email, password } = req.body as Record<string, string | undefined>;
  const user = email === undefined ? undefined : userByEmail.get(email);
  if (user === undefined || password === undefined || !(await bcrypt.compare(password, user.password))) {
    res.status(401).json({ error: 'Invalid email or password' });
    return;
  }
  const payload = { userId: user.id, email: user.email };
  res.json({ user: publicUser(user), accessToken: generateAccessToken(payload), refreshToken: generateRefreshToken(payload) });
});

app.get('/users/me', authenticateToken, (_req, res) => {
  const user = userById.get(caller(res).userId);
  if (user === undefined) {
    res.status(404).json({ error: 'User not found' });
    return;
  }
  res.json(publicUser(user));
});

app.get('/bench/protected', authenticateToken, (_req, res) => {
  const { userId, email } = caller(res);
  res.json({ user_id: userId, email });
});

const server = app.listen(Number(process.env.PORT ?? '0'), '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  console.log(`${READY_MARKER} ${JSON.stringify({ port })}`);
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    server.close();
    server.closeAllConnections();
    db.close();
    process.exit(0);
  });
}
