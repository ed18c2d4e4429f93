import type { Kysely } from 'kysely';
import { GatepassError } from '../errors.js';
import { ExternalIdentityRepository } from '../store/external-identities.js';
import { PasskeyRepository } from '../store/passkeys.js';
import type { Database } from '../store/schema.js';
import { UserRepository } from '../store/users.js';

export const LAST_SIGN_IN_METHOD_DETAIL =
  'This is the last way to sign in to this account: add another (a password, a passkey or a linked account) first';

/** The ways an account can sign in: its password, when it has one, each passkey, and each linked external identity. */
async function countSignInMethods(trx: Kysely<Database>, userId: number): Promise<number> {
  const user = await new UserRepository(trx).findById(userId);
  if (user === undefined) return 0;
  const passkeys = await new PasskeyRepository(trx).countOf(userId);
  const identities = await new ExternalIdentityRepository(trx).countOf(userId);
  return (user.passwordHash === null ? 0 : 1) + passkeys + identities;
}

/**
 * Runs `remove` (which takes one way to sign in away: a passkey, the password) in the caller's
 * transaction, and refuses with 409 last_sign_in_method when none would be left. The account is locked
 * first (UserRepository.lockForChange) until the transaction ends, so that concurrent removals of two
 * different ways are decided one after the other and cannot together remove the last; `remove` runs
 * before the count so that its own refusals (a passkey that is not the caller's: 404) come first.
 */
export async function removeSignInMethod<T>(trx: Kysely<Database>, userId: number, remove: () => Promise<T>): Promise<T> {
  await new UserRepository(trx).lockForChange(userId);
  const result = await remove();
  if ((await countSignInMethods(trx, userId)) === 0) throw new GatepassError('last_sign_in_method', LAST_SIGN_IN_METHOD_DETAIL);
  return result;
}
