import { GatepassApiError, describeDetail } from '../src/client/index.js';
import { byId } from './dom.js';

const errorBox = () => byId('error', HTMLDivElement);
const errorText = () => byId('error-text', HTMLParagraphElement);
const statusLine = () => byId('status', HTMLParagraphElement);

/** Shows a failure in the alert region: the server's own `detail`, its status and code. */
export function showError(error: unknown, context?: string): void {
  let text: string;
  if (error instanceof GatepassApiError) text = `${describeDetail(error.detail)} (${error.status} ${error.code})`;
  else if (error instanceof Error) text = error.message;
  else text = String(error);
  errorText().textContent = context === undefined ? text : `${context}: ${text}`;
  errorBox().hidden = false;
}

export function clearError(): void {
  errorBox().hidden = true;
  errorText().textContent = '';
}

/** A short, polite confirmation ("Task added"). */
export function showStatus(text: string): void {
  statusLine().textContent = text;
}

/** Runs an action of the user: clears the last error first, reports a failure instead of throwing. */
export async function attempt(action: () => Promise<void>, context?: string): Promise<boolean> {
  clearError();
  try {
    await action();
    return true;
  } catch (error) {
    showError(error, context);
    return false;
  }
}

export function installErrorDismiss(): void {
  byId('error-dismiss', HTMLButtonElement).addEventListener('click', clearError);
}
